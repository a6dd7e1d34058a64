/// <reference types="@webgpu/types" />
/**
 * The kernel contract of the WebGPU backend: the same operations, names, argument order and
 * semantics as the CPU contract (src/backend/contract.ts, `NormKernels`), adapted to a GPU:
 *
 * - tensors are GpuTensors (float32 storage); nothing is transferred implicitly;
 * - each method returns a GpuRun — the dispatches that compute it — which the caller submits
 *   (`ctx.submit(run)`), batches with others, or re-encodes many times (benchmarks);
 * - the statistics of a call live in one GPU buffer of vec4 per statistic,
 *   (shift, dmean, rstd, var) with mean = shift + dmean (see kernels/common.ts), instead of the
 *   CPU's mean / variance / rstd Float64Arrays;
 * - `forwardTrain` also applies the running-statistics update on the GPU when given `running`
 *   (the CPU layers do that step in TypeScript);
 * - parameter gradients are ACCUMULATED (+=), exactly as on the CPU.
 * The CPU contract's synchronous, allocation-free signature cannot be met by a GPU (results come
 * back asynchronously), hence this sibling rather than an implementation of `NormKernels`.
 */
import type { AffineKind, NormShape, StatsConfig } from "../contract/view.js";
import type { GpuRun } from "./device.js";
import type { GpuTensor } from "./tensor.js";

/** Statistics on the GPU: `count` entries of vec4 (shift, dmean, rstd, var). */
export interface GpuStats {
  readonly buffer: GPUBuffer;
  readonly count: number;
}

/** Running statistics to update in forwardTrain. */
export interface GpuRunning {
  readonly mean: GpuTensor;
  readonly var: GpuTensor;
  /** BatchNorm: per statistic; InstanceNorm: mean over the batch of per-instance statistics. */
  readonly policy: "batch" | "instance";
  /** Weight of the new value (PyTorch's momentum, or 1 / num_batches_tracked). */
  readonly factor: number;
}

/** Reusable temporary buffers of one caller (re-entrant: one scratch per layer). */
export interface GpuScratch {
  get(name: string, bytes: number): GPUBuffer;
}

export interface GpuNormKernels {
  readonly name: "webgpu";
  /** Whether this backend runs the view (NCHW float32; channels-last is not implemented). */
  supports(shape: NormShape, cfg: StatsConfig, affine: AffineKind): boolean;
  /** Statistics of every group (biased variance; mean(x^2) without centring). */
  moments(x: GpuTensor, shape: NormShape, cfg: StatsConfig, eps: number, stats: GpuStats, scratch: GpuScratch): GpuRun;
  /** y = (x - mean_k) * rstd_k * w + b with given statistics. */
  normalizeForward(
    y: GpuTensor, x: GpuTensor, shape: NormShape, cfg: StatsConfig, stats: GpuStats, affine: AffineKind,
    weight: GpuTensor | null, bias: GpuTensor | null,
  ): GpuRun;
  /** moments + normalizeForward (+ the running update) — fused into one kernel where a statistic fits in registers. */
  forwardTrain(
    y: GpuTensor, x: GpuTensor, shape: NormShape, cfg: StatsConfig, eps: number, affine: AffineKind,
    weight: GpuTensor | null, bias: GpuTensor | null, stats: GpuStats, running: GpuRunning | null, scratch: GpuScratch,
  ): GpuRun;
  /** Statistics from running buffers, one per channel: (running_mean, 0, 1/sqrt(running_var + eps), running_var). */
  evalStatistics(runningMean: GpuTensor, runningVar: GpuTensor, eps: number, stats: GpuStats): GpuRun;
  /** dx (may be null), and dweight / dbias ACCUMULATED (null to skip). */
  normalizeBackward(
    dx: GpuTensor | null, dweight: GpuTensor | null, dbias: GpuTensor | null, dy: GpuTensor, x: GpuTensor,
    shape: NormShape, cfg: StatsConfig, stats: GpuStats, affine: AffineKind, weight: GpuTensor | null,
    fixedStats: boolean, scratch: GpuScratch,
  ): GpuRun;
}
