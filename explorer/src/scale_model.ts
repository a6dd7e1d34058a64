/**
 * The computation behind the "Scale invariance" view, without the DOM: a fixed small network input
 * (a few bundled MNIST digits) through one 3×3 convolution, then each normalization method, once with
 * λ = 1 and once with either the input x or the convolution's weights multiplied by λ.
 *
 * Everything is computed by normkit's own layers (Conv2d, BatchNorm2d, LayerNorm, InstanceNorm2d,
 * GroupNorm, WeightNorm, CosineConv2d) on the CPU, float32. The recipe (RECIPE) is published on the page
 * so that anyone — the browser test included — can rebuild the same numbers with normkit elsewhere.
 */
import {
  BatchNorm2d, Conv2d, CosineConv2d, GroupNorm, InstanceNorm2d, LayerNorm, Tensor, WeightNorm, mulberry32,
  type Module,
} from "../../src/index.js";
import type { Digits } from "./digits.js";
import { MNIST_MEAN, MNIST_STD } from "../../src/lab/mnist_constants.js";

export type Target = "input" | "weights";
export type MethodId = "none" | "batch_norm" | "layer_norm" | "instance_norm" | "group_norm" | "weight_norm" | "cosine_norm";

/** How the input and the network are built (all of it shown on the page, as data-recipe). */
export const RECIPE = {
  /** Which digits of the bundled sample form the batch. */
  digits: [0, 1, 2, 3],
  /** Pixels p in 0..255 become x = (p/255 − mean) / std, the lab's MNIST normalisation. */
  mean: MNIST_MEAN,
  std: MNIST_STD,
  /** The convolution: 1 → outChannels, kernel × kernel, zero padding, no bias, weights U(±1/3) from mulberry32(seed). */
  outChannels: 8,
  kernel: 3,
  padding: 1,
  seed: 7,
  /** GroupNorm's groups. */
  groups: 4,
  /** eps of BN, LN, IN and GN (their default). */
  eps: 1e-5,
  dtype: "float32",
} as const;

export interface MethodInfo {
  id: MethodId;
  label: string;
  /** What the layer normalizes, in a few words. */
  what: string;
  /** Whether theory says y(λ) = y(1) for this target (eps aside). */
  invariant: Record<Target, boolean>;
  /** Why, in one sentence per target. */
  why: Record<Target, string>;
}

export const METHODS: readonly MethodInfo[] = [
  {
    id: "none", label: "no normalization", what: "conv output as is",
    invariant: { input: false, weights: false },
    why: {
      input: "A linear layer without bias: conv(λx) = λ·conv(x), so the output scales with λ.",
      weights: "conv with λW gives λ·conv(x): the output scales with λ.",
    },
  },
  {
    id: "batch_norm", label: "BatchNorm", what: "each channel over batch × H × W (training-mode batch statistics)",
    invariant: { input: true, weights: true },
    why: {
      input: "(λz − λμ)/√(λ²σ² + eps) = (z − μ)/√(σ² + eps/λ²): invariant while eps ≪ λ²σ².",
      weights: "Scaling W scales every pre-activation z by λ; the statistics absorb it (eps aside).",
    },
  },
  {
    id: "layer_norm", label: "LayerNorm", what: "each sample over C × H × W",
    invariant: { input: true, weights: true },
    why: {
      input: "Mean and standard deviation of each sample scale with λ and cancel (eps aside).",
      weights: "Every pre-activation scales by λ; the per-sample statistics cancel it (eps aside).",
    },
  },
  {
    id: "instance_norm", label: "InstanceNorm", what: "each sample and channel over H × W",
    invariant: { input: true, weights: true },
    why: {
      input: "Per-sample, per-channel statistics scale with λ and cancel (eps aside).",
      weights: "Per-sample, per-channel statistics scale with λ and cancel (eps aside).",
    },
  },
  {
    id: "group_norm", label: "GroupNorm", what: `each sample and group of ${RECIPE.outChannels / RECIPE.groups} channels over H × W`,
    invariant: { input: true, weights: true },
    why: {
      input: "Per-group statistics scale with λ and cancel (eps aside).",
      weights: "Per-group statistics scale with λ and cancel (eps aside).",
    },
  },
  {
    id: "weight_norm", label: "Weight Norm", what: "the conv's weights: W = g·v/‖v‖ per filter (no norm after)",
    invariant: { input: false, weights: true },
    why: {
      input: "Weight Norm normalizes the weights, not the input: conv(λx) with the same W is λ·conv(x) — it is not invariant to input scaling (unless a norm layer follows).",
      weights: "The preceding layer's weights here are v: W = g·(λv)/‖λv‖ = g·v/‖v‖, the same W — invariant up to float rounding.",
    },
  },
  {
    id: "cosine_norm", label: "Cosine Norm", what: "cos(w, x) of each filter and receptive field",
    invariant: { input: true, weights: true },
    why: {
      input: "cos(w, λx) = cos(w, x): invariant (PyTorch's eps 1e-12 on ‖x‖ is far below any receptive field here).",
      weights: "cos(λw, x) = cos(w, x): invariant to scaling the weights too.",
    },
  },
];

