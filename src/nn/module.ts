/**
 * The layer contract shared by every normkit layer.
 *
 * - `forward(x)` computes y and caches what backward needs (statistics, not copies of x where avoidable).
 * - `backward(dy)` returns dx for the most recent forward and **accumulates** (`+=`) parameter
 *   gradients into `param.grad`, as PyTorch's autograd does; call `zeroGrad()` between steps.
 * - `training` is explicit: `train()` / `eval()` switch it; nothing is global.
 * - `stateDict()` / `loadStateDict()` use PyTorch's key names, so weights move both ways.
 * - Every public method validates all its input before it mutates anything.
 */
import { StateDictError, StateError, fmtShape } from "../errors.js";
import { DType, Tensor, sameShape } from "../tensor.js";

export interface Parameter {
  readonly value: Tensor;
  readonly grad: Tensor;
}

export function makeParameter(shape: readonly number[], dtype: DType, fill: number): Parameter {
  return { value: Tensor.full(shape, fill, dtype), grad: Tensor.zeros(shape, dtype) };
}

export abstract class Module {
  training = true;
  readonly dtype: DType;

  constructor(dtype: DType) {
    this.dtype = dtype;
  }

  abstract forward(x: Tensor): Tensor;
  abstract backward(dy: Tensor): Tensor;

  /** Learnable parameters by PyTorch name (weight, bias, ...). */
  abstract namedParameters(): Record<string, Parameter>;
  /** Non-learnable state by PyTorch name (running_mean, running_var, num_batches_tracked). */
  namedBuffers(): Record<string, Tensor> {
    return {};
  }

  train(mode = true): this {
    this.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  parameters(): Parameter[] {
    return Object.values(this.namedParameters());
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad.data.fill(0);
  }

  /** Parameters and buffers, by PyTorch key name. The tensors are copies. */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(this.namedParameters())) out[k] = p.value.clone();
    for (const [k, b] of Object.entries(this.namedBuffers())) out[k] = b.clone();
    return out;
  }

  /**
   * Loads parameters and buffers by PyTorch key name. Every key is checked (present, right shape)
   * before any is copied, so a bad dict changes nothing. With `strict` (default true), unexpected
   * keys are errors too. Values are converted to the layer's dtype. `num_batches_tracked` may be
   * a scalar of shape [] (PyTorch's) or [1].
   */
  loadStateDict(state: Record<string, Tensor | { shape: readonly number[]; data: ArrayLike<number> }>, options: { strict?: boolean } = {}): void {
    const strict = options.strict ?? true;
    const targets: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(this.namedParameters())) targets[k] = p.value;
    for (const [k, b] of Object.entries(this.namedBuffers())) targets[k] = b;
    const ctx = this.constructor.name + ".loadStateDict";
    for (const [k, t] of Object.entries(targets)) {
      const v = state[k];
      if (v === undefined) throw new StateDictError(k, `a tensor of shape ${fmtShape(t.shape)}`, "a missing key", ctx);
      const scalarOk = t.size === 1 && v.shape.length <= 1 && v.data.length === 1;
      if (!sameShape(v.shape, t.shape) && !scalarOk) {
        throw new StateDictError(k, `shape ${fmtShape(t.shape)}`, `shape ${fmtShape(v.shape)}`, ctx);
      }
      if (v.data.length !== t.size) throw new StateDictError(k, `${t.size} values`, `${v.data.length}`, ctx);
      for (let i = 0; i < v.data.length; i++) {
        if (Number.isNaN(v.data[i]!) && k === "num_batches_tracked") throw new StateDictError(k, "a finite count", "NaN", ctx);
      }
    }
    if (strict) {
      for (const k of Object.keys(state)) {
        if (!(k in targets)) throw new StateDictError(k, `one of the keys ${Object.keys(targets).join(", ") || "(none)"}`, "an unexpected key", ctx);
      }
    }
    for (const [k, t] of Object.entries(targets)) {
      const src = state[k]!.data;
      for (let i = 0; i < t.size; i++) t.data[i] = src[i]!;
    }
  }
}

export function requireCache<T>(cache: T | null, layer: string): T {
  if (cache === null) throw new StateError("backward", "a preceding forward() in the same mode", "no cached forward", layer);
  return cache;
}
