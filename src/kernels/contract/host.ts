/**
 * The host primitives: the array-level kernels (plain typed arrays, positional arguments, every
 * output a caller-provided array, nothing allocated) that the two host kernel sets are made of —
 * the TypeScript kernels (src/kernels/ts/norm.ts, exact, float32 and float64, every layout) and the
 * WebAssembly SIMD kernels (src/kernels/wasm/wasm.ts, float32 NCHW views). src/kernels/ts/host_set.ts
 * turns a set of them into the kernel contract (./kernels.ts); layers never see them.
 */
import type { FloatArray } from "../../tensor.js";
import type { Stats, SwitchWork } from "./kernels.js";
import type { AffineKind, NormShape, StatsConfig } from "./view.js";

/** The statistics of the host kernel sets: float64 arrays, one entry per statistic group. */
export interface HostStatsArrays extends Stats {
  readonly mean: Float64Array;
  /** Biased variance (mean(x^2) without centring). */
  readonly variance: Float64Array;
  /** 1 / sqrt(variance + eps). */
  readonly rstd: Float64Array;
}

/** Switchable Norm's work on the host: the statistics of the last forward (what lastStatistics() reads). */
export interface HostSwitchArrays extends SwitchWork {
  /** Per (n, c) at n * C + c: instance mean and variance (with its convention's factor), mixed mean, variance, rstd. */
  readonly muIn: Float64Array;
  readonly vIn: Float64Array;
  readonly mean: Float64Array;
  readonly vMix: Float64Array;
  readonly rstd: Float64Array;
  /** Per n. */
  readonly muLn: Float64Array;
  readonly vLn: Float64Array;
  /** Per c. */
  readonly muBn: Float64Array;
  readonly vBn: Float64Array;
  /** softmax(mean_weight), softmax(var_weight) by kind (in, ln, bn), 0 for an absent one. */
  readonly aKind: Float64Array;
  readonly bKind: Float64Array;
}

/** Scratch for backward, sized by the caller once and reused (float64 accumulators). */
export interface BackwardScratch {
  /** Σ_k g with g = dy * w, per statistic. */
  sumG: Float64Array;
  /** Σ_k g * xhat, per statistic. */
  sumGX: Float64Array;
  /** float64 accumulators for dweight / dbias (affine size). */
  dw: Float64Array;
  db: Float64Array;
}


export interface HostPrimitives {
  readonly name: "ts" | "wasm";

  /** Whether this backend can run a call on these arrays and this view (dtype, layout). */
  supports(x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, affine: AffineKind): boolean;

  /** mean_k and biased var_k (or mean(x^2) without centring) of every statistic group. */
  moments(x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Float64Array, variance: Float64Array): void;

  /** y = (x - mean_k) * rstd_k * w + b with given statistics. */
  normalizeForward(
    y: FloatArray, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Readonly<Float64Array>,
    rstd: Readonly<Float64Array>, affine: AffineKind, weight: Readonly<FloatArray> | null, bias: Readonly<FloatArray> | null,
  ): void;

  /** moments + rstd = 1/sqrt(var + eps) + normalizeForward in one call (the training forward). */
  forwardTrain(
    y: FloatArray, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, eps: number, affine: AffineKind,
    weight: Readonly<FloatArray> | null, bias: Readonly<FloatArray> | null, mean: Float64Array, variance: Float64Array,
    rstd: Float64Array,
  ): void;

  /**
   * out = A_k * dy + B_k * (x - M_k) + D_k, with the coefficients of statistic group k constant over
   * its values (Switchable Norm's dx, whose statistics mix several groupings). M_k is the group's
   * centre (pass its mean): the centred form keeps B_k * x and a D_k that cancels it from losing
   * the result to rounding when the inputs have a large offset.
   */
  combine(
    out: FloatArray, dy: Readonly<FloatArray>, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig,
    A: Readonly<Float64Array>, B: Readonly<Float64Array>, M: Readonly<Float64Array>, D: Readonly<Float64Array>,
  ): void;

  /** dx, and dweight / dbias ACCUMULATED (+=); scratch.sumG / sumGX hold the per-statistic sums after. */
  normalizeBackward(
    dx: FloatArray | null, dweight: FloatArray | null, dbias: FloatArray | null, dy: Readonly<FloatArray>,
    x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Readonly<Float64Array>, rstd: Readonly<Float64Array>,
    affine: AffineKind, weight: Readonly<FloatArray> | null, fixedStats: boolean, scratch: BackwardScratch,
  ): void;
}
