/**
 * BatchNorm, InstanceNorm, GroupNorm, LayerNorm and RMSNorm: one layer class over the statistics
 * engine, each method a small subclass that says how an input maps to the engine's view
 * ({@link NormPlan}), the affine shape and the running-statistics policy.
 */
import {
  AffineKind, BackwardScratch, NormShape, StatsConfig, forwardTrain, makeBackwardScratch, normalizeBackward,
  normalizeForward, numStats, statCount,
} from "../kernels/ts/norm.js";
import { updateRunningBatch, updateRunningInstance } from "../kernels/ts/running.js";
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import { DType, Tensor, sameShape, sizeOf } from "../tensor.js";
import { Module, Parameter, makeParameter, requireCache } from "./module.js";
import { checkBool, checkDType, checkEps, checkInput, checkMomentum, checkPositiveInt, checkShapeList } from "./validate.js";

/** How one input maps onto the engine. */
export interface NormPlan {
  readonly shape: NormShape;
  readonly cfg: StatsConfig;
}

/** Running-statistics policy: none, per channel over (N, S) (BatchNorm), or per instance averaged over N. */
export type RunningPolicy = "none" | "batch" | "instance";

interface ForwardCache {
  x: Tensor;
  plan: NormPlan;
  mean: Float64Array;
  rstd: Float64Array;
  fixed: boolean;
}

/** The fixed-statistics view: one statistic per channel, the running one. */
const RUNNING_CFG: StatsConfig = Object.freeze({ perSample: false, groupSize: 1, center: true });

/** Options every layer takes. */
export interface CommonOptions {
  /** Storage type of parameters, buffers and accepted inputs. Default "float32". */
  dtype?: DType;
}

/**
 * The shared layer. Subclasses provide `plan(x)` (validate x, return the engine view) and set the
 * affine kind, affine shape and running policy in their constructor.
 */
export abstract class Normalization extends Module {
  readonly eps: number;
  readonly momentum: number | null;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;
  protected readonly affineKind: AffineKind;
  protected readonly runningPolicy: RunningPolicy;
  private cache: ForwardCache | null = null;
  private scratch: BackwardScratch | null = null;
  // Reused between calls so that forward / backward with `out` allocate nothing: the statistics
  // arrays (replaced instead of overwritten once lastStatistics() has handed them out), the
  // variance, and the plan of the last input shape.
  private statsMean: Float64Array | null = null;
  private statsRstd: Float64Array | null = null;
  private statsVar: Float64Array | null = null;
  private statsExposed = false;
  private lastPlan: NormPlan | null = null;
  private lastFixedPlan: NormPlan | null = null;

  protected constructor(init: {
    dtype: DType;
    eps: number;
    momentum: number | null;
    affineKind: AffineKind;
    affineShape: number[];
    weight: boolean;
    bias: boolean;
    weightInit?: number;
    running: RunningPolicy;
    runningSize: number;
  }) {
    super(init.dtype);
    this.eps = init.eps;
    this.momentum = init.momentum;
    this.affineKind = init.affineKind;
    this.weight = init.weight ? makeParameter(init.affineShape, init.dtype, init.weightInit ?? 1) : null;
    this.bias = init.bias ? makeParameter(init.affineShape, init.dtype, 0) : null;
    this.runningPolicy = init.running;
    const track = init.running !== "none";
    this.runningMean = track ? Tensor.zeros([init.runningSize], init.dtype) : null;
    this.runningVar = track ? Tensor.full([init.runningSize], 1, init.dtype) : null;
    this.numBatchesTracked = track ? Tensor.zeros([], "float64") : null;
  }

  /** Validates x and maps it onto the engine. */
  protected abstract plan(x: Tensor): NormPlan;

  override namedParameters(): Record<string, Parameter> {
    const out: Record<string, Parameter> = {};
    if (this.weight) out["weight"] = this.weight;
    if (this.bias) out["bias"] = this.bias;
    return out;
  }
  override namedBuffers(): Record<string, Tensor> {
    if (!this.runningMean || !this.runningVar || !this.numBatchesTracked) return {};
    return { running_mean: this.runningMean, running_var: this.runningVar, num_batches_tracked: this.numBatchesTracked };
  }

