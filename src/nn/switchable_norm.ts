/**
 * Switchable Normalization (Luo et al., 2019): per layer, learned softmax weights blend the
 * instance (IN), layer (LN) and batch (BN) statistics:
 *
 *   mu     = Σ_k softmax(mean_weight)_k * mu_k      sigma^2 = Σ_k softmax(var_weight)_k * sigma^2_k
 *   y      = (x - mu) / sqrt(sigma^2 + eps) * weight + bias
 *
 * All statistics derive from the per-instance ones (x viewed as [N, C, S]), by the law of total
 * variance on centred terms — the reference code's mathematics, without its E[x^2] - mean^2, which
 * gives NaN for float64 inputs offset by 1e8 and float32 inputs offset by 1e4:
 *   mu_in, var_in  per (n, c) over S
 *   mu_ln = mean_c mu_in    var_ln = f_ln * mean_c(var_in + (mu_in - mu_ln)^2)
 *   mu_bn = mean_n mu_in    var_bn = f_bn * mean_n(var_in + (mu_in - mu_bn)^2)
 *
 * `variance: "reference"` matches the official code (switchablenorms/Switchable-Normalization,
 * devkit/ops/switchable_norm.py): 2d/3d use the UNBIASED var_in (f_in = S/(S-1), f_ln = f_bn = 1);
 * 1d (LN + BN only) uses unbiased x.var over C and over N (f_ln = C/(C-1), f_bn = N/(N-1)).
 * `variance: "paper"` uses biased variances throughout, as the paper writes them.
 * Running statistics follow the official code: momentum weights the OLD value
 * (running = m * running + (1 - m) * batch); with usingMovingAverage = false they accumulate
 * (running_mean += mu_bn, running_var += mu_bn^2 + var_bn). In eval only the BN branch uses them.
 *
 * The layer holds the options, the checks and the blend's configuration; the device's kernel set
 * computes (switchForward / switchBackward of src/kernels/contract/kernels.ts).
 */
import type { Device } from "../kernels/contract/device.js";
import type { Mutable, Scratch, SwitchBackwardArgs, SwitchConfig, SwitchForwardArgs, SwitchWork } from "../kernels/contract/kernels.js";
import type { NormPlan, NormShape, StatsConfig } from "../kernels/contract/view.js";
import type { HostSwitchArrays } from "../kernels/contract/host.js";
import { softmaxInto } from "../kernels/contract/math.js";
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import { DType, Tensor, sameShape } from "../tensor.js";
import { Module, Parameter, makeParameter, requireCache } from "./module.js";
import { checkBool, checkDType, checkEps, checkInput, checkPositiveInt } from "./validate.js";

export type SwitchComponent = "in" | "ln" | "bn";

export interface SwitchableNormOptions {
  numFeatures: number;
  /** Default 1e-5. */
  eps?: number;
  /** Weight of the OLD value in the running average (official convention). Default 0.9 (2d/3d), 0.997 (1d). */
  momentum?: number;
  /** Exponential running average (true) or accumulation (false), as the official code. Default true. */
  usingMovingAverage?: boolean;
  /** Include the BN branch (2d/3d only; 1d always has LN + BN). Default true. */
  usingBN?: boolean;
  /** Initialise weight to 0 instead of 1 (for the last norm of a residual block). Default false. */
  lastGamma?: boolean;
  /** "reference" (official code, unbiased variances) or "paper" (biased). Default "reference". */
  variance?: "reference" | "paper";
  /** Input is [N, *spatial, C]. Default false. */
  channelsLast?: boolean;
  /** Default "float32". */
  dtype?: DType;
}

/** What {@link SwitchableNorm.lastStatistics} returns. */
export interface SwitchableStatistics {
  N: number;
  C: number;
  /** Mixed statistics per (n, c) at n * C + c. */
  mean: Float64Array;
  variance: Float64Array;
  rstd: Float64Array;
  /** Per (n, c); null without the IN component (1d). */
  in: { mean: Float64Array; variance: Float64Array } | null;
  /** Per n. */
  ln: { mean: Float64Array; variance: Float64Array };
  /** Per c (batch statistics in training, the running ones in eval); null when usingBN is false. */
  bn: { mean: Float64Array; variance: Float64Array } | null;
  /** softmax(mean_weight) and softmax(var_weight) by component. */
  weights: { mean: Record<SwitchComponent, number>; variance: Record<SwitchComponent, number> };
}

interface SNCache {
  x: Tensor;
  plan: NormPlan;
  bnFromBatch: boolean;
}

const IN_CFG: StatsConfig = { perSample: true, groupSize: 1, center: true };

