/**
 * LSTM: one layer of torch.nn.LSTM (gate order i, f, g, o), and its normalised variants — the
 * layer-normalised LSTM of Ba et al. (2016) and the recurrent BatchNorm LSTM of Cooijmans et al.
 * (2016) — as options of one class. Host only.
 *
 * Per step t, with g_x = W_ih x_t and g_h = W_hh h_{t−1} (each [N, 4H]):
 *   none:        a = g_x + g_h + b                          (b = b_ih + b_hh, PyTorch's two biases, or one b)
 *   layer_norm:  a = LN_x(g_x) + LN_h(g_h) + b              (LN over the 4H pre-activations of a row)
 *   batch_norm:  a = BN_{x,t}(g_x) + BN_{h,t}(g_h) + b      (one BatchNorm1d per step t, over the batch)
 *   (i, f, g, o) = (σ(a_i), σ(a_f), tanh(a_g), σ(a_o))
 *   c_t = f ⊙ c_{t−1} + i ⊙ g
 *   h_t = o ⊙ tanh(c_t)   (none)     h_t = o ⊙ tanh(N_c(c_t))   (N_c = LN_c over H, or BN_{c,t})
 *
 * The matrix products run on Linear's kernels (src/kernels/ts/linear.ts: the WebAssembly SIMD GEMM
 * for float32, the float64 loops otherwise): W_ih x_t for all T steps at once in one GEMM, W_hh h_{t−1}
 * once per step; in the backward dW_hh and dW_ih over all steps in one GEMM each, dh_{t−1} per step.
 * The normalisations are the statistics engine's array kernels (src/kernels/ts/norm.ts) with the
 * LayerNorm view (a row of D values: [rows, 1, D], per sample, element affine) or the BatchNorm
 * view (the rows as the positions of one channels-last sample [1, N, D]: per feature, channel affine); LN_x runs over all T·N rows in one call.
 *
 * Parameters (state-dict names, PyTorch's for the plain layer):
 *   weight_ih_l0 [4H, I], weight_hh_l0 [4H, H];
 *   bias_ih_l0, bias_hh_l0 [4H] (two biases, PyTorch's nn.LSTM: the default for norm "none"), or
 *   bias_l0 [4H] (one bias: `singleBias`, always so for the normalised variants);
 *   layer_norm: ln_ih_l0.{weight,bias} [4H], ln_hh_l0.{weight,bias} [4H], ln_c_l0.{weight,bias} [H] (gains 1, biases 0);
 *   batch_norm: bn_ih_l0.{t}.*, bn_hh_l0.{t}.* ([4H]) and bn_c_l0.{t}.* ([H]) for t < maxSteps, each with
 *   weight (init 0.1), bias (0) and buffers running_mean, running_var, num_batches_tracked.
 * Weights and biases are U(−1/√H, 1/√H), drawn from `rng` in the order weight_ih, weight_hh, biases.
 */
import { ConfigError, ShapeError, StateError, fmtShape } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import { cpu } from "../kernels/cpu.js";
import type { NormShape, StatsConfig } from "../kernels/contract/view.js";
import type { BackwardScratch } from "../kernels/contract/host.js";
import { linearBackward, linearForward } from "../kernels/ts/linear.js";
import { forwardTrainTS, makeBackwardScratch, normalizeBackwardTS, normalizeForwardTS } from "../kernels/ts/norm.js";
import { updateRunningBatch } from "../kernels/ts/running.js";
import { DType, FloatArray, Tensor, sameShape } from "../tensor.js";
import { initUniform } from "./linear.js";
import { Module, Parameter, makeParameter } from "./module.js";
import { checkBool, checkDType, checkEps, checkInput, checkMomentum, checkPositiveInt } from "./validate.js";

export type LSTMNorm = "none" | "layer_norm" | "batch_norm";

export interface LSTMOptions {
  /** I, the features of x_t. Required, a positive integer. */
  inputSize: number;
  /** H, the hidden (and cell) size. Required, a positive integer. */
  hiddenSize: number;
  /** Input and output [N, T, ·] instead of [T, N, ·]. Default false (as PyTorch). */
  batchFirst?: boolean;
  /** Whether to learn biases. Default true. */
  bias?: boolean;
  /**
   * One bias b [4H] (`bias_l0`) instead of PyTorch's bias_ih_l0 + bias_hh_l0. Default false for
   * norm "none", true otherwise (the normalised variants have one bias; false there is a ConfigError).
   */
  singleBias?: boolean;
  /** The normalisation of the pre-activations and the cell. Default "none" (torch.nn.LSTM). */
  norm?: LSTMNorm;
  /** batch_norm: the number of per-step BatchNorms, the longest sequence accepted. Required there. */
  maxSteps?: number;
  /** LN / BN eps. Default 1e-5. */
  eps?: number;
  /** BN momentum (PyTorch's convention: the weight of the new batch). Default 0.1. */
  momentum?: number;
  /** BN gains' initial value (Cooijmans et al.). Default 0.1. */
  bnGainInit?: number;
  /** Storage type of parameters, inputs and outputs. Default "float32". */
  dtype?: DType;
  /** Uniform [0, 1) source for the initialisation. Default Math.random. */
  rng?: () => number;
}

