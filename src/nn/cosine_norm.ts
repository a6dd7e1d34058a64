/**
 * Cosine normalisation (Luo et al. 2018): a layer's pre-activation is the cosine between its weight
 * vector and its input vector, y = ŵ · x̂, bounded in [−1, 1] and invariant to the scale of w and x.
 * No bias. Normalisation is torch.nn.functional.normalize: u = x / max(‖x‖, eps).
 *
 * Zero vectors: with eps = 0 (CosineLinear's default, as the reference `x / ‖x‖`) a zero input row
 * or weight row would give 0/0; forward throws a ConfigError naming `x` or `weight` instead. With
 * eps > 0 (CosineConv2d's default 1e-12) it is defined as in PyTorch: u = x / eps and, below eps,
 * dx = du / eps (the clamp passes no gradient to the norm) — large, but finite.
 *
 * Devices: both layers compute through the device's ops (src/kernels/contract/ops.ts: `normalize`,
 * `cosineConv2d` and their adjoints, with `linear` for CosineLinear's product), so
 * `await layer.to(webgpuDevice)` moves them. On the host the normalised values and norms are kept in
 * float64 whatever the layer's dtype; on WebGPU in float32. The zero-vector check of eps = 0 reads
 * the norms, which a GPU would have to read back: there it is not made, and a zero input row,
 * weight row or receptive field gives 0/0 — NaN, as PyTorch's x / ‖x‖ (WGSL leaves the value of
 * 0/0 to the implementation; IEEE hardware and SwiftShader give NaN) — in its outputs and gradients.
 */
import type { Conv2dOptions } from "./conv2d.js";
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import type { Conv2dGeometry, Workspace } from "../kernels/contract/ops.js";
import type { DType, FloatArray, Tensor } from "../tensor.js";
import { checkConvGeometryOptions, convInputGeometry } from "./conv2d.js";
import { initUniform } from "./linear.js";
import { checkDType, checkDTypeOf, checkGradShape, checkPositiveInt } from "./validate.js";
import { Module, Parameter, makeParameter, requireCache } from "./module.js";

function checkEps(eps: unknown, ctx: string): number {
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new ConfigError("eps", "a finite number ≥ 0", String(eps), ctx);
  return eps;
}

/**
 * With eps = 0 a zero vector has no direction: refuse it by name rather than return NaN. Only where
 * the norms can be read without a transfer (the host); a GPU's are not read back.
 */
function checkNonZero(norms: Tensor, count: number, eps: number, name: string, what: string, ctx: string): void {
  if (eps > 0 || !norms.isHost) return;
  const n: FloatArray = norms.data;
  for (let r = 0; r < count; r++) {
    if (n[r] === 0) throw new ConfigError(name, `non-zero ${what}s (eps is 0)`, `${what} ${r} is all zeros`, ctx);
  }
}

/** The dtype of the normalised values and norms: float64 where the device holds it (the host), else the layer's. */
const innerDType = (device: Device, dtype: DType): DType => (device.dtypes.includes("float64") ? "float64" : dtype);

export interface CosineLinearOptions {
  /** Size of the last axis of the input. Required. */
  inFeatures: number;
  /** Number of weight rows (outputs). Required. */
  outFeatures: number;
  /** F.normalize's eps for inputs and weight rows. Default 0 (exact x / ‖x‖; zero rows are errors on the host). */
  eps?: number;
  /** Default "float32". */
  dtype?: DType;
  /** Uniform [0, 1) source for the U(−1/√in, 1/√in) weight init. Default Math.random. */
  rng?: () => number;
}

/**
 * y[n,o] = x̂_n · ŵ_o with x̂ = normalize(x, last axis), ŵ = normalize(W, dim 1): y = x̂ Ŵᵀ.
 * x has any rank ≥ 1 with last axis inFeatures. Parameter: weight [out, in] (state dict key `weight`).
 * Runs on every device (see the module comment for a zero row with eps 0 on a GPU).
 */
