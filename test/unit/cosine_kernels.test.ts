/**
 * Cosine Norm's contract operations (src/kernels/contract/ops.ts: normalize, normalizeBackward,
 * cosineConv2d, cosineConv2dBackward): the host set against naive float64 loops written from the
 * formulas (a gather per receptive field, no im2col), with the output rules of the contract (dx
 * overwritten, parameter gradients accumulated); then the WebGPU set against the host set, op by
 * op, including all-padding receptive fields and zero fields inside the image (eps 1e-12: dx of
 * order 1e12), and eps 0 on the GPU (no read-back, no check).
 *
 * Without a WebGPU adapter the GPU part is skipped locally and FAILS under CI=true.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, Tensor, cpu } from "../../src/index.js";
import type { Device } from "../../src/index.js";
import { conv2dGeometry } from "../../src/kernels/contract/ops.js";
import type { Conv2dGeometry } from "../../src/kernels/contract/ops.js";
import { CosineLinear } from "../../src/nn/cosine_norm.js";
import { mulberry32 } from "../../src/rng.js";
import { randn, relToScale } from "./helpers.js";
import { requireGpu } from "./gpu_helpers.js";

const t64 = (shape: number[], seed: number, scale = 1) => Tensor.from(randn(shape.reduce((a, b) => a * b, 1), seed).map((v) => Math.fround(v * scale)), shape, "float64");

/** The receptive field of output (n, oh, ow) as K values (zero padding included), and the x index of each (−1 in the padding). */
function field(x: Tensor, g: Conv2dGeometry, n: number, oh: number, ow: number): { c: number[]; at: number[] } {
  const c: number[] = [], at: number[] = [];
  for (let ch = 0; ch < g.C; ch++) {
    for (let i = 0; i < g.kh; i++) {
      for (let j = 0; j < g.kw; j++) {
        const h = oh * g.sh - g.ph + i, w = ow * g.sw - g.pw + j;
        const inside = h >= 0 && h < g.H && w >= 0 && w < g.W;
        const k = ((n * g.C + ch) * g.H + h) * g.W + w;
        c.push(inside ? x.data[k]! : 0);
        at.push(inside ? k : -1);
      }
    }
  }
  return { c, at };
}

/** The formulas of the contract, in plain loops (float64). */
function naiveCosineConv(x: Tensor, what: Tensor, dy: Tensor, g: Conv2dGeometry, eps: number) {
  const { N, O, K, P } = g;
  const y = new Float64Array(N * O * P), norms = new Float64Array(N * P), dx = new Float64Array(x.size), dw = new Float64Array(O * K);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < P; p++) {
      const { c, at } = field(x, g, n, Math.floor(p / g.Wo), p % g.Wo);
      const nrm = Math.sqrt(c.reduce((s, v) => s + v * v, 0));
      norms[n * P + p] = nrm;
      const d = nrm > eps ? nrm : eps;
      const chat = c.map((v) => v / d);
      const dchat = new Array<number>(K).fill(0);
      for (let o = 0; o < O; o++) {
        const yi = (n * O + o) * P + p;
        let s = 0;
        for (let k = 0; k < K; k++) s += what.data[o * K + k]! * chat[k]!;
        y[yi] = s;
        for (let k = 0; k < K; k++) {
          dchat[k]! += what.data[o * K + k]! * dy.data[yi]!;
          dw[o * K + k]! += dy.data[yi]! * chat[k]!;
        }
      }
      const project = nrm >= eps && nrm > 0;
      const dot = project ? chat.reduce((s, v, k) => s + v * dchat[k]!, 0) : 0;
      for (let k = 0; k < K; k++) if (at[k]! >= 0) dx[at[k]!]! += (dchat[k]! - dot * chat[k]!) / (project ? nrm : d);
    }
  }
  return { y, norms, dx, dw };
}

