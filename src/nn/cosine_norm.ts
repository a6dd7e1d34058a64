/**
 * Cosine normalisation (Luo et al. 2018): a layer's pre-activation is the cosine between its weight
 * vector and its input vector, y = ŵ · x̂, bounded in [−1, 1] and invariant to the scale of w and x.
 * No bias. Normalisation is torch.nn.functional.normalize: u = x / max(‖x‖, eps).
 *
 * Zero vectors: with eps = 0 (CosineLinear's default, as the reference `x / ‖x‖`) a zero input row
 * or weight row would give 0/0; forward throws a ConfigError naming `x` or `weight` instead. With
 * eps > 0 (CosineConv2d's default 1e-12) it is defined as in PyTorch: u = x / eps and, below eps,
 * dx = du / eps (the clamp passes no gradient to the norm) — large, but finite.
 */
import type { Conv2dOptions } from "./conv2d.js";
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import { Conv2dGeometry, col2im, gemmDyColT, gemmWCol, gemmWTDy, im2col } from "../kernels/ts/conv2d.js";
import { linearBackward, linearForward } from "../kernels/ts/linear.js";
import type { FloatArray } from "../tensor.js";
import { DType, Tensor, allocate } from "../tensor.js";
import { checkConvGeometryOptions, convInputGeometry } from "./conv2d.js";
import { initUniform } from "./linear.js";
import { checkDType, checkDTypeOf, checkGradShape, checkPositiveInt } from "./validate.js";
import { Module, Parameter, makeParameter, requireCache } from "./module.js";

/**
 * F.normalize over `count` vectors of length `len`; element e of vector r is at r·vs + e·es
 * (rows of [R, S]: vs = S, es = 1; columns of [K, P]: vs = 1, es = P).
 *   n_r = ‖x_r‖₂,   u_r = x_r / max(n_r, eps).     u may alias x.
 */
export function normalizeForward(
  u: FloatArray, norms: Float64Array, x: FloatArray, count: number, len: number, vs: number, es: number, eps: number,
): FloatArray {
  for (let r = 0; r < count; r++) {
    const b = r * vs;
    let s = 0;
    for (let e = 0; e < len; e++) s += x[b + e * es] * x[b + e * es];
    const n = Math.sqrt(s);
    norms[r] = n;
    const d = n > eps ? n : eps;
    for (let e = 0; e < len; e++) u[b + e * es] = x[b + e * es] / d;
  }
  return u;
}

/**
 * The adjoint of normalizeForward, given u and the norms it stored:
 *   n ≥ eps:  dx = (du − u (u·du)) / n     (remove the component along u, scale by 1/n)
 *   n < eps:  dx = du / eps                 (torch.clamp_min passes no gradient to n there)
 * dx may alias du. With `accumulate` dx += instead of =.
 */
export function normalizeBackward(
  dx: FloatArray, du: FloatArray, u: FloatArray, norms: Float64Array,
  count: number, len: number, vs: number, es: number, eps: number, accumulate: boolean,
): FloatArray {
  for (let r = 0; r < count; r++) {
    const b = r * vs;
    const n = norms[r];
    let dot = 0;
    const project = n >= eps && n > 0;
    if (project) for (let e = 0; e < len; e++) dot += u[b + e * es] * du[b + e * es];
    const d = project ? n : eps;
    for (let e = 0; e < len; e++) {
      const i = b + e * es;
      const t = (du[i] - dot * u[i]) / d;
      dx[i] = accumulate ? dx[i] + t : t;
    }
  }
  return dx;
}

function checkEps(eps: unknown, ctx: string): number {
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new ConfigError("eps", "a finite number ≥ 0", String(eps), ctx);
  return eps;
}

/** With eps = 0 a zero vector has no direction: refuse it by name rather than return NaN. */
function checkNonZero(norms: Float64Array, count: number, eps: number, name: string, what: string, ctx: string): void {
  if (eps > 0) return;
  for (let r = 0; r < count; r++) {
    if (norms[r] === 0) throw new ConfigError(name, `non-zero ${what}s (eps is 0)`, `${what} ${r} is all zeros`, ctx);
  }
}

