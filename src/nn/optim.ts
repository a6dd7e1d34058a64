/**
 * Optimisers over a list of Parameters (value and grad tensors), with PyTorch's update rules.
 * State buffers have the parameter's dtype (as PyTorch keeps them) and are allocated once.
 */
import { ConfigError } from "../errors.js";
import type { Parameter } from "./module.js";
import { FloatArray, allocate } from "../tensor.js";

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
 */
export class SGD {
  readonly params: readonly Parameter[];
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  private readonly buffers: FloatArray[];
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
    this.buffers = this.momentum > 0 ? this.params.map((p) => allocate(p.value.dtype, p.value.size)) : [];
  }

  /** Sets every parameter's grad to 0. */
  zeroGrad(): void {
    for (const p of this.params) p.grad.data.fill(0);
  }

  step(): void {
    const { lr, momentum: mu, weightDecay: wd, dampening, nesterov } = this;
    const first = !this.started;
    this.started = true;
    for (let q = 0; q < this.params.length; q++) {
      const p = this.params[q]!.value.data, g = this.params[q]!.grad.data;
      if (mu === 0) sgdKernel(p, g, lr, wd);
      else if (nesterov) sgdNesterovKernel(p, g, this.buffers[q]!, lr, mu, wd, first);
      else if (first) sgdMomentumFirstKernel(p, g, this.buffers[q]!, lr, wd);
      else sgdMomentumKernel(p, g, this.buffers[q]!, lr, mu, 1 - dampening, wd);
    }
  }
}

/** p ← p − lr·(g + wd·p) */
export function sgdKernel(p: FloatArray, g: Readonly<FloatArray>, lr: number, wd: number): void {
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    p[i] = pi - lr * (g[i]! + wd * pi);
  }
}

/** First momentum step: b = g + wd·p;  p ← p − lr·b */
export function sgdMomentumFirstKernel(p: FloatArray, g: Readonly<FloatArray>, b: FloatArray, lr: number, wd: number): void {
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    const bi = g[i]! + wd * pi;
    b[i] = bi;
    p[i] = pi - lr * bi;
  }
}

/** b = μ·b + keep·(g + wd·p);  p ← p − lr·b   (keep = 1 − dampening) */
export function sgdMomentumKernel(p: FloatArray, g: Readonly<FloatArray>, b: FloatArray, lr: number, mu: number, keep: number, wd: number): void {
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    const bi = mu * b[i]! + keep * (g[i]! + wd * pi);
    b[i] = bi;
    p[i] = pi - lr * bi;
  }
}

/** Nesterov: d = g' + μ·b with g' = g + wd·p and b updated as above (dampening 0). */
export function sgdNesterovKernel(p: FloatArray, g: Readonly<FloatArray>, b: FloatArray, lr: number, mu: number, wd: number, first: boolean): void {
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    const gi = g[i]! + wd * pi;
    const bi = first ? gi : mu * b[i]! + gi;
    b[i] = bi;
    p[i] = pi - lr * (gi + mu * bi);
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
  private readonly m: FloatArray[];
  private readonly v: FloatArray[];
  private t = 0;

  constructor(params: Parameter[], options: AdamOptions = {}) {
    const ctx = "Adam";
    this.params = checkParams(params, ctx);
    this.lr = checkNumber(options.lr ?? 1e-3, "lr", (x) => x >= 0, "a number ≥ 0", ctx);
    const [b1, b2] = options.betas ?? [0.9, 0.999];
    this.beta1 = checkNumber(b1, "betas[0]", (x) => x >= 0 && x < 1, "a number in [0, 1)", ctx);
    this.beta2 = checkNumber(b2, "betas[1]", (x) => x >= 0 && x < 1, "a number in [0, 1)", ctx);
    this.eps = checkNumber(options.eps ?? 1e-8, "eps", (x) => x >= 0, "a number ≥ 0", ctx);
    this.weightDecay = checkNumber(options.weightDecay ?? 0, "weightDecay", (x) => x >= 0, "a number ≥ 0", ctx);
    this.m = this.params.map((p) => allocate(p.value.dtype, p.value.size));
    this.v = this.params.map((p) => allocate(p.value.dtype, p.value.size));
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad.data.fill(0);
  }

  step(): void {
    this.t++;
    const { lr, beta1, beta2, eps, weightDecay: wd } = this;
    const stepSize = lr / (1 - beta1 ** this.t);
    const sqrtBc2 = Math.sqrt(1 - beta2 ** this.t);
    for (let q = 0; q < this.params.length; q++) {
      const p = this.params[q]!.value.data, g = this.params[q]!.grad.data, m = this.m[q]!, v = this.v[q]!;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! + wd * p[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * gi;
        const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / sqrtBc2 + eps);
      }
    }
  }
}
