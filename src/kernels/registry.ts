/**
 * Per-call kernel selection. Mode "auto" (default) runs the WebAssembly kernels for float32 NCHW
 * views where WebAssembly SIMD and shared memory exist, and the TypeScript kernels otherwise (always
 * for float64: the exact path). "ts" forces the TypeScript kernels, "wasm" prefers WebAssembly
 * exactly as "auto" does but makes an unavailable runtime an error (tests force each path).
 * The environment variable NORMKIT_KERNELS=ts|wasm|auto sets the initial mode in Node.
 */
import type { AffineKind, NormShape, StatsConfig } from "./ts/norm.js";
import type { FloatArray } from "../tensor.js";
import type { NormKernels } from "./contract/norm.js";
import { tsKernels } from "./ts/index.js";
import { wasmKernels, wasmUnavailableReason } from "./wasm/wasm.js";

export type KernelMode = "auto" | "wasm" | "ts";

function initialMode(): KernelMode {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.["NORMKIT_KERNELS"];
  return env === "ts" || env === "wasm" || env === "auto" ? env : "auto";
}

let mode: KernelMode = initialMode();

export function getKernelMode(): KernelMode {
  return mode;
}

/** Sets the mode; "wasm" throws where the WebAssembly kernels cannot run here. */
export function setKernelMode(m: KernelMode): void {
  if (m !== "auto" && m !== "wasm" && m !== "ts") throw new TypeError(`kernels: expected "auto", "wasm" or "ts", got ${String(m)}`);
  if (m === "wasm" && !wasmKernels()) throw new Error(`kernels: WebAssembly kernels unavailable here (${wasmUnavailableReason()})`);
  mode = m;
}

/** The kernels for one call. */
export function kernelsFor(x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, affine: AffineKind): NormKernels {
  if (mode === "ts" || !(x instanceof Float32Array)) return tsKernels;
  const w = wasmKernels();
  return w && w.supports(x, shape, cfg, affine) ? w : tsKernels;
}