/** A normalised weight [O, C, kh, kw] (rows of K), as the layer makes it. */
function normalizedWeight(O: number, K: number, shape: number[], seed: number): Tensor {
  const w = t64(shape, seed);
  const out = Tensor.zeros(shape, "float64");
  cpu.ops.normalize({ u: out, norms: Tensor.zeros([O], "float64"), x: w, count: O, len: K, vs: K, es: 1, eps: 1e-12 });
  return out;
}

interface ConvCase { name: string; x: number[]; O: number; k: [number, number]; s: [number, number]; p: [number, number]; zeroAt?: (n: number, c: number, h: number, w: number) => boolean }
const CONV_CASES: ConvCase[] = [
  { name: "3x3 padding 1", x: [2, 3, 5, 6], O: 4, k: [3, 3], s: [1, 1], p: [1, 1] },
  { name: "[3,2] stride [2,1] padding [0,1]", x: [2, 2, 7, 5], O: 3, k: [3, 2], s: [2, 1], p: [0, 1] },
  { name: "2x2 stride 2 padding 2 (all-padding fields)", x: [2, 2, 4, 5], O: 3, k: [2, 2], s: [2, 2], p: [2, 2] },
  // a zero block of the image: fields inside it are zero with in-image positions (dx = Ŵᵀdy / eps there)
  { name: "3x3 on an image with a zero block", x: [1, 2, 7, 7], O: 3, k: [3, 3], s: [1, 1], p: [0, 0], zeroAt: (_n, _c, h, w) => h < 4 && w < 4 },
];

function convInputs(c: ConvCase, seed: number) {
  const g = conv2dGeometry(c.x, c.O, c.k, c.s, c.p);
  const x = t64(c.x, seed);
  if (c.zeroAt) {
    const [, C, H, W] = c.x as [number, number, number, number];
    x.data.forEach((_, i) => {
      if (c.zeroAt!(Math.floor(i / (C * H * W)), Math.floor(i / (H * W)) % C, Math.floor(i / W) % H, i % W)) x.data[i] = 0;
    });
  }
  const what = normalizedWeight(c.O, g.K, [c.O, c.x[1]!, c.k[0], c.k[1]], seed + 1);
  const dy = t64([g.N, c.O, g.Ho, g.Wo], seed + 2);
  return { g, x, what, dy };
}

/** Runs the four operations on `dev` from host inputs; dx is prefilled with garbage (overwritten) and dweight with 0.5 (accumulated). */
async function runConvOps(dev: Device, c: ConvCase, seed: number, eps: number, dtype: "float32" | "float64") {
  const { g, x, what, dy } = convInputs(c, seed);
  const up = (t: Tensor) => (dev === cpu ? t.clone(dtype) : dev.upload(t, dtype));
  const X = up(x), Wt = up(what), DY = up(dy);
  const y = dev.zeros([g.N, g.O, g.Ho, g.Wo], dtype), norms = dev.zeros([g.N, g.Ho, g.Wo], dtype);
  const ws = dev.ops.createWorkspace();
  dev.ops.cosineConv2d({ y, norms, x: X, weight: Wt, eps, geometry: g, workspace: ws });
  const dx = up(Tensor.full(x.shape, 7, "float64")), dw = up(Tensor.full(what.shape, 0.5, "float64"));
  dev.ops.cosineConv2dBackward({ dx, dweight: dw, dy: DY, y, norms, x: X, weight: Wt, eps, geometry: g, workspace: ws });
  const down = async (t: Tensor) => (dev === cpu ? t.clone("float64") : dev.download(t, "float64"));
  const out = { y: await down(y), norms: await down(norms), dx: await down(dx), dw: await down(dw) };
  ws.destroy();
  return { out, g, x, what, dy };
}