  /** Restores running_mean = 0, running_var = 1, num_batches_tracked = 0. */
  resetRunningStats(): void {
    this.runningMean?.data.fill(0);
    this.runningVar?.data.fill(1);
    this.numBatchesTracked?.data.fill(0);
  }

  /**
   * Which values of x share one statistic: the engine's view of x ({@link NormPlan}: N, C, S and
   * the statistics configuration). Statistic k of the engine's arrays (and of lastStatistics())
   * belongs to sample n, channel group g = floor(c / groupSize) as k = n * (C / groupSize) + g when
   * perSample, else k = g. Validates x as forward does; changes nothing.
   */
  statisticsPlan(x: Tensor): NormPlan {
    return this.plan(x);
  }

  /** Whether this call normalises with the running statistics instead of the input's. */
  private usesRunning(): boolean {
    return !this.training && this.runningMean !== null;
  }

  /** The plan of x: the last one when x has the same shape and dtype (validation gives the same answer). */
  private planFor(x: Tensor): NormPlan {
    const last = this.lastPlan;
    if (last && x.dtype === this.dtype && x.rank === this.lastRank && sameShape(x.shape, this.lastShape!)) return last;
    const plan = this.plan(x);
    this.lastPlan = plan;
    this.lastFixedPlan = null;
    this.lastShape = x.shape;
    this.lastRank = x.rank;
    return plan;
  }
  private lastShape: readonly number[] | null = null;
  /** "Class.method", for error messages (built only when an error is thrown). */
  private where(method: string): string {
    return `${this.constructor.name}.${method}`;
  }
  private lastRank = -1;

  forward(x: Tensor, out?: Tensor): Tensor {
    const plan0 = this.planFor(x);
    if (out && (!sameShape(out.shape, x.shape) || out.dtype !== this.dtype)) {
      throw new ShapeError("out", `a ${this.dtype} tensor of shape ${fmtShape(x.shape)}`, `${out.dtype} ${fmtShape(out.shape)}`, this.where("forward"));
    }
    const fixed = this.usesRunning();
    const { shape } = plan0;
    let cfg = plan0.cfg;
    if (!fixed) {
      // PyTorch's checks: a batch statistic needs more than one value, an instance one more than one position.
      if (this.runningPolicy === "batch" || (!cfg.perSample && cfg.groupSize === 1)) {
        if (statCount(shape, cfg) <= 1) throw new ShapeError("x", "more than 1 value per channel when training", `shape ${fmtShape(x.shape)}`, this.where("forward"));
      }
      if (this.runningPolicy === "instance" || this.isInstance()) {
        if (shape.S <= 1) throw new ShapeError("x", "more than 1 spatial element when training", `shape ${fmtShape(x.shape)}`, this.where("forward"));
      }
    } else {
      cfg = RUNNING_CFG; // one statistic per channel: the running one
    }
    const plan = fixed ? (this.lastFixedPlan ??= { shape, cfg }) : plan0;
    const K = numStats(shape, cfg);
    if (this.statsExposed || !this.statsMean || this.statsMean.length !== K) {
      this.statsMean = new Float64Array(K);
      this.statsRstd = new Float64Array(K);
      this.statsExposed = false;
    }
    const mean = this.statsMean, rstd = this.statsRstd!;
    const y = out ?? Tensor.zeros(x.shape, this.dtype);
    const weight = this.weight?.value.data ?? null, bias = this.bias?.value.data ?? null;
    if (fixed) {
      const rm = this.runningMean!.data, rv = this.runningVar!.data;
      for (let c = 0; c < K; c++) {
        mean[c] = rm[c]!;
        rstd[c] = 1 / Math.sqrt(rv[c]! + this.eps);
      }
      normalizeForward(y.data, x.data, shape, cfg, mean, rstd, this.affineKind, weight, bias);
    } else {
      if (!this.statsVar || this.statsVar.length !== K) this.statsVar = new Float64Array(K);
      const variance = this.statsVar;
      forwardTrain(y.data, x.data, shape, cfg, this.eps, this.affineKind, weight, bias, mean, variance, rstd);
      if (this.training) this.updateRunning(shape, cfg, mean, variance);
    }
    const c = this.cache;
    if (c) {
      c.x = x;
      c.plan = plan;
      c.mean = mean;
      c.rstd = rstd;
      c.fixed = fixed;
    } else {
      this.cache = { x, plan, mean, rstd, fixed };
    }
    return y;
  }

