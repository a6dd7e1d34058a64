/**
 * Backend settings: which kernels run (`kernels`) and on how many threads (`threads`).
 *
 *   await normkit.backend.configure({ threads: 2 });   // start one worker; calls on ≥ 64K values use 2 threads
 *   normkit.backend.configure({ kernels: "ts" });      // plain TypeScript everywhere
 *   await normkit.backend.shutdown();                  // stop the workers (they never keep Node alive anyway)
 */
import { KernelMode, getKernelMode, setKernelMode } from "./registry.js";
import { startThreads, stopThreads } from "#threads"; // threads_node.js in Node, threads_none.js elsewhere (package.json "imports")
import { PARALLEL_MIN_ELEMENTS, setWasmThreads, wasmRuntime, wasmUnavailableReason } from "./wasm/wasm.js";

export type { KernelMode } from "./registry.js";
export type { NormKernels, KernelSetName } from "./contract/kernels.js";
export type { HostPrimitives } from "./contract/host.js";
export { PARALLEL_MIN_ELEMENTS } from "./wasm/wasm.js";

export interface BackendOptions {
  /** "auto" (default): WebAssembly SIMD for float32 where available; "ts": TypeScript only; "wasm": as auto, but an error where unavailable. */
  kernels?: KernelMode;
  /**
   * Threads a large call may use (default 1). Above 1, Node starts threads - 1 worker_threads once
   * and reuses them; inputs under PARALLEL_MIN_ELEMENTS values always run on one thread.
   */
  threads?: number;
}

let threads = 1;
let poolWorkers = 0;

/** Applies the options; resolves once requested worker threads are running. */
export async function configure(o: BackendOptions): Promise<void> {
  if (o.kernels !== undefined) setKernelMode(o.kernels);
  if (o.threads !== undefined) {
    if (!Number.isInteger(o.threads) || o.threads < 1) throw new TypeError(`threads: expected an integer >= 1, got ${String(o.threads)}`);
    const rt = wasmRuntime();
    if (!rt) {
      threads = 1;
      return;
    }
    // workers are started once and kept: asking for fewer threads only uses fewer of them
    if (o.threads - 1 > poolWorkers) poolWorkers = await startThreads(rt, o.threads - 1);
    threads = Math.min(o.threads, poolWorkers + 1);
    setWasmThreads(threads);
  }
}

/** Stops the worker threads; later calls run on one thread until `configure({ threads })` again. */
export async function shutdown(): Promise<void> {
  await stopThreads(wasmRuntime());
  poolWorkers = 0;
  threads = 1;
  setWasmThreads(1);
}

export interface BackendInfo {
  kernels: KernelMode;
  /** Whether the WebAssembly SIMD kernels can run here. */
  wasm: boolean;
  /** Whether their memory is shared (worker threads possible); false on pages without SharedArrayBuffer. */
  wasmShared: boolean;
  /** Why not, when they cannot. */
  wasmReason: string | null;
  threads: number;
  /** Calls that ran on the WebAssembly kernels so far. */
  wasmCalls: number;
  /** Bytes of the WebAssembly memory in use by tensors and scratch. */
  wasmBytes: number;
}

export function info(): BackendInfo {
  const rt = wasmRuntime();
  return {
    kernels: getKernelMode(),
    wasm: !!rt,
    wasmShared: !!rt?.shared,
    wasmReason: wasmUnavailableReason(),
    threads,
    wasmCalls: rt?.calls ?? 0,
    wasmBytes: rt?.allocatedBytes() ?? 0,
  };
}
