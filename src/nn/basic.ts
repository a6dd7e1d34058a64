/**
 * The parameter-free layers of the training stack — ReLU, Flatten, MaxPool2d, AvgPool2d,
 * GlobalAvgPool2d — and Sequential, which chains modules. All follow the Module contract
 * (forward caches what backward needs; backward returns dx).
 *
 * Buffer reuse: to keep training steps free of large allocations, these layers write their outputs
 * (y in forward, dx in backward) into buffers they own and reuse on the next call with the same
 * size. A returned tensor stays valid until the same layer's next forward (for y) or backward (for dx);
 * clone it to keep it longer.
 */
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import { Module, Parameter, requireCache } from "./module.js";
import { checkDType } from "./validate.js";
import type { Device } from "../kernels/contract/device.js";
import { Indices, Pool2dGeometry, pool2dGeometry } from "../kernels/contract/ops.js";
import { DType, Tensor, sameShape, sizeOf } from "../tensor.js";

/**
 * An output tensor reused while the requested size and the device stay the same (a fresh array per
 * call costs a first touch of every page). `get` returns a tensor of the requested shape over it.
 */
export class ReusedBuffer {
  private t: Tensor | null = null;
  private on: Device | null = null;
  constructor(private readonly dtype: DType) {}
  get(device: Device, shape: readonly number[]): Tensor {
    const n = sizeOf(shape);
    if (this.t === null || this.on !== device || this.t.size !== n) {
      this.t = device.zeros([n], this.dtype);
      this.on = device;
    }
    return this.t.reshape(shape);
  }
}

/** Validates dy against the cached forward output shape and dtype. */
function checkDy(dy: Tensor, shape: readonly number[], dtype: DType, ctx: string): void {
  if (dy.dtype !== dtype) throw new ConfigError("dy.dtype", `${dtype} (the layer's dtype)`, dy.dtype, ctx);
  if (!sameShape(dy.shape, shape)) throw new ShapeError("dy", `shape ${fmtShape(shape)} (the output's)`, `shape ${fmtShape(dy.shape)}`, ctx);
}

function checkX(x: Tensor, dtype: DType, ctx: string, rank?: number): void {
  if (x.dtype !== dtype) throw new ConfigError("x.dtype", `${dtype} (the layer's dtype)`, x.dtype, ctx);
  if (rank !== undefined && x.rank !== rank) throw new ShapeError("x", `rank ${rank}`, `rank ${x.rank} (shape ${fmtShape(x.shape)})`, ctx);
}

/** Options of the parameter-free layers. */
export interface LayerOptions {
  /** Storage type of inputs and outputs. Default "float32". */
  dtype?: DType;
}

abstract class ParameterFree extends Module {
  protected readonly yBuf: ReusedBuffer;
  protected readonly dxBuf: ReusedBuffer;
  constructor(options: LayerOptions | undefined, ctx: string) {
    super(checkDType(options?.dtype ?? "float32", ctx));
    this.yBuf = new ReusedBuffer(this.dtype);
    this.dxBuf = new ReusedBuffer(this.dtype);
  }
  namedParameters(): Record<string, Parameter> {
    return {};
  }
  /** The parameter-free layers run on every device whose ops implement them (all of them). */
  protected override deviceProblem(): string | null {
    return null;
  }
}

/** y = max(x, 0);  dx = dy where x > 0, else 0 (PyTorch's choice at x = 0). Any shape. */
export class ReLU extends ParameterFree {
  private cache: Tensor | null = null;
  constructor(options?: LayerOptions) {
    super(options, "ReLU");
  }
  forward(x: Tensor): Tensor {
    this.checkDevice(x, "x", "forward");
    checkX(x, this.dtype, "ReLU.forward");
    const y = this.yBuf.get(this.device, x.shape);
    this.device.ops.relu({ y, x });
    this.cache = x;
    return y;
  }
  backward(dy: Tensor): Tensor {
    const x = requireCache(this.cache, "ReLU.backward");
    this.checkDevice(dy, "dy", "backward");
    checkDy(dy, x.shape, this.dtype, "ReLU.backward");
    const dx = this.dxBuf.get(this.device, x.shape);
    this.device.ops.reluBackward({ dx, dy, x });
    return dx;
  }
}