describe("Cosine Norm's host kernels (the contract's operations on cpu)", () => {
  it("normalize and its adjoint over rows and over strided columns, as the formulas; dx = or += as asked", () => {
    // [4, 6]: rows (vs 6, es 1) and columns (vs 1, es 6); vector 2 is zero, eps 1e-12
    const x = t64([4, 6], 1), du = t64([4, 6], 2);
    for (let e = 0; e < 6; e++) x.data[2 * 6 + e] = 0;
    for (const [count, len, vs, es] of [[4, 6, 6, 1], [6, 4, 1, 6]] as const) {
      const u = Tensor.zeros([4, 6], "float64"), norms = Tensor.zeros([count], "float64");
      cpu.ops.normalize({ u, norms, x, count, len, vs, es, eps: 1e-12 });
      const dx = Tensor.full([4, 6], 3, "float64"), acc = Tensor.full([4, 6], 3, "float64");
      cpu.ops.normalizeBackward({ dx, du, u, norms, count, len, vs, es, eps: 1e-12, accumulate: false });
      cpu.ops.normalizeBackward({ dx: acc, du, u, norms, count, len, vs, es, eps: 1e-12, accumulate: true });
      for (let r = 0; r < count; r++) {
        const idx = Array.from({ length: len }, (_, e) => r * vs + e * es);
        const n = Math.sqrt(idx.reduce((s, i) => s + x.data[i]! ** 2, 0));
        assert.equal(norms.data[r], n);
        const d = n > 1e-12 ? n : 1e-12;
        const dot = n > 0 ? idx.reduce((s, i) => s + (x.data[i]! / d) * du.data[i]!, 0) : 0;
        for (const i of idx) {
          assert.ok(Math.abs(u.data[i]! - x.data[i]! / d) <= 1e-15);
          const want = n > 0 ? (du.data[i]! - dot * (x.data[i]! / d)) / n : du.data[i]! / 1e-12;
          assert.ok(Math.abs(dx.data[i]! - want) <= 1e-12 * Math.max(1, Math.abs(want)), `dx ${i}`);
          assert.ok(Math.abs(acc.data[i]! - 3 - want) <= 1e-12 * Math.max(1, Math.abs(want)), `dx += ${i}`);
        }
      }
    }
  });

  for (const c of CONV_CASES) {
    it(`cosineConv2d and its backward, ${c.name}: as the formulas in float64; dx overwritten, dweight accumulated`, async () => {
      const { out, g, x, what, dy } = await runConvOps(cpu, c, 5, 1e-12, "float64");
      const want = naiveCosineConv(x, what, dy, g, 1e-12);
      const wantDw = Tensor.from(Array.from(want.dw, (v) => v + 0.5), what.shape, "float64");
      for (const [k, got, w] of [
        ["y", out.y, new Tensor(want.y, out.y.shape)], ["norms", out.norms, new Tensor(want.norms, out.norms.shape)],
        ["dx", out.dx, new Tensor(want.dx, x.shape)], ["dweight", out.dw, wantDw],
      ] as const) {
        assert.ok(relToScale(got, w) <= 1e-12, `${k}: ${relToScale(got, w)}`);
      }
    });
  }

  it("without dx (null) only dweight is computed, the same as with it", async () => {
    const { g, x, what, dy } = convInputs(CONV_CASES[1]!, 8);
    const ws = cpu.ops.createWorkspace();
    const y = Tensor.zeros([g.N, g.O, g.Ho, g.Wo], "float64"), norms = Tensor.zeros([g.N, g.Ho, g.Wo], "float64");
    cpu.ops.cosineConv2d({ y, norms, x, weight: what, eps: 1e-12, geometry: g, workspace: ws });
    const a = Tensor.zeros(what.shape, "float64"), b = Tensor.zeros(what.shape, "float64");
    cpu.ops.cosineConv2dBackward({ dx: null, dweight: a, dy, y, norms, x, weight: what, eps: 1e-12, geometry: g, workspace: ws });
    cpu.ops.cosineConv2dBackward({ dx: Tensor.zeros(x.shape, "float64"), dweight: b, dy, y, norms, x, weight: what, eps: 1e-12, geometry: g, workspace: ws });
    assert.deepEqual([...a.data], [...b.data]);
  });
});

