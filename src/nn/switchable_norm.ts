/**
 * Switchable Normalization (Luo et al., 2019): per layer, learned softmax weights blend the
 * instance (IN), layer (LN) and batch (BN) statistics:
 *
 *   mu     = Σ_k softmax(mean_weight)_k * mu_k      sigma^2 = Σ_k softmax(var_weight)_k * sigma^2_k
 *   y      = (x - mu) / sqrt(sigma^2 + eps) * weight + bias
 *
 * All statistics derive from the per-instance ones (x viewed as [N, C, S]):
 *   mu_in, var_in  per (n, c) over S                    temp = var_in + mu_in^2
 *   mu_ln = mean_c mu_in    var_ln = f_ln * (mean_c temp - mu_ln^2)
 *   mu_bn = mean_n mu_in    var_bn = f_bn * (mean_n temp - mu_bn^2)
 *
 * `variance: "reference"` matches the official code (switchablenorms/Switchable-Normalization,
 * devkit/ops/switchable_norm.py): 2d/3d use the UNBIASED var_in (f_in = S/(S-1), f_ln = f_bn = 1);
 * 1d (LN + BN only) uses unbiased x.var over C and over N (f_ln = C/(C-1), f_bn = N/(N-1)).
 * `variance: "paper"` uses biased variances throughout, as the paper writes them.
 * Running statistics follow the official code: momentum weights the OLD value
 * (running = m * running + (1 - m) * batch); with usingMovingAverage = false they accumulate
 * (running_mean += mu_bn, running_var += mu_bn^2 + var_bn). In eval only the BN branch uses them.
 */
import { BackwardScratch, NormShape, StatsConfig, combine, makeBackwardScratch, moments, normalizeBackward, normalizeForward } from "../kernels/ts/norm.js";
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
  shape: NormShape;
  bnFromBatch: boolean;
}

/**
 * Every statistic and gradient array of one (N, C), reused from call to call (so that forward and
 * backward with provided outputs allocate nothing). The arrays of the last forward are what
 * backward reads.
 */