/** (h, c): PyTorch's [num_layers = 1, N, H] (an [N, H] tensor is accepted as input too). */
export interface LSTMState {
  h?: Tensor | null;
  c?: Tensor | null;
}

export interface LSTMResult {
  /** The h_t of every step: [T, N, H] ([N, T, H] with batchFirst). */
  output: Tensor;
  /** h_T and c_T, [1, N, H]. */
  h: Tensor;
  c: Tensor;
}

/** Caller tensors for forwardSequence's results (each the result's shape and dtype), reused across calls. */
export interface LSTMOutputs {
  output?: Tensor;
  h?: Tensor;
  c?: Tensor;
}

/** Caller tensors for backwardSequence's results; `dx: null` skips dx (the data needs no gradient: a third less work). */
export interface LSTMGradientOutputs {
  dx?: Tensor | null;
  dh0?: Tensor;
  dc0?: Tensor;
}

export interface LSTMGradients {
  /** null when the caller asked for none (`dx: null`). */
  dx: Tensor | null;
  /** dLoss/dh_0 and dLoss/dc_0, [1, N, H]. */
  dh0: Tensor;
  dc0: Tensor;
}

// The engine's two views: LayerNorm of rows of D values, BatchNorm of D columns over the rows.
const ROW_CFG: StatsConfig = Object.freeze({ perSample: true, groupSize: 1, center: true });
const COL_CFG: StatsConfig = Object.freeze({ perSample: false, groupSize: 1, center: true });
const rowView = (rows: number, D: number): NormShape => ({ N: rows, C: 1, S: D, channelsLast: false });
// BatchNorm's view as channels-last [1, rows, D]: one strided run of `rows` values per feature (the
// engine visits runs; [rows, D, 1] would be rows·D runs of one value)
const colView = (rows: number, D: number): NormShape => ({ N: 1, C: D, S: rows, channelsLast: true });

const sigmoid = (a: number): number => 1 / (1 + Math.exp(-a));

/**
 * One normalisation site of the cell (x, h or c), over D features: a LayerNorm shared by every step
 * (statistics per row) or a BatchNorm per step (statistics per feature over the batch, running
 * statistics per step). The statistics of every call of a forward are kept, in slots, for the backward.
 */
class NormSite {
  readonly weights: Parameter[] = [];
  readonly biases: Parameter[] = [];
  readonly runningMean: Tensor[] = [];
  readonly runningVar: Tensor[] = [];
  readonly batches: Tensor[] = [];
  private mean = new Float64Array(0);
  private variance = new Float64Array(0);
  private rstd = new Float64Array(0);
  private scratch: BackwardScratch = makeBackwardScratch(0, 0);
  /** Whether the last forward normalised with running statistics (BN in eval). */
  private fixed = false;

  constructor(
    readonly kind: "layer" | "batch", readonly D: number, steps: number, dtype: DType, gain: number,
    private readonly eps: number, private readonly momentum: number,
  ) {
    for (let s = 0; s < steps; s++) {
      this.weights.push(makeParameter([D], dtype, gain));
      this.biases.push(makeParameter([D], dtype, 0));
      if (kind === "batch") {
        this.runningMean.push(cpu.zeros([D], dtype));
        this.runningVar.push(Tensor.full([D], 1, dtype));
        this.batches.push(Tensor.zeros([], "float64"));
      }
    }
  }

  /** Room for `slots` calls of `rows` rows each (statistics: rows per call for LN, D for BN). */
  prepare(slots: number, rows: number): void {
    const K = slots * (this.kind === "layer" ? rows : this.D);
    if (this.mean.length < K) {
      this.mean = new Float64Array(K);
      this.variance = new Float64Array(K);
      this.rstd = new Float64Array(K);
    }
    const perCall = this.kind === "layer" ? rows : this.D;
    if (this.scratch.sumG.length < perCall || this.scratch.dw.length < this.D) this.scratch = makeBackwardScratch(Math.max(perCall, 1), this.D);
  }

