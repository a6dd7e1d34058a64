/**
 * Which kernel set runs a call. On the host, mode "auto" (default) runs the WebAssembly kernels for
 * float32 NCHW views where WebAssembly SIMD exists, and the TypeScript kernels otherwise (always for
 * float64: the exact path); "ts" forces the TypeScript kernels; "wasm" prefers WebAssembly exactly
 * as "auto" does but makes an unavailable runtime an error (tests force each path). The environment
 * variable NORMKIT_KERNELS=ts|wasm|auto sets the initial mode in Node. Tensors on a GPU run on
 * their device's set (src/kernels/webgpu), chosen by the device, not here.
 */
import type { Tensor } from "../tensor.js";
import type { NormKernels } from "./contract/kernels.js";
import type { HostPrimitives } from "./contract/host.js";
import type { AffineKind, NormPlan, NormShape, StatsConfig } from "./contract/view.js";
import type { FloatArray } from "../tensor.js";
import { tsKernels, tsPrimitives } from "./ts/index.js";
import { wasmKernelSet } from "./wasm/index.js";
import { setWasmFallback, wasmKernels, wasmUnavailableReason } from "./wasm/wasm.js";

// a WebAssembly call the memory cannot take runs on the TypeScript primitives
setWasmFallback(tsPrimitives);
import { ConfigError } from "../errors.js";

export type KernelMode = "auto" | "wasm" | "ts";

function initialMode(): KernelMode {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.["NORMKIT_KERNELS"];
  return env === "ts" || env === "wasm" || env === "auto" ? env : "auto";
}

let mode: KernelMode = initialMode();

export function getKernelMode(): KernelMode {
  return mode;
}

/** Checks that `m` is a mode: a ConfigError otherwise (the value is a user's, so any type). */
export function checkKernelMode(m: unknown): KernelMode {
  if (m !== "auto" && m !== "wasm" && m !== "ts")
    throw new ConfigError("kernels", '"auto", "wasm" or "ts"', typeof m === "string" ? JSON.stringify(m) : String(m), "backend.configure");
  return m;
}

/** Sets the mode; a ConfigError for an unknown mode, and for "wasm" where the WebAssembly kernels cannot run here. */
export function setKernelMode(m: KernelMode): void {
  checkKernelMode(m);
  if (m === "wasm" && !wasmKernels())
    throw new ConfigError("kernels", '"wasm" where the WebAssembly kernels can run', `unavailable here (${wasmUnavailableReason()})`, "backend.configure");
  mode = m;
}

/** The host kernel set for one call. */
export function hostSetFor(x: Tensor, plan: NormPlan, affine: AffineKind): NormKernels {
  if (mode === "ts") return tsKernels;
  const w = wasmKernelSet();
  return w && w.supports(x, plan, affine) ? w : tsKernels;
}

/** The array-level host kernels for one call (functional helpers that work on plain typed arrays). */
export function hostPrimitivesFor(x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, affine: AffineKind): HostPrimitives {
  if (mode === "ts" || !(x instanceof Float32Array)) return tsPrimitives;
  const w = wasmKernels();
  return w && w.supports(x, shape, cfg, affine) ? w : tsPrimitives;
}

/**
 * The kernels of host tensors: each call goes to the set {@link hostSetFor} picks. The sets share
 * their statistics, scratch and work types (src/kernels/ts/host_set.ts), so one layer's calls may
 * run on different sets.
 */
export const cpuKernels: NormKernels = {
  name: "auto",
  supports: (x) => x.isHost,
  createStats: tsKernels.createStats,
  createScratch: tsKernels.createScratch,
  createSwitchWork: tsKernels.createSwitchWork,
  forwardTrain: (o) => hostSetFor(o.x, o.plan, o.affine).forwardTrain(o),
  statsFromRunning: (o) => tsKernels.statsFromRunning(o),
  normalize: (o) => hostSetFor(o.x, o.plan, o.affine).normalize(o),
  backward: (o) => hostSetFor(o.x, o.plan, o.affine).backward(o),
  switchForward: (o) => hostSetFor(o.x, o.plan, "channel").switchForward(o),
  switchBackward: (o) => hostSetFor(o.x, o.plan, "channel").switchBackward(o),
};
