/**
 * Backend settings: which kernels run (`kernels`) and on how many threads (`threads`).
 *
 *   await normkit.backend.configure({ threads: 2 });   // start one worker; calls on ≥ 64K values use 2 threads
 *   normkit.backend.configure({ kernels: "ts" });      // plain TypeScript everywhere
 *   await normkit.backend.shutdown();                  // stop the workers (they never keep Node alive anyway)
 */
import { ConfigError } from "../errors.js";
import { KernelMode, checkKernelMode, getKernelMode, setKernelMode } from "./registry.js";
import { MAX_WORKERS } from "./wasm/pool_protocol.js";
import { startThreads, stopThreads } from "#threads"; // threads_node.js in Node, threads_none.js elsewhere (package.json "imports")
import { PARALLEL_MIN_ELEMENTS, setWasmThreads, wasmRuntime, wasmUnavailableReason } from "./wasm/wasm.js";

export type { KernelMode } from "./registry.js";
export type { NormKernels, KernelSetName } from "./contract/kernels.js";
export type { HostPrimitives } from "./contract/host.js";
export { PARALLEL_MIN_ELEMENTS } from "./wasm/wasm.js";

/**
 * The most threads a call may use: the calling thread and the 32 kernel workers the pool's control
 * block has room for (pool_protocol.ts). More threads than the machine has cores are allowed (they
 * share the cores); more than this is a ConfigError.
 */
export const MAX_THREADS = MAX_WORKERS + 1;

export interface BackendOptions {
  /** "auto" (default): WebAssembly SIMD for float32 where available; "ts": TypeScript only; "wasm": as auto, but an error where unavailable. */
  kernels?: KernelMode;
  /**
   * Threads a large call may use (default 1): an integer from 1 to MAX_THREADS. Above 1, Node
   * starts threads - 1 worker_threads once and reuses them; inputs under PARALLEL_MIN_ELEMENTS
   * values always run on one thread. Where there are no worker threads (browsers) or no shared
   * memory, calls run on one thread: `info().threads` is the count in effect.
   */
  threads?: number;
}

let threads = 1;
let poolWorkers = 0;

const describe = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : typeof v === "object" && v !== null ? Object.prototype.toString.call(v) : String(v));

/**
 * Applies the options; resolves once requested worker threads are running. Every option is checked
 * before any is applied: an unknown key, an unknown `kernels` mode or a `threads` that is not an
 * integer from 1 to MAX_THREADS rejects with a ConfigError and changes nothing.
 */
export async function configure(o: BackendOptions): Promise<void> {
  const ctx = "backend.configure";
  if (typeof o !== "object" || o === null) throw new ConfigError("options", "an object { kernels?, threads? }", describe(o), ctx);
  const unknown = Object.keys(o).filter((k) => k !== "kernels" && k !== "threads");
  if (unknown.length) throw new ConfigError(unknown.join(", "), "only the options kernels and threads", `unknown option ${unknown.map((k) => JSON.stringify(k)).join(", ")}`, ctx);
  const { kernels, threads: want } = o;
  if (kernels !== undefined) checkKernelMode(kernels); // throws a ConfigError on an unknown mode
  if (want !== undefined && (typeof want !== "number" || !Number.isInteger(want) || want < 1 || want > MAX_THREADS))
    throw new ConfigError("threads", `an integer from 1 to ${MAX_THREADS}`, describe(want), ctx);
  if (kernels !== undefined) setKernelMode(kernels);
  if (want !== undefined) {
    const rt = wasmRuntime();
    if (!rt) {
      threads = 1;
      return;
    }
    // workers are started once and kept: asking for fewer threads only uses fewer of them
    if (want - 1 > poolWorkers) poolWorkers = await startThreads(rt, want - 1);
    threads = Math.min(want, poolWorkers + 1);
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
  /** The threads a large call uses now (1 where no workers could start: a browser, no shared memory). */
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
