/**
 * The optimisers' update kernels on host arrays (torch.optim's rules; src/nn/optim.ts has the
 * optimisers). Pure functions: parameters and state are updated in place.
 */
import type { FloatArray } from "../../tensor.js";

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

/**
 * Every SGD variant above on float32 storage, in float32 arithmetic as PyTorch's float32 step and the
 * WebGPU kernel compute it: each product and sum rounded to float32 (lr, μ, keep and wd as well), no
 * fused multiply-add. The WebAssembly kernel (assembly/elementwise.ts, sgdStep) gives the same bits.
 *   g' = g + wd·p;  b = g' (first step) or μ·b + keep·g';  d = nesterov ? g' + μ·b : b (g' without b);
 *   p ← p − lr·d
 */
export function sgdStepF32(
  p: Float32Array, g: Readonly<Float32Array>, b: Float32Array | null, lr: number, mu: number, keep: number, wd: number,
  nesterov: boolean, first: boolean,
): void {
  const f = Math.fround;
  const lr32 = f(lr), mu32 = f(mu), keep32 = f(keep), wd32 = f(wd);
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    const gi = f(g[i]! + f(wd32 * pi));
    let d = gi;
    if (b !== null) {
      const bi = first ? gi : f(f(mu32 * b[i]!) + f(keep32 * gi));
      b[i] = bi;
      d = nesterov ? f(gi + f(mu32 * bi)) : bi;
    }
    p[i] = f(pi - f(lr32 * d));
  }
}

/**
 * Adam: g' = g + wd·p;  m = β1·m + (1−β1)·g';  v = β2·v + (1−β2)·g'²;
 * p ← p − (lr / c1) · m / (√v / √c2 + eps), with c1 = 1 − β1ᵗ, c2 = 1 − β2ᵗ.
 * AdamW: first p ← (1 − decay)·p (decay = lr·wd, its decoupled weight decay), with wd = 0.
 */
export function adamKernel(
  p: FloatArray, g: Readonly<FloatArray>, m: FloatArray, v: FloatArray, lr: number, beta1: number, beta2: number, eps: number, wd: number,
  c1: number, c2: number, decay = 0,
): void {
  const stepSize = lr / c1;
  const sqrtBc2 = Math.sqrt(c2);
  if (decay !== 0) for (let i = 0; i < p.length; i++) p[i] = p[i]! * (1 - decay);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]! + wd * p[i]!;
    const mi = beta1 * m[i]! + (1 - beta1) * gi;
    const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / sqrtBc2 + eps);
  }
}