export interface CosineLinearOptions {
  /** Size of the last axis of the input. Required. */
  inFeatures: number;
  /** Number of weight rows (outputs). Required. */
  outFeatures: number;
  /** F.normalize's eps for inputs and weight rows. Default 0 (exact x / ‖x‖; zero rows are errors). */
  eps?: number;
  /** Default "float32". */
  dtype?: DType;
  /** Uniform [0, 1) source for the U(−1/√in, 1/√in) weight init. Default Math.random. */
  rng?: () => number;
}

/**
 * y[n,o] = x̂_n · ŵ_o with x̂ = normalize(x, last axis), ŵ = normalize(W, dim 1): y = x̂ Ŵᵀ.
 * x has any rank ≥ 1 with last axis inFeatures. Parameter: weight [out, in] (state dict key `weight`).
 */
export class CosineLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly eps: number;
  readonly weight: Parameter;
  private cache: { xShape: readonly number[]; yShape: number[]; rows: number; xhat: Float64Array; xn: Float64Array; what: Float64Array; wn: Float64Array } | null = null;

  constructor(options: CosineLinearOptions) {
    const ctx = "CosineLinear";
    super(checkDType(options.dtype ?? "float32", ctx));
    this.inFeatures = checkPositiveInt(options.inFeatures, "inFeatures", ctx);
    this.outFeatures = checkPositiveInt(options.outFeatures, "outFeatures", ctx);
    this.eps = checkEps(options.eps ?? 0, ctx);
    this.weight = makeParameter([this.outFeatures, this.inFeatures], this.dtype, 0);
    initUniform(this.weight.value, 1 / Math.sqrt(this.inFeatures), options.rng ?? Math.random);
  }

  namedParameters(): Record<string, Parameter> {
    return { weight: this.weight };
  }

  forward(x: Tensor): Tensor {
    const ctx = "CosineLinear.forward";
    const I = this.inFeatures, O = this.outFeatures;
    checkDTypeOf(x, this.dtype, ctx);
    if (x.rank < 1 || x.shape[x.rank - 1] !== I) {
      throw new ShapeError("x", `rank ≥ 1 with last axis ${I} (inFeatures)`, `shape ${fmtShape(x.shape)}`, ctx);
    }
    this.cache = null;
    const rows = x.size / I;
    const xhat = new Float64Array(rows * I), xn = new Float64Array(rows);
    const what = new Float64Array(O * I), wn = new Float64Array(O);
    normalizeForward(xhat, xn, x.data, rows, I, I, 1, this.eps);
    checkNonZero(xn, rows, this.eps, "x", "row", ctx);
    normalizeForward(what, wn, this.weight.value.data, O, I, I, 1, this.eps);
    checkNonZero(wn, O, this.eps, "weight", "row", ctx);
    const yShape = [...x.shape.slice(0, -1), O];
    const y = allocate(this.dtype, rows * O);
    linearForward(y, xhat, what, null, rows, I, O);
    this.cache = { xShape: x.shape, yShape, rows, xhat, xn, what, wn };
    return new Tensor(y, yShape);
  }

  /** dx̂ = dy Ŵ, dŴ = dyᵀ x̂, then each through normalizeBackward. Returns dx; weight.grad +=. */
  backward(dy: Tensor): Tensor {
    const c = requireCache(this.cache, "CosineLinear");
    checkGradShape(dy, c.yShape, this.dtype, "CosineLinear.backward");
    const I = this.inFeatures, O = this.outFeatures;
    const dxhat = new Float64Array(c.rows * I), dwhat = new Float64Array(O * I);
    linearBackward(dxhat, dwhat, null, dy.data, c.xhat, c.what, c.rows, I, O, false);
    const dx = allocate(this.dtype, c.rows * I);
    normalizeBackward(dx, dxhat, c.xhat, c.xn, c.rows, I, I, 1, this.eps, false);
    normalizeBackward(this.weight.grad.data, dwhat, c.what, c.wn, O, I, I, 1, this.eps, true);
    return new Tensor(dx, c.xShape);
  }
}

/** Conv2d's options without the bias (a cosine has none), plus F.normalize's eps. */
export interface CosineConv2dOptions extends Omit<Conv2dOptions, "bias"> {
  /** F.normalize's eps for receptive fields and filters. Default 1e-12 (PyTorch's). */
  eps?: number;
}

/**
 * y[n,o,p] = cos(w_o, patch_p(x_n)) = ŵ_o · ĉ_p, where c_p is column p of im2col(x_n) (the receptive
 * field of output position p, zero padding included) and w_o is filter o flattened.
 * Parameter: weight [out, in, kh, kw] (state dict key `weight`).
 */
