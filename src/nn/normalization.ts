/**
 * BatchNorm, InstanceNorm, GroupNorm, LayerNorm and RMSNorm: one layer class over the kernel
 * contract, each method a small subclass that says how an input maps to the kernels' view
 * ({@link NormPlan}), the affine shape and the running-statistics policy. The same object runs on
 * every device (`await layer.to(device)`): its checks, plan and running policy exist once, here;
 * the device's kernel set computes (src/kernels/contract/kernels.ts).
 */
import type { BackwardArgs, ForwardTrainArgs, Mutable, NormKernels, RunningUpdate, Scratch, Stats } from "../kernels/contract/kernels.js";
import type { Device } from "../kernels/contract/device.js";
import { AffineKind, NormPlan, NormShape, StatsConfig, numStats, statCount } from "../kernels/contract/view.js";
import type { HostStatsArrays } from "../kernels/contract/host.js";
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import { DType, Tensor, sameShape, sizeOf } from "../tensor.js";
import { Module, Parameter, makeParameter, requireCache } from "./module.js";
import { checkBool, checkDType, checkEps, checkInput, checkMomentum, checkPositiveInt, checkShapeList } from "./validate.js";

export type { NormPlan } from "../kernels/contract/view.js";

/** Running-statistics policy: none, per channel over (N, S) (BatchNorm), or per instance averaged over N. */
export type RunningPolicy = "none" | "batch" | "instance";

