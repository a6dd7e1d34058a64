// LSTM (src/nn/lstm.ts) against PyTorch: test/data/lstm.json (scripts/fixtures/gen_lstm.py) holds
// torch.nn.LSTM cases and the single-bias, layer_norm and batch_norm cells written out with autograd.
// float64 within 1e-10 (relative to max(1, max|want|)), float32 within 1e-5; a central-difference
// gradient check in float64; clipGradNorm against hand-computed values.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LSTM, type LSTMNorm } from "../../src/nn/lstm.js";
import { clipGradNorm } from "../../src/nn/optim.js";
import { makeParameter } from "../../src/nn/module.js";
import { mulberry32 } from "../../src/rng.js";
import { DType, Tensor } from "../../src/tensor.js";
import { ConfigError, ShapeError } from "../../src/errors.js";
import { randn, relToScale } from "./helpers.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
interface J {
  shape: number[];
  data: number[];
}
interface Case {
  name: string;
  config: { T: number; N: number; I: number; H: number; batch_first: boolean; bias: "two" | "one" | "none"; norm: LSTMNorm; training: boolean; max_steps: number | null };
  params: Record<string, J>;
  buffers: Record<string, J>;
  inputs: Record<string, J>;
  outputs: Record<string, J>;
}
const fixture = JSON.parse(readFileSync(join(root, "test", "data", "lstm.json"), "utf8")) as { cases: Case[] };

const tensor = (j: J, dtype: DType) => Tensor.from(j.data, j.shape, dtype);

function build(c: Case, dtype: DType): LSTM {
  const k = c.config;
  const lstm = new LSTM({
    inputSize: k.I, hiddenSize: k.H, batchFirst: k.batch_first, bias: k.bias !== "none", singleBias: k.bias === "one" || (k.norm !== "none" && k.bias === "none"),
    norm: k.norm, ...(k.max_steps !== null ? { maxSteps: k.max_steps } : {}), dtype, rng: mulberry32(0),
  });
  lstm.loadStateDict({ ...c.params, ...c.buffers });
  lstm.train(k.training);
  return lstm;
}

function runCase(c: Case, dtype: DType) {
  const lstm = build(c, dtype);
  const inp = c.inputs;
  const t = (name: string) => (inp[name] ? tensor(inp[name]!, dtype) : null);
  const fwd = lstm.forwardSequence(tensor(inp["x"]!, dtype), { h: t("h0"), c: t("c0") });
  lstm.zeroGrad();
  const bwd = lstm.backwardSequence(tensor(inp["dOut"]!, dtype), { h: t("dh"), c: t("dc") });
  const got: Record<string, Tensor> = { output: fwd.output, h: fwd.h, c: fwd.c, dx: bwd.dx!, dh0: bwd.dh0, dc0: bwd.dc0 };
  for (const [k, p] of Object.entries(lstm.namedParameters())) got[`grad.${k}`] = p.grad;
  const sd = lstm.stateDict();
  for (const k of Object.keys(c.outputs)) if (!(k in got) && k in sd) got[k] = sd[k]!;
  return got;
}

describe("LSTM vs PyTorch (test/data/lstm.json)", () => {
  for (const [dtype, tol] of [["float64", 1e-10], ["float32", 1e-5]] as const) {
    for (const c of fixture.cases) {
      it(`${c.name} (${dtype}, ${tol})`, () => {
        const got = runCase(c, dtype);
        for (const [k, want] of Object.entries(c.outputs)) {
          const g = got[k];
          assert.ok(g, `${c.name}: no output ${k}`);
          const w = Tensor.from(want.data, want.shape, "float64");
          // num_batches_tracked is a scalar count: compare the value
          const gg = k.endsWith("num_batches_tracked") ? Tensor.from(g.data, want.shape, "float64") : Tensor.from(g.data, g.shape, "float64");
          const err = relToScale(gg, w);
          assert.ok(err <= tol, `${c.name} ${dtype} ${k}: ${err} > ${tol}`);
        }
        // every parameter has its gradient checked
        for (const k of Object.keys(c.params)) assert.ok(`grad.${k}` in c.outputs, `${c.name}: grad.${k} in the fixture`);
      });
    }
  }
});

/** L = Σ out·dOut + Σ h_T·dh + Σ c_T·dc for the module as it is. */
function lossOf(lstm: LSTM, x: Tensor, h0: Tensor, c0: Tensor, dOut: Tensor, dh: Tensor, dc: Tensor): number {
  const r = lstm.forwardSequence(x, { h: h0, c: c0 });
  let s = 0;
  for (let i = 0; i < dOut.size; i++) s += r.output.data[i]! * dOut.data[i]!;
  for (let i = 0; i < dh.size; i++) s += r.h.data[i]! * dh.data[i]! + r.c.data[i]! * dc.data[i]!;
  return s;
}

