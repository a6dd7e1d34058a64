import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { runCosineNormCase, runWeightNormCase } from "../../src/conformance/cases_weight.js";
import type { FixtureCase } from "../../src/conformance/fixture.js";
import { ConfigError, ShapeError, StateDictError, StateError } from "../../src/errors.js";
import { Conv2d } from "../../src/nn/conv2d.js";
import { CosineConv2d, CosineLinear } from "../../src/nn/cosine_norm.js";
import { Linear } from "../../src/nn/linear.js";
import { Module } from "../../src/nn/module.js";
import { WeightNorm, weightNorm } from "../../src/nn/weight_norm.js";
import { col2im, conv2dGeometry, im2col } from "../../src/kernels/ts/conv2d.js";
import { mulberry32, uniform } from "../../src/rng.js";
import { DType, Tensor } from "../../src/tensor.js";

const fixtures = JSON.parse(readFileSync(new URL("../../../test/data/pytorch-fixtures.json", import.meta.url), "utf8")) as { cases: FixtureCase[] };

function randn(shape: number[], rng: () => number, dtype: DType = "float64"): Tensor {
  const t = Tensor.zeros(shape, dtype);
  for (let i = 0; i < t.size; i++) t.data[i] = uniform(rng, -1, 1);
  return t;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Deep copies of every parameter value and grad, to prove an error changed nothing. */
function snapshot(m: Module): Record<string, number[]> {
  const s: Record<string, number[]> = {};
  for (const [k, p] of Object.entries(m.namedParameters())) {
    s[k] = p.value.toArray();
    s[k + ".grad"] = p.grad.toArray();
  }
  return s;
}

describe("PyTorch fixtures: weight_norm and cosine_norm", () => {
  const cases = fixtures.cases.filter((c) => c.op === "weight_norm" || c.op === "cosine_norm");
  test("the fixture file has such cases", () => assert.ok(cases.length >= 5));
  for (const c of cases) {
    for (const dtype of ["float64", "float32"] as const) {
      test(`${c.name} (${dtype})`, () => {
        const got = c.op === "weight_norm" ? runWeightNormCase(c, dtype) : runCosineNormCase(c, dtype);
        const tol = dtype === "float64" ? 1e-9 : 1e-4;
        assert.deepEqual(Object.keys(got).sort(), Object.keys(c.outputs!).sort());
        for (const [name, want] of Object.entries(c.outputs!)) {
          const t = got[name]!;
          assert.equal(t.dtype, dtype, name);
          assert.deepEqual([...t.shape], want.shape, name);
          const err = maxDiff(t.data, want.data);
          assert.ok(err <= tol * Math.max(1, maxAbs(want.data)), `${name}: max error ${err}`);
        }
      });
    }
  }
});

describe("reference checks of the plain kernels", () => {
  test("Conv2d matches a direct convolution (stride 2, padding [1, 2], kernel 3x2)", () => {
    const rng = mulberry32(1);
    const conv = new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: [3, 2], stride: 2, padding: [1, 2], dtype: "float64", rng });
    const x = randn([2, 2, 6, 5], rng);
    const y = conv.forward(x);
    const [N, C, H, W] = x.shape as number[];
    const [, O, Ho, Wo] = y.shape as number[];
    assert.deepEqual([...y.shape], [2, 3, Math.floor((6 + 2 - 3) / 2) + 1, Math.floor((5 + 4 - 2) / 2) + 1]);
    const w = conv.weight.value.data, b = conv.bias!.value.data;
    for (let n = 0; n < N!; n++) for (let o = 0; o < O!; o++) for (let oh = 0; oh < Ho!; oh++) for (let ow = 0; ow < Wo!; ow++) {
      let s = b[o]!;
      for (let c = 0; c < C!; c++) for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) {
        const ih = oh * 2 - 1 + i, iw = ow * 2 - 2 + j;
        if (ih >= 0 && ih < H! && iw >= 0 && iw < W!) s += w[((o * C! + c) * 3 + i) * 2 + j]! * x.data[((n * C! + c) * H! + ih) * W! + iw]!;
      }
      assert.ok(Math.abs(y.data[((n * O! + o) * Ho! + oh) * Wo! + ow]! - s) < 1e-12);
    }
  });

  test("col2im is the adjoint of im2col", () => {
    const rng = mulberry32(2);
    const g = conv2dGeometry([1, 2, 7, 6], 1, [3, 3], [2, 1], [1, 2]);
    const x = randn([2 * 7 * 6], rng).data, c = randn([g.K * g.P], rng).data;
    const col = new Float64Array(g.K * g.P), back = new Float64Array(x.length);
    im2col(col, x, 0, g);
    col2im(back, 0, c, g, false);
    let a = 0, b = 0;
    for (let i = 0; i < col.length; i++) a += col[i]! * c[i]!;
    for (let i = 0; i < x.length; i++) b += x[i]! * back[i]!;
    assert.ok(Math.abs(a - b) < 1e-12 * Math.max(1, Math.abs(a)));
  });

  test("Linear matches x Wᵀ + b and keeps leading axes", () => {
    const rng = mulberry32(3);
    const lin = new Linear({ inFeatures: 4, outFeatures: 3, dtype: "float64", rng });
    const x = randn([2, 5, 4], rng);
    const y = lin.forward(x);
    assert.deepEqual([...y.shape], [2, 5, 3]);
    for (let r = 0; r < 10; r++) for (let o = 0; o < 3; o++) {
      let s = lin.bias!.value.data[o]!;
      for (let k = 0; k < 4; k++) s += x.data[r * 4 + k]! * lin.weight.value.data[o * 4 + k]!;
      assert.ok(Math.abs(y.data[r * 3 + o]! - s) < 1e-14);
    }
  });

  test("default init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and seeded", () => {
    const a = new Conv2d({ inChannels: 2, outChannels: 4, kernelSize: 3, rng: mulberry32(7) });
    const b = new Conv2d({ inChannels: 2, outChannels: 4, kernelSize: 3, rng: mulberry32(7) });
    assert.deepEqual(a.weight.value.toArray(), b.weight.value.toArray());
    assert.ok(maxAbs(a.weight.value.data) <= 1 / Math.sqrt(18) && maxAbs(a.bias!.value.data) <= 1 / Math.sqrt(18));
    assert.equal(a.weight.value.dtype, "float32");
  });

  test("WeightNorm starts as the wrapped layer (g = ||v||, v = W)", () => {
    for (const dim of [0, null] as const) {
      const rng = mulberry32(4);
      const conv = new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, dtype: "float64", rng });
      const x = randn([2, 2, 4, 4], rng);
      const y0 = conv.forward(x).toArray();
      const wn = weightNorm(conv, { dim });
      assert.deepEqual([...wn.g.value.shape], dim === 0 ? [3, 1, 1, 1] : []);
      assert.ok(maxDiff(wn.forward(x).data, y0) < 1e-14);
    }
  });
});

