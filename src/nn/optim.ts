/**
 * Optimisers over a list of Parameters (value and grad tensors), with PyTorch's update rules.
 * State buffers have the parameter's dtype (as PyTorch keeps them) and live on the parameter's device;
 * each step runs there (the device's kernels: src/kernels/contract/ops.ts), so a model moved to a
 * GPU trains without a read-back. They are made on the first step (a model may move after the
 * optimiser is built) and again if a parameter moves.
 */
import { ConfigError, DeviceError } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import { deviceOf } from "../kernels/cpu.js";
import { type Parameter, zeroGradOf } from "./module.js";
import type { Tensor } from "../tensor.js";

/**
 * One state tensor per parameter, made (zero) on the parameter's device at its first step. A
 * parameter that has moved to another device since is a DeviceError: build the optimiser after
 * moving the model, as in PyTorch.
 */
class StateOf {
  private readonly state = new Map<Parameter, { device: Device; t: Tensor }>();
  constructor(private readonly ctx: string) {}
  get(p: Parameter, device: Device): Tensor {
    const s = this.state.get(p);
    if (s) {
      if (s.device !== device) throw new DeviceError("params", `parameters on ${s.device.label}, where this optimiser's state is`, `a parameter moved to ${device.label} (build the optimiser after moving the model)`, `${this.ctx}.step`);
      return s.t;
    }
    const t = device.zeros(p.value.shape, p.value.dtype);
    this.state.set(p, { device, t });
    return t;
  }
}

/** Sets every parameter's grad to 0 on its device (a layer's parameter: marked zero, see LayerParameter). */
function zeroGrads(params: readonly Parameter[], ctx: string): void {
  for (const p of params) zeroGradOf(p, ctx);
}

function checkNumber(v: unknown, name: string, ok: (x: number) => boolean, want: string, ctx: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new ConfigError(name, want, String(v), ctx);
  return v;
}

function checkParams(params: Parameter[], ctx: string): Parameter[] {
  if (!Array.isArray(params)) throw new ConfigError("params", "an array of parameters", String(params), ctx);
  return [...params];
}

export interface SGDOptions {
  lr: number;
  /** μ. Default 0 (plain SGD). */
  momentum?: number;
  /** L2 penalty added to the gradient (g + wd·p). Default 0. */
  weightDecay?: number;
  /** Default 0. */
  dampening?: number;
  /** Default false. */
  nesterov?: boolean;
}

/**
 * torch.optim.SGD:  g = grad + wd·p;  b = g (first step) or μ·b + (1 − dampening)·g;
 * d = nesterov ? g + μ·b : b (d = g without momentum);  p ← p − lr·d.
 * In the parameter's precision, as PyTorch: float64 parameters in float64 arithmetic, float32 ones in
 * float32 arithmetic (every product and sum rounded to float32, lr, μ and wd too; no fused multiply-add).
 */
export class SGD {
  readonly params: readonly Parameter[];
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  private readonly buffers = new StateOf("SGD");
  private started = false;

  constructor(params: Parameter[], options: SGDOptions) {
    const ctx = "SGD";
    this.params = checkParams(params, ctx);
    this.lr = checkNumber(options.lr, "lr", (x) => x >= 0, "a number ≥ 0", ctx);
    this.momentum = checkNumber(options.momentum ?? 0, "momentum", (x) => x >= 0, "a number ≥ 0", ctx);
    this.weightDecay = checkNumber(options.weightDecay ?? 0, "weightDecay", (x) => x >= 0, "a number ≥ 0", ctx);
    this.dampening = checkNumber(options.dampening ?? 0, "dampening", () => true, "a number", ctx);
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new ConfigError("nesterov", "momentum > 0 and dampening 0 (as PyTorch)", `momentum ${this.momentum}, dampening ${this.dampening}`, ctx);
    }

  }

  /** Sets every parameter's grad to 0. */
  zeroGrad(): void {
    zeroGrads(this.params, "SGD.zeroGrad");
  }

  /** One update of every parameter, on its device. */
  step(): void {
    const { lr, momentum, weightDecay, nesterov } = this;
    const first = !this.started;
    this.started = true;
    const keep = 1 - this.dampening;
    for (const p of this.params) {
      const device = deviceOf(p.value, "SGD.step");
      const buffer = momentum > 0 ? this.buffers.get(p, device) : null;
      device.ops.sgdStep({ param: p.value, grad: p.grad, buffer, lr, momentum, keep, weightDecay, nesterov, first });
    }
  }
}