export class CosineConv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly eps: number;
  readonly weight: Parameter;
  private scratch = new Float64Array(0);
  private cache: { x: Tensor; g: Conv2dGeometry; yShape: number[]; what: Float64Array; wn: Float64Array } | null = null;

  constructor(options: CosineConv2dOptions) {
    const ctx = "CosineConv2d";
    super(checkDType(options.dtype ?? "float32", ctx));
    ({ inChannels: this.inChannels, outChannels: this.outChannels, kernelSize: this.kernelSize, stride: this.stride, padding: this.padding } =
      checkConvGeometryOptions(options, ctx));
    this.eps = checkEps(options.eps ?? 1e-12, ctx);
    const [kh, kw] = this.kernelSize;
    this.weight = makeParameter([this.outChannels, this.inChannels, kh, kw], this.dtype, 0);
    initUniform(this.weight.value, 1 / Math.sqrt(this.inChannels * kh * kw), options.rng ?? Math.random);
  }

  namedParameters(): Record<string, Parameter> {
    return { weight: this.weight };
  }

  /** Scratch: ĉ [K,P], dĉ [K,P], column norms [P], dŴ [O,K]. */
  private buffers(g: Conv2dGeometry) {
    const { K, P, O } = g;
    const need = 2 * K * P + P + O * K;
    if (this.scratch.length < need) this.scratch = new Float64Array(need);
    const s = this.scratch;
    let at = 0;
    const take = (n: number) => s.subarray(at, (at += n));
    return { col: take(K * P), dcol: take(K * P), cn: take(P), dwhat: take(O * K) };
  }

  /** ĉ = columns of im2col(x_n), each normalised; their norms into cn. */
  private patches(col: Float64Array, cn: Float64Array, x: Tensor, n: number, g: Conv2dGeometry, ctx: string): void {
    im2col(col, x.data, n * g.C * g.H * g.W, g);
    normalizeForward(col, cn, col, g.P, g.K, 1, g.P, this.eps);
    checkNonZero(cn, g.P, this.eps, "x", "receptive field", ctx);
  }

  forward(x: Tensor): Tensor {
    const ctx = "CosineConv2d.forward";
    const g = convInputGeometry(x, this.dtype, this.inChannels, this.outChannels, this.kernelSize, this.stride, this.padding, ctx);
    this.cache = null;
    const { O, K, P } = g;
    const what = new Float64Array(O * K), wn = new Float64Array(O);
    normalizeForward(what, wn, this.weight.value.data, O, K, K, 1, this.eps);
    checkNonZero(wn, O, this.eps, "weight", "filter", ctx);
    const b = this.buffers(g);
    const y = allocate(this.dtype, g.N * O * P);
    for (let n = 0; n < g.N; n++) {
      this.patches(b.col, b.cn, x, n, g, ctx);
      gemmWCol(y, n * O * P, what, null, b.col, O, K, P);
    }
    const yShape = [g.N, O, g.Ho, g.Wo];
    this.cache = { x, g, yShape, what, wn };
    return new Tensor(y, yShape);
  }

  /** Per image: dŴ += dy ĉᵀ, dĉ = Ŵᵀ dy → dc (normalizeBackward per column) → dx = col2im(dc). Returns dx; weight.grad +=. */
  backward(dy: Tensor): Tensor {
    const c = requireCache(this.cache, "CosineConv2d");
    checkGradShape(dy, c.yShape, this.dtype, "CosineConv2d.backward");
    const g = c.g;
    const { O, K, P } = g;
    const b = this.buffers(g);
    b.dwhat.fill(0);
    const dx = allocate(this.dtype, c.x.size);
    for (let n = 0; n < g.N; n++) {
      this.patches(b.col, b.cn, c.x, n, g, "CosineConv2d.backward");
      gemmDyColT(b.dwhat, dy.data, n * O * P, b.col, O, K, P);
      gemmWTDy(b.dcol, c.what, dy.data, n * O * P, O, K, P);
      normalizeBackward(b.dcol, b.dcol, b.col, b.cn, P, K, 1, P, this.eps, false);
      col2im(dx, n * g.C * g.H * g.W, b.dcol, g, false);
    }
    normalizeBackward(this.weight.grad.data, b.dwhat, c.what, c.wn, O, K, K, 1, this.eps, true);
    return new Tensor(dx, c.x.shape);
  }
}