describe("LSTM central differences (float64)", () => {
  const cases: [LSTMNorm, boolean, boolean][] = [["none", false, false], ["none", true, true], ["layer_norm", true, false], ["batch_norm", false, false]];
  for (const [norm, batchFirst, single] of cases) {
    it(`${norm}${batchFirst ? " batch_first" : ""}${single ? " single bias" : ""}`, () => {
      const T = 4, N = 3, I = 3, H = 4;
      const lstm = new LSTM({ inputSize: I, hiddenSize: H, norm, batchFirst, singleBias: norm === "none" ? single : true, ...(norm === "batch_norm" ? { maxSteps: T } : {}), dtype: "float64", rng: mulberry32(7) });
      // perturb the norm parameters away from their init, so their gradients are general
      for (const [k, p] of Object.entries(lstm.namedParameters())) if (k.includes("n_")) p.value.data.forEach((v, i, a) => (a[i] = v + 0.3 * Math.sin(i + k.length)));
      const xs = batchFirst ? [N, T, I] : [T, N, I];
      const x = Tensor.from(randn(T * N * I, 1), xs, "float64");
      const h0 = Tensor.from(randn(N * H, 2), [1, N, H], "float64"), c0 = Tensor.from(randn(N * H, 3), [1, N, H], "float64");
      const dOut = Tensor.from(randn(T * N * H, 4), batchFirst ? [N, T, H] : [T, N, H], "float64");
      const dh = Tensor.from(randn(N * H, 5), [1, N, H], "float64"), dc = Tensor.from(randn(N * H, 6), [1, N, H], "float64");
      // BN in training updates its running statistics on every forward: they do not enter the loss
      lossOf(lstm, x, h0, c0, dOut, dh, dc);
      lstm.zeroGrad();
      const g = lstm.backwardSequence(dOut, { h: dh, c: dc });
      const eps = 1e-6;
      const check = (name: string, a: Float64Array | Float32Array, analytic: ArrayLike<number>) => {
        let worst = 0, scale = 1;
        for (let i = 0; i < a.length; i++) {
          const v = a[i]!;
          a[i] = v + eps;
          const up = lossOf(lstm, x, h0, c0, dOut, dh, dc);
          a[i] = v - eps;
          const down = lossOf(lstm, x, h0, c0, dOut, dh, dc);
          a[i] = v;
          const num = (up - down) / (2 * eps);
          worst = Math.max(worst, Math.abs(num - analytic[i]!));
          scale = Math.max(scale, Math.abs(num));
        }
        assert.ok(worst / scale < 1e-7, `${norm} ${name}: central difference off by ${worst / scale}`);
      };
      check("x", x.data, g.dx!.data);
      check("h0", h0.data, g.dh0.data);
      check("c0", c0.data, g.dc0.data);
      for (const [k, p] of Object.entries(lstm.namedParameters())) check(k, p.value.data, p.grad.data.slice());
    });
  }
});