export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** L2 penalty added to the gradient (torch.optim.Adam, not AdamW). Default 0. */
  weightDecay?: number;
}

/**
 * torch.optim.Adam:  g = grad + wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 * p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps).
 */
export class Adam {
  readonly params: readonly Parameter[];
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly m = new StateOf("Adam");
  private readonly v = new StateOf("Adam");
  private t = 0;

  constructor(params: Parameter[], options: AdamOptions = {}) {
    const ctx = new.target.name; // Adam or AdamW in messages
    this.params = checkParams(params, ctx);
    this.lr = checkNumber(options.lr ?? 1e-3, "lr", (x) => x >= 0, "a number ≥ 0", ctx);
    const [b1, b2] = options.betas ?? [0.9, 0.999];
    this.beta1 = checkNumber(b1, "betas[0]", (x) => x >= 0 && x < 1, "a number in [0, 1)", ctx);
    this.beta2 = checkNumber(b2, "betas[1]", (x) => x >= 0 && x < 1, "a number in [0, 1)", ctx);
    this.eps = checkNumber(options.eps ?? 1e-8, "eps", (x) => x >= 0, "a number ≥ 0", ctx);
    this.weightDecay = checkNumber(options.weightDecay ?? 0, "weightDecay", (x) => x >= 0, "a number ≥ 0", ctx);
  }

  zeroGrad(): void {
    zeroGrads(this.params, "Adam.zeroGrad");
  }

  /** One update of every parameter, on its device. */
  step(): void {
    this.t++;
    const { lr, beta1, beta2, eps, weightDecay } = this;
    const c1 = 1 - beta1 ** this.t, c2 = 1 - beta2 ** this.t;
    for (const p of this.params) {
      const device = deviceOf(p.value, "Adam.step");
      const m = this.m.get(p, device), v = this.v.get(p, device);
      device.ops.adamStep({ param: p.value, grad: p.grad, m, v, lr, beta1, beta2, eps, ...this.decayTerms(), c1, c2 });
    }
  }

  /** Adam's weight decay: the L2 term added to the gradient. */
  protected decayTerms(): { weightDecay: number; decay: number } {
    return { weightDecay: this.weightDecay, decay: 0 };
  }
}

export interface AdamWOptions extends AdamOptions {
  /** Decoupled weight decay: p ← (1 − lr·wd)·p before each update. Default 1e-2 (PyTorch's). */
  weightDecay?: number;
}

/**
 * torch.optim.AdamW: p ← (1 − lr·wd)·p, then Adam's update of the plain gradient (Loshchilov &
 * Hutter's decoupled weight decay; no L2 term in g).
 */
export class AdamW extends Adam {
  constructor(params: Parameter[], options: AdamWOptions = {}) {
    super(params, { ...options, weightDecay: options.weightDecay ?? 1e-2 });
  }
  protected override decayTerms(): { weightDecay: number; decay: number } {
    return { weightDecay: 0, decay: this.lr * this.weightDecay };
  }
}

/**
 * torch.nn.utils.clip_grad_norm_ (L2): the global norm over every parameter's gradient,
 *   ‖g‖ = √(Σ_p Σ_e g_pe²)     (summed in float64)
 * and, where c = maxNorm / (‖g‖ + 1e-6) < 1, every gradient scaled in place by c (PyTorch's
 * clamp(c, max=1)). Returns ‖g‖ before clipping. Host gradients only.
 */
export function clipGradNorm(params: readonly Parameter[], maxNorm: number): number {
  const ctx = "clipGradNorm";
  if (!Array.isArray(params)) throw new ConfigError("params", "an array of parameters", String(params), ctx);
  checkNumber(maxNorm, "maxNorm", (x) => x >= 0, "a number ≥ 0", ctx);
  for (const p of params) {
    if (!p.grad.isHost) throw new DeviceError("params", "parameters with host gradients", `a gradient on ${p.grad.device}`, ctx);
  }
  let sq = 0;
  for (const p of params) {
    const g = p.grad.data;
    for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  }
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const p of params) {
      const g = p.grad.data;
      for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
    }
  }
  return norm;
}