/** [N, d1, d2, ...] → [N, d1·d2·...] (a view: no copy). */
export class Flatten extends ParameterFree {
  private cache: { xShape: readonly number[]; yShape: number[] } | null = null;
  constructor(options?: LayerOptions) {
    super(options, "Flatten");
  }
  forward(x: Tensor): Tensor {
    this.checkDevice(x, "x", "forward");
    checkX(x, this.dtype, "Flatten.forward");
    if (x.rank < 1) throw new ShapeError("x", "rank ≥ 1", "rank 0", "Flatten.forward");
    const N = x.shape[0]!;
    const yShape = [N, N === 0 ? 0 : x.size / N];
    this.cache = { xShape: x.shape, yShape };
    return x.reshape(yShape);
  }
  backward(dy: Tensor): Tensor {
    const c = requireCache(this.cache, "Flatten.backward");
    checkDy(dy, c.yShape, this.dtype, "Flatten.backward");
    return dy.reshape(c.xShape);
  }
}

/** Pooling window options: kernelSize and stride as an int or [h, w]. stride defaults to kernelSize. */
export interface Pool2dOptions extends LayerOptions {
  kernelSize: number | readonly [number, number];
  stride?: number | readonly [number, number];
}

function pair(value: unknown, name: string, ctx: string): [number, number] {
  const p = typeof value === "number" ? [value, value] : value;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((v) => typeof v === "number" && Number.isInteger(v) && v >= 1)) {
    throw new ConfigError(name, "a positive integer or a pair of them", JSON.stringify(value), ctx);
  }
  return [p[0], p[1]];
}

abstract class Pool2d extends ParameterFree {
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  protected geometry: { g: Pool2dGeometry; xShape: readonly number[]; yShape: number[] } | null = null;

  constructor(options: Pool2dOptions, ctx: string) {
    if (options === null || typeof options !== "object") throw new ConfigError("options", "an options object", String(options), ctx);
    super(options, ctx);
    this.kernelSize = pair(options.kernelSize, "kernelSize", ctx);
    this.stride = options.stride === undefined ? this.kernelSize : pair(options.stride, "stride", ctx);
  }

  /** Validates x ([N, C, H, W], at least one window) and returns its geometry. */
  protected plan(x: Tensor, ctx: string): { g: Pool2dGeometry; xShape: readonly number[]; yShape: number[] } {
    this.checkDevice(x, "x", "forward");
    checkX(x, this.dtype, ctx, 4);
    const [N, C, H, W] = x.shape as [number, number, number, number];
    const [kh, kw] = this.kernelSize;
    if (H < kh || W < kw) throw new ShapeError("x", `height ≥ ${kh} and width ≥ ${kw} (the window)`, `shape ${fmtShape(x.shape)}`, ctx);
    const g = pool2dGeometry(N * C, H, W, kh, kw, this.stride[0], this.stride[1]);
    return { g, xShape: x.shape, yShape: [N, C, g.Ho, g.Wo] };
  }
}

/** Max pooling over [N, C, H, W] (no padding, floor mode). dx routes dy to each window's first maximum. */
export class MaxPool2d extends Pool2d {
  private argmax: Indices | null = null;
  private argmaxOn: Device | null = null;
  constructor(options: Pool2dOptions) {
    super(options, "MaxPool2d");
  }
  forward(x: Tensor): Tensor {
    const p = this.plan(x, "MaxPool2d.forward");
    const n = p.g.planes * p.g.Ho * p.g.Wo;
    const ops = this.device.ops;
    if (!this.argmax || this.argmax.count !== n || this.argmaxOn !== this.device) {
      this.argmax?.destroy();
      this.argmax = ops.createIndices(n);
      this.argmaxOn = this.device;
    }
    const y = this.yBuf.get(this.device, p.yShape);
    ops.maxPool2d({ y, x, argmax: this.argmax, geometry: p.g });
    this.geometry = p;
    return y;
  }
  backward(dy: Tensor): Tensor {
    const p = requireCache(this.geometry, "MaxPool2d.backward");
    this.checkDevice(dy, "dy", "backward");
    checkDy(dy, p.yShape, this.dtype, "MaxPool2d.backward");
    const dx = this.dxBuf.get(this.device, p.xShape);
    this.device.ops.maxPool2dBackward({ dx, dy, argmax: this.argmax!, geometry: p.g });
    return dx;
  }
}