  /**
   * y = N(x) over `rows` rows of D values, statistics kept in `slot`; BN uses step `step`'s parameters.
   *   LN:  y[r, d] = (x[r, d] − μ_r) / √(σ²_r + eps) · w[d] + b[d]        μ_r, σ²_r over d
   *   BN:  y[r, d] = (x[r, d] − μ_d) / √(σ²_d + eps) · w_t[d] + b_t[d]    μ_d, σ²_d over r (training),
   *        the step's running statistics in eval; training updates them (unbiased variance, momentum).
   */
  forward(y: FloatArray, x: FloatArray, rows: number, slot: number, step: number, training: boolean): void {
    const D = this.D;
    const p = this.kind === "layer" ? 0 : step;
    const w = this.weights[p]!.value.data, b = this.biases[p]!.value.data;
    if (this.kind === "layer") {
      const k = slot * rows;
      forwardTrainTS(y, x, rowView(rows, D), ROW_CFG, this.eps, "element", w, b,
        this.mean.subarray(k, k + rows), this.variance.subarray(k, k + rows), this.rstd.subarray(k, k + rows));
      return;
    }
    const k = slot * D;
    const mean = this.mean.subarray(k, k + D), variance = this.variance.subarray(k, k + D), rstd = this.rstd.subarray(k, k + D);
    this.fixed = !training;
    if (training) {
      forwardTrainTS(y, x, colView(rows, D), COL_CFG, this.eps, "channel", w, b, mean, variance, rstd);
      updateRunningBatch(this.runningMean[step]!.data, this.runningVar[step]!.data, mean, variance, D, rows, this.momentum);
      const nbt = this.batches[step]!.data;
      nbt[0] = nbt[0]! + 1;
    } else {
      const rm = this.runningMean[step]!.data, rv = this.runningVar[step]!.data;
      for (let d = 0; d < D; d++) {
        mean[d] = rm[d]!;
        rstd[d] = 1 / Math.sqrt(rv[d]! + this.eps);
      }
      normalizeForwardTS(y, x, colView(rows, D), COL_CFG, mean, rstd, "channel", w, b);
    }
  }

  /**
   * dx (overwritten) for the call in `slot`, from its input x; dw, db ACCUMULATED. With x̂ the
   * normalised input, g = dy·w and means over the values sharing a statistic:
   *   dx = rstd · (g − mean(g) − x̂ · mean(g·x̂))   (batch statistics)     dx = rstd · g   (running, eval)
   *   dw += Σ dy·x̂     db += Σ dy
   */
  backward(dx: FloatArray, dy: FloatArray, x: FloatArray, rows: number, slot: number, step: number): void {
    const D = this.D;
    const p = this.kind === "layer" ? 0 : step;
    const W = this.weights[p]!, B = this.biases[p]!;
    const layer = this.kind === "layer";
    const K = layer ? rows : D, k = slot * K;
    normalizeBackwardTS(dx, W.grad.data, B.grad.data, dy, x, layer ? rowView(rows, D) : colView(rows, D), layer ? ROW_CFG : COL_CFG,
      this.mean.subarray(k, k + K), this.rstd.subarray(k, k + K), layer ? "element" : "channel", W.value.data, !layer && this.fixed, this.scratch);
  }
}

interface Work {
  T: number;
  N: number;
  /** x time-major [T, N, I] (x itself when not batchFirst). */
  X: FloatArray;
  /** W_ih x_t (+ b_ih or b, norm "none") for every t: [T, N, 4H]. */
  GX: FloatArray;
  /** N_x(GX) (normalised variants). */
  GXn: FloatArray;
  /** W_hh h_{t−1} (+ b_hh) for every t: [T, N, 4H] (normalised variants keep it for the backward). */
  GH: FloatArray;
  /** N_h(GH_t), one step. */
  GHn: FloatArray;
  /** σ(a_i), σ(a_f), tanh(a_g), σ(a_o) per step: [T, N, 4H]. */
  gates: FloatArray;
  /** h_0 … h_T and c_0 … c_T: [T + 1, N, H]. */
  Hs: FloatArray;
  Cs: FloatArray;
  /** tanh(c_t) or tanh(N_c(c_t)): [T, N, H]. */
  TC: FloatArray;
  // backward
  /** dLoss/da per step: [T, N, 4H]. */
  dA: FloatArray;
  /** dLoss/dGH (normalised variants; dA itself otherwise): [T, N, 4H]. */
  dGH: FloatArray;
  /** dLoss/dGX (normalised variants): [T, N, 4H]. */
  dGX: FloatArray;
  dh: FloatArray;
  dc: FloatArray;
  dchat: FloatArray;
  dcn: FloatArray;
  dOut: FloatArray;
  /** dx time-major, for batchFirst (made on first use). */
  dxT?: Tensor;
}

