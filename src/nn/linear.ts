/** Linear (fully connected) layer: y = x Wᵀ + b over the last axis of x, as torch.nn.Linear. */
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import { uniform } from "../rng.js";
import { DType, Tensor } from "../tensor.js";
import { Module, Parameter, makeParameter, requireCache, writeGrads } from "./module.js";
import { checkDType, checkDTypeOf, checkGradShape, checkPositiveInt } from "./validate.js";

export interface LinearOptions {
  /** Size of the last axis of the input. Required, a positive integer. */
  inFeatures: number;
  /** Size of the last axis of the output. Required, a positive integer. */
  outFeatures: number;
  /** Whether to learn an additive bias. Default true. */
  bias?: boolean;
  /** Storage type of parameters, inputs and outputs. Default "float32". */
  dtype?: DType;
  /** Uniform [0, 1) source for the initialisation (see rng.ts for a seeded one). Default Math.random. */
  rng?: () => number;
}

/** Fills `a` with U(-bound, bound): PyTorch's default init for Linear/Conv weights and biases, bound = 1/√fan_in. */
export function initUniform(a: Tensor, bound: number, rng: () => number): void {
  for (let i = 0; i < a.size; i++) a.data[i] = uniform(rng, -bound, bound);
}

/**
 * y[..., o] = b[o] + Σ_k x[..., k]·W[o, k]; x has any rank ≥ 1 with last axis inFeatures.
 * Parameters: weight [out, in], bias [out]; both initialised U(−1/√in, 1/√in).
 * forward keeps a reference to x for backward: do not modify x in between.
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private cache: { x: Tensor; rows: number; yShape: number[] } | null = null;

  constructor(options: LinearOptions) {
    const ctx = "Linear";
    super(checkDType(options.dtype ?? "float32", ctx));
    this.inFeatures = checkPositiveInt(options.inFeatures, "inFeatures", ctx);
    this.outFeatures = checkPositiveInt(options.outFeatures, "outFeatures", ctx);
    const rng = options.rng ?? Math.random;
    const bound = 1 / Math.sqrt(this.inFeatures);
    this.weight = makeParameter([this.outFeatures, this.inFeatures], this.dtype, 0);
    initUniform(this.weight.value, bound, rng);
    this.bias = (options.bias ?? true) ? makeParameter([this.outFeatures], this.dtype, 0) : null;
    if (this.bias) initUniform(this.bias.value, bound, rng);
  }

  namedParameters(): Record<string, Parameter> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  /** Runs on every device (the device's ops compute it). */
  protected override deviceProblem(_device: Device): string | null {
    return null;
  }

  /** The input's shape with the last axis outFeatures. */
  outputShape(xShape: readonly number[]): number[] {
    return [...xShape.slice(0, -1), this.outFeatures];
  }

  /** y, written into `out` when given (shape outputShape(x.shape), the layer's dtype and device). */
  forward(x: Tensor, out?: Tensor): Tensor {
    const ctx = "Linear.forward";
    this.checkDevice(x, "x", "forward");
    checkDTypeOf(x, this.dtype, ctx);
    if (x.rank < 1) throw new ShapeError("x", "rank ≥ 1", `rank 0`, ctx);
    if (x.shape[x.rank - 1] !== this.inFeatures) {
      throw new ShapeError("x", `last axis ${this.inFeatures} (inFeatures)`, `shape ${fmtShape(x.shape)}`, ctx);
    }
    const rows = x.size / this.inFeatures;
    const yShape = [...x.shape.slice(0, -1), this.outFeatures];
    let y: Tensor;
    if (out) {
      this.checkOutput(out, { shape: yShape }, "forward");
      y = out;
    } else y = this.device.zeros(yShape, this.dtype);
    this.device.ops.linear({ y, x, weight: this.weight.value, bias: this.bias?.value ?? null, rows, inF: this.inFeatures, outF: this.outFeatures });
    this.cache = { x, rows, yShape };
    return y;
  }

  /** Returns dx (written into `out` when given: x's shape); accumulates (+=) into weight.grad and bias.grad. */
  backward(dy: Tensor, out?: Tensor): Tensor {
    const c = requireCache(this.cache, "Linear");
    this.checkDevice(dy, "dy", "backward");
    checkGradShape(dy, c.yShape, this.dtype, "Linear.backward");
    if (out) this.checkOutput(out, c.x, "backward");
    const dx = out ?? this.device.zeros(c.x.shape, this.dtype);
    this.gradients(dx, dy, c);
    return dx;
  }

  /**
   * backward without dx: accumulates (+=) into weight.grad and bias.grad only. For a network's first
   * layer, whose input (the data) needs no gradient — it saves a third of the layer's backward work.
   */
  backwardParams(dy: Tensor): void {
    const c = requireCache(this.cache, "Linear");
    this.checkDevice(dy, "dy", "backwardParams");
    checkGradShape(dy, c.yShape, this.dtype, "Linear.backwardParams");
    this.gradients(null, dy, c);
  }

  private gradients(dx: Tensor | null, dy: Tensor, c: { x: Tensor; rows: number }): void {
    // += into the gradients, or = where zeroGrad left them marked zero (writeGrads)
    writeGrads([this.weight, this.bias], ([dweight, dbias], accumulate) => this.device.ops.linearBackward({
      dx, dweight: dweight!, dbias: dbias ?? null, dy, x: c.x, weight: this.weight.value, rows: c.rows,
      inF: this.inFeatures, outF: this.outFeatures, accumulate,
    }));
  }
}
