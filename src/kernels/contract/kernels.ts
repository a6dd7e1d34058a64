/**
 * The kernel contract: what a kernel set computes for the layers, written once. Three kernel sets
 * implement it — the TypeScript kernels (src/kernels/ts: exact, float32 and float64, every layout),
 * the WebAssembly SIMD kernels (src/kernels/wasm: float32, NCHW views) and the WebGPU kernels
 * (src/kernels/webgpu: float32 on a GPUDevice) — and the layers (src/nn) call nothing else.
 *
 * - Every operation takes one options object with named fields; every output is a field of it
 *   (`y`, `dx`, `dweight`, `stats` ...), written in place. Nothing is returned and, on the host,
 *   nothing is allocated in a call.
 * - Generic over the storage: `T` is the tensor type of the set's device — host `Tensor`s for ts and
 *   wasm (`NormKernels<Tensor>`), `GpuTensor`s for webgpu (`NormKernels<GpuTensor>`).
 *   Statistics, scratch and Switchable Norm's work arrays are opaque objects the set creates
 *   (`createStats`, `createScratch`, `createSwitchWork`) and the layer keeps between calls.
 * - The WebGPU set enqueues: no operation reads anything back to the host.
 * - Parameter gradients are ACCUMULATED (+=), as PyTorch's autograd does; `dx` is overwritten.
 *
 * An input is seen through its {@link NormPlan}: N samples, C channels, S positions per channel
 * (NCHW, or channels-last), and which values share one statistic (see ./view.ts).
 */
import type { Tensor } from "../../tensor.js";
import type { AffineKind, NormPlan } from "./view.js";

/** The statistics of one call: `count` groups (mean, variance and rstd = 1/sqrt(var + eps) each). */
export interface Stats {
  readonly count: number;
  /** Frees its device memory now (a GPU buffer; nothing on the host). Not used after. */
  destroy(): void;
}

/** Reusable temporary storage of one caller (a layer); one per layer keeps calls re-entrant. */
export interface Scratch {
  /** Frees its device memory now. Not used after. */
  destroy(): void;
}

/** The running-statistics update a training forward applies (PyTorch's convention). */
export interface RunningUpdate<T extends Tensor = Tensor> {
  readonly mean: T;
  readonly variance: T;
  /**
   * "batch": one statistic per channel, running_var gets the UNBIASED batch variance;
   * "instance": the batch mean over N of the per-instance statistics (unbiased variance).
   */
  readonly policy: "batch" | "instance";
  /** Weight of the new value: running = (1 - factor) * running + factor * batch. */
  readonly factor: number;
}

/** What the normalisation of x with given statistics needs. */
export interface NormalizeArgs<T extends Tensor = Tensor> {
  /** Output, same shape as x (overwritten). */
  readonly y: T;
  readonly x: T;
  readonly plan: NormPlan;
  readonly stats: Stats;
  readonly affine: AffineKind;
  /** Per channel ("channel") or per element of a sample ("element"); null = 1. */
  readonly weight: T | null;
  /** null = 0. */
  readonly bias: T | null;
}

export interface ForwardTrainArgs<T extends Tensor = Tensor> extends NormalizeArgs<T> {
  readonly eps: number;
  /** Applied after the statistics are known; null for none. */
  readonly running: RunningUpdate<T> | null;
  readonly scratch: Scratch;
}

export interface BackwardArgs<T extends Tensor = Tensor> {
  /** Overwritten; null when only parameter gradients are wanted. */
  readonly dx: T | null;
  /** ACCUMULATED (+=); null to skip. */
  readonly dweight: T | null;
  readonly dbias: T | null;
  readonly dy: T;
  readonly x: T;
  readonly plan: NormPlan;
  /** The statistics of the forward. */
  readonly stats: Stats;
  readonly affine: AffineKind;
  readonly weight: T | null;
  /** The forward used fixed (running) statistics: they are constants, dx = rstd * w * dy. */
  readonly fixedStats: boolean;
  readonly scratch: Scratch;
}

/**
 * Switchable Norm's configuration, in the contract's terms: which components it mixes and the
 * factors that give each variance its convention (see src/nn/switchable_norm.ts).
 */
export interface SwitchConfig {
  /** Position of IN, LN and BN in mean_weight / var_weight (-1: absent). */
  readonly index: { readonly in: number; readonly ln: number; readonly bn: number };
  /** Number of components (length of mean_weight). */
  readonly components: number;
  /** Variance factors: var_in *= fIn; var_ln, var_bn are scaled by fLn, fBn. */
  readonly fIn: number;
  readonly fLn: number;
  readonly fBn: number;
  readonly eps: number;
  /** Weight of the OLD value in the running average (official convention). */
  readonly momentum: number;
  /** true: running = m * running + (1 - m) * batch; false: running_mean += mu_bn, running_var += mu_bn^2 + var_bn. */
  readonly movingAverage: boolean;
}

