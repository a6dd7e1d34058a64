/**
 * Kernel threads where there are none to start: the `default` target of the package's `#threads`
 * import (package.json "imports"), which browsers and bundlers for the browser get. Node gets
 * threads_node.ts (the `node` condition). Same functions, same signatures: starting threads
 * starts nothing, and every call runs on the calling thread.
 */
import type { WasmRuntime } from "./wasm.js";

/** Starts no worker (there is no worker_threads here); resolves to 0, the number started. */
export async function startThreads(rt: WasmRuntime, count: number): Promise<number> {
  void count;
  await stopThreads(rt);
  return 0;
}

/** Detaches any parallel runner from the runtime (there is never one of ours). */
export async function stopThreads(rt: WasmRuntime | null): Promise<void> {
  if (rt) rt.runner = null;
}

/** The two targets of `#threads` offer the same functions: tsc checks this module against threads_node.ts. */
type SameAs<T extends typeof import("./threads_node.js")> = T;
export type ThreadsModule = SameAs<typeof import("./threads_none.js")>;