export interface MethodResult {
  id: MethodId;
  /** y at λ = 1 and at λ, shape [N, C, H, W] (same shape for every method). */
  yRef: Float32Array | Float64Array;
  yLam: Float32Array | Float64Array;
  /** max |y(λ) − y(1)|. */
  maxDiff: number;
  /** max |y(1)|. */
  maxRef: number;
  /** maxDiff / maxRef. */
  rel: number;
  /** ‖y(λ)‖₂ / ‖y(1)‖₂: λ for a layer that scales, 1 for an invariant one. */
  ratio: number;
  /** For BN/LN/IN/GN: eps / (λ²·σ²ₘᵢₙ), σ²ₘᵢₙ the smallest variance among the groups the layer normalizes at λ = 1; else null. */
  epsShare: number | null;
}

export interface ScaleRun {
  lambda: number;
  target: Target;
  shape: readonly number[];
  results: MethodResult[];
}

/** The batch from the digit sample, as RECIPE says: [N, 1, rows, cols] float32. */
export function inputFromDigits(d: Digits): Tensor {
  const n = RECIPE.digits.length, size = d.rows * d.cols;
  const x = new Float32Array(n * size);
  RECIPE.digits.forEach((k, i) => {
    if (k >= d.count) throw new Error(`digit ${k} is not in the sample of ${d.count}`);
    for (let j = 0; j < size; j++) x[i * size + j] = (d.pixels[k * size + j]! / 255 - RECIPE.mean) / RECIPE.std;
  });
  return new Tensor(x, [n, 1, d.rows, d.cols]);
}

function scaled(t: Tensor, lambda: number): Tensor {
  const out = new Float32Array(t.size);
  for (let i = 0; i < t.size; i++) out[i] = t.data[i]! * lambda;
  return new Tensor(out, t.shape);
}

/** Smallest variance (biased, as the layers use) over groups of `len` consecutive values at `stride`-spaced starts. */
function minVariance(z: Tensor, groupsOf: (visit: (idx: (k: number) => number, len: number) => void) => void): number {
  let best = Infinity;
  groupsOf((idx, len) => {
    let s = 0, s2 = 0;
    for (let k = 0; k < len; k++) s += z.data[idx(k)]!;
    const m = s / len;
    for (let k = 0; k < len; k++) s2 += (z.data[idx(k)]! - m) ** 2;
    best = Math.min(best, s2 / len);
  });
  return best;
}

/** σ²ₘᵢₙ at λ = 1 for each of BN, LN, IN, GN, from the conv output z [N, C, H, W]. */
function minVariances(z: Tensor): Partial<Record<MethodId, number>> {
  const [N, C, H, W] = z.shape as [number, number, number, number];
  const P = H * W, G = RECIPE.groups, cg = C / G;
  return {
    batch_norm: minVariance(z, (v) => {
      for (let c = 0; c < C; c++) v((k) => Math.floor(k / P) * C * P + c * P + (k % P), N * P);
    }),
    layer_norm: minVariance(z, (v) => {
      for (let n = 0; n < N; n++) v((k) => n * C * P + k, C * P);
    }),
    instance_norm: minVariance(z, (v) => {
      for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) v((k) => (n * C + c) * P + k, P);
    }),
    group_norm: minVariance(z, (v) => {
      for (let n = 0; n < N; n++) for (let g = 0; g < G; g++) v((k) => (n * C + g * cg) * P + k, cg * P);
    }),
  };
}

/**
 * The network, built once: one Conv2d (weights W₀) and the layers after it. compute(λ, target) runs
 * every method at λ = 1 (cached) and at λ.
 */