/** Central differences of L = Σ y·R against backward(R), for dx and every parameter. */
function gradCheck(layer: Module, x: Tensor, seed: number): void {
  const rng = mulberry32(seed);
  const y = layer.forward(x);
  const R = randn([...y.shape], rng);
  layer.zeroGrad();
  const dx = layer.backward(R);
  const loss = (): number => {
    const out = layer.forward(x).data;
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * R.data[i]!;
    return s;
  };
  const h = 1e-6;
  const check = (name: string, arr: Float32Array | Float64Array, ana: ArrayLike<number>): void => {
    const num = new Float64Array(arr.length);
    for (let i = 0; i < arr.length; i++) {
      const old = arr[i]!;
      arr[i] = old + h;
      const lp = loss();
      arr[i] = old - h;
      const lm = loss();
      arr[i] = old;
      num[i] = (lp - lm) / (2 * h);
    }
    const err = maxDiff(num, ana) / Math.max(1, maxAbs(ana));
    assert.ok(err < 1e-6, `${name}: relative error ${err}`);
    assert.ok(maxAbs(ana) > 0, `${name}: gradient is all zero`);
  };
  check("dx", x.data, dx.data);
  for (const [k, p] of Object.entries(layer.namedParameters())) check(k, p.value.data, p.grad.toArray());
}