/** Average pooling over [N, C, H, W] (no padding, floor mode). */
export class AvgPool2d extends Pool2d {
  constructor(options: Pool2dOptions) {
    super(options, "AvgPool2d");
  }
  forward(x: Tensor): Tensor {
    const p = this.plan(x, "AvgPool2d.forward");
    const y = this.yBuf.get(this.device, p.yShape);
    this.device.ops.avgPool2d({ y, x, geometry: p.g });
    this.geometry = p;
    return y;
  }
  backward(dy: Tensor): Tensor {
    const p = requireCache(this.geometry, "AvgPool2d.backward");
    this.checkDevice(dy, "dy", "backward");
    checkDy(dy, p.yShape, this.dtype, "AvgPool2d.backward");
    const dx = this.dxBuf.get(this.device, p.xShape);
    this.device.ops.avgPool2dBackward({ dx, dy, geometry: p.g });
    return dx;
  }
}

/** [N, C, H, W] → [N, C]: the mean of each channel (AdaptiveAvgPool2d(1) then flatten). */
export class GlobalAvgPool2d extends ParameterFree {
  private cache: readonly number[] | null = null;
  constructor(options?: LayerOptions) {
    super(options, "GlobalAvgPool2d");
  }
  forward(x: Tensor): Tensor {
    this.checkDevice(x, "x", "forward");
    checkX(x, this.dtype, "GlobalAvgPool2d.forward", 4);
    const [N, C, H, W] = x.shape as [number, number, number, number];
    if (H * W === 0) throw new ShapeError("x", "at least one position per channel", `shape ${fmtShape(x.shape)}`, "GlobalAvgPool2d.forward");
    const y = this.yBuf.get(this.device, [N, C]);
    // one window over the whole plane
    this.device.ops.avgPool2d({ y, x, geometry: pool2dGeometry(N * C, H, W, H, W, H, W) });
    this.cache = x.shape;
    return y;
  }
  backward(dy: Tensor): Tensor {
    const shape = requireCache(this.cache, "GlobalAvgPool2d.backward");
    const [N, C, H, W] = shape as [number, number, number, number];
    this.checkDevice(dy, "dy", "backward");
    checkDy(dy, [N, C], this.dtype, "GlobalAvgPool2d.backward");
    const dx = this.dxBuf.get(this.device, shape);
    this.device.ops.avgPool2dBackward({ dx, dy, geometry: pool2dGeometry(N * C, H, W, H, W, H, W) });
    return dx;
  }
}

/**
 * Modules applied in order. Parameters and buffers are named `${index}.${name}` as in PyTorch's
 * nn.Sequential; train()/eval() reach every child. dtype is the first child's.
 */
export class Sequential extends Module {
  private layerList: readonly Module[];
  /** Index of the lowest layer with parameters (found on the first backwardParams). */
  private lowest: number | undefined;
  /** The layers, in order. */
  get layers(): readonly Module[] {
    return this.layerList;
  }
  constructor(layers: Module[]) {
    if (!Array.isArray(layers) || layers.length === 0) throw new ConfigError("layers", "a non-empty array of modules", String(layers), "Sequential");
    for (const [i, l] of layers.entries()) {
      if (!(l instanceof Module)) throw new ConfigError(`layers[${i}]`, "a Module", String(l), "Sequential");
    }
    super(layers[0]!.dtype);
    this.layerList = Object.freeze([...layers]);
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const l of this.layers) h = l.forward(h);
    return h;
  }
  backward(dy: Tensor): Tensor {
    let g = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) g = this.layers[i]!.backward(g);
    return g;
  }
  /**
   * Parameter gradients only, for a network whose input needs no gradient (the data): backward
   * through every layer down to the lowest one with parameters, which gets `backwardParams(dy)` when
   * it has that method (Linear, Conv2d: no dx computed) and `backward(dy)` otherwise; the layers below
   * it are skipped. Accumulates (+=) into every parameter's grad, exactly as backward would.
   */
  backwardParams(dy: Tensor): void {
    if (this.lowest === undefined) this.lowest = this.layers.findIndex((l) => Object.keys(l.namedParameters()).length > 0);
    const lowest = this.lowest;
    if (lowest < 0) return;
    let g = dy;
    for (let i = this.layers.length - 1; i > lowest; i--) g = this.layers[i]!.backward(g);
    const first = this.layers[lowest] as Module & { backwardParams?: (dy: Tensor) => void };
    if (typeof first.backwardParams === "function") first.backwardParams(g);
    else first.backward(g);
  }
  namedParameters(): Record<string, Parameter> {
    const out: Record<string, Parameter> = {};
    this.layers.forEach((l, i) => {
      for (const [k, p] of Object.entries(l.namedParameters())) out[`${i}.${k}`] = p;
    });
    return out;
  }
  override namedBuffers(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    this.layers.forEach((l, i) => {
      for (const [k, b] of Object.entries(l.namedBuffers())) out[`${i}.${k}`] = b;
    });
    return out;
  }
  override train(mode = true): this {
    this.training = mode;
    for (const l of this.layers) l.train(mode);
    return this;
  }
  override children(): Module[] {
    return [...this.layers];
  }
  override replaceChild(child: Module, replacement: Module): boolean {
    const i = this.layerList.indexOf(child);
    if (i < 0) return false;
    const next = [...this.layerList];
    next[i] = replacement;
    this.layerList = Object.freeze(next);
    this.lowest = undefined;
    return true;
  }
  /** A container holds no tensors of its own: it goes wherever all its layers can. */
  protected override deviceProblem(): string | null {
    return null;
  }
}