export class ScaleModel {
  readonly x: Tensor;
  private readonly conv: Conv2d;
  private readonly w0: Float32Array;
  private readonly norms: Record<"batch_norm" | "layer_norm" | "instance_norm" | "group_norm", Module & { forward(x: Tensor): Tensor }>;
  private readonly wn: WeightNorm;
  private readonly v0: Float32Array;
  private readonly cos: CosineConv2d;
  private ref: { z: Tensor; ys: Map<MethodId, Tensor>; minVar: Partial<Record<MethodId, number>> } | null = null;

  constructor(digits: Digits) {
    this.x = inputFromDigits(digits);
    const [, , H, W] = this.x.shape as [number, number, number, number];
    const C = RECIPE.outChannels, eps = RECIPE.eps;
    const geometry = { inChannels: 1, outChannels: C, kernelSize: RECIPE.kernel, padding: RECIPE.padding };
    this.conv = new Conv2d({ ...geometry, bias: false, rng: mulberry32(RECIPE.seed) });
    this.w0 = Float32Array.from(this.conv.weight.value.data);
    this.norms = {
      batch_norm: new BatchNorm2d({ numFeatures: C, eps }).train(),
      layer_norm: new LayerNorm({ normalizedShape: [C, H, W], eps }).train(),
      instance_norm: new InstanceNorm2d({ numFeatures: C, eps }).train(),
      group_norm: new GroupNorm({ numGroups: RECIPE.groups, numChannels: C, eps }).train(),
    };
    // Weight Norm over a conv with the same initial weights: v = W₀, g = ‖W₀‖ per filter.
    const wconv = new Conv2d({ ...geometry, bias: false, rng: mulberry32(RECIPE.seed) });
    this.wn = new WeightNorm(wconv);
    this.v0 = Float32Array.from(this.wn.v.value.data);
    // Cosine Norm: the same filters W₀, y = cos(w, patch).
    this.cos = new CosineConv2d({ ...geometry, rng: mulberry32(RECIPE.seed) });
    this.cos.weight.value.data.set(this.w0);
  }

  private forwardAll(lambda: number, target: Target): { z: Tensor; ys: Map<MethodId, Tensor> } {
    const x = target === "input" && lambda !== 1 ? scaled(this.x, lambda) : this.x;
    const setW = (dst: Float32Array | Float64Array, src: Float32Array) => {
      for (let i = 0; i < src.length; i++) dst[i] = target === "weights" ? src[i]! * lambda : src[i]!;
    };
    const ys = new Map<MethodId, Tensor>();
    setW(this.conv.weight.value.data, this.w0);
    const z = this.conv.forward(x);
    ys.set("none", z);
    for (const [id, layer] of Object.entries(this.norms)) ys.set(id as MethodId, layer.forward(z));
    setW(this.wn.v.value.data, this.v0); // the weights Weight Norm sees are v
    ys.set("weight_norm", this.wn.forward(x));
    setW(this.cos.weight.value.data, this.w0);
    ys.set("cosine_norm", this.cos.forward(x));
    return { z, ys };
  }

  compute(lambda: number, target: Target): ScaleRun {
    if (!(Number.isFinite(lambda) && lambda > 0)) throw new RangeError(`λ must be a positive number, got ${lambda}`);
    if (!this.ref) {
      const r = this.forwardAll(1, "input");
      this.ref = { ...r, minVar: minVariances(r.z) };
    }
    const ref = this.ref;
    const { ys } = this.forwardAll(lambda, target);
    const results = METHODS.map(({ id }): MethodResult => {
      const a = ref.ys.get(id)!.data, b = ys.get(id)!.data;
      let maxDiff = 0, maxRef = 0, na = 0, nb = 0;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(b[i]! - a[i]!));
        maxRef = Math.max(maxRef, Math.abs(a[i]!));
        na += a[i]! * a[i]!;
        nb += b[i]! * b[i]!;
      }
      const mv = ref.minVar[id];
      return {
        id, yRef: a, yLam: b, maxDiff, maxRef, rel: maxDiff / maxRef, ratio: Math.sqrt(nb / na),
        epsShare: mv === undefined ? null : RECIPE.eps / (lambda * lambda * mv),
      };
    });
    return { lambda, target, shape: ref.z.shape, results };
  }
}