export class LSTM extends Module {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly batchFirst: boolean;
  readonly norm: LSTMNorm;
  readonly maxSteps: number | null;
  readonly eps: number;
  readonly momentum: number;
  readonly weightIh: Parameter;
  readonly weightHh: Parameter;
  /** bias_ih_l0 (two biases) or bias_l0 (one bias), or null. */
  readonly biasIh: Parameter | null;
  /** bias_hh_l0, or null (one bias, or none). */
  readonly biasHh: Parameter | null;
  readonly singleBias: boolean;
  private readonly sites: { x: NormSite; h: NormSite; c: NormSite } | null;
  private work: Work | null = null;
  private cached = false;
  /** The last forward's input, time-major ([T, N, I]: x's data, or the transposed copy). */
  private lastX: FloatArray | null = null;

  constructor(options: LSTMOptions) {
    const ctx = "LSTM";
    super(checkDType(options.dtype ?? "float32", ctx));
    this.inputSize = checkPositiveInt(options.inputSize, "inputSize", ctx);
    this.hiddenSize = checkPositiveInt(options.hiddenSize, "hiddenSize", ctx);
    this.batchFirst = checkBool(options.batchFirst ?? false, "batchFirst", ctx);
    const norm = options.norm ?? "none";
    if (norm !== "none" && norm !== "layer_norm" && norm !== "batch_norm") throw new ConfigError("norm", '"none", "layer_norm" or "batch_norm"', String(norm), ctx);
    this.norm = norm;
    const bias = checkBool(options.bias ?? true, "bias", ctx);
    const single = checkBool(options.singleBias ?? norm !== "none", "singleBias", ctx);
    if (norm !== "none" && !single) throw new ConfigError("singleBias", "true for the normalised variants (one bias b)", "false", ctx);
    this.singleBias = single;
    this.eps = checkEps(options.eps ?? 1e-5, ctx);
    this.momentum = checkMomentum(options.momentum ?? 0.1, ctx) ?? 0.1;
    if (norm === "batch_norm") this.maxSteps = checkPositiveInt(options.maxSteps, "maxSteps", ctx);
    else if (options.maxSteps !== undefined) throw new ConfigError("maxSteps", "only with norm batch_norm", String(options.maxSteps), ctx);
    else this.maxSteps = null;
    const H = this.hiddenSize, I = this.inputSize, G = 4 * H;
    const rng = options.rng ?? Math.random;
    const bound = 1 / Math.sqrt(H);
    this.weightIh = makeParameter([G, I], this.dtype, 0);
    this.weightHh = makeParameter([G, H], this.dtype, 0);
    initUniform(this.weightIh.value, bound, rng);
    initUniform(this.weightHh.value, bound, rng);
    this.biasIh = bias ? makeParameter([G], this.dtype, 0) : null;
    this.biasHh = bias && !single ? makeParameter([G], this.dtype, 0) : null;
    if (this.biasIh) initUniform(this.biasIh.value, bound, rng);
    if (this.biasHh) initUniform(this.biasHh.value, bound, rng);
    if (norm === "none") this.sites = null;
    else {
      const kind = norm === "layer_norm" ? "layer" : "batch";
      const steps = kind === "layer" ? 1 : this.maxSteps!;
      const gain = kind === "layer" ? 1 : (options.bnGainInit ?? 0.1);
      if (typeof gain !== "number" || !Number.isFinite(gain)) throw new ConfigError("bnGainInit", "a finite number", String(gain), ctx);
      this.sites = {
        x: new NormSite(kind, G, steps, this.dtype, gain, this.eps, this.momentum),
        h: new NormSite(kind, G, steps, this.dtype, gain, this.eps, this.momentum),
        c: new NormSite(kind, H, steps, this.dtype, gain, this.eps, this.momentum),
      };
    }
  }

  namedParameters(): Record<string, Parameter> {
    const out: Record<string, Parameter> = { weight_ih_l0: this.weightIh, weight_hh_l0: this.weightHh };
    if (this.biasIh) out[this.singleBias ? "bias_l0" : "bias_ih_l0"] = this.biasIh;
    if (this.biasHh) out["bias_hh_l0"] = this.biasHh;
    if (this.sites) {
      for (const [name, site] of this.siteNames()) {
        site.weights.forEach((w, t) => (out[site.kind === "layer" ? `${name}.weight` : `${name}.${t}.weight`] = w));
        site.biases.forEach((b, t) => (out[site.kind === "layer" ? `${name}.bias` : `${name}.${t}.bias`] = b));
      }
    }
    return out;
  }