interface ForwardCache {
  x: Tensor;
  plan: NormPlan;
  stats: Stats;
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
 * The shared layer. Subclasses provide `plan(x)` (validate x, return the kernels' view) and set the
 * affine kind, affine shape and running policy in their constructor.
 */
export abstract class Normalization extends Module {
  readonly eps: number;
  readonly momentum: number | null;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  /** Host-side count of training batches (PyTorch's num_batches_tracked); stays on the host on every device. */
  readonly numBatchesTracked: Tensor | null;
  protected readonly affineKind: AffineKind;
  protected readonly runningPolicy: RunningPolicy;
  private cache: ForwardCache | null = null;
  // Reused between calls so that forward / backward with `out` allocate nothing: the statistics
  // (replaced instead of overwritten once lastStatistics() has handed them out), the scratch, and
  // the plan of the last input shape. All belong to the current device's kernel set.
  private stats: Stats | null = null;
  private statsExposed = false;
  private scratch: Scratch | null = null;
  private lastPlan: NormPlan | null = null;
  private lastFixedPlan: NormPlan | null = null;
  private lastShape: readonly number[] | null = null;
  private lastRank = -1;
  private fwdArgs: Mutable<ForwardTrainArgs> | null = null;
  private bwdArgs: Mutable<BackwardArgs> | null = null;
  private runArgs: Mutable<RunningUpdate> | null = null;
  private evalArgs: { runningMean: Tensor; runningVar: Tensor; eps: number; stats: Stats } | null = null;

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
    if (track) {
      this.registerBuffer("running_mean", Tensor.zeros([init.runningSize], init.dtype));
      this.registerBuffer("running_var", Tensor.full([init.runningSize], 1, init.dtype));
    }
    this.numBatchesTracked = track ? Tensor.zeros([], "float64") : null;
  }

  /** Validates x and maps it onto the kernels. */
  protected abstract plan(x: Tensor): NormPlan;

  /** running_mean (on the layer's device), or null without running statistics. */
  get runningMean(): Tensor | null {
    return this.bufferOf("running_mean");
  }
  /** running_var (unbiased, on the layer's device), or null. */
  get runningVar(): Tensor | null {
    return this.bufferOf("running_var");
  }


  override namedParameters(): Record<string, Parameter> {
    const out: Record<string, Parameter> = {};
    if (this.weight) out["weight"] = this.weight;
    if (this.bias) out["bias"] = this.bias;
    return out;
  }
  override namedBuffers(): Record<string, Tensor> {
    if (!this.numBatchesTracked) return {};
    return { ...super.namedBuffers(), num_batches_tracked: this.numBatchesTracked };
  }

  protected override deviceProblem(device: Device): string | null {
    if (device.type === "cpu") return null;
    if ((this as { channelsLast?: boolean }).channelsLast) return `channelsLast is not implemented by the ${device.type} kernels`;
    return null;
  }
  protected override movedTo(): void {
    // the kernel set's storage of the device moved from
    this.stats?.destroy();
    this.scratch?.destroy();
    this.cache = null;
    this.stats = null;
    this.scratch = null;
    this.fwdArgs = this.bwdArgs = this.runArgs = this.evalArgs = null;
  }

  /** Restores running_mean = 0, running_var = 1, num_batches_tracked = 0. */
  resetRunningStats(): void {
    const mean = this.runningMean, variance = this.runningVar;
    if (!mean || !variance) return;
    this.device.fill(mean, 0);
    this.device.fill(variance, 1);
    this.numBatchesTracked?.data.fill(0);
  }

  /**
   * Which values of x share one statistic: the kernels' view of x ({@link NormPlan}: N, C, S and
   * the statistics configuration). Statistic k of the kernels' arrays (and of lastStatistics())
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

  /** Statistics of K groups from the device's kernels, reused while K stays. */
  private statsFor(kernels: NormKernels, K: number): Stats {
    if (this.statsExposed || !this.stats || this.stats.count !== K) {
      // (host statistics handed out by lastStatistics() stay valid: destroy frees only device memory)
      this.stats?.destroy();
      this.stats = kernels.createStats(K);
      this.statsExposed = false;
    }
    return this.stats;
  }

  forward(x: Tensor, out?: Tensor): Tensor {
    this.checkDevice(x, "x", "forward");
    const plan0 = this.planFor(x);
    if (out) this.checkOutput(out, x, "forward");
    const fixed = this.usesRunning();
    const { shape } = plan0;
    const empty = x.size === 0;
    if (!fixed && !empty) {
      const cfg = plan0.cfg;
      // PyTorch's checks: a batch statistic needs more than one value, an instance one more than one position.
      if (this.runningPolicy === "batch" || (!cfg.perSample && cfg.groupSize === 1)) {
        if (statCount(shape, cfg) <= 1) throw new ShapeError("x", "more than 1 value per channel when training", `shape ${fmtShape(x.shape)}`, this.errorContext("forward"));
      }
      if (this.runningPolicy === "instance" || this.isInstance()) {
        if (shape.S <= 1) throw new ShapeError("x", "more than 1 spatial element when training", `shape ${fmtShape(x.shape)}`, this.errorContext("forward"));
      }
    }
    const plan = fixed ? (this.lastFixedPlan ??= { shape, cfg: RUNNING_CFG }) : plan0;
    const device = this.device;
    const y = out ?? device.zeros(x.shape, this.dtype);
    const running = this.training ? this.runningUpdate() : null;
    if (empty) {
      // PyTorch: an empty batch gives an empty output; a tracking BatchNorm in training still counts it
      // (its running statistics stay as they are). (PyTorch's tracking InstanceNorm sets its running
      // statistics to NaN there — the mean over no instance; normkit leaves them as they are.)
      this.cache = { x, plan, stats: this.statsFor(device.kernels, 0), fixed };
      this.countBatch(running);
      return y;
    }
    const kernels = device.kernels;
    const stats = this.statsFor(kernels, numStats(shape, plan.cfg));
    const weight = this.weight?.value ?? null, bias = this.bias?.value ?? null;
    this.scratch ??= kernels.createScratch();
    const a = (this.fwdArgs ??= this.makeForwardArgs(y, x, plan, stats, weight, bias, running, this.scratch));
    a.y = y;
    a.x = x;
    a.plan = plan;
    a.stats = stats;
    a.weight = weight;
    a.bias = bias;
    a.running = running;
    a.scratch = this.scratch;
    if (fixed) {
      const e = (this.evalArgs ??= { runningMean: this.runningMean!, runningVar: this.runningVar!, eps: this.eps, stats });
      e.runningMean = this.runningMean!;
      e.runningVar = this.runningVar!;
      e.stats = stats;
      kernels.statsFromRunning(e);
      kernels.normalize(a);
    } else {
      kernels.forwardTrain(a);
      this.countBatch(running);
    }
    const c = this.cache;
    if (c) {
      c.x = x;
      c.plan = plan;
      c.stats = stats;
      c.fixed = fixed;
    } else {
      this.cache = { x, plan, stats, fixed };
    }
    return y;
  }

  /**
   * The reused argument object of forward. Its `eps` field is created holding null, then set: a
   * field that has held a non-number keeps its number as a boxed constant that calls take as it is,
   * where a field created with a double is stored unboxed and re-boxed (allocated) at every call
   * that passes it on.
   */
  private makeForwardArgs(
    y: Tensor, x: Tensor, plan: NormPlan, stats: Stats, weight: Tensor | null, bias: Tensor | null, running: RunningUpdate | null,
    scratch: Scratch,
  ): Mutable<ForwardTrainArgs> {
    const a: Mutable<ForwardTrainArgs> = { y, x, plan, stats, affine: this.affineKind, weight, bias, eps: null as unknown as number, running, scratch };
    a.eps = this.eps;
    return a;
  }

  /**
   * The running update of a training forward, or null without running statistics. The factor
   * counts this batch; num_batches_tracked itself moves only once the forward has succeeded
   * ({@link countBatch}).
   */
  private runningUpdate(): RunningUpdate | null {
    const mean = this.runningMean, variance = this.runningVar;
    if (this.runningPolicy === "none" || !mean || !variance) return null;
    let u = this.runArgs;
    if (!u) {
      // PyTorch's InstanceNorm does not count batches; it passes momentum null on as 0.0
      // (torch/nn/modules/instancenorm.py: `self.momentum if self.momentum is not None else 0.0`),
      // so the running statistics stay where they are. (factor: created null, see makeForwardArgs)
      u = this.runArgs = { mean, variance, policy: this.runningPolicy, factor: null as unknown as number };
      u.factor = this.momentum ?? 0;
    }
    u.mean = mean;
    u.variance = variance;
    if (this.runningPolicy === "batch" && this.momentum === null) u.factor = 1 / (this.numBatchesTracked!.data[0]! + 1); // cumulative average
    return u;
  }

  /** num_batches_tracked += 1 after a BatchNorm training forward that updated (or, empty, kept) its running statistics. */
  private countBatch(running: RunningUpdate | null): void {
    if (running?.policy !== "batch") return;
    const nbt = this.numBatchesTracked!.data;
    nbt[0] = nbt[0]! + 1;
  }

  /**
   * dx for the last forward; accumulates (+=) into weight.grad and bias.grad. In eval mode with
   * running statistics the statistics are constants (dx = rstd * w * dy).
   */
  backward(dy: Tensor, out?: Tensor): Tensor {
    const c = this.cache ?? requireCache<ForwardCache>(null, this.errorContext("backward"));
    this.checkDevice(dy, "dy", "backward");
    if (dy.dtype !== this.dtype) throw new ConfigError("dy.dtype", `${this.dtype} (the layer's dtype)`, dy.dtype, this.errorContext("backward"));
    if (!sameShape(dy.shape, c.x.shape)) throw new ShapeError("dy", `shape ${fmtShape(c.x.shape)} (the input's)`, `shape ${fmtShape(dy.shape)}`, this.errorContext("backward"));
    if (out) this.checkOutput(out, c.x, "backward");
    const dx = out ?? this.device.zeros(c.x.shape, this.dtype);
    if (c.x.size === 0) return dx;
    const kernels = this.device.kernels;
    this.scratch ??= kernels.createScratch();
    const a = (this.bwdArgs ??= {
      dx, dweight: null, dbias: null, dy, x: c.x, plan: c.plan, stats: c.stats, affine: this.affineKind, weight: null, fixedStats: c.fixed,
      scratch: this.scratch,
    });
    a.dx = dx;
    a.dweight = this.weight?.grad ?? null;
    a.dbias = this.bias?.grad ?? null;
    a.dy = dy;
    a.x = c.x;
    a.plan = c.plan;
    a.stats = c.stats;
    a.weight = this.weight?.value ?? null;
    a.fixedStats = c.fixed;
    a.scratch = this.scratch;
    kernels.backward(a);
    return dx;
  }

  /** The statistics of the last forward (per statistic group): mean and 1/sqrt(var + eps). Host layers only. */
  lastStatistics(): { mean: Float64Array; rstd: Float64Array } | null {
    this.requireHost("lastStatistics");
    if (!this.cache) return null;
    this.statsExposed = true; // the next forward writes fresh arrays
    const st = this.cache.stats as HostStatsArrays; // the host sets' statistics (requireHost above)
    return { mean: st.mean, rstd: st.rstd };
  }

  protected isInstance(): boolean {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Shape helpers

/** [N, C, *spatial] or, channels-last, [N, *spatial, C] → engine view with one channel axis. */
function channelView(shapeOf: readonly number[], numChannels: number, channelsLast: boolean, ctx: string, param = "num_features", shown = shapeOf): NormShape {
  const rank = shapeOf.length;
  const N = shapeOf[0]!;
  const C = channelsLast && rank > 2 ? shapeOf[rank - 1]! : shapeOf[1]!;
  if (C !== numChannels) {
    const dim = (channelsLast && rank > 2 ? rank - 1 : 1) - (rank - shown.length);
    throw new ShapeError("x", `${numChannels} channels (${param}) at dim ${dim}`, `${C} (shape ${fmtShape(shown)})`, ctx);
  }
  const S = N * C === 0 ? 0 : sizeOf(shapeOf) / (N * C);
  return { N, C, S, channelsLast: channelsLast && rank > 2 };
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

/**
 * Validates x for a per-channel method and maps it onto the kernels: BN (shared over N) or IN (per
 * sample). An input of rank `unbatchedRank` has no batch dim (PyTorch's InstanceNorm1d/2d/3d take
 * (C, L), (C, H, W), (C, D, H, W)): it is viewed as a batch of one.
 */
function channelPlan(
  layer: Normalization & { numFeatures: number; channelsLast: boolean },
  x: Tensor,
  minRank: number,
  maxRank: number,
  perSample: boolean,
  unbatchedRank = -1,
): NormPlan {
  const ctx = `${layer.constructor.name}.forward`;
  checkInput(x, layer.dtype, minRank, maxRank, ctx);
  const cfg = { perSample, groupSize: 1, center: true };
  if (x.rank === unbatchedRank) return { shape: channelView([1, ...x.shape], layer.numFeatures, layer.channelsLast, ctx, "num_features", x.shape), cfg };
  return { shape: channelView(x.shape, layer.numFeatures, layer.channelsLast, ctx), cfg };
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

/**
 * InstanceNorm over [N,C,L], [N,C,H,W] or [N,C,D,H,W]: statistics per sample and channel.
 * InstanceNorm1d/2d/3d also take an unbatched input ((C, L), (C, H, W), (C, D, H, W)), as PyTorch's.
 */
export class InstanceNorm extends Normalization {
  readonly numFeatures: number;
  readonly channelsLast: boolean;
  protected readonly minRank: number = 3;
  protected readonly maxRank: number = 5;
  /** Rank of an input without a batch dim (-1: none accepted). */
  protected readonly unbatchedRank: number = -1;

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
    return channelPlan(this, x, this.minRank, this.maxRank, true, this.unbatchedRank);
  }
}
/** [N, C, L], or (C, L) unbatched. */
export class InstanceNorm1d extends InstanceNorm {
  protected override readonly minRank = 2;
  protected override readonly maxRank = 3;
  protected override readonly unbatchedRank = 2;
}
/** [N, C, H, W], or (C, H, W) unbatched. */
export class InstanceNorm2d extends InstanceNorm {
  protected override readonly minRank = 3;
  protected override readonly maxRank = 4;
  protected override readonly unbatchedRank = 3;
}
/** [N, C, D, H, W], or (C, D, H, W) unbatched. */
export class InstanceNorm3d extends InstanceNorm {
  protected override readonly minRank = 4;
  protected override readonly maxRank = 5;
  protected override readonly unbatchedRank = 4;
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
    const shape = channelView(x.shape, this.numChannels, this.channelsLast, ctx, "num_channels");
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