describe("LSTM options and state dict", () => {
  it("names its parameters as PyTorch (and the variants as documented)", () => {
    assert.deepEqual(Object.keys(new LSTM({ inputSize: 2, hiddenSize: 3 }).stateDict()), ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]);
    assert.deepEqual(Object.keys(new LSTM({ inputSize: 2, hiddenSize: 3, singleBias: true }).stateDict()), ["weight_ih_l0", "weight_hh_l0", "bias_l0"]);
    assert.deepEqual(Object.keys(new LSTM({ inputSize: 2, hiddenSize: 3, bias: false }).stateDict()), ["weight_ih_l0", "weight_hh_l0"]);
    assert.deepEqual(Object.keys(new LSTM({ inputSize: 2, hiddenSize: 3, norm: "layer_norm" }).stateDict()), [
      "weight_ih_l0", "weight_hh_l0", "bias_l0", "ln_ih_l0.weight", "ln_ih_l0.bias", "ln_hh_l0.weight", "ln_hh_l0.bias", "ln_c_l0.weight", "ln_c_l0.bias",
    ]);
    const bn = new LSTM({ inputSize: 2, hiddenSize: 3, norm: "batch_norm", maxSteps: 2 });
    const keys = Object.keys(bn.stateDict());
    assert.equal(keys.length, 3 + 3 * 2 * 2 + 3 * 2 * 3);
    for (const k of ["bn_ih_l0.0.weight", "bn_c_l0.1.bias", "bn_hh_l0.1.running_var", "bn_c_l0.0.num_batches_tracked"]) assert.ok(keys.includes(k), k);
    assert.equal(bn.namedParameters()["bn_ih_l0.0.weight"]!.value.data[0], Math.fround(0.1));
  });
  it("initialises U(−1/√H, 1/√H) from rng, deterministically", () => {
    const a = new LSTM({ inputSize: 5, hiddenSize: 16, rng: mulberry32(3) }), b = new LSTM({ inputSize: 5, hiddenSize: 16, rng: mulberry32(3) });
    for (const [k, p] of Object.entries(a.namedParameters())) {
      assert.deepEqual(p.value.toArray(), b.namedParameters()[k]!.value.toArray());
      assert.ok(p.value.toArray().every((v) => Math.abs(v) <= 0.25), k);
    }
  });
  it("refuses bad options and inputs", () => {
    assert.throws(() => new LSTM({ inputSize: 0, hiddenSize: 3 }), ConfigError);
    assert.throws(() => new LSTM({ inputSize: 2, hiddenSize: 3, norm: "batch_norm" }), ConfigError); // maxSteps
    assert.throws(() => new LSTM({ inputSize: 2, hiddenSize: 3, norm: "layer_norm", singleBias: false }), ConfigError);
    assert.throws(() => new LSTM({ inputSize: 2, hiddenSize: 3, norm: "bogus" as LSTMNorm }), ConfigError);
    const l = new LSTM({ inputSize: 2, hiddenSize: 3 });
    assert.throws(() => l.forward(Tensor.zeros([4, 2, 3])), ShapeError);
    assert.throws(() => l.forward(Tensor.zeros([4, 2])), ShapeError);
    assert.throws(() => l.forward(Tensor.zeros([4, 2, 2]), { h: Tensor.zeros([1, 3, 3]) }), ShapeError);
    assert.throws(() => new LSTM({ inputSize: 2, hiddenSize: 3 }).backward(Tensor.zeros([4, 2, 3])));
    const bn = new LSTM({ inputSize: 2, hiddenSize: 3, norm: "batch_norm", maxSteps: 3 });
    assert.throws(() => bn.forward(Tensor.zeros([4, 2, 2])), ShapeError); // more steps than BatchNorms
    assert.throws(() => bn.forward(Tensor.zeros([3, 1, 2])), ShapeError); // one sample in training
    bn.eval();
    bn.forward(Tensor.zeros([3, 1, 2]));
  });
});

describe("LSTM caller outputs", () => {
  it("writes into given tensors, skips dx on request, takes dOutput null as zeros", () => {
    const T = 3, N = 2, I = 2, H = 3;
    const make = () => new LSTM({ inputSize: I, hiddenSize: H, batchFirst: true, norm: "layer_norm", dtype: "float64", rng: mulberry32(5) });
    const a = make(), b = make();
    const x = Tensor.from(randn(T * N * I, 9), [N, T, I], "float64");
    const dh = Tensor.from(randn(N * H, 8), [1, N, H], "float64");
    const ra = a.forwardSequence(x);
    const ga = a.backwardSequence(Tensor.zeros([N, T, H], "float64"), { h: dh });
    const outs = { output: Tensor.zeros([N, T, H], "float64"), h: Tensor.zeros([1, N, H], "float64"), c: Tensor.zeros([1, N, H], "float64") };
    const rb = b.forwardSequence(x, {}, outs);
    assert.equal(rb.output, outs.output);
    assert.deepEqual(rb.h.toArray(), ra.h.toArray());
    const dh0 = Tensor.zeros([1, N, H], "float64");
    const gb = b.backwardSequence(null, { h: dh }, { dx: null, dh0 });
    assert.equal(gb.dx, null);
    assert.equal(gb.dh0, dh0);
    assert.deepEqual(gb.dh0.toArray(), ga.dh0.toArray());
    for (const [k, p] of Object.entries(a.namedParameters())) assert.deepEqual(b.namedParameters()[k]!.grad.toArray(), p.grad.toArray(), k);
  });
});

describe("clipGradNorm", () => {
  const params = (grads: number[][]) => grads.map((g) => {
    const p = makeParameter([g.length], "float64", 0);
    p.grad.data.set(g);
    return p;
  });
  it("scales by maxNorm / (norm + 1e-6) above maxNorm and returns the norm", () => {
    const ps = params([[3, 0], [0, 4]]); // ‖g‖ = 5
    assert.equal(clipGradNorm(ps, 1), 5);
    const c = 1 / (5 + 1e-6);
    assert.deepEqual(ps[0]!.grad.toArray(), [3 * c, 0]);
    assert.deepEqual(ps[1]!.grad.toArray(), [0, 4 * c]);
  });
  it("leaves gradients below maxNorm alone", () => {
    const ps = params([[0.3], [0.4]]);
    assert.ok(Math.abs(clipGradNorm(ps, 1) - 0.5) < 1e-15);
    assert.deepEqual(ps.map((p) => p.grad.data[0]), [0.3, 0.4]);
  });
  it("refuses a bad maxNorm", () => assert.throws(() => clipGradNorm(params([[1]]), -1), ConfigError));
});