  override namedBuffers(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    if (this.sites?.x.kind === "batch") {
      for (const [name, site] of this.siteNames()) {
        for (let t = 0; t < site.runningMean.length; t++) {
          out[`${name}.${t}.running_mean`] = site.runningMean[t]!;
          out[`${name}.${t}.running_var`] = site.runningVar[t]!;
          out[`${name}.${t}.num_batches_tracked`] = site.batches[t]!;
        }
      }
    }
    return out;
  }

  private siteNames(): [string, NormSite][] {
    const s = this.sites!;
    const p = s.x.kind === "layer" ? "ln" : "bn";
    return [[`${p}_ih_l0`, s.x], [`${p}_hh_l0`, s.h], [`${p}_c_l0`, s.c]];
  }

  protected override deviceProblem(device: Device): string | null {
    return device.type === "cpu" ? null : "LSTM has host kernels only";
  }

  /** The output sequence only (see {@link forwardSequence}). */
  forward(x: Tensor, state?: LSTMState): Tensor {
    return this.forwardSequence(x, state).output;
  }

  /** dx for the last forward, given dLoss/dOutput (see {@link backwardSequence}). */
  backward(dOutput: Tensor, state?: LSTMState): Tensor {
    return this.backwardSequence(dOutput, state).dx!;
  }

  /** Buffers of the forward and backward, reused while T and N stay (resident for float32). */
  private workFor(T: number, N: number): Work {
    const w0 = this.work;
    if (w0 && w0.T === T && w0.N === N) return w0;
    const H = this.hiddenSize, G = 4 * H, I = this.inputSize;
    const a = (n: number): FloatArray => cpu.zeros([n], this.dtype).data;
    const empty = a(0);
    const normed = this.sites !== null;
    const dA = a(T * N * G);
    const w: Work = {
      T, N, X: this.batchFirst ? a(T * N * I) : empty,
      GX: a(T * N * G), GXn: normed ? a(T * N * G) : empty, GH: a(T * N * G), GHn: normed ? a(N * G) : empty,
      gates: a(T * N * G), Hs: a((T + 1) * N * H), Cs: a((T + 1) * N * H), TC: a(T * N * H),
      dA, dGH: normed ? a(T * N * G) : dA, dGX: normed ? a(T * N * G) : dA,
      dh: a(N * H), dc: a(N * H), dchat: a(N * H), dcn: a(N * H), dOut: this.batchFirst ? a(T * N * H) : empty,
    };
    if (this.sites) {
      // LN_x: one call over all T·N rows; BN_x: one call (statistics slot) per step
      if (this.sites.x.kind === "layer") this.sites.x.prepare(1, T * N);
      else this.sites.x.prepare(T, N);
      this.sites.h.prepare(T, N);
      this.sites.c.prepare(T, N);
    }
    this.work = w;
    return w;
  }

  private checkState(t: Tensor | null | undefined, name: string, N: number, ctx: string): FloatArray | null {
    if (t === null || t === undefined) return null;
    this.checkDevice(t, name, ctx.split(".")[1]!);
    const H = this.hiddenSize;
    if (t.dtype !== this.dtype) throw new ConfigError(`${name}.dtype`, `${this.dtype} (the layer's dtype)`, t.dtype, ctx);
    if (!sameShape(t.shape, [1, N, H]) && !sameShape(t.shape, [N, H])) throw new ShapeError(name, `shape [1, ${N}, ${H}]`, `shape ${fmtShape(t.shape)}`, ctx);
    return t.data;
  }