/** Per-(n, c) statistics and coefficients of one Switchable Norm layer; opaque, from createSwitchWork. */
export interface SwitchWork {
  readonly N: number;
  readonly C: number;
  /** Frees its device memory now. Not used after. */
  destroy(): void;
}

export interface SwitchForwardArgs<T extends Tensor = Tensor> {
  readonly y: T;
  readonly x: T;
  /** The instance view of x: per sample and channel. */
  readonly plan: NormPlan;
  readonly config: SwitchConfig;
  readonly work: SwitchWork;
  readonly weight: T;
  readonly bias: T;
  readonly meanWeight: T;
  readonly varWeight: T;
  /** BN statistics from the batch (training) or from runningMean / runningVar (eval). */
  readonly bnFromBatch: boolean;
  /** null without a BN component. Updated when bnFromBatch. */
  readonly runningMean: T | null;
  readonly runningVar: T | null;
  readonly scratch: Scratch;
}

export interface SwitchBackwardArgs<T extends Tensor = Tensor> {
  readonly dx: T;
  readonly dy: T;
  readonly x: T;
  readonly plan: NormPlan;
  readonly config: SwitchConfig;
  /** The work of the forward. */
  readonly work: SwitchWork;
  readonly bnFromBatch: boolean;
  readonly weight: T;
  readonly meanWeight: T;
  readonly varWeight: T;
  /** ACCUMULATED (+=). */
  readonly dweight: T;
  readonly dbias: T;
  readonly dMeanWeight: T;
  readonly dVarWeight: T;
  readonly scratch: Scratch;
}

/** An argument object with writable fields: layers reuse one per call site (a call allocates nothing). */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A kernel set, or "auto": the host registry's per-call choice between ts and wasm. */
export type KernelSetName = "ts" | "wasm" | "webgpu" | "auto";

/** The normalisation kernels of one kernel set, on tensors of type T. */
export interface NormKernels<T extends Tensor = Tensor> {
  readonly name: KernelSetName;
  /** Whether this set computes calls on x with this plan and affine kind (dtype, layout). */
  supports(x: Tensor, plan: NormPlan, affine: AffineKind): boolean;

  createStats(count: number): Stats;
  createScratch(): Scratch;

  /**
   * Statistics of every group (biased variance; without centring, mean(x^2)) and, with the
   * running update, the running buffers:
   *   mean_k = (1/M) Σ x      var_k = (1/M) Σ (x - mean_k)^2      rstd_k = 1/sqrt(var_k + eps)
   * then y = (x - mean_k) * rstd_k * w + b.
   */
  forwardTrain(o: ForwardTrainArgs<T>): void;
  /** Statistics from running buffers, one per channel: mean = running_mean, rstd = 1/sqrt(running_var + eps). */
  statsFromRunning(o: { readonly runningMean: T; readonly runningVar: T; readonly eps: number; readonly stats: Stats }): void;
  /** y = (x - mean_k) * rstd_k * w + b with the given statistics. */
  normalize(o: NormalizeArgs<T>): void;
  /**
   * With xhat = (x - mean_k) rstd_k, g = dy w and M values per statistic:
   *   batch statistics:  dx = rstd_k (g - mean_k(g) - xhat mean_k(g xhat))   (no centring: no mean_k(g) term)
   *   fixed statistics:  dx = rstd_k g
   *   dweight += Σ dy xhat      dbias += Σ dy     (over what shares the parameter)
   */
  backward(o: BackwardArgs<T>): void;

  /** Work arrays for Switchable Norm on an [N, C, S] input. */
  createSwitchWork(N: number, C: number): SwitchWork;
  /**
   * Switchable Norm's forward: instance statistics, the LN and BN statistics derived from them by
   * the law of total variance on centred terms (no E[x^2] - mean^2),
   *   mu_ln = mean_c mu_in        var_ln = fLn * mean_c(var_in + (mu_in - mu_ln)^2)
   *   mu_bn = mean_n mu_in        var_bn = fBn * mean_n(var_in + (mu_in - mu_bn)^2)
   * their softmax blend per (n, c), the running update (bnFromBatch), and y.
   */
  switchForward(o: SwitchForwardArgs<T>): void;
  /** Its backward: dx, dweight / dbias and the softmax logits' gradients (accumulated). */
  switchBackward(o: SwitchBackwardArgs<T>): void;
}
