/** 2-D convolution layer over NCHW input, as torch.nn.Conv2d (groups=1, dilation=1, zero padding). */
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import { Conv2dGeometry, Workspace, conv2dGeometry } from "../kernels/contract/ops.js";
import { DType, Tensor } from "../tensor.js";
import { initUniform } from "./linear.js";
import { checkDType, checkDTypeOf, checkGradShape, checkPositiveInt } from "./validate.js";
import { Module, Parameter, makeParameter, requireCache, writeGrads } from "./module.js";

export interface Conv2dOptions {
  /** Channels of the input (axis 1). Required, a positive integer. */
  inChannels: number;
  /** Channels of the output (number of filters). Required, a positive integer. */
  outChannels: number;
  /** Kernel height and width: an int for both, or [kh, kw]. Required. */
  kernelSize: number | readonly [number, number];
  /** Step between receptive fields: int or [sh, sw], positive. Default 1. */
  stride?: number | readonly [number, number];
  /** Zeros added on each side: int or [ph, pw], ≥ 0. Default 0. */
  padding?: number | readonly [number, number];
  /** Whether to learn a per-channel bias. Default true. */
  bias?: boolean;
  /** Storage type of parameters, inputs and outputs. Default "float32". */
  dtype?: DType;
  /** Uniform [0, 1) source for the initialisation. Default Math.random. */
  rng?: () => number;
}

/** An int or an [a, b] pair of ints ≥ min, as a pair. */
export function checkPair(value: unknown, name: string, min: number, ctx: string): [number, number] {
  const pair = typeof value === "number" ? [value, value] : value;
  if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((v) => typeof v === "number" && Number.isInteger(v) && v >= min)) {
    throw new ConfigError(name, `an integer ≥ ${min} or a pair of them`, JSON.stringify(value), ctx);
  }
  return [pair[0], pair[1]];
}

/** Checks a conv input (dtype, rank 4, channel count) and returns its geometry. */
export function convInputGeometry(
  x: Tensor, dtype: DType, inChannels: number, outChannels: number,
  kernel: readonly [number, number], stride: readonly [number, number], padding: readonly [number, number], ctx: string,
): Conv2dGeometry {
  checkDTypeOf(x, dtype, ctx);
  if (x.rank !== 4) throw new ShapeError("x", "rank 4 [N, C, H, W]", `rank ${x.rank} (shape ${fmtShape(x.shape)})`, ctx);
  if (x.shape[1] !== inChannels) throw new ShapeError("x", `${inChannels} channels (axis 1)`, `shape ${fmtShape(x.shape)}`, ctx);
  return conv2dGeometry(x.shape, outChannels, kernel, stride, padding);
}

/** The geometry options Conv2d and CosineConv2d share, validated, with their defaults (stride 1, padding 0). */
export function checkConvGeometryOptions(options: Omit<Conv2dOptions, "bias">, ctx: string) {
  return {
    inChannels: checkPositiveInt(options.inChannels, "inChannels", ctx),
    outChannels: checkPositiveInt(options.outChannels, "outChannels", ctx),
    kernelSize: checkPair(options.kernelSize, "kernelSize", 1, ctx),
    stride: checkPair(options.stride ?? 1, "stride", 1, ctx),
    padding: checkPair(options.padding ?? 0, "padding", 0, ctx),
  };
}

/**
 * y[n,o,oh,ow] = b[o] + Σ_{c,i,j} W[o,c,i,j]·x[n, c, oh·sh − ph + i, ow·sw − pw + j].
 * Parameters: weight [out, in, kh, kw], bias [out]; both U(−1/√fan_in, 1/√fan_in), fan_in = in·kh·kw.
 * forward keeps a reference to x for backward: do not modify x in between.
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private workspace: Workspace | null = null;
  private cache: { x: Tensor; g: Conv2dGeometry; yShape: number[] } | null = null;

  constructor(options: Conv2dOptions) {
    const ctx = "Conv2d";
    super(checkDType(options.dtype ?? "float32", ctx));
    ({ inChannels: this.inChannels, outChannels: this.outChannels, kernelSize: this.kernelSize, stride: this.stride, padding: this.padding } =
      checkConvGeometryOptions(options, ctx));
    const rng = options.rng ?? Math.random;
    const [kh, kw] = this.kernelSize;
    const bound = 1 / Math.sqrt(this.inChannels * kh * kw);
    this.weight = makeParameter([this.outChannels, this.inChannels, kh, kw], this.dtype, 0);
    initUniform(this.weight.value, bound, rng);
    this.bias = (options.bias ?? true) ? makeParameter([this.outChannels], this.dtype, 0) : null;
    if (this.bias) initUniform(this.bias.value, bound, rng);
  }

  namedParameters(): Record<string, Parameter> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
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

  /** [N, outChannels, Ho, Wo] for an input of shape [N, inChannels, H, W]. */
  outputShape(xShape: readonly number[]): number[] {
    const g = conv2dGeometry(xShape, this.outChannels, this.kernelSize, this.stride, this.padding);
    return [g.N, g.O, g.Ho, g.Wo];
  }

  /** y, written into `out` when given (shape outputShape(x.shape), the layer's dtype and device). */
  forward(x: Tensor, out?: Tensor): Tensor {
    this.checkDevice(x, "x", "forward");
    const g = convInputGeometry(x, this.dtype, this.inChannels, this.outChannels, this.kernelSize, this.stride, this.padding, "Conv2d.forward");
    const yShape = [g.N, g.O, g.Ho, g.Wo];
    let y: Tensor;
    if (out) {
      this.checkOutput(out, { shape: yShape }, "forward");
      y = out;
    } else y = this.device.zeros(yShape, this.dtype);
    this.workspace ??= this.device.ops.createWorkspace();
    this.device.ops.conv2d({ y, x, weight: this.weight.value, bias: this.bias?.value ?? null, geometry: g, workspace: this.workspace });
    this.cache = { x, g, yShape };
    return y;
  }

  /** Returns dx (written into `out` when given: x's shape); accumulates (+=) into weight.grad and bias.grad. */
  backward(dy: Tensor, out?: Tensor): Tensor {
    const c = requireCache(this.cache, "Conv2d");
    this.checkDevice(dy, "dy", "backward");
    checkGradShape(dy, c.yShape, this.dtype, "Conv2d.backward");
    if (out) this.checkOutput(out, c.x, "backward");
    const dx = out ?? this.device.zeros(c.x.shape, this.dtype);
    this.gradients(dx, dy, c);
    return dx;
  }

  /**
   * backward without dx: accumulates (+=) into weight.grad and bias.grad only. For a network's first
   * layer, whose input (the data) needs no gradient.
   */
  backwardParams(dy: Tensor): void {
    const c = requireCache(this.cache, "Conv2d");
    this.checkDevice(dy, "dy", "backwardParams");
    checkGradShape(dy, c.yShape, this.dtype, "Conv2d.backwardParams");
    this.gradients(null, dy, c);
  }

  private gradients(dx: Tensor | null, dy: Tensor, c: { x: Tensor; g: Conv2dGeometry }): void {
    this.workspace ??= this.device.ops.createWorkspace();
    const workspace = this.workspace;
    // += into the gradients, or = where zeroGrad left them marked zero (writeGrads)
    writeGrads([this.weight, this.bias], ([dweight, dbias], accumulate) => this.device.ops.conv2dBackward({
      dx, dweight: dweight!, dbias: dbias ?? null, dy, x: c.x, weight: this.weight.value, geometry: c.g, workspace, accumulate,
    }));
  }
}