/**
 * A layer whose forward and backward can write into a caller-provided output (the norm layers,
 * Conv2d, Linear). `outputShape` gives y's shape for an input shape where it differs from it.
 */
export interface OutputTaking extends Module {
  forward(x: Tensor, out?: Tensor): Tensor;
  backward(dy: Tensor, out?: Tensor): Tensor;
  outputShape?(xShape: readonly number[]): number[];
  backwardParams?(dy: Tensor): void;
}

/**
 * Runs `inner` with two output tensors reused from call to call instead of a fresh y and dx per
 * call: a fresh activation-sized array costs a first touch of every page on each step. For training
 * loops, where each output is consumed before the next call (as every layer of this stack assumes
 * of its own reused buffers). Parameters, buffers and training mode are the inner layer's.
 */
export class ReuseOutputs extends Module {
  private innerLayer: OutputTaking;
  /** The wrapped layer. */
  get inner(): OutputTaking {
    return this.innerLayer;
  }
  private readonly y: ReusedBuffer;
  private readonly dx: ReusedBuffer;
  /** The last forward's input shape: dx's. */
  private xShape: readonly number[] | null = null;
  constructor(inner: OutputTaking) {
    super(inner.dtype);
    this.innerLayer = inner;
    this.training = inner.training;
    this.y = new ReusedBuffer(inner.dtype);
    this.dx = new ReusedBuffer(inner.dtype);
  }
  forward(x: Tensor): Tensor {
    // a shape the inner layer rejects is its error to report: hand it no output then
    this.xShape = null;
    let shape: readonly number[] = x.shape;
    if (this.inner.outputShape) {
      try {
        shape = this.inner.outputShape(x.shape);
      } catch {
        return this.inner.forward(x);
      }
    }
    const y = this.inner.forward(x, this.y.get(this.device, shape));
    this.xShape = x.shape;
    return y;
  }
  backward(dy: Tensor): Tensor {
    // without a successful forward the inner layer reports the missing cache
    return this.inner.backward(dy, this.xShape ? this.dx.get(this.device, this.xShape) : undefined);
  }
  /** The inner layer's backwardParams (no dx) where it has one, else its backward. */
  backwardParams(dy: Tensor): void {
    if (this.inner.backwardParams) this.inner.backwardParams(dy);
    else this.backward(dy);
  }
  /** It holds no tensors of its own (its outputs follow the device): it goes wherever its layer can. */
  protected override deviceProblem(): string | null {
    return null;
  }
  namedParameters(): Record<string, Parameter> {
    return this.inner.namedParameters();
  }
  override namedBuffers(): Record<string, Tensor> {
    return this.inner.namedBuffers();
  }
  override train(mode = true): this {
    this.training = mode;
    this.inner.train(mode);
    return this;
  }
  override children(): Module[] {
    return [this.inner];
  }
  /** The new layer must take outputs as the old one (forward(x, out)) and have its dtype. */
  override replaceChild(child: Module, replacement: Module): boolean {
    if (child !== this.innerLayer || replacement.dtype !== this.dtype) return false;
    this.innerLayer = replacement as OutputTaking;
    return true;
  }
  /** Transparent: the layer's keys are the wrapper's (PyTorch has no such module). */
  override namedChildren(): [string, Module][] {
    return [["", this.inner]];
  }
}