export class SwitchableNorm extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly usingMovingAverage: boolean;
  readonly usingBN: boolean;
  readonly variance: "reference" | "paper";
  readonly channelsLast: boolean;
  /** Spatial rank: 0 (1d: [N, C]), 1 ([N,C,L]), 2 ([N,C,H,W]) or 3 ([N,C,D,H,W]). */
  readonly spatialDims: number;
  readonly components: readonly SwitchComponent[];
  /** Position of in, ln, bn in `components` (-1: absent). */
  private readonly kindIndex: Int32Array;
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly meanWeight: Parameter;
  readonly varWeight: Parameter;
  private cache: SNCache | null = null;
  private scratch: Scratch | null = null;
  private work: SwitchWork | null = null;
  private lastShape: readonly number[] | null = null;
  private lastPlan: NormPlan | null = null;
  // reused from call to call (a call allocates nothing): the blend's configuration of the last
  // shape and the kernels' argument objects
  private config: { shape: NormShape; config: SwitchConfig } | null = null;
  private fwdArgs: Mutable<SwitchForwardArgs> | null = null;
  private bwdArgs: Mutable<SwitchBackwardArgs> | null = null;

  protected constructor(options: SwitchableNormOptions, spatialDims: number) {
    const ctx = new.target.name;
    if (options === null || typeof options !== "object") throw new ConfigError("options", "an options object", String(options), ctx);
    const dtype = checkDType(options.dtype ?? "float32", ctx);
    super(dtype);
    this.spatialDims = spatialDims;
    const C = (this.numFeatures = checkPositiveInt(options.numFeatures, "numFeatures", ctx));
    this.eps = checkEps(options.eps ?? 1e-5, ctx);
    const m = options.momentum ?? (spatialDims === 0 ? 0.997 : 0.9);
    if (typeof m !== "number" || !Number.isFinite(m) || m < 0 || m > 1) throw new ConfigError("momentum", "a number in [0, 1]", String(m), ctx);
    this.momentum = m;
    this.usingMovingAverage = checkBool(options.usingMovingAverage ?? true, "usingMovingAverage", ctx);
    this.usingBN = checkBool(options.usingBN ?? true, "usingBN", ctx);
    if (spatialDims === 0 && !this.usingBN) throw new ConfigError("usingBN", "true for SwitchableNorm1d (it mixes LN and BN)", "false", ctx);
    const v = options.variance ?? "reference";
    if (v !== "reference" && v !== "paper") throw new ConfigError("variance", '"reference" or "paper"', String(v), ctx);
    this.variance = v;
    this.channelsLast = checkBool(options.channelsLast ?? false, "channelsLast", ctx);
    const lastGamma = checkBool(options.lastGamma ?? false, "lastGamma", ctx);
    this.components = spatialDims === 0 ? ["ln", "bn"] : this.usingBN ? ["in", "ln", "bn"] : ["in", "ln"];
    this.kindIndex = Int32Array.from(["in", "ln", "bn"] as const, (k) => this.components.indexOf(k));
    const pShape = spatialDims === 0 ? [1, C] : [1, C, ...new Array<number>(spatialDims).fill(1)];
    this.weight = makeParameter(pShape, dtype, lastGamma ? 0 : 1);
    this.bias = makeParameter(pShape, dtype, 0);
    this.meanWeight = makeParameter([this.components.length], dtype, 1);
    this.varWeight = makeParameter([this.components.length], dtype, 1);
    const rShape = spatialDims === 0 ? [1, C] : [1, C, 1];
    if (this.usingBN) {
      this.registerBuffer("running_mean", Tensor.zeros(rShape, dtype));
      this.registerBuffer("running_var", Tensor.zeros(rShape, dtype));
    }
  }

  /** running_mean of the BN branch (on the layer's device), or null without it. */
  get runningMean(): Tensor | null {
    return this.bufferOf("running_mean");
  }
  get runningVar(): Tensor | null {
    return this.bufferOf("running_var");
  }

  /** The blend's configuration in the kernel contract's terms (variance factors of this shape). */
  private switchConfig(shape: NormShape): SwitchConfig {
    const last = this.config;
    if (last && last.shape === shape) return last.config;
    const { N, C, S } = shape;
    const ref = this.variance === "reference";
    const config: SwitchConfig = {
      index: { in: this.kindIndex[0]!, ln: this.kindIndex[1]!, bn: this.kindIndex[2]! },
      components: this.components.length,
      fIn: ref && this.spatialDims > 0 ? S / (S - 1) : 1,
      fLn: ref && this.spatialDims === 0 ? C / (C - 1) : 1,
      fBn: ref && this.spatialDims === 0 ? N / (N - 1) : 1,
      eps: this.eps,
      momentum: this.momentum,
      movingAverage: this.usingMovingAverage,
    };
    this.config = { shape, config };
    return config;
  }

  override namedParameters(): Record<string, Parameter> {
    return { weight: this.weight, bias: this.bias, mean_weight: this.meanWeight, var_weight: this.varWeight };
  }
  protected override deviceProblem(device: Device): string | null {
    if (device.type !== "cpu" && this.channelsLast) return `channelsLast is not implemented by the ${device.type} kernels`;
    return null;
  }
  protected override movedTo(): void {
    // the kernel set's storage of the device moved from
    this.work?.destroy();
    this.scratch?.destroy();
    this.cache = null;
    this.work = null;
    this.scratch = null;
    this.fwdArgs = this.bwdArgs = null;
  }

  /** The learned importance of each statistic: softmax(mean_weight) and softmax(var_weight), by component. */
  importance(): { mean: Partial<Record<SwitchComponent, number>>; variance: Partial<Record<SwitchComponent, number>> } {
    this.requireHost("importance");
    const a = softmax(this.meanWeight.value.data), b = softmax(this.varWeight.value.data);
    const mean: Partial<Record<SwitchComponent, number>> = {}, variance: Partial<Record<SwitchComponent, number>> = {};
    this.components.forEach((k, i) => {
      mean[k] = a[i]!;
      variance[k] = b[i]!;
    });
    return { mean, variance };
  }

  /**
   * The statistics of the last forward (copies), null before the first. Per (n, c) at n * C + c:
   * the mixed `mean` and `variance` (rstd = 1 / sqrt(variance + eps)) and the instance statistics;
   * per n: the layer statistics; per c: the batch statistics (the running ones in eval); and the
   * softmax weights by component (0 for an absent one). Variances carry this layer's `variance`
   * convention (see the module comment).
   */
  lastStatistics(): SwitchableStatistics | null {
    this.requireHost("lastStatistics");
    const wk = this.work as HostSwitchArrays | null; // the host sets' work (requireHost above)
    if (!this.cache || !wk) return null;
    const has = (k: SwitchComponent) => this.components.includes(k);
    return {
      N: wk.N,
      C: wk.C,
      mean: wk.mean.slice(),
      variance: wk.vMix.slice(),
      rstd: wk.rstd.slice(),
      in: has("in") ? { mean: wk.muIn.slice(), variance: wk.vIn.slice() } : null,
      ln: { mean: wk.muLn.slice(), variance: wk.vLn.slice() },
      bn: has("bn") ? { mean: wk.muBn.slice(), variance: wk.vBn.slice() } : null,
      weights: {
        mean: { in: wk.aKind[0]!, ln: wk.aKind[1]!, bn: wk.aKind[2]! },
        variance: { in: wk.bKind[0]!, ln: wk.bKind[1]!, bn: wk.bKind[2]! },
      },
    };
  }

  /** The plan of x: the last one when x has the same shape and dtype (validation gives the same answer). */
  private planFor(x: Tensor): NormPlan {
    const last = this.lastPlan;
    if (last && x.dtype === this.dtype && x.rank === this.lastShape!.length && sameShape(x.shape, this.lastShape!)) return last;
    const plan = { shape: this.view(x, `${this.constructor.name}.forward`), cfg: IN_CFG };
    this.lastPlan = plan;
    this.lastShape = x.shape;
    return plan;
  }


  private view(x: Tensor, ctx: string): NormShape {
    const rank = this.spatialDims + 2;
    checkInput(x, this.dtype, rank, rank, ctx);
    const cl = this.channelsLast && rank > 2;
    const C = cl ? x.shape[rank - 1]! : x.shape[1]!;
    if (C !== this.numFeatures) throw new ShapeError("x", `${this.numFeatures} channels (num_features)`, `${C} (shape ${fmtShape(x.shape)})`, ctx);
    if (x.size === 0) throw new ShapeError("x", "a non-empty tensor", `shape ${fmtShape(x.shape)}`, ctx);
    const N = x.shape[0]!;
    return { N, C, S: x.size / (N * C), channelsLast: cl };
  }

  /** y for x; into `out` (same shape and dtype as x) when given. */
  forward(x: Tensor, out?: Tensor): Tensor {
    this.checkDevice(x, "x", "forward");
    const plan = this.planFor(x);
    if (out) this.checkOutput(out, x, "forward");
    const { N, C, S } = plan.shape;
    const ref = this.variance === "reference";
    const bnFromBatch = this.usingBN && this.training;
    // Validate everything before touching state.
    if (ref && this.spatialDims > 0 && S < 2) throw new ShapeError("x", "more than 1 spatial element (reference variance is unbiased)", `shape ${fmtShape(x.shape)}`, this.errorContext("forward"));
    if (ref && this.spatialDims === 0 && C < 2) throw new ShapeError("x", "more than 1 feature (reference LN variance is unbiased)", `shape ${fmtShape(x.shape)}`, this.errorContext("forward"));
    if (bnFromBatch && N * S < 2) throw new ShapeError("x", "more than 1 value per channel when training", `shape ${fmtShape(x.shape)}`, this.errorContext("forward"));
    if (bnFromBatch && ref && this.spatialDims === 0 && N < 2) throw new ShapeError("x", "more than 1 sample when training (reference BN variance is unbiased)", `shape ${fmtShape(x.shape)}`, this.errorContext("forward"));

    const kernels = this.device.kernels;
    if (!this.work || this.work.N !== N || this.work.C !== C) {
      this.work?.destroy();
      this.work = kernels.createSwitchWork(N, C);
    }
    this.scratch ??= kernels.createScratch();
    const y = out ?? this.device.zeros(x.shape, this.dtype);
    const a = (this.fwdArgs ??= {
      y, x, plan, config: this.switchConfig(plan.shape), work: this.work, weight: this.weight.value, bias: this.bias.value,
      meanWeight: this.meanWeight.value, varWeight: this.varWeight.value, bnFromBatch, runningMean: null, runningVar: null, scratch: this.scratch,
    });
    a.y = y;
    a.x = x;
    a.plan = plan;
    a.config = this.switchConfig(plan.shape);
    a.work = this.work;
    a.weight = this.weight.value;
    a.bias = this.bias.value;
    a.meanWeight = this.meanWeight.value;
    a.varWeight = this.varWeight.value;
    a.bnFromBatch = bnFromBatch;
    a.runningMean = this.runningMean;
    a.runningVar = this.runningVar;
    a.scratch = this.scratch;
    kernels.switchForward(a);
    const cache = this.cache;
    if (cache) {
      cache.x = x;
      cache.plan = plan;
      cache.bnFromBatch = bnFromBatch;
    } else {
      this.cache = { x, plan, bnFromBatch };
    }
    return y;
  }

  /**
   * Backward through the normalisation, the mixture and every statistic (the kernels' switchBackward:
   * src/kernels/ts/switchable.ts has the formulas). Parameter gradients accumulate (+=).
   */
  backward(dy: Tensor, out?: Tensor): Tensor {
    const c0 = this.cache ?? requireCache<SNCache>(null, this.errorContext("backward"));
    this.checkDevice(dy, "dy", "backward");
    if (dy.dtype !== this.dtype) throw new ConfigError("dy.dtype", `${this.dtype} (the layer's dtype)`, dy.dtype, this.errorContext("backward"));
    if (!sameShape(dy.shape, c0.x.shape)) throw new ShapeError("dy", `shape ${fmtShape(c0.x.shape)} (the input's)`, `shape ${fmtShape(dy.shape)}`, this.errorContext("backward"));
    if (out) this.checkOutput(out, c0.x, "backward");
    const dx = out ?? this.device.zeros(c0.x.shape, this.dtype);
    const a = (this.bwdArgs ??= {
      dx, dy, x: c0.x, plan: c0.plan, config: this.switchConfig(c0.plan.shape), work: this.work!, bnFromBatch: c0.bnFromBatch,
      weight: this.weight.value, meanWeight: this.meanWeight.value, varWeight: this.varWeight.value,
      dweight: this.weight.grad, dbias: this.bias.grad, dMeanWeight: this.meanWeight.grad, dVarWeight: this.varWeight.grad,
      scratch: this.scratch!,
    });
    a.dx = dx;
    a.dy = dy;
    a.x = c0.x;
    a.plan = c0.plan;
    a.config = this.switchConfig(c0.plan.shape);
    a.work = this.work!;
    a.bnFromBatch = c0.bnFromBatch;
    a.weight = this.weight.value;
    a.meanWeight = this.meanWeight.value;
    a.varWeight = this.varWeight.value;
    a.dweight = this.weight.grad;
    a.dbias = this.bias.grad;
    a.dMeanWeight = this.meanWeight.grad;
    a.dVarWeight = this.varWeight.grad;
    a.scratch = this.scratch!;
    this.device.kernels.switchBackward(a);
    return dx;
  }
}

/** Switchable Norm for [N, C] inputs: mixes LN and BN statistics. */
export class SwitchableNorm1d extends SwitchableNorm {
  constructor(options: SwitchableNormOptions) {
    super(options, 0);
  }
}
/** Switchable Norm for [N, C, H, W]: mixes IN, LN and (with usingBN) BN statistics. */
export class SwitchableNorm2d extends SwitchableNorm {
  constructor(options: SwitchableNormOptions) {
    super(options, 2);
  }
}
/** Switchable Norm for [N, C, D, H, W]. */
export class SwitchableNorm3d extends SwitchableNorm {
  constructor(options: SwitchableNormOptions) {
    super(options, 3);
  }
}

function softmax(z: ArrayLike<number>): Float64Array {
  return softmaxInto(new Float64Array(z.length), z);
}