describe("finite-difference gradient checks (float64)", () => {
  const rng = mulberry32(11);
  const f64 = "float64" as const;
  const convOpts = (stride: number, padding: number) => ({ inChannels: 2, outChannels: 3, kernelSize: 3, stride, padding, dtype: f64, rng });
  const cases: [string, () => Module, number[]][] = [
    ["Linear", () => new Linear({ inFeatures: 5, outFeatures: 4, dtype: f64, rng }), [3, 5]],
    ["Linear without bias", () => new Linear({ inFeatures: 5, outFeatures: 4, bias: false, dtype: f64, rng }), [3, 5]],
    ["Conv2d", () => new Conv2d(convOpts(1, 0)), [2, 2, 5, 5]],
    ["Conv2d stride 2 padding 1", () => new Conv2d(convOpts(2, 1)), [2, 2, 6, 5]],
    ["WeightNorm(Linear) dim 0", () => weightNorm(new Linear({ inFeatures: 5, outFeatures: 4, dtype: f64, rng }), { dim: 0 }), [3, 5]],
    ["WeightNorm(Linear) dim null", () => weightNorm(new Linear({ inFeatures: 5, outFeatures: 4, dtype: f64, rng }), { dim: null }), [3, 5]],
    ["WeightNorm(Conv2d) dim 0", () => weightNorm(new Conv2d(convOpts(2, 1)), { dim: 0 }), [2, 2, 5, 5]],
    ["WeightNorm(Conv2d) dim null", () => weightNorm(new Conv2d(convOpts(1, 1)), { dim: null }), [2, 2, 4, 4]],
    ["CosineLinear", () => new CosineLinear({ inFeatures: 5, outFeatures: 4, dtype: f64, rng }), [3, 5]],
    ["CosineConv2d", () => new CosineConv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, dtype: f64, rng }), [2, 2, 5, 5]],
    ["CosineConv2d stride 2 padding 1", () => new CosineConv2d({ inChannels: 2, outChannels: 3, kernelSize: [3, 2], stride: 2, padding: 1, dtype: f64, rng }), [2, 2, 5, 6]],
  ];
  cases.forEach(([name, make, shape], i) => {
    test(name, () => {
      const layer = make();
      // move g off ||v|| so dg is not trivially aligned
      if (layer instanceof WeightNorm) for (let j = 0; j < layer.g.value.size; j++) layer.g.value.data[j] *= 1.3 + 0.1 * j;
      gradCheck(layer, randn(shape, mulberry32(100 + i)), 200 + i);
    });
  });
});

describe("scale invariance", () => {
  const rng = mulberry32(21);
  const scale = (t: Tensor, s: number) => { for (let i = 0; i < t.size; i++) t.data[i] *= s; };
  test("WeightNorm: v -> λv leaves the output unchanged", () => {
    for (const dim of [0, null] as const) {
      const wn = weightNorm(new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, dtype: "float64", rng }), { dim });
      const x = randn([2, 2, 4, 4], rng);
      const y0 = wn.forward(x).toArray();
      scale(wn.v.value, 7.25);
      assert.ok(maxDiff(wn.forward(x).data, y0) < 1e-12);
      scale(wn.v.value, 1e-3);
      assert.ok(maxDiff(wn.forward(x).data, y0) < 1e-12);
    }
  });
  const layers: [string, () => Module, number[]][] = [
    ["CosineLinear", () => new CosineLinear({ inFeatures: 6, outFeatures: 3, dtype: "float64", rng }), [4, 6]],
    ["CosineConv2d", () => new CosineConv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, dtype: "float64", rng }), [2, 2, 5, 5]],
  ];
  for (const [name, make, shape] of layers) {
    test(`${name}: W -> λW and x -> λx leave the output unchanged`, () => {
      const layer = make();
      const x = randn(shape, rng);
      const y0 = layer.forward(x).toArray();
      assert.ok(maxAbs(y0) <= 1 + 1e-12);
      scale(layer.namedParameters().weight!.value, 13.5);
      assert.ok(maxDiff(layer.forward(x).data, y0) < 1e-12);
      scale(x, 0.02);
      assert.ok(maxDiff(layer.forward(x).data, y0) < 1e-12);
    });
  }
});

