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
import { BackwardScratch, NormShape, StatsConfig, makeBackwardScratch, moments, normalizeBackward, normalizeForward } from "../engine/stats.js";
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

interface SNCache {
  x: Tensor;
  shape: NormShape;
  muIn: Float64Array; // per (n,c)
  muLn: Float64Array; // per n
  muBn: Float64Array; // per c
  mean: Float64Array; // mixed, per (n,c)
  rstd: Float64Array; // per (n,c)
  comps: { mu: Float64Array; v: Float64Array; kind: SwitchComponent }[]; // per-component values, broadcast per (n,c)
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
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly meanWeight: Parameter;
  readonly varWeight: Parameter;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  private cache: SNCache | null = null;
  private scratch: BackwardScratch | null = null;

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

  forward(x: Tensor): Tensor {
    const ctx = `${this.constructor.name}.forward`;
    const shape = this.view(x, ctx);
    const { N, C, S } = shape;
    const ref = this.variance === "reference";
    const bnFromBatch = this.usingBN && this.training;
    // Validate everything before touching state.
    if (ref && this.spatialDims > 0 && S < 2) throw new ShapeError("x", "more than 1 spatial element (reference variance is unbiased)", `shape ${fmtShape(x.shape)}`, ctx);
    if (ref && this.spatialDims === 0 && C < 2) throw new ShapeError("x", "more than 1 feature (reference LN variance is unbiased)", `shape ${fmtShape(x.shape)}`, ctx);
    if (bnFromBatch && N * S < 2) throw new ShapeError("x", "more than 1 value per channel when training", `shape ${fmtShape(x.shape)}`, ctx);
    if (bnFromBatch && ref && this.spatialDims === 0 && N < 2) throw new ShapeError("x", "more than 1 sample when training (reference BN variance is unbiased)", `shape ${fmtShape(x.shape)}`, ctx);

    const NC = N * C;
    const muIn = new Float64Array(NC), vIn = new Float64Array(NC);
    moments(x.data, shape, IN_CFG, muIn, vIn);
    const fIn = ref && this.spatialDims > 0 ? S / (S - 1) : 1;
    const fLn = ref && this.spatialDims === 0 ? C / (C - 1) : 1;
    const fBn = ref && this.spatialDims === 0 ? N / (N - 1) : 1;
    for (let i = 0; i < NC; i++) vIn[i] *= fIn;

    const muLn = new Float64Array(N), vLn = new Float64Array(N);
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
    const muBn = new Float64Array(C), vBn = new Float64Array(C);
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

    const a = softmax(this.meanWeight.value.data), b = softmax(this.varWeight.value.data);
    const comps = this.components.map((kind) => {
      const mu = new Float64Array(NC), v = new Float64Array(NC);
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          const i = n * C + c;
          mu[i] = kind === "in" ? muIn[i]! : kind === "ln" ? muLn[n]! : muBn[c]!;
          v[i] = kind === "in" ? vIn[i]! : kind === "ln" ? vLn[n]! : vBn[c]!;
        }
      }
      return { kind, mu, v };
    });
    const mean = new Float64Array(NC), rstd = new Float64Array(NC);
    for (let i = 0; i < NC; i++) {
      let m = 0, v = 0;
      comps.forEach((k, j) => {
        m += a[j]! * k.mu[i]!;
        v += b[j]! * k.v[i]!;
      });
      mean[i] = m;
      rstd[i] = 1 / Math.sqrt(v + this.eps);
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

    const y = Tensor.zeros(x.shape, this.dtype);
    normalizeForward(y.data, x.data, shape, IN_CFG, mean, rstd, "channel", this.weight.value.data, this.bias.value.data);
    this.cache = { x, shape, muIn, muLn, muBn, mean, rstd, comps, bnFromBatch };
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
  backward(dy: Tensor): Tensor {
    const ctx = `${this.constructor.name}.backward`;
    const c0 = requireCache(this.cache, ctx);
    if (dy.dtype !== this.dtype) throw new ConfigError("dy.dtype", `${this.dtype} (the layer's dtype)`, dy.dtype, ctx);
    if (!sameShape(dy.shape, c0.x.shape)) throw new ShapeError("dy", `shape ${fmtShape(c0.x.shape)} (the input's)`, `shape ${fmtShape(dy.shape)}`, ctx);
    const { shape, muIn, muLn, muBn, mean, rstd, comps, bnFromBatch, x } = c0;
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

    const gMu = new Float64Array(NC), gV = new Float64Array(NC);
    for (let i = 0; i < NC; i++) {
      const r = rstd[i]!;
      gMu[i] = -r * sc.sumG[i]!;
      gV[i] = -0.5 * r * r * sc.sumGX[i]!;
    }
    const a = softmax(this.meanWeight.value.data), b = softmax(this.varWeight.value.data);
    const dA = comps.map((k) => dot(gMu, k.mu)), dB = comps.map((k) => dot(gV, k.v));
    softmaxBackwardAccumulate(this.meanWeight.grad.data, a, dA);
    softmaxBackwardAccumulate(this.varWeight.grad.data, b, dB);

    const wOf = (w: Float64Array, kind: SwitchComponent) => {
      const j = this.components.indexOf(kind);
      return j < 0 ? 0 : w[j]!;
    };
    const aIn = wOf(a, "in"), aLn = wOf(a, "ln"), aBn = bnFromBatch ? wOf(a, "bn") : 0;
    const bIn = wOf(b, "in"), bLn = wOf(b, "ln"), bBn = bnFromBatch ? wOf(b, "bn") : 0;
    const sMuN = new Float64Array(N), sVN = new Float64Array(N), sMuC = new Float64Array(C), sVC = new Float64Array(C);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        sMuN[n] += gMu[i]!;
        sVN[n] += gV[i]!;
        sMuC[c] += gMu[i]!;
        sVC[c] += gV[i]!;
      }
    }
    const dx = Tensor.zeros(x.shape, this.dtype);
    const w = this.weight.value.data;
    const cl = shape.channelsLast;
    for (let n = 0; n < N; n++) {
      const gMuLn = aLn * sMuN[n]!, gVLn = bLn * sVN[n]!;
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        const gMuBn = aBn * sMuC[c]!, gVBn = bBn * sVC[c]!;
        const mi = muIn[i]!;
        const dMuIn = aIn * gMu[i]! + gMuLn / C + (gVLn * fLn * 2 * (mi - muLn[n]!)) / C + gMuBn / N + (gVBn * fBn * 2 * (mi - muBn[c]!)) / N;
        const dVIn = (bIn * gV[i]! + (gVLn * fLn) / C + (gVBn * fBn) / N) * fIn;
        // dx = A*dy + B*x + D
        const A = rstd[i]! * w[c]!;
        const B = (2 * dVIn) / S;
        const D = dMuIn / S - B * mi;
        const base = cl ? n * S * C + c : i * S, stride = cl ? C : 1;
        for (let s = 0, j = base; s < S; s++, j += stride) dx.data[j] = A * dy.data[j]! + B * x.data[j]! + D;
      }
    }
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
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]!);
  const out = new Float64Array(z.length);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += out[i] = Math.exp(z[i]! - m);
  for (let i = 0; i < z.length; i++) out[i] /= s;
  return out;
}

/** d logit_j += p_j * (d p_j - Σ_k p_k d p_k) */
function softmaxBackwardAccumulate(grad: { [i: number]: number; length: number }, p: Float64Array, dp: number[]): void {
  let s = 0;
  for (let k = 0; k < p.length; k++) s += p[k]! * dp[k]!;
  for (let j = 0; j < p.length; j++) grad[j] = grad[j]! + p[j]! * (dp[j]! - s);
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
