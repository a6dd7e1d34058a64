/**
 * Weight normalisation (Salimans & Kingma 2016), as torch.nn.utils.parametrizations.weight_norm:
 * the wrapped layer's weight is re-parametrised as W = g · v / ‖v‖, the norm taken over every axis
 * but 0 (dim 0: one g per output unit, shape [out, 1, ...]) or over the whole tensor (dim null: one
 * scalar g, shape []). Learnable: g, v and the wrapped layer's bias.
 */
import { ConfigError } from "../errors.js";
import type { FloatArray } from "../tensor.js";
import { Tensor, allocate } from "../tensor.js";
import type { Conv2d } from "./conv2d.js";
import type { Linear } from "./linear.js";
import { Module, Parameter, makeParameter, requireCache } from "./module.js";

/** Weight viewed as R groups of S values (R = out for dim 0, R = 1 for dim null): per group r,
 *  n_r = ‖v_r‖, v̂_r = v_r / n_r, gOverN[r] = g_r / n_r, W_r = v_r · (g_r / n_r)  (PyTorch's order).
 *  A zero v_r gives non-finite values, as in PyTorch. */
export function weightNormForward(
  w: FloatArray, vhat: Float64Array, gOverN: Float64Array, g: FloatArray, v: FloatArray, R: number, S: number,
): FloatArray {
  for (let r = 0; r < R; r++) {
    const o = r * S;
    let s = 0;
    for (let i = 0; i < S; i++) s += v[o + i] * v[o + i];
    const n = Math.sqrt(s);
    const k = g[r] / n;
    gOverN[r] = k;
    for (let i = 0; i < S; i++) {
      vhat[o + i] = v[o + i] / n;
      w[o + i] = v[o + i] * k;
    }
  }
  return w;
}

/** Given dW:  dg_r = dW_r · v̂_r,   dv_r = (g_r / n_r) · (dW_r − (dW_r · v̂_r) v̂_r).
 *  With `accumulate` both are added (+=) to their buffers, otherwise they overwrite them. */
export function weightNormBackward(
  dg: FloatArray, dv: FloatArray, dW: FloatArray, vhat: Float64Array, gOverN: Float64Array,
  R: number, S: number, accumulate: boolean,
): void {
  for (let r = 0; r < R; r++) {
    const o = r * S;
    let d = 0;
    for (let i = 0; i < S; i++) d += dW[o + i] * vhat[o + i];
    dg[r] = accumulate ? dg[r] + d : d;
    const k = gOverN[r];
    for (let i = 0; i < S; i++) {
      const t = k * (dW[o + i] - d * vhat[o + i]);
      dv[o + i] = accumulate ? dv[o + i] + t : t;
    }
  }
}

export interface WeightNormOptions {
  /** 0: one norm per output unit (PyTorch's default); null: one norm over the whole weight. Default 0. */
  dim?: 0 | null;
}

export type WeightedLayer = Linear | Conv2d;

export const G_KEY = "parametrizations.weight.original0";
export const V_KEY = "parametrizations.weight.original1";

/**
 * Wraps a Linear or Conv2d. g and v start from the layer's weight (v = W, g = ‖W‖ per group), so the
 * wrapped layer computes the same function at first. State dict keys as PyTorch:
 * `parametrizations.weight.original0` (g), `parametrizations.weight.original1` (v), `bias`.
 * The wrapped layer's own `weight` holds the effective weight of the last forward; it is not a
 * parameter of the wrapper.
 */
export class WeightNorm extends Module {
  readonly layer: WeightedLayer;
  readonly dim: 0 | null;
  readonly g: Parameter;
  readonly v: Parameter;
  private readonly R: number;
  private readonly S: number;
  private readonly vhat: Float64Array;
  private readonly gOverN: Float64Array;
  private cache: true | null = null;

  constructor(layer: WeightedLayer, options: WeightNormOptions = {}) {
    super(layer.dtype);
    const dim = options.dim === undefined ? 0 : options.dim;
    if (dim !== 0 && dim !== null) throw new ConfigError("dim", "0 or null", String(dim), "WeightNorm");
    this.layer = layer;
    this.dim = dim;
    const w = layer.weight.value;
    this.R = dim === 0 ? w.shape[0] : 1;
    this.S = w.size / this.R;
    const gShape = dim === 0 ? w.shape.map((d, i) => (i === 0 ? d : 1)) : [];
    this.g = makeParameter(gShape, this.dtype, 0);
    this.v = makeParameter(w.shape, this.dtype, 0);
    this.v.value.data.set(w.data);
    for (let r = 0; r < this.R; r++) {
      let s = 0;
      for (let i = 0; i < this.S; i++) s += w.data[r * this.S + i] ** 2;
      this.g.value.data[r] = Math.sqrt(s);
    }
    this.vhat = new Float64Array(w.size);
    this.gOverN = new Float64Array(this.R);
    this.training = layer.training;
  }

  namedParameters(): Record<string, Parameter> {
    const p: Record<string, Parameter> = { [G_KEY]: this.g, [V_KEY]: this.v };
    if (this.layer.bias) p.bias = this.layer.bias;
    return p;
  }

  override train(mode = true): this {
    this.training = mode;
    this.layer.train(mode);
    return this;
  }

  /** The effective weight g · v / ‖v‖ from the current g and v (a new tensor). */
  weight(): Tensor {
    const w = this.layer.weight.value;
    const out = allocate(this.dtype, w.size);
    weightNormForward(out, new Float64Array(w.size), new Float64Array(this.R), this.g.value.data, this.v.value.data, this.R, this.S);
    return new Tensor(out, w.shape);
  }

  forward(x: Tensor): Tensor {
    this.cache = null;
    weightNormForward(this.layer.weight.value.data, this.vhat, this.gOverN, this.g.value.data, this.v.value.data, this.R, this.S);
    const y = this.layer.forward(x);
    this.cache = true;
    return y;
  }

  /** Returns dx; accumulates (+=) into the grads of g, v and bias. */
  backward(dy: Tensor): Tensor {
    requireCache(this.cache, "WeightNorm");
    const dW = this.layer.weight.grad;
    dW.data.fill(0); // the wrapped layer accumulates: clear it to read this call's dW alone
    const dx = this.layer.backward(dy);
    weightNormBackward(this.g.grad.data, this.v.grad.data, dW.data, this.vhat, this.gOverN, this.R, this.S, true);
    return dx;
  }
}

/** `weightNorm(layer, { dim })`: PyTorch-style factory for `new WeightNorm(layer, { dim })`. */
export function weightNorm(layer: WeightedLayer, options: WeightNormOptions = {}): WeightNorm {
  return new WeightNorm(layer, options);
}