describe("Cosine Norm's WebGPU kernels against the host's", () => {
  it("normalize and its adjoint, rows and strided columns, with a zero vector (eps 1e-12)", async (t) => {
    const dev = requireGpu(t);
    if (!dev) return;
    const x = t64([4, 6], 1), du = t64([4, 6], 2);
    for (let e = 0; e < 6; e++) x.data[2 * 6 + e] = 0;
    for (const [count, len, vs, es] of [[4, 6, 6, 1], [6, 4, 1, 6]] as const) {
      const run = async (d: Device) => {
        const up = (v: Tensor) => (d === cpu ? v.clone("float32") : d.upload(v, "float32"));
        const u = d.zeros([4, 6], "float32"), norms = d.zeros([count], "float32");
        const X = up(x);
        d.ops.normalize({ u, norms, x: X, count, len, vs, es, eps: 1e-12 });
        const dx = up(Tensor.full([4, 6], 3, "float64")), acc = up(Tensor.full([4, 6], 3, "float64"));
        d.ops.normalizeBackward({ dx, du: up(du), u, norms, count, len, vs, es, eps: 1e-12, accumulate: false });
        d.ops.normalizeBackward({ dx: acc, du: up(du), u, norms, count, len, vs, es, eps: 1e-12, accumulate: true });
        const down = (v: Tensor) => (d === cpu ? Promise.resolve(v.clone("float64")) : d.download(v, "float64"));
        return { u: await down(u), norms: await down(norms), dx: await down(dx), acc: await down(acc) };
      };
      const got = await run(dev), want = await run(cpu);
      for (const k of ["u", "norms", "dx", "acc"] as const) {
        // dx of the zero vector is du / eps ≈ 1e12: relative to its scale
        const scale = Math.max(1, ...Array.from(want[k].data, Math.abs));
        const err = Math.max(...Array.from(got[k].data, (v, i) => Math.abs(v - want[k].data[i]!))) / scale;
        assert.ok(err <= 1e-5, `${k} (${count} vectors): ${err}`);
      }
    }
  });

  for (const c of CONV_CASES) {
    it(`cosineConv2d and its backward, ${c.name}: the host's in float64 within float32 tolerance`, async (t) => {
      const dev = requireGpu(t);
      if (!dev) return;
      const got = (await runConvOps(dev, c, 5, 1e-12, "float32")).out;
      const want = (await runConvOps(cpu, c, 5, 1e-12, "float64")).out;
      for (const k of ["y", "norms", "dx", "dw"] as const) {
        const scale = Math.max(1, ...Array.from(want[k].data, Math.abs));
        const err = Math.max(...Array.from(got[k].data, (v, i) => Math.abs(v - want[k].data[i]!))) / scale;
        assert.ok(err <= 1e-5, `${k}: ${err} (scale ${scale})`);
      }
      if (c.zeroAt) assert.ok(Math.max(...Array.from(want.dx.data, Math.abs)) > 1e10, "a zero field inside the image: dx = Ŵᵀdy / eps");
    });
  }

  it("eps 0: a zero row is a ConfigError on the host; on the GPU nothing is read back or checked, the other rows are exact", async (t) => {
    const dev = requireGpu(t);
    if (!dev) return;
    const make = () => new CosineLinear({ inFeatures: 4, outFeatures: 3, rng: mulberry32(3) });
    const x = Tensor.from([1, 2, 3, 4, 0, 0, 0, 0, -1, 0.5, 2, 1], [3, 4]);
    assert.throws(() => make().forward(x), (e: unknown) => e instanceof ConfigError && e.param === "x" && /row 1 is all zeros/.test((e as Error).message));
    const gpu = await make().to(dev);
    const y = await dev.download(gpu.forward(dev.upload(x)));
    const ok = make().forward(Tensor.from([1, 2, 3, 4, -1, 0.5, 2, 1], [2, 4]));
    for (const [row, hostRow] of [[0, 0], [2, 1]] as const) {
      for (let o = 0; o < 3; o++) assert.ok(Math.abs(y.data[row * 3 + o]! - ok.data[hostRow * 3 + o]!) <= 1e-6);
    }
    assert.ok([0, 1, 2].every((o) => !Number.isFinite(y.data[3 + o]!)), "the zero row's outputs are 0/0");
  });
});
