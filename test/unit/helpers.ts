/**
 * Shared test helpers: a seeded PRNG (mulberry32 + Box-Muller), random tensors, relative-difference
 * measures, channels-first/last permutations and a float64 central-difference gradient check.
 * Nothing here depends on the code under test beyond the Tensor type, the Module contract and the
 * seeded generator of src/rng.ts.
 */
import assert from "node:assert/strict";
import { Module, makeParameter } from "../../src/nn/module.js";
import type { Parameter } from "../../src/nn/module.js";
import { mulberry32 } from "../../src/rng.js";
import { Tensor, type DType } from "../../src/tensor.js";

export { mulberry32 };

/** A seeded standard-normal generator (Box-Muller over mulberry32). */
export function randnGenerator(seed: number): () => number {
  const u = mulberry32(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u1 = u();
    while (u1 <= 0) u1 = u();
    const u2 = u();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
}

/** n standard-normal values. */
export function randn(n: number, seed: number): number[] {
  const g = randnGenerator(seed);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = g();
  return out;
}

/** offset + scale * randn, in the given dtype (float32 values are rounded once, at storage). */
export function randTensor(
  shape: readonly number[],
  dtype: DType = "float64",
  seed = 1,
  opts: { offset?: number; scale?: number } = {},
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const off = opts.offset ?? 0, sc = opts.scale ?? 1;
  return Tensor.from(randn(n, seed).map((v) => off + sc * v), shape, dtype);
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/**
 * max|a - b| / max(floor, max|a|, max|b|) (0 when both are all zero). NaN anywhere gives NaN, so a
 * comparison `<= tol` fails on it.
 */
export function maxRelDiff(a: ArrayLike<number> | Tensor, b: ArrayLike<number> | Tensor, floor = 0): number {
  const x = a instanceof Tensor ? a.data : a;
  const y = b instanceof Tensor ? b.data : b;
  if (x.length !== y.length) throw new Error(`maxRelDiff: lengths differ (${x.length} vs ${y.length})`);
  let d = 0;
  for (let i = 0; i < x.length; i++) {
    const e = Math.abs(x[i]! - y[i]!);
    if (Number.isNaN(e)) return NaN;
    d = Math.max(d, e);
  }
  const den = Math.max(floor, maxAbs(x), maxAbs(y));
  return den === 0 ? d : d / den;
}

/**
 * FORMAT.md's measure: max |got - want| / max(1, max |want|); Infinity where any difference is NaN.
 * Shapes must agree.
 */
export function relToScale(got: Tensor, want: Tensor): number {
  assert.deepEqual([...got.shape], [...want.shape], "relToScale: shapes");
  let scale = 1, worst = 0;
  for (let i = 0; i < want.size; i++) scale = Math.max(scale, Math.abs(want.data[i]!));
  for (let i = 0; i < want.size; i++) {
    const e = Math.abs(got.data[i]! - want.data[i]!);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst / scale;
}

/** Asserts equal shapes (for tensors) and maxRelDiff <= tol. */
export function assertClose(actual: ArrayLike<number> | Tensor, expected: ArrayLike<number> | Tensor, tol: number, what: string, floor = 0): void {
  if (actual instanceof Tensor && expected instanceof Tensor) {
    assert.deepEqual([...actual.shape], [...expected.shape], `${what}: shape`);
  }
  const r = maxRelDiff(actual, expected, floor);
  assert.ok(r <= tol, `${what}: relative difference ${r} > ${tol}`);
}

/** Σ a·b in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** [N, C, *spatial] → [N, *spatial, C] (a copy). */
export function toChannelsLast(t: Tensor): Tensor {
  const [N, C] = t.shape as [number, number];
  const S = t.size / (N * C);
  const out = Tensor.zeros([N, ...t.shape.slice(2), C], t.dtype);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < S; s++) out.data[(n * S + s) * C + c] = t.data[(n * C + c) * S + s]!;
  return out;
}

/** [N, *spatial, C] → [N, C, *spatial] (a copy). */
export function fromChannelsLast(t: Tensor): Tensor {
  const N = t.shape[0]!, C = t.shape[t.rank - 1]!;
  const S = t.size / (N * C);
  const out = Tensor.zeros([N, C, ...t.shape.slice(1, t.rank - 1)], t.dtype);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < S; s++) out.data[(n * C + c) * S + s] = t.data[(n * S + s) * C + c]!;
  return out;
}

/**
 * Gives every parameter non-trivial seeded values: weight ~ 1 + 0.5 randn, bias ~ 0.5 randn,
 * Switchable Norm logits (mean_weight, var_weight) ~ randn.
 */
export function setRandomParams(layer: Module, seed: number): void {
  let s = seed;
  for (const [name, p] of Object.entries(layer.namedParameters())) {
    const r = randn(p.value.size, s++);
    for (let i = 0; i < r.length; i++) {
      p.value.data[i] = name === "weight" ? 1 + 0.5 * r[i]! : name === "bias" ? 0.5 * r[i]! : r[i]!;
    }
  }
}

/** Copies of every parameter gradient, by name. */
export function gradsOf(layer: Module): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  for (const [k, p] of Object.entries(layer.namedParameters())) out[k] = Float64Array.from(p.grad.data);
  return out;
}

