/**
 * Dropout, as torch.nn.Dropout: in training mode each element is zeroed with probability p and the
 * rest scaled by 1 / (1 − p), so the expected output is the input; in eval mode it is the identity.
 *   forward:  m_i ~ Bernoulli(1 − p),  y = x ⊙ m / (1 − p)        backward:  dx = dy ⊙ m / (1 − p)
 * The mask comes from `rng` (uniform [0, 1): element kept when u ≥ p), drawn on the host: a host-only
 * layer (a GPU device is refused by name at `to()`).
 */
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import { DType, Tensor, sameShape } from "../tensor.js";
import { checkDType, checkDTypeOf } from "./validate.js";
import { Module, Parameter, requireCache } from "./module.js";

export interface DropoutOptions {
  /** Probability of zeroing an element, in [0, 1). Default 0.5 (PyTorch's). */
  p?: number;
  /** Uniform [0, 1) source of the mask. Default Math.random. */
  rng?: () => number;
  /** Default "float32". */
  dtype?: DType;
}

export class Dropout extends Module {
  readonly p: number;
  private readonly rng: () => number;
  /** The last training forward's scaled mask (0 or 1 / (1 − p)), null after an eval forward. */
  private mask: Float64Array | null = null;
  private cache: { shape: readonly number[]; masked: boolean } | null = null;

  constructor(options: DropoutOptions = {}) {
    const ctx = "Dropout";
    super(checkDType(options.dtype ?? "float32", ctx));
    const p = options.p ?? 0.5;
    if (typeof p !== "number" || !(p >= 0 && p < 1)) throw new ConfigError("p", "a probability in [0, 1)", String(p), ctx);
    this.p = p;
    this.rng = options.rng ?? Math.random;
  }

  namedParameters(): Record<string, Parameter> {
    return {};
  }
  protected override deviceProblem(device: Device): string | null {
    return device.type === "cpu" ? null : "Dropout draws its mask on the host (no device RNG yet)";
  }

  forward(x: Tensor): Tensor {
    this.checkDevice(x, "x", "forward");
    checkDTypeOf(x, this.dtype, "Dropout.forward");
    this.cache = null;
    const y = this.device.zeros(x.shape, this.dtype);
    if (!this.training || this.p === 0) {
      y.data.set(x.data);
      this.cache = { shape: x.shape, masked: false };
      return y;
    }
    if (!this.mask || this.mask.length !== x.size) this.mask = new Float64Array(x.size);
    const keep = 1 / (1 - this.p), m = this.mask, xd = x.data, yd = y.data;
    for (let i = 0; i < x.size; i++) {
      m[i] = this.rng() >= this.p ? keep : 0;
      yd[i] = xd[i]! * m[i]!;
    }
    this.cache = { shape: x.shape, masked: true };
    return y;
  }

  backward(dy: Tensor): Tensor {
    const c = requireCache(this.cache, "Dropout");
    this.checkDevice(dy, "dy", "backward");
    if (!sameShape(dy.shape, c.shape) || dy.dtype !== this.dtype) {
      throw new ShapeError("dy", `a ${this.dtype} tensor of shape ${fmtShape(c.shape)} (the output's)`, `${dy.dtype} ${fmtShape(dy.shape)}`, "Dropout.backward");
    }
    const dx = this.device.zeros(c.shape, this.dtype);
    if (!c.masked) {
      dx.data.set(dy.data);
      return dx;
    }
    const m = this.mask!, d = dy.data, o = dx.data;
    for (let i = 0; i < o.length; i++) o[i] = d[i]! * m[i]!;
    return dx;
  }
}