  /**
   * Runs the sequence x ([T, N, I], or [N, T, I] with batchFirst) from (h_0, c_0) (zeros when not
   * given); returns every h_t and (h_T, c_T). Keeps what the backward needs (x itself: do not modify
   * it in between). In eval the batch_norm variant uses each step's running statistics.
   */
  forwardSequence(x: Tensor, state: LSTMState = {}, outs: LSTMOutputs = {}): LSTMResult {
    const ctx = "LSTM.forward";
    this.checkDevice(x, "x", "forward");
    checkInput(x, this.dtype, 3, 3, ctx);
    const I = this.inputSize, H = this.hiddenSize, G = 4 * H;
    const [d0, d1, d2] = x.shape as [number, number, number];
    const T = this.batchFirst ? d1 : d0, N = this.batchFirst ? d0 : d1;
    if (d2 !== I) throw new ShapeError("x", `last axis ${I} (inputSize)`, `shape ${fmtShape(x.shape)}`, ctx);
    if (T === 0 || N === 0) throw new ShapeError("x", "at least one step and one sample", `shape ${fmtShape(x.shape)}`, ctx);
    if (this.maxSteps !== null && T > this.maxSteps) throw new ShapeError("x", `at most ${this.maxSteps} steps (maxSteps: one BatchNorm per step)`, `${T} (shape ${fmtShape(x.shape)})`, ctx);
    if (this.norm === "batch_norm" && this.training && N < 2) throw new ShapeError("x", "more than 1 value per channel when training (batch_norm)", `shape ${fmtShape(x.shape)}`, ctx);
    const h0 = this.checkState(state.h, "h0", N, ctx), c0 = this.checkState(state.c, "c0", N, ctx);
    const outShape = this.batchFirst ? [N, T, H] : [T, N, H];
    if (outs.output) this.checkOutput(outs.output, { shape: outShape }, "forward");
    if (outs.h) this.checkOutput(outs.h, { shape: [1, N, H] }, "forward");
    if (outs.c) this.checkOutput(outs.c, { shape: [1, N, H] }, "forward");

    const w = this.workFor(T, N);
    const { GX, GH, gates, Hs, Cs, TC } = w;
    const NH = N * H, NG = N * G;
    let X: FloatArray = x.data;
    if (this.batchFirst) {
      // [N, T, I] → [T, N, I]
      X = w.X;
      const xd = x.data;
      for (let n = 0; n < N; n++) for (let t = 0; t < T; t++) X.set(xd.subarray((n * T + t) * I, (n * T + t + 1) * I), (t * N + n) * I);
    }
    this.lastX = X;
    if (h0) Hs.set(h0, 0); else Hs.fill(0, 0, NH);
    if (c0) Cs.set(c0, 0); else Cs.fill(0, 0, NH);
    const sites = this.sites;
    const training = this.training;
    const bIh = this.biasIh?.value.data ?? null, bHh = this.biasHh?.value.data ?? null;
    const Wih = this.weightIh.value.data, Whh = this.weightHh.value.data;

    // g_x = W_ih x_t (+ b_ih, or b for the plain one-bias layer) for all T·N rows in one GEMM
    linearForward(GX, X, Wih, sites ? null : bIh, T * N, I, G);
    // LN_x over all rows at once (it does not depend on the recurrence); BN_{x,t} per step below
    if (sites?.x.kind === "layer") sites.x.forward(w.GXn, GX, T * N, 0, 0, training);
    const gx = sites ? w.GXn : GX;
    const b = sites ? bIh : null; // the one bias of the normalised variants, added after the norms

    for (let t = 0; t < T; t++) {
      const hPrev = Hs.subarray(t * NH, (t + 1) * NH), cPrev = Cs.subarray(t * NH, (t + 1) * NH);
      const gh = GH.subarray(t * NG, (t + 1) * NG);
      // g_h = W_hh h_{t−1} (+ b_hh)
      linearForward(gh, hPrev, Whh, bHh, N, H, G);
      let ghn: FloatArray = gh;
      if (sites) {
        if (sites.x.kind === "batch") sites.x.forward(gx.subarray(t * NG, (t + 1) * NG), GX.subarray(t * NG, (t + 1) * NG), N, t, t, training);
        sites.h.forward(w.GHn, gh, N, t, t, training);
        ghn = w.GHn;
      }
      // a = g_x' + g_h' (+ b);  i, f, o = σ(a_·), g = tanh(a_g)
      const gt = gates.subarray(t * NG, (t + 1) * NG);
      const gxt = t * NG;
      for (let n = 0; n < N; n++) {
        const r = n * G;
        for (let j = 0; j < G; j++) {
          let a = gx[gxt + r + j]! + ghn[r + j]!;
          if (b) a += b[j]!;
          gt[r + j] = j >= 2 * H && j < 3 * H ? Math.tanh(a) : sigmoid(a);
        }
      }
      // c_t = f ⊙ c_{t−1} + i ⊙ g
      const c = Cs.subarray((t + 1) * NH, (t + 2) * NH), tc = TC.subarray(t * NH, (t + 1) * NH);
      for (let n = 0; n < N; n++) {
        const r = n * G, q = n * H;
        for (let k = 0; k < H; k++) c[q + k] = gt[r + H + k]! * cPrev[q + k]! + gt[r + k]! * gt[r + 2 * H + k]!;
      }
      // h_t = o ⊙ tanh(c_t), or o ⊙ tanh(N_c(c_t)) (N_c(c_t) into TC, then tanh in place)
      let src: FloatArray = c;
      if (sites) {
        sites.c.forward(tc, c, N, t, t, training);
        src = tc;
      }
      const h = Hs.subarray((t + 1) * NH, (t + 2) * NH);
      for (let n = 0; n < N; n++) {
        const r = n * G, q = n * H;
        for (let k = 0; k < H; k++) {
          const v = Math.tanh(src[q + k]!);
          tc[q + k] = v;
          h[q + k] = gt[r + 3 * H + k]! * v;
        }
      }
    }
    this.cached = true;

    const output = outs.output ?? cpu.zeros(outShape, this.dtype);
    if (this.batchFirst) {
      const od = output.data;
      for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) od.set(Hs.subarray((t + 1) * NH + n * H, (t + 1) * NH + (n + 1) * H), (n * T + t) * H);
    } else output.data.set(Hs.subarray(NH, (T + 1) * NH));
    const hT = outs.h ?? cpu.zeros([1, N, H], this.dtype), cT = outs.c ?? cpu.zeros([1, N, H], this.dtype);
    hT.data.set(Hs.subarray(T * NH, (T + 1) * NH));
    cT.data.set(Cs.subarray(T * NH, (T + 1) * NH));
    return { output, h: hT, c: cT };
  }

  /**
   * Backward through time for the last forward: dOutput = dLoss/dh_t for every step (the output's
   * shape), plus dLoss/dh_T and dLoss/dc_T when given (`state.h`, `state.c`). Returns dx and
   * dLoss/d(h_0, c_0); parameter gradients are ACCUMULATED (+=). Per step, backwards from t = T−1:
   *   dh  = dOut_t + dh_next                       (dh_next: the recurrence's, from step t+1)
   *   do  = dh ⊙ τ,   dτ = dh ⊙ o                   (τ = tanh(c_t) or tanh(N_c(c_t)))
   *   dc  = dc_next + N_c'(dτ ⊙ (1 − τ²))          (N_c' the norm's backward; identity for none)
   *   di = dc ⊙ g,  df = dc ⊙ c_{t−1},  dg = dc ⊙ i,  dc_next ← dc ⊙ f
   *   da = (di·i(1−i), df·f(1−f), dg·(1−g²), do·o(1−o))
   *   dg_h = N_h'(da),  dh_next ← dg_h · W_hh;  db += Σ da
   * then, over all steps at once: dW_hh += Σ_t dg_hᵀ h_{t−1};  dg_x = N_x'(da);  dW_ih += Σ_t dg_xᵀ x_t;  dx = dg_x · W_ih.
   */
  backwardSequence(dOutput: Tensor | null, state: LSTMState = {}, outs: LSTMGradientOutputs = {}): LSTMGradients {
    const ctx = "LSTM.backward";
    if (!this.cached || !this.work) throw new StateError("backward", "a preceding forward()", "no cached forward", "LSTM");
    const w = this.work;
    const { T, N } = w;
    const I = this.inputSize, H = this.hiddenSize, G = 4 * H, NH = N * H, NG = N * G;
    const outShape = this.batchFirst ? [N, T, H] : [T, N, H];
    if (dOutput) {
      this.checkDevice(dOutput, "dOutput", "backward");
      if (dOutput.dtype !== this.dtype) throw new ConfigError("dOutput.dtype", `${this.dtype} (the layer's dtype)`, dOutput.dtype, ctx);
      if (!sameShape(dOutput.shape, outShape)) throw new ShapeError("dOutput", `shape ${fmtShape(outShape)} (the output's)`, `shape ${fmtShape(dOutput.shape)}`, ctx);
    }
    const dhT = this.checkState(state.h, "dh", N, ctx), dcT = this.checkState(state.c, "dc", N, ctx);
    const xShape = this.batchFirst ? [N, T, I] : [T, N, I];
    if (outs.dx) this.checkOutput(outs.dx, { shape: xShape }, "backward");
    if (outs.dh0) this.checkOutput(outs.dh0, { shape: [1, N, H] }, "backward");
    if (outs.dc0) this.checkOutput(outs.dc0, { shape: [1, N, H] }, "backward");

    // dOutput null: no gradient reaches the outputs but through (h_T, c_T)
    let dOut: FloatArray | null = dOutput ? dOutput.data : null;
    if (dOutput && this.batchFirst) {
      dOut = w.dOut;
      const src = dOutput.data;
      for (let n = 0; n < N; n++) for (let t = 0; t < T; t++) dOut!.set(src.subarray((n * T + t) * H, (n * T + t + 1) * H), (t * N + n) * H);
    }
    const { gates, Hs, Cs, TC, GX, GH, dA, dGH, dGX, dh, dc, dchat, dcn } = w;
    const sites = this.sites;
    const Whh = this.weightHh.value.data;
    if (dhT) dh.set(dhT); else dh.fill(0);
    if (dcT) dc.set(dcT); else dc.fill(0);

    for (let t = T - 1; t >= 0; t--) {
      const gt = gates.subarray(t * NG, (t + 1) * NG), tc = TC.subarray(t * NH, (t + 1) * NH);
      const cPrev = Cs.subarray(t * NH, (t + 1) * NH);
      const da = dA.subarray(t * NG, (t + 1) * NG);
      const dot = t * NH;
      // dh += dOut_t; do (into da's o block); dτ·(1 − τ²)
      for (let n = 0; n < N; n++) {
        const r = n * G, q = n * H;
        for (let k = 0; k < H; k++) {
          const d = dOut ? dh[q + k]! + dOut[dot + q + k]! : dh[q + k]!;
          const o = gt[r + 3 * H + k]!, v = tc[q + k]!;
          da[r + 3 * H + k] = d * v * o * (1 - o);
          dchat[q + k] = d * o * (1 - v * v);
        }
      }
      // dc += N_c'(dĉ)
      if (sites) {
        sites.c.backward(dcn, dchat, Cs.subarray((t + 1) * NH, (t + 2) * NH), N, t, t);
        for (let e = 0; e < NH; e++) dc[e] = dc[e]! + dcn[e]!;
      } else for (let e = 0; e < NH; e++) dc[e] = dc[e]! + dchat[e]!;
      for (let n = 0; n < N; n++) {
        const r = n * G, q = n * H;
        for (let k = 0; k < H; k++) {
          const i = gt[r + k]!, f = gt[r + H + k]!, g = gt[r + 2 * H + k]!;
          const d = dc[q + k]!;
          da[r + k] = d * g * i * (1 - i);
          da[r + H + k] = d * cPrev[q + k]! * f * (1 - f);
          da[r + 2 * H + k] = d * i * (1 - g * g);
          dc[q + k] = d * f;
        }
      }
      // dg_h = N_h'(da); dh_{t−1} = dg_h · W_hh
      const dgh = dGH.subarray(t * NG, (t + 1) * NG);
      if (sites) sites.h.backward(dgh, da, GH.subarray(t * NG, (t + 1) * NG), N, t, t);
      linearBackward(dh, null, null, dgh, Hs.subarray(t * NH, (t + 1) * NH), Whh, N, H, G, false);
    }

    // dW_hh += Σ_t dg_hᵀ h_{t−1} (+ db_hh), one GEMM over the T·N rows
    linearBackward(null, this.weightHh.grad.data, this.biasHh?.grad.data ?? null, dGH, Hs.subarray(0, T * NH), Whh, T * N, H, G, true);
    // dg_x = N_x'(da)
    if (sites) {
      if (sites.x.kind === "layer") sites.x.backward(dGX, dA, GX, T * N, 0, 0);
      else for (let t = 0; t < T; t++) sites.x.backward(dGX.subarray(t * NG, (t + 1) * NG), dA.subarray(t * NG, (t + 1) * NG), GX.subarray(t * NG, (t + 1) * NG), N, t, t);
      // the one bias: db += Σ da
      const db = this.biasIh?.grad.data;
      if (db) {
        for (let j = 0; j < G; j++) {
          let s = db[j]!;
          for (let r = 0; r < T * N; r++) s += dA[r * G + j]!;
          db[j] = s;
        }
      }
    }
    // dW_ih += Σ_t dg_xᵀ x_t (+ db_ih, or db of the plain one-bias layer);  dx = dg_x · W_ih
    const wantDx = outs.dx !== null;
    // dx time-major: straight into the caller's tensor when it has that layout
    const dxT = !wantDx ? null : !this.batchFirst ? (outs.dx ?? cpu.zeros(xShape, this.dtype)) : (w.dxT ??= cpu.zeros([T, N, I], this.dtype));
    dxT?.data.fill(0);
    linearBackward(dxT?.data ?? null, this.weightIh.grad.data, sites ? null : (this.biasIh?.grad.data ?? null), dGX, this.lastX!, this.weightIh.value.data, T * N, I, G, true);
    let dx = dxT;
    if (dxT && this.batchFirst) {
      dx = outs.dx ?? cpu.zeros(xShape, this.dtype);
      const s = dxT.data, d = dx.data;
      for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) d.set(s.subarray((t * N + n) * I, (t * N + n + 1) * I), (n * T + t) * I);
    }
    const dh0 = outs.dh0 ?? cpu.zeros([1, N, H], this.dtype), dc0 = outs.dc0 ?? cpu.zeros([1, N, H], this.dtype);
    dh0.data.set(dh);
    dc0.data.set(dc);
    return { dx, dh0, dc0 };
  }
}