class SNWork {
  readonly muIn: Float64Array; // per (n,c)
  readonly vIn: Float64Array;
  readonly mean: Float64Array; // mixed, per (n,c)
  readonly rstd: Float64Array;
  readonly vMix: Float64Array; // mixed variance, per (n,c)
  readonly gMu: Float64Array; // backward, per (n,c)
  readonly gV: Float64Array;
  readonly cA: Float64Array; // dx = cA*dy + cB*x + cD, per (n,c)
  readonly cB: Float64Array;
  readonly cD: Float64Array;
  readonly muLn: Float64Array; // per n
  readonly vLn: Float64Array;
  readonly sMuN: Float64Array;
  readonly sVN: Float64Array;
  readonly muBn: Float64Array; // per c
  readonly vBn: Float64Array;
  readonly sMuC: Float64Array;
  readonly sVC: Float64Array;
  readonly a = new Float64Array(3); // softmax(mean_weight), softmax(var_weight)
  readonly b = new Float64Array(3);
  readonly dA = new Float64Array(3);
  readonly dB = new Float64Array(3);
  readonly aKind = new Float64Array(3); // the same weights by kind: (in, ln, bn)
  readonly bKind = new Float64Array(3);
  constructor(readonly N: number, readonly C: number) {
    const NC = N * C;
    const f = (n: number) => new Float64Array(n);
    this.muIn = f(NC); this.vIn = f(NC); this.mean = f(NC); this.rstd = f(NC); this.vMix = f(NC);
    this.gMu = f(NC); this.gV = f(NC); this.cA = f(NC); this.cB = f(NC); this.cD = f(NC);
    this.muLn = f(N); this.vLn = f(N); this.sMuN = f(N); this.sVN = f(N);
    this.muBn = f(C); this.vBn = f(C); this.sMuC = f(C); this.sVC = f(C);
  }
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
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  private cache: SNCache | null = null;
  private scratch: BackwardScratch | null = null;
  private work: SNWork | null = null;
  private lastShape: readonly number[] | null = null;
  private lastView: NormShape | null = null;

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
    this.runningMean = this.usingBN ? Tensor.zeros(rShape, dtype) : null;
    this.runningVar = this.usingBN ? Tensor.zeros(rShape, dtype) : null;
  }

  override namedParameters(): Record<string, Parameter> {
    return { weight: this.weight, bias: this.bias, mean_weight: this.meanWeight, var_weight: this.varWeight };
  }
  override namedBuffers(): Record<string, Tensor> {
    return this.runningMean && this.runningVar ? { running_mean: this.runningMean, running_var: this.runningVar } : {};
  }

  /** The learned importance of each statistic: softmax(mean_weight) and softmax(var_weight), by component. */
  importance(): { mean: Partial<Record<SwitchComponent, number>>; variance: Partial<Record<SwitchComponent, number>> } {
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
    const wk = this.work;
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

  /** The view of x: the last one when x has the same shape and dtype (validation gives the same answer). */
  private viewFor(x: Tensor): NormShape {
    const last = this.lastView;
    if (last && x.dtype === this.dtype && x.rank === this.lastShape!.length && sameShape(x.shape, this.lastShape!)) return last;
    const v = this.view(x, `${this.constructor.name}.forward`);
    this.lastView = v;
    this.lastShape = x.shape;
    return v;
  }

  /** "Class.method", for error messages (built only when an error is thrown). */
  private where(method: string): string {
    return `${this.constructor.name}.${method}`;
  }

  /**
   * The softmax weights `w` (in component order) by kind into out[0..2] = (in, ln, bn), 0 where the
   * layer has no such component. Filling an array, not returning numbers, keeps the hot path free of
   * boxed doubles (a non-inlined call returning a double allocates one).
   */
  private weightsByKind(out: Float64Array, w: Float64Array): Float64Array {
    for (let k = 0; k < 3; k++) {
      const j = this.kindIndex[k]!;
      out[k] = j < 0 ? 0 : w[j]!;
    }
    return out;
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
    const shape = this.viewFor(x);
    if (out && (!sameShape(out.shape, x.shape) || out.dtype !== this.dtype)) {
      throw new ShapeError("out", `a ${this.dtype} tensor of shape ${fmtShape(x.shape)}`, `${out.dtype} ${fmtShape(out.shape)}`, `${this.constructor.name}.forward`);
    }
    const { N, C, S } = shape;
    const ref = this.variance === "reference";
    const bnFromBatch = this.usingBN && this.training;
    // Validate everything before touching state.
    if (ref && this.spatialDims > 0 && S < 2) throw new ShapeError("x", "more than 1 spatial element (reference variance is unbiased)", `shape ${fmtShape(x.shape)}`, `${this.constructor.name}.forward`);
    if (ref && this.spatialDims === 0 && C < 2) throw new ShapeError("x", "more than 1 feature (reference LN variance is unbiased)", `shape ${fmtShape(x.shape)}`, `${this.constructor.name}.forward`);
    if (bnFromBatch && N * S < 2) throw new ShapeError("x", "more than 1 value per channel when training", `shape ${fmtShape(x.shape)}`, `${this.constructor.name}.forward`);
    if (bnFromBatch && ref && this.spatialDims === 0 && N < 2) throw new ShapeError("x", "more than 1 sample when training (reference BN variance is unbiased)", `shape ${fmtShape(x.shape)}`, `${this.constructor.name}.forward`);

    const NC = N * C;
    if (!this.work || this.work.N !== N || this.work.C !== C) this.work = new SNWork(N, C);
    const wk = this.work;
    const { muIn, vIn, muLn, vLn, muBn, vBn, mean, rstd, vMix } = wk;
    moments(x.data, shape, IN_CFG, muIn, vIn);
    const fIn = ref && this.spatialDims > 0 ? S / (S - 1) : 1;
    const fLn = ref && this.spatialDims === 0 ? C / (C - 1) : 1;
    const fBn = ref && this.spatialDims === 0 ? N / (N - 1) : 1;
    for (let i = 0; i < NC; i++) vIn[i] *= fIn;

    for (let n = 0; n < N; n++) {
      let m = 0, t = 0;
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        m += muIn[i]!;
        t += vIn[i]! + muIn[i]! * muIn[i]!;
      }
      m /= C;
      muLn[n] = m;
      vLn[n] = fLn * (t / C - m * m);
    }
    if (bnFromBatch) {
      for (let c = 0; c < C; c++) {
        let m = 0, t = 0;
        for (let n = 0; n < N; n++) {
          const i = n * C + c;
          m += muIn[i]!;
          t += vIn[i]! + muIn[i]! * muIn[i]!;
        }
        m /= N;
        muBn[c] = m;
        vBn[c] = fBn * (t / N - m * m);
      }
    } else if (this.usingBN) {
      for (let c = 0; c < C; c++) {
        muBn[c] = this.runningMean!.data[c]!;
        vBn[c] = this.runningVar!.data[c]!;
      }
    }

    const a = softmaxInto(wk.a, this.meanWeight.value.data), b = softmaxInto(wk.b, this.varWeight.value.data);
    // mu = Σ_k a_k mu_k, in component order (in, ln, bn); absent components weigh 0
    const ak = this.weightsByKind(wk.aKind, a), bk = this.weightsByKind(wk.bKind, b);
    const aIn = ak[0]!, aLn = ak[1]!, aBn = ak[2]!;
    const bIn = bk[0]!, bLn = bk[1]!, bBn = bk[2]!;
    const hasIn = this.components.includes("in"), hasBn = this.components.includes("bn");
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        let m = hasIn ? aIn * muIn[i]! : 0, v = hasIn ? bIn * vIn[i]! : 0;
        m += aLn * muLn[n]!;
        v += bLn * vLn[n]!;
        if (hasBn) {
          m += aBn * muBn[c]!;
          v += bBn * vBn[c]!;
        }
        mean[i] = m;
        vMix[i] = v;
        rstd[i] = 1 / Math.sqrt(v + this.eps);
      }
    }

    if (bnFromBatch) {
      const rm = this.runningMean!.data, rv = this.runningVar!.data;
      for (let c = 0; c < C; c++) {
        if (this.usingMovingAverage) {
          rm[c] = this.momentum * rm[c]! + (1 - this.momentum) * muBn[c]!;
          rv[c] = this.momentum * rv[c]! + (1 - this.momentum) * vBn[c]!;
        } else {
          rm[c] = rm[c]! + muBn[c]!;
          rv[c] = rv[c]! + muBn[c]! * muBn[c]! + vBn[c]!;
        }
      }
    }

    const y = out ?? Tensor.zeros(x.shape, this.dtype);
    normalizeForward(y.data, x.data, shape, IN_CFG, mean, rstd, "channel", this.weight.value.data, this.bias.value.data);
    const cache = this.cache;
    if (cache) {
      cache.x = x;
      cache.shape = shape;
      cache.bnFromBatch = bnFromBatch;
    } else {
      this.cache = { x, shape, bnFromBatch };
    }
    return y;
  }

  /**
   * Backward through the normalisation, the mixture and every statistic. With g = dy * weight,
   * per (n, c): dL/dmu = -rstd Σ_s g, dL/dvar = -rstd^2/2 Σ_s g * xhat; these flow to the
   * components (LN summed over c, BN over n, skipped for BN from running stats), to the softmax
   * logits (d logit_j = a_j (dA_j - Σ_k a_k dA_k)), and back to mu_in, var_in:
   *   dx = rstd * g + dmu_in / S + dvar_in * f_in * 2 (x - mu_in) / S.
   * Parameter gradients accumulate (+=).
   */
  backward(dy: Tensor, out?: Tensor): Tensor {
    const c0 = this.cache ?? requireCache<SNCache>(null, this.where("backward"));
    if (dy.dtype !== this.dtype) throw new ConfigError("dy.dtype", `${this.dtype} (the layer's dtype)`, dy.dtype, this.where("backward"));
    if (!sameShape(dy.shape, c0.x.shape)) throw new ShapeError("dy", `shape ${fmtShape(c0.x.shape)} (the input's)`, `shape ${fmtShape(dy.shape)}`, this.where("backward"));
    if (out && (!sameShape(out.shape, c0.x.shape) || out.dtype !== this.dtype)) {
      throw new ShapeError("out", `a ${this.dtype} tensor of shape ${fmtShape(c0.x.shape)}`, `${out.dtype} ${fmtShape(out.shape)}`, this.where("backward"));
    }
    const { shape, bnFromBatch, x } = c0;
    const wk = this.work!;
    const { muIn, vIn, muLn, vLn, muBn, vBn, mean, rstd, gMu, gV, sMuN, sVN, sMuC, sVC, cA, cB, cD } = wk;
    const { N, C, S } = shape;
    const NC = N * C;
    const ref = this.variance === "reference";
    const fIn = ref && this.spatialDims > 0 ? S / (S - 1) : 1;
    const fLn = ref && this.spatialDims === 0 ? C / (C - 1) : 1;
    const fBn = ref && this.spatialDims === 0 ? N / (N - 1) : 1;
    if (!this.scratch || this.scratch.sumG.length < NC) this.scratch = makeBackwardScratch(NC, C);
    const sc = this.scratch;
    // sums per (n,c) and dweight/dbias (accumulated into the grads)
    normalizeBackward(null, this.weight.grad.data, this.bias.grad.data, dy.data, x.data, shape, IN_CFG, mean, rstd, "channel", this.weight.value.data, false, sc);

    for (let i = 0; i < NC; i++) {
      const r = rstd[i]!;
      gMu[i] = -r * sc.sumG[i]!;
      gV[i] = -0.5 * r * r * sc.sumGX[i]!;
    }
    const a = softmaxInto(wk.a, this.meanWeight.value.data), b = softmaxInto(wk.b, this.varWeight.value.data);
    // d softmax input of component j: Σ_(n,c) gMu * mu_j (and gV * var_j)
    const dA = wk.dA, dB = wk.dB;
    for (let j = 0; j < this.components.length; j++) {
      const kind = this.components[j]!;
      let sa = 0, sb = 0;
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          const i = n * C + c;
          sa += gMu[i]! * (kind === "in" ? muIn[i]! : kind === "ln" ? muLn[n]! : muBn[c]!);
          sb += gV[i]! * (kind === "in" ? vIn[i]! : kind === "ln" ? vLn[n]! : vBn[c]!);
        }
      }
      dA[j] = sa;
      dB[j] = sb;
    }
    softmaxBackwardAccumulate(this.meanWeight.grad.data, a, dA, this.components.length);
    softmaxBackwardAccumulate(this.varWeight.grad.data, b, dB, this.components.length);

    const ak = this.weightsByKind(wk.aKind, a), bk = this.weightsByKind(wk.bKind, b);
    const aIn = ak[0]!, aLn = ak[1]!, aBn = bnFromBatch ? ak[2]! : 0;
    const bIn = bk[0]!, bLn = bk[1]!, bBn = bnFromBatch ? bk[2]! : 0;
    sMuN.fill(0);
    sVN.fill(0);
    sMuC.fill(0);
    sVC.fill(0);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        sMuN[n] += gMu[i]!;
        sVN[n] += gV[i]!;
        sMuC[c] += gMu[i]!;
        sVC[c] += gV[i]!;
      }
    }
    const dx = out ?? Tensor.zeros(x.shape, this.dtype);
    const w = this.weight.value.data;
    // dx = A*dy + B*x + D per (n, c), applied by the engine's combine kernel
    for (let n = 0; n < N; n++) {
      const gMuLn = aLn * sMuN[n]!, gVLn = bLn * sVN[n]!;
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        const gMuBn = aBn * sMuC[c]!, gVBn = bBn * sVC[c]!;
        const mi = muIn[i]!;
        const dMuIn = aIn * gMu[i]! + gMuLn / C + (gVLn * fLn * 2 * (mi - muLn[n]!)) / C + gMuBn / N + (gVBn * fBn * 2 * (mi - muBn[c]!)) / N;
        const dVIn = (bIn * gV[i]! + (gVLn * fLn) / C + (gVBn * fBn) / N) * fIn;
        cA[i] = rstd[i]! * w[c]!;
        cB[i] = (2 * dVIn) / S;
        cD[i] = dMuIn / S;
      }
    }
    combine(dx.data, dy.data, x.data, shape, IN_CFG, cA, cB, muIn, cD);
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

/** softmax(z) into out[0 .. z.length); returns out. */
function softmaxInto(out: Float64Array, z: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]!);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += out[i] = Math.exp(z[i]! - m);
  for (let i = 0; i < z.length; i++) out[i] /= s;
  return out;
}

/** d logit_j += p_j * (d p_j - Σ_k p_k d p_k) */
function softmaxBackwardAccumulate(grad: { [i: number]: number; length: number }, p: Float64Array, dp: Float64Array, n: number): void {
  let s = 0;
  for (let k = 0; k < n; k++) s += p[k]! * dp[k]!;
  for (let j = 0; j < n; j++) grad[j] = grad[j]! + p[j]! * (dp[j]! - s);
}
