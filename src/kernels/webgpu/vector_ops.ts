/// <reference types="@webgpu/types" preserve="true" />
/**
 * Weight Norm's weight computation and Cosine Norm's normalisation on the GPU (kernels/vector.ts):
 * host functions that bind the kernels to GpuTensors and return the dispatches (GpuRun) to submit.
 */
import type { GpuContext, GpuRun, Program } from "./device.js";
import { GpuTensor } from "./tensor.js";
import { VEC_U, l2BackwardProgram, l2ForwardProgram, weightNormBackwardProgram, weightNormForwardProgram } from "./kernels/vector.js";

/** Vectors of a tensor: `count` of `len` values, element e of vector r at r * vs + e * es. */
export interface VectorLayout {
  count: number;
  len: number;
  vs: number;
  es: number;
}
/** Rows of a row-major [count, len]. */
export const rowsOf = (count: number, len: number): VectorLayout => ({ count, len, vs: len, es: 1 });
/** Columns of a row-major [len, count]. */
export const columnsOf = (count: number, len: number): VectorLayout => ({ count, len, vs: 1, es: count });

function prep(ctx: GpuContext, p: Program, l: VectorLayout, eps: number, buffers: GPUBuffer[]) {
  return ctx.prepare(p as Program<typeof VEC_U.fields>, { R: l.count, len: l.len, vs: l.vs, es: l.es, eps }, buffers, l.count);
}

/** W = g * v / ‖v‖ per row of v ([R, S]); `norms` receives (‖v_r‖, g_r / ‖v_r‖) per row (vec2). */
export function weightNormForward(ctx: GpuContext, w: GpuTensor, norms: GPUBuffer, g: GpuTensor, v: GpuTensor, R: number, S: number): GpuRun {
  return [prep(ctx, weightNormForwardProgram(ctx.reduceMode), rowsOf(R, S), 0, [g.buffer, v.buffer, w.buffer, norms])];
}

/** dg += dW · v̂,  dv += (g / ‖v‖)(dW − (dW · v̂) v̂), per row; `norms` from weightNormForward. */
export function weightNormBackward(ctx: GpuContext, dg: GpuTensor, dv: GpuTensor, dW: GpuTensor, v: GpuTensor, norms: GPUBuffer, R: number, S: number): GpuRun {
  return [prep(ctx, weightNormBackwardProgram(ctx.reduceMode), rowsOf(R, S), 0, [v.buffer, dW.buffer, norms, dg.buffer, dv.buffer])];
}

/** u = x / max(‖x‖, eps) per vector (F.normalize); the norms go to `norms` (one f32 per vector). */
export function l2NormalizeForward(ctx: GpuContext, u: GpuTensor, norms: GPUBuffer, x: GpuTensor, layout: VectorLayout, eps: number): GpuRun {
  return [prep(ctx, l2ForwardProgram(ctx.reduceMode), layout, eps, [x.buffer, u.buffer, norms])];
}

/** dx (= or += with accumulate) = (du − u (u·du)) / ‖x‖, or du / eps where ‖x‖ < eps. */
export function l2NormalizeBackward(
  ctx: GpuContext, dx: GpuTensor, du: GpuTensor, u: GpuTensor, norms: GPUBuffer, layout: VectorLayout, eps: number, accumulate: boolean,
): GpuRun {
  return [prep(ctx, l2BackwardProgram(ctx.reduceMode, accumulate), layout, eps, [u.buffer, du.buffer, norms, dx.buffer])];
}

/** A small f32 buffer for per-vector norms. */
export function normsBuffer(ctx: GpuContext, count: number, perVector = 1): GPUBuffer {
  return ctx.createStorage(count * 4 * perVector, "norms");
}

export { GpuTensor };