export class CosineLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly eps: number;
  readonly weight: Parameter;
  private cache: { xShape: readonly number[]; yShape: number[]; rows: number; xhat: Tensor; xn: Tensor; what: Tensor; wn: Tensor } | null = null;

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

  /** Runs on every device (the device's ops compute it). */
  protected override deviceProblem(_device: Device): string | null {
    return null;
  }
  protected override movedTo(): void {
    this.cache = null;
  }

  forward(x: Tensor): Tensor {
    const ctx = "CosineLinear.forward";
    const I = this.inFeatures, O = this.outFeatures;
    this.checkDevice(x, "x", "forward");
    checkDTypeOf(x, this.dtype, ctx);
    if (x.rank < 1 || x.shape[x.rank - 1] !== I) {
      throw new ShapeError("x", `rank ≥ 1 with last axis ${I} (inFeatures)`, `shape ${fmtShape(x.shape)}`, ctx);
    }
    this.cache = null;
    const dev = this.device, ops = dev.ops, inner = innerDType(dev, this.dtype);
    const rows = x.size / I;
    const xhat = dev.zeros([rows, I], inner), xn = dev.zeros([rows], inner);
    const what = dev.zeros([O, I], inner), wn = dev.zeros([O], inner);
    ops.normalize({ u: xhat, norms: xn, x, count: rows, len: I, vs: I, es: 1, eps: this.eps });
    checkNonZero(xn, rows, this.eps, "x", "row", ctx);
    ops.normalize({ u: what, norms: wn, x: this.weight.value, count: O, len: I, vs: I, es: 1, eps: this.eps });
    checkNonZero(wn, O, this.eps, "weight", "row", ctx);
    const yShape = [...x.shape.slice(0, -1), O];
    const y = dev.zeros(yShape, this.dtype);
    ops.linear({ y, x: xhat, weight: what, bias: null, rows, inF: I, outF: O });
    this.cache = { xShape: x.shape, yShape, rows, xhat, xn, what, wn };
    return y;
  }

  /** dx̂ = dy Ŵ, dŴ = dyᵀ x̂, then each through the normalize adjoint. Returns dx; weight.grad +=. */
  backward(dy: Tensor): Tensor {
    const c = requireCache(this.cache, "CosineLinear");
    this.checkDevice(dy, "dy", "backward");
    checkGradShape(dy, c.yShape, this.dtype, "CosineLinear.backward");
    const dx = this.device.zeros(c.xShape, this.dtype);
    this.gradients(dx, dy, c);
    return dx;
  }

  /** backward without dx (a network's first layer): accumulates (+=) into weight.grad only. */
  backwardParams(dy: Tensor): void {
    const c = requireCache(this.cache, "CosineLinear");
    this.checkDevice(dy, "dy", "backwardParams");
    checkGradShape(dy, c.yShape, this.dtype, "CosineLinear.backwardParams");
    this.gradients(null, dy, c);
  }

  private gradients(dx: Tensor | null, dy: Tensor, c: NonNullable<CosineLinear["cache"]>): void {
    const I = this.inFeatures, O = this.outFeatures, eps = this.eps;
    const dev = this.device, ops = dev.ops, inner = innerDType(dev, this.dtype);
    const dxhat = dx ? dev.zeros([c.rows, I], inner) : null, dwhat = dev.zeros([O, I], inner);
    ops.linearBackward({ dx: dxhat, dweight: dwhat, dbias: null, dy, x: c.xhat, weight: c.what, rows: c.rows, inF: I, outF: O });
    if (dx && dxhat) ops.normalizeBackward({ dx, du: dxhat, u: c.xhat, norms: c.xn, count: c.rows, len: I, vs: I, es: 1, eps, accumulate: false });
    ops.normalizeBackward({ dx: this.weight.grad, du: dwhat, u: c.what, norms: c.wn, count: O, len: I, vs: I, es: 1, eps, accumulate: true });
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
 * Parameter: weight [out, in, kh, kw] (state dict key `weight`). Runs on every device; forward keeps
 * references to x and to its output y for backward: do not modify them in between.
 */
export class CosineConv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly eps: number;
  readonly weight: Parameter;
  private workspace: Workspace | null = null;
  private cache: { x: Tensor; y: Tensor; g: Conv2dGeometry; yShape: number[]; norms: Tensor; what: Tensor; wn: Tensor } | null = null;

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

  /** Runs on every device (the device's ops compute it). */
  protected override deviceProblem(_device: Device): string | null {
    return null;
  }
  protected override movedTo(): void {
    this.workspace?.destroy();
    this.workspace = null;
    this.cache = null;
  }

  forward(x: Tensor): Tensor {
    const ctx = "CosineConv2d.forward";
    this.checkDevice(x, "x", "forward");
    const g = convInputGeometry(x, this.dtype, this.inChannels, this.outChannels, this.kernelSize, this.stride, this.padding, ctx);
    this.cache = null;
    const { O, K } = g;
    const dev = this.device, ops = dev.ops, inner = innerDType(dev, this.dtype);
    const what = dev.zeros(this.weight.value.shape, inner), wn = dev.zeros([O], inner);
    ops.normalize({ u: what, norms: wn, x: this.weight.value, count: O, len: K, vs: K, es: 1, eps: this.eps });
    checkNonZero(wn, O, this.eps, "weight", "filter", ctx);
    const yShape = [g.N, O, g.Ho, g.Wo];
    const y = dev.zeros(yShape, this.dtype), norms = dev.zeros([g.N, g.Ho, g.Wo], inner);
    this.workspace ??= ops.createWorkspace();
    ops.cosineConv2d({ y, norms, x, weight: what, eps: this.eps, geometry: g, workspace: this.workspace });
    checkNonZero(norms, g.N * g.P, this.eps, "x", "receptive field", ctx);
    this.cache = { x, y, g, yShape, norms, what, wn };
    return y;
  }

  /** dŴ += Σ dy ĉᵀ, dx through each field's normalize adjoint, then Ŵ → W through the filters' adjoint. Returns dx; weight.grad +=. */
  backward(dy: Tensor): Tensor {
    const c = requireCache(this.cache, "CosineConv2d");
    this.checkDevice(dy, "dy", "backward");
    checkGradShape(dy, c.yShape, this.dtype, "CosineConv2d.backward");
    const dx = this.device.zeros(c.x.shape, this.dtype);
    this.gradients(dx, dy, c);
    return dx;
  }

  /** backward without dx (a network's first layer): accumulates (+=) into weight.grad only. */
  backwardParams(dy: Tensor): void {
    const c = requireCache(this.cache, "CosineConv2d");
    this.checkDevice(dy, "dy", "backwardParams");
    checkGradShape(dy, c.yShape, this.dtype, "CosineConv2d.backwardParams");
    this.gradients(null, dy, c);
  }

  private gradients(dx: Tensor | null, dy: Tensor, c: NonNullable<CosineConv2d["cache"]>): void {
    const { O, K } = c.g;
    const dev = this.device, ops = dev.ops;
    const dwhat = dev.zeros(c.what.shape, c.what.dtype);
    this.workspace ??= ops.createWorkspace();
    ops.cosineConv2dBackward({ dx, dweight: dwhat, dy, y: c.y, norms: c.norms, x: c.x, weight: c.what, eps: this.eps, geometry: c.g, workspace: this.workspace });
    ops.normalizeBackward({ dx: this.weight.grad, du: dwhat, u: c.what, norms: c.wn, count: O, len: K, vs: K, es: 1, eps: this.eps, accumulate: true });
  }
}