describe("bad input: typed errors, nothing changed", () => {
  const rng = mulberry32(31);
  const f64 = "float64" as const;
  type Entry = { name: string; make: () => Module; good: number[]; badRank: number[]; badSize: number[] };
  const entries: Entry[] = [
    { name: "Linear", make: () => new Linear({ inFeatures: 4, outFeatures: 3, dtype: f64, rng }), good: [2, 4], badRank: [], badSize: [2, 5] },
    { name: "Conv2d", make: () => new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, dtype: f64, rng }), good: [1, 2, 4, 4], badRank: [2, 4, 4], badSize: [1, 3, 4, 4] },
    { name: "WeightNorm(Linear)", make: () => weightNorm(new Linear({ inFeatures: 4, outFeatures: 3, dtype: f64, rng })), good: [2, 4], badRank: [], badSize: [2, 3] },
    { name: "WeightNorm(Conv2d)", make: () => weightNorm(new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, dtype: f64, rng }), { dim: null }), good: [1, 2, 4, 4], badRank: [1, 2, 4, 4, 1], badSize: [1, 1, 4, 4] },
    { name: "CosineLinear", make: () => new CosineLinear({ inFeatures: 4, outFeatures: 3, dtype: f64, rng }), good: [2, 4], badRank: [], badSize: [2, 6] },
    { name: "CosineConv2d", make: () => new CosineConv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, dtype: f64, rng }), good: [1, 2, 4, 4], badRank: [2, 4, 4], badSize: [1, 3, 4, 4] },
  ];
  for (const e of entries) {
    test(e.name, () => {
      const layer = e.make();
      const before = snapshot(layer);
      assert.throws(() => layer.backward(Tensor.zeros([1], f64)), (err: unknown) => err instanceof StateError && err.param === "backward");
      assert.throws(() => layer.forward(randn(e.badRank, rng)), (err: unknown) => err instanceof ShapeError && err.param === "x");
      assert.throws(() => layer.forward(randn(e.badSize, rng)), (err: unknown) => err instanceof ShapeError && err.param === "x");
      assert.throws(() => layer.forward(randn(e.good, rng, "float32")), (err: unknown) => err instanceof ConfigError && err.param === "x.dtype");
      assert.deepEqual(snapshot(layer), before);

      const y = layer.forward(randn(e.good, rng));
      layer.backward(randn([...y.shape], rng));
      const afterStep = snapshot(layer);
      const badDy = [...y.shape];
      badDy[badDy.length - 1]! += 1;
      assert.throws(() => layer.backward(randn(badDy, rng)), (err: unknown) => err instanceof ShapeError && err.param === "dy");
      assert.deepEqual(snapshot(layer), afterStep);

      const sd = layer.stateDict();
      const [firstKey] = Object.keys(sd);
      const missing = { ...sd };
      delete missing[firstKey!];
      assert.throws(() => layer.loadStateDict(missing), (err: unknown) => err instanceof StateDictError && err.param === firstKey);
      const wrong = { ...sd };
      for (const k of Object.keys(sd)) wrong[k] = Tensor.zeros([...sd[k]!.shape, 2], f64);
      const k0 = Object.keys(sd)[0]!;
      assert.throws(() => layer.loadStateDict(wrong), (err: unknown) => err instanceof StateDictError && err.param === k0);
      assert.deepEqual(snapshot(layer), afterStep);
    });
  }

  test("CosineLinear refuses a zero row with eps 0 and defines it with eps > 0", () => {
    const layer = new CosineLinear({ inFeatures: 3, outFeatures: 2, dtype: f64, rng });
    const x = Tensor.from([1, 2, 3, 0, 0, 0], [2, 3], f64);
    assert.throws(() => layer.forward(x), (err: unknown) => err instanceof ConfigError && err.param === "x");
    const eps = new CosineLinear({ inFeatures: 3, outFeatures: 2, eps: 1e-12, dtype: f64, rng });
    const y = eps.forward(x);
    assert.deepEqual(y.toArray().slice(2), [0, 0]);
  });

  test("bad options are ConfigErrors naming the option", () => {
    assert.throws(() => new Linear({ inFeatures: 0, outFeatures: 2 }), (e: unknown) => e instanceof ConfigError && e.param === "inFeatures");
    assert.throws(() => new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: [3, 0] }), (e: unknown) => e instanceof ConfigError && e.param === "kernelSize");
    assert.throws(() => new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3, padding: -1 }), (e: unknown) => e instanceof ConfigError && e.param === "padding");
    assert.throws(() => new CosineConv2d({ inChannels: 1, outChannels: 2, kernelSize: 3, eps: -1 }), (e: unknown) => e instanceof ConfigError && e.param === "eps");
    assert.throws(() => weightNorm(new Linear({ inFeatures: 2, outFeatures: 2 }), { dim: 1 as unknown as 0 }), (e: unknown) => e instanceof ConfigError && e.param === "dim");
  });

  test("conv input smaller than the kernel is a ShapeError", () => {
    const conv = new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 3, dtype: f64 });
    assert.throws(() => conv.forward(Tensor.zeros([1, 1, 2, 5], f64)), (e: unknown) => e instanceof ShapeError && e.param === "x");
  });

  test("malformed fixture cases", () => {
    const base = fixtures.cases.find((c) => c.name === "weight_norm_linear_dim0")!;
    const withConfig = (config: Record<string, unknown>): FixtureCase => ({ ...base, config: { ...base.config, ...config } });
    assert.throws(() => runWeightNormCase(withConfig({ layer: "conv3d" }), "float64"), (e: unknown) => e instanceof ConfigError && e.param === "layer");
    assert.throws(() => runWeightNormCase(withConfig({ in_features: undefined }), "float64"), (e: unknown) => e instanceof ConfigError && e.param === "in_features");
    assert.throws(() => runWeightNormCase(withConfig({ in_features: 6 }), "float64"), (e: unknown) => e instanceof ShapeError && e.param === "inputs.x");
    assert.throws(() => runWeightNormCase(withConfig({ dim: 2 }), "float64"), (e: unknown) => e instanceof ConfigError && e.param === "dim");
    const shortV = { ...base, inputs: { ...base.inputs, v: { shape: [4, 5], data: [1, 2, 3] } } };
    assert.throws(() => runWeightNormCase(shortV, "float64"), (e: unknown) => e instanceof ShapeError && e.param === "inputs.v");
    const cos = fixtures.cases.find((c) => c.op === "cosine_norm" && c.config.layer === "conv2d")!;
    assert.throws(() => runCosineNormCase({ ...cos, config: { ...cos.config, kernel_size: undefined } }, "float32"), (e: unknown) => e instanceof ConfigError && e.param === "kernel_size");
    assert.throws(() => runCosineNormCase({ ...cos, inputs: { ...cos.inputs, weight: { shape: [4, 3, 2, 2], data: new Array(48).fill(1) } } }, "float32"), (e: unknown) => e instanceof ShapeError && e.param === "inputs.weight");
  });
});