  /**
   * dx for the last forward; accumulates (+=) into weight.grad and bias.grad. In eval mode with
   * running statistics the statistics are constants (dx = rstd * w * dy).
   */
  backward(dy: Tensor, out?: Tensor): Tensor {
    const c = this.cache ?? requireCache<ForwardCache>(null, this.where("backward"));
    if (dy.dtype !== this.dtype) throw new ConfigError("dy.dtype", `${this.dtype} (the layer's dtype)`, dy.dtype, this.where("backward"));
    if (!sameShape(dy.shape, c.x.shape)) throw new ShapeError("dy", `shape ${fmtShape(c.x.shape)} (the input's)`, `shape ${fmtShape(dy.shape)}`, this.where("backward"));
    if (out && (!sameShape(out.shape, c.x.shape) || out.dtype !== this.dtype)) {
      throw new ShapeError("out", `a ${this.dtype} tensor of shape ${fmtShape(c.x.shape)}`, `${out.dtype} ${fmtShape(out.shape)}`, this.where("backward"));
    }
    const { shape, cfg } = c.plan;
    const K = numStats(shape, cfg);
    const P = this.weight ? this.weight.value.size : this.affineKind === "channel" ? shape.C : shape.C * shape.S;
    if (!this.scratch || this.scratch.sumG.length < K || this.scratch.dw.length < P) this.scratch = makeBackwardScratch(K, P);
    const dx = out ?? Tensor.zeros(c.x.shape, this.dtype);
    normalizeBackward(
      dx.data, this.weight?.grad.data ?? null, this.bias?.grad.data ?? null, dy.data, c.x.data, shape, cfg, c.mean, c.rstd,
      this.affineKind, this.weight?.value.data ?? null, c.fixed, this.scratch,
    );
    return dx;
  }

  /** The statistics of the last forward (per statistic group): mean and 1/sqrt(var + eps). */
  lastStatistics(): { mean: Float64Array; rstd: Float64Array } | null {
    if (!this.cache) return null;
    this.statsExposed = true; // the next forward writes fresh arrays
    return { mean: this.cache.mean, rstd: this.cache.rstd };
  }

  protected isInstance(): boolean {
    return false;
  }

