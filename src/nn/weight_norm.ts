/**
 * Weight normalisation (Salimans & Kingma 2016), as torch.nn.utils.parametrizations.weight_norm:
 * the wrapped layer's weight is re-parametrised as W = g · v / ‖v‖, the norm taken over every axis
 * but 0 (dim 0: one g per output unit, shape [out, 1, ...]) or over the whole tensor (dim null: one
 * scalar g, shape []). Learnable: g, v and the wrapped layer's bias.
 */
import { ConfigError } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import type { Workspace } from "../kernels/contract/ops.js";
import { Tensor } from "../tensor.js";
import type { Conv2d } from "./conv2d.js";
import type { Linear } from "./linear.js";
import { Module, Parameter, makeParameter, requireCache, zeroGradOf } from "./module.js";

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
  /** The kernels' state between forward and backward (the norms), on the module's device. */
  private state: Workspace | null = null;
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

  /** The wrapped layer moves with it (its weight holds the effective weight, its bias is a parameter here). */
  override children(): Module[] {
    return [this.layer];
  }
  /** The wrapped layer has the wrapper's name: in PyTorch the parametrised layer is the module itself. */
  override namedChildren(): [string, Module][] {
    return [["", this.layer]];
  }
  protected override ownParameters(): Record<string, Parameter> {
    return { [G_KEY]: this.g, [V_KEY]: this.v };
  }
  /** It runs wherever its layer does (the device's ops compute the weight). */
  protected override deviceProblem(_device: Device): string | null {
    return null;
  }
  protected override movedTo(): void {
    this.state?.destroy();
    this.state = null;
    this.cache = null;
  }

  /** The effective weight g · v / ‖v‖ from the current g and v (a new tensor, on the module's device). */
  weight(): Tensor {
    const w = this.device.zeros(this.layer.weight.value.shape, this.dtype);
    this.device.ops.weightNorm({ weight: w, g: this.g.value, v: this.v.value, groups: this.R, size: this.S, state: this.device.ops.createWorkspace() });
    return w;
  }

  forward(x: Tensor): Tensor {
    this.cache = null;
    this.state ??= this.device.ops.createWorkspace();
    this.device.ops.weightNorm({ weight: this.layer.weight.value, g: this.g.value, v: this.v.value, groups: this.R, size: this.S, state: this.state });
    const y = this.layer.forward(x);
    this.cache = true;
    return y;
  }

  /** Returns dx; accumulates (+=) into the grads of g, v and bias. */
  backward(dy: Tensor): Tensor {
    requireCache(this.cache, "WeightNorm");
    // the wrapped layer accumulates: its dW set to 0 first (marked, or filled) to read this call's dW alone
    zeroGradOf(this.layer.weight, "WeightNorm.backward");
    const dx = this.layer.backward(dy);
    const dW = this.layer.weight.grad;
    this.device.ops.weightNormBackward({ dg: this.g.grad, dv: this.v.grad, dweight: dW, v: this.v.value, groups: this.R, size: this.S, state: this.state! });
    return dx;
  }
}

/** `weightNorm(layer, { dim })`: PyTorch-style factory for `new WeightNorm(layer, { dim })`. */
export function weightNorm(layer: WeightedLayer, options: WeightNormOptions = {}): WeightNorm {
  return new WeightNorm(layer, options);
}