describe("state dict round trip with PyTorch key names", () => {
  const rng = mulberry32(41);
  const f64 = "float64" as const;
  const pairs: [string, () => Module, string[], number[]][] = [
    ["Linear", () => new Linear({ inFeatures: 3, outFeatures: 2, dtype: f64, rng }), ["bias", "weight"], [2, 3]],
    ["Conv2d", () => new Conv2d({ inChannels: 2, outChannels: 2, kernelSize: 3, dtype: f64, rng }), ["bias", "weight"], [1, 2, 3, 3]],
    ["WeightNorm(Linear)", () => weightNorm(new Linear({ inFeatures: 3, outFeatures: 2, dtype: f64, rng })),
      ["bias", "parametrizations.weight.original0", "parametrizations.weight.original1"], [2, 3]],
    ["WeightNorm(Conv2d, no bias)", () => weightNorm(new Conv2d({ inChannels: 2, outChannels: 2, kernelSize: 3, bias: false, dtype: f64, rng }), { dim: null }),
      ["parametrizations.weight.original0", "parametrizations.weight.original1"], [1, 2, 3, 3]],
    ["CosineLinear", () => new CosineLinear({ inFeatures: 3, outFeatures: 2, dtype: f64, rng }), ["weight"], [2, 3]],
    ["CosineConv2d", () => new CosineConv2d({ inChannels: 2, outChannels: 2, kernelSize: 3, dtype: f64, rng }), ["weight"], [1, 2, 3, 3]],
  ];
  for (const [name, make, keys, shape] of pairs) {
    test(name, () => {
      const a = make(), b = make();
      const sd = a.stateDict();
      assert.deepEqual(Object.keys(sd).sort(), keys);
      b.loadStateDict(sd);
      assert.deepEqual(b.stateDict(), sd);
      const x = randn(shape, rng);
      assert.deepEqual(b.forward(x).toArray(), a.forward(x).toArray());
      // a float32 dict loads into a float64 layer, converted
      const c = make();
      const sd32: Record<string, Tensor> = {};
      for (const [k, t] of Object.entries(sd)) sd32[k] = t.clone("float32");
      c.loadStateDict(sd32);
      for (const [k, t] of Object.entries(c.stateDict())) {
        assert.equal(t.dtype, "float64");
        assert.deepEqual(t.toArray(), sd32[k]!.toArray());
      }
    });
  }
  test("WeightNorm g shape is [] for dim null, loaded from a PyTorch scalar", () => {
    const wn = weightNorm(new Linear({ inFeatures: 3, outFeatures: 2, dtype: f64, rng }), { dim: null });
    const sd = wn.stateDict();
    assert.deepEqual([...sd["parametrizations.weight.original0"]!.shape], []);
    wn.loadStateDict({ ...sd, "parametrizations.weight.original0": { shape: [], data: [2] } });
    let n = 0;
    for (const v of wn.v.value.data) n += v * v;
    const w = wn.weight().data;
    let m = 0;
    for (const v of w) m += v * v;
    assert.ok(Math.abs(Math.sqrt(m) - 2) < 1e-14 && n > 0);
  });
});