export interface FiniteDiffOptions {
  /** Seed of the random dy (ignored when dy is given). */
  seed?: number;
  dy?: Tensor;
  /** Central-difference step. Default 1e-6. */
  h?: number;
  /** Bound on max|analytic - numeric| / max(1e-3, max|numeric|). Default 1e-6. */
  tol?: number;
  label?: string;
}

/**
 * Checks dx and every parameter gradient of `layer` (float64) at `x` against central differences
 * of L = Σ dy·y. The layer's state (parameters and running statistics) is restored after every
 * perturbed forward, so training-mode running updates do not leak between evaluations. Returns
 * the analytic dx and parameter gradients (from one backward after zeroGrad()).
 */
export function finiteDiffCheck(layer: Module, x: Tensor, opts: FiniteDiffOptions = {}): { dx: Tensor; grads: Record<string, Float64Array>; dy: Tensor } {
  assert.equal(x.dtype, "float64", "finiteDiffCheck needs float64");
  const h = opts.h ?? 1e-6, tol = opts.tol ?? 1e-6, label = opts.label ?? layer.constructor.name;
  const dy = opts.dy ?? randTensor(x.shape, "float64", opts.seed ?? 12345);
  const saved = layer.stateDict();
  const restore = () => layer.loadStateDict(saved);

  layer.zeroGrad();
  layer.forward(x);
  const dx = layer.backward(dy);
  const grads = gradsOf(layer);
  restore();

  const loss = (xx: Tensor): number => {
    const y = layer.forward(xx);
    restore();
    return dot(dy.data, y.data);
  };
  const check = (analytic: ArrayLike<number>, numeric: ArrayLike<number>, what: string) => {
    let d = 0;
    for (let i = 0; i < numeric.length; i++) d = Math.max(d, Math.abs(analytic[i]! - numeric[i]!));
    const rel = d / Math.max(1e-3, maxAbs(numeric));
    assert.ok(rel < tol, `${label}: ${what} differs from central differences: relative error ${rel} >= ${tol}`);
  };

  // dx
  const xp = x.clone();
  const num = new Float64Array(x.size);
  for (let i = 0; i < x.size; i++) {
    const v = x.data[i]!;
    xp.data[i] = v + h;
    const lp = loss(xp);
    xp.data[i] = v - h;
    const lm = loss(xp);
    xp.data[i] = v;
    num[i] = (lp - lm) / (2 * h);
  }
  check(dx.data, num, "dx");

  // every parameter
  for (const [name, p] of Object.entries(layer.namedParameters())) {
    const g = new Float64Array(p.value.size);
    for (let i = 0; i < p.value.size; i++) {
      const v = p.value.data[i]!;
      p.value.data[i] = v + h;
      const lp = loss(x);
      p.value.data[i] = v - h;
      const lm = loss(x);
      p.value.data[i] = v;
      g[i] = (lp - lm) / (2 * h);
    }
    check(grads[name]!, g, `d${name}`);
  }
  return { dx, grads, dy };
}

/**
 * A module with Module's default device policy (host only), for the tests of to()'s refusals: every
 * built-in layer runs on every device. One parameter `w` [2]; forward and backward are the identity.
 */
export class HostOnly extends Module {
  readonly w: Parameter = makeParameter([2], "float32", 1);
  constructor() {
    super("float32");
  }
  namedParameters(): Record<string, Parameter> {
    return { w: this.w };
  }
  forward(x: Tensor): Tensor {
    return x;
  }
  backward(dy: Tensor): Tensor {
    return dy;
  }
}
