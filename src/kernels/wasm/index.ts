/**
 * The WebAssembly SIMD kernel set: float32 NCHW views on host tensors (the module's shifted sums are
 * flushed to float64 and applied to x - f32(mean), so float32 inputs with a large offset stay within
 * the float32 tolerance). The registry (../registry.ts) sends it the calls it supports and the rest
 * to the TypeScript set.
 */
import type { NormKernels } from "../contract/kernels.js";
import { hostKernelSet } from "../ts/host_set.js";
import { wasmKernels } from "./wasm.js";

let set: NormKernels | null | undefined;

/** The WebAssembly kernel set, or null where WebAssembly SIMD cannot run here. */
export function wasmKernelSet(): NormKernels | null {
  if (set !== undefined) return set;
  const prims = wasmKernels();
  set = prims ? hostKernelSet("wasm", prims, (x, plan, affine) => x.isHost && x.data instanceof Float32Array && prims.supports(x.data, plan.shape, plan.cfg, affine)) : null;
  return set;
}