  private updateRunning(shape: NormShape, cfg: StatsConfig, mean: Float64Array, variance: Float64Array): void {
    if (this.runningPolicy === "none" || !this.runningMean || !this.runningVar) return;
    const nbt = this.numBatchesTracked!;
    if (this.runningPolicy === "batch") {
      nbt.data[0] = nbt.data[0]! + 1;
      const factor = this.momentum ?? 1 / nbt.data[0]!;
      updateRunningBatch(this.runningMean.data, this.runningVar.data, mean, variance, shape.C, statCount(shape, cfg), factor);
    } else {
      // PyTorch's InstanceNorm does not count batches; it passes momentum null on as 0.0
      // (torch/nn/modules/instancenorm.py: `self.momentum if self.momentum is not None else 0.0`),
      // so the running statistics stay where they are.
      updateRunningInstance(this.runningMean.data, this.runningVar.data, mean, variance, shape.N, shape.C, shape.S, this.momentum ?? 0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shape helpers

/** [N, C, *spatial] or, channels-last, [N, *spatial, C] → engine view with one channel axis. */
function channelView(x: Tensor, numChannels: number, channelsLast: boolean, ctx: string, param = "num_features"): NormShape {
  const N = x.shape[0]!;
  const C = channelsLast && x.rank > 2 ? x.shape[x.rank - 1]! : x.shape[1]!;
  if (C !== numChannels) {
    throw new ShapeError("x", `${numChannels} channels (${param}) at dim ${channelsLast && x.rank > 2 ? x.rank - 1 : 1}`, `${C} (shape ${fmtShape(x.shape)})`, ctx);
  }
  const S = x.size / Math.max(1, N * C) || 0;
  return { N, C, S: N * C === 0 ? 0 : S, channelsLast: channelsLast && x.rank > 2 };
}

function checkNonEmpty(x: Tensor, ctx: string): void {
  if (x.size === 0) throw new ShapeError("x", "a non-empty tensor", `shape ${fmtShape(x.shape)}`, ctx);
}

/** BatchNorm and InstanceNorm share their options; they differ in defaults and running policy. */
function channelNormInit(
  o: BatchNormOptions | InstanceNormOptions,
  ctx: string,
  d: { affine: boolean; track: boolean; policy: "batch" | "instance" },
) {
  normalizeOptions(o, ctx);
  const numFeatures = checkPositiveInt(o.numFeatures, "numFeatures", ctx);
  const affine = checkBool(o.affine ?? d.affine, "affine", ctx);
  const track = checkBool(o.trackRunningStats ?? d.track, "trackRunningStats", ctx);
  const init = {
    dtype: checkDType(o.dtype ?? "float32", ctx),
    eps: checkEps(o.eps ?? 1e-5, ctx),
    momentum: checkMomentum(o.momentum === undefined ? 0.1 : o.momentum, ctx),
    affineKind: "channel" as const,
    affineShape: [numFeatures],
    weight: affine,
    bias: affine,
    running: track ? d.policy : ("none" as const),
    runningSize: numFeatures,
  };
  return { numFeatures, channelsLast: checkBool(o.channelsLast ?? false, "channelsLast", ctx), init };
}

/** Validates x for a per-channel method and maps it onto the engine: BN (shared over N) or IN (per sample). */
function channelPlan(
  layer: Normalization & { numFeatures: number; channelsLast: boolean },
  x: Tensor,
  minRank: number,
  maxRank: number,
  perSample: boolean,
): NormPlan {
  const ctx = `${layer.constructor.name}.forward`;
  checkInput(x, layer.dtype, minRank, maxRank, ctx);
  checkNonEmpty(x, ctx);
  return { shape: channelView(x, layer.numFeatures, layer.channelsLast, ctx), cfg: { perSample, groupSize: 1, center: true } };
}

// ---------------------------------------------------------------------------------------------
// BatchNorm

export interface BatchNormOptions extends CommonOptions {
  /** C, the number of channels (dim 1, or the last dim with channelsLast). */
  numFeatures: number;
  /** Added to the variance. Default 1e-5. */
  eps?: number;
  /** Weight of the NEW batch statistic in the running average (PyTorch convention). null = cumulative average. Default 0.1. */
  momentum?: number | null;
  /** Learnable per-channel weight (init 1) and bias (init 0). Default true. */
  affine?: boolean;
  /** Keep running_mean / running_var / num_batches_tracked and use them in eval mode. Default true. */
  trackRunningStats?: boolean;
  /** Input is [N, *spatial, C] instead of [N, C, *spatial]. Default false. */
  channelsLast?: boolean;
}

/**
 * BatchNorm over inputs of rank 2 to 5 ([N,C], [N,C,L], [N,C,H,W], [N,C,D,H,W]): statistics per
 * channel over N and every spatial position. Eval mode uses the running statistics when tracked.
 */
export class BatchNorm extends Normalization {
  readonly numFeatures: number;
  readonly channelsLast: boolean;
  protected readonly minRank: number = 2;
  protected readonly maxRank: number = 5;

  constructor(options: BatchNormOptions) {
    const ctx = new.target.name;
    const s = channelNormInit(options, ctx, { affine: true, track: true, policy: "batch" });
    super(s.init);
    this.numFeatures = s.numFeatures;
    this.channelsLast = s.channelsLast;
  }

  protected plan(x: Tensor): NormPlan {
    return channelPlan(this, x, this.minRank, this.maxRank, false);
  }
}
/** BatchNorm restricted to [N, C] or [N, C, L] (PyTorch's BatchNorm1d). */
export class BatchNorm1d extends BatchNorm {
  protected override readonly maxRank = 3;
}
/** BatchNorm restricted to [N, C, H, W]. */
export class BatchNorm2d extends BatchNorm {
  protected override readonly minRank = 4;
  protected override readonly maxRank = 4;
}
/** BatchNorm restricted to [N, C, D, H, W]. */
export class BatchNorm3d extends BatchNorm {
  protected override readonly minRank = 5;
  protected override readonly maxRank = 5;
}

// ---------------------------------------------------------------------------------------------
// InstanceNorm

export interface InstanceNormOptions extends CommonOptions {
  numFeatures: number;
  /** Default 1e-5. */
  eps?: number;
  /** Used only with trackRunningStats. Default 0.1. null behaves as 0 (running statistics never change), as in PyTorch. */
  momentum?: number | null;
  /** Per-channel weight and bias. Default false (as PyTorch). */
  affine?: boolean;
  /** Keep running statistics (the batch-mean of per-instance statistics) and use them in eval. Default false. */
  trackRunningStats?: boolean;
  /** Input is [N, *spatial, C]. Default false. */
  channelsLast?: boolean;
}

/** InstanceNorm over [N,C,L], [N,C,H,W] or [N,C,D,H,W]: statistics per sample and channel. */
export class InstanceNorm extends Normalization {
  readonly numFeatures: number;
  readonly channelsLast: boolean;
  protected readonly minRank: number = 3;
  protected readonly maxRank: number = 5;

  constructor(options: InstanceNormOptions) {
    const ctx = new.target.name;
    const s = channelNormInit(options, ctx, { affine: false, track: false, policy: "instance" });
    super(s.init);
    this.numFeatures = s.numFeatures;
    this.channelsLast = s.channelsLast;
  }

  protected override isInstance(): boolean {
    return true;
  }

  protected plan(x: Tensor): NormPlan {
    return channelPlan(this, x, this.minRank, this.maxRank, true);
  }
}
export class InstanceNorm1d extends InstanceNorm {
  protected override readonly maxRank = 3;
}
export class InstanceNorm2d extends InstanceNorm {
  protected override readonly minRank = 4;
  protected override readonly maxRank = 4;
}
export class InstanceNorm3d extends InstanceNorm {
  protected override readonly minRank = 5;
  protected override readonly maxRank = 5;
}

// ---------------------------------------------------------------------------------------------
// GroupNorm

export interface GroupNormOptions extends CommonOptions {
  /** G; must divide numChannels. */
  numGroups: number;
  /** C. */
  numChannels: number;
  /** Default 1e-5. */
  eps?: number;
  /** Per-channel weight and bias. Default true. */
  affine?: boolean;
  /** Input is [N, *spatial, C]. Default false. */
  channelsLast?: boolean;
}

/** GroupNorm over rank 2 to 5: statistics per sample over C/G channels and every position. */
export class GroupNorm extends Normalization {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly channelsLast: boolean;

  constructor(options: GroupNormOptions) {
    const ctx = new.target.name;
    const o = normalizeOptions(options, ctx);
    const G = checkPositiveInt(o.numGroups, "numGroups", ctx);
    const C = checkPositiveInt(o.numChannels, "numChannels", ctx);
    if (C % G !== 0) throw new ConfigError("numGroups", `a divisor of numChannels (${C})`, String(G), ctx);
    const affine = checkBool(o.affine ?? true, "affine", ctx);
    super({
      dtype: checkDType(o.dtype ?? "float32", ctx),
      eps: checkEps(o.eps ?? 1e-5, ctx),
      momentum: null,
      affineKind: "channel",
      affineShape: [C],
      weight: affine,
      bias: affine,
      running: "none",
      runningSize: 0,
    });
    this.numGroups = G;
    this.numChannels = C;
    this.channelsLast = checkBool(o.channelsLast ?? false, "channelsLast", ctx);
  }

  protected plan(x: Tensor): NormPlan {
    const ctx = `${this.constructor.name}.forward`;
    checkInput(x, this.dtype, 2, 5, ctx);
    checkNonEmpty(x, ctx);
    const shape = channelView(x, this.numChannels, this.channelsLast, ctx, "num_channels");
    return { shape, cfg: { perSample: true, groupSize: this.numChannels / this.numGroups, center: true } };
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm and RMSNorm: statistics over the trailing `normalizedShape` dims

function trailingView(x: Tensor, normalizedShape: readonly number[], dtype: DType, ctx: string): NormShape {
  checkInput(x, dtype, normalizedShape.length, 64, ctx);
  const tail = x.shape.slice(x.rank - normalizedShape.length);
  if (!sameShape(tail, normalizedShape)) {
    throw new ShapeError("x", `trailing dims ${fmtShape(normalizedShape)} (normalizedShape)`, `shape ${fmtShape(x.shape)}`, ctx);
  }
  checkNonEmpty(x, ctx);
  const K = sizeOf(normalizedShape);
  return { N: x.size / K, C: 1, S: K, channelsLast: false };
}

export interface LayerNormOptions extends CommonOptions {
  /** The trailing dims to normalise over, e.g. [1024] or [C, H, W]. A number means [n]. */
  normalizedShape: number | number[];
  /** Default 1e-5. */
  eps?: number;
  /** Learnable elementwise weight (init 1) and bias (init 0) of shape normalizedShape. Default true. */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, whether there is a bias. Default true. */
  bias?: boolean;
}

/** LayerNorm over the trailing dims, with an elementwise affine. */
export class LayerNorm extends Normalization {
  readonly normalizedShape: readonly number[];

  constructor(options: LayerNormOptions) {
    const ctx = new.target.name;
    const o = normalizeOptions(options, ctx);
    const ns = checkShapeList(o.normalizedShape, "normalizedShape", ctx);
    const ea = checkBool(o.elementwiseAffine ?? true, "elementwiseAffine", ctx);
    const b = checkBool(o.bias ?? true, "bias", ctx);
    super({
      dtype: checkDType(o.dtype ?? "float32", ctx),
      eps: checkEps(o.eps ?? 1e-5, ctx),
      momentum: null,
      affineKind: ea ? "element" : "none",
      affineShape: ns,
      weight: ea,
      bias: ea && b,
      running: "none",
      runningSize: 0,
    });
    this.normalizedShape = Object.freeze(ns);
  }

  protected plan(x: Tensor): NormPlan {
    const shape = trailingView(x, this.normalizedShape, this.dtype, `${this.constructor.name}.forward`);
    return { shape, cfg: { perSample: true, groupSize: 1, center: true } };
  }
}

export interface RMSNormOptions extends CommonOptions {
  normalizedShape: number | number[];
  /** Added to mean(x^2). Default null = the dtype's machine epsilon (PyTorch's default). */
  eps?: number | null;
  /** Learnable elementwise weight (init 1). Default true. */
  elementwiseAffine?: boolean;
}

/** RMSNorm: y = x / sqrt(mean(x^2) + eps) * weight — LayerNorm without centring and bias. */
export class RMSNorm extends Normalization {
  readonly normalizedShape: readonly number[];

  constructor(options: RMSNormOptions) {
    const ctx = new.target.name;
    const o = normalizeOptions(options, ctx);
    const ns = checkShapeList(o.normalizedShape, "normalizedShape", ctx);
    const dtype = checkDType(o.dtype ?? "float32", ctx);
    const ea = checkBool(o.elementwiseAffine ?? true, "elementwiseAffine", ctx);
    const eps = o.eps === undefined || o.eps === null ? (dtype === "float64" ? 2 ** -52 : 2 ** -23) : checkEps(o.eps, ctx);
    super({
      dtype, eps, momentum: null, affineKind: ea ? "element" : "none", affineShape: ns, weight: ea, bias: false,
      running: "none", runningSize: 0,
    });
    this.normalizedShape = Object.freeze(ns);
  }

  protected plan(x: Tensor): NormPlan {
    const shape = trailingView(x, this.normalizedShape, this.dtype, `${this.constructor.name}.forward`);
    return { shape, cfg: { perSample: true, groupSize: 1, center: false } };
  }
}

function normalizeOptions<T extends object>(options: T, ctx: string): T {
  if (options === null || typeof options !== "object") throw new ConfigError("options", "an options object", String(options), ctx);
  return options;
}
