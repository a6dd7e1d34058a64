/**
 * Runs a list of training runs, in this thread (threads = 1) or on a pool of worker threads started
 * once and reused (each takes the next run when it finishes one; the data set is shared with them
 * through SharedArrayBuffers, not copied). Workers are shut down when the list is done, so the
 * process can exit by itself. Results come back in the order of the list, whichever thread ran them.
 */
import { Worker } from "node:worker_threads";
import type { Dataset } from "./data.js";
import { type RunResult, type RunSpec, trainRun } from "./train.js";
import type { Device } from "../kernels/contract/device.js";
import { cpu } from "../kernels/cpu.js";
import * as backend from "../kernels/backend.js";
import { residentScope } from "../kernels/wasm/wasm_tensor.js";

export type RunnerEvent =
  | { type: "start"; index: number; spec: RunSpec }
  | { type: "progress"; index: number; samplesDone: number; samplesTotal: number }
  | { type: "done"; index: number; result: RunResult };

/** Messages from a worker (see worker.ts). */
export type WorkerMessage =
  | { type: "progress"; index: number; samplesDone: number; samplesTotal: number }
  | { type: "done"; index: number; result: RunResult }
  | { type: "error"; index: number; message: string };

/** Messages to a worker: one run to do. */
export type WorkerRequest = { type: "run"; index: number; spec: RunSpec };

/**
 * Runs every spec and returns the results in the same order. `order` optionally gives the order in
 * which to start them (longest first balances the threads); by default the list order. `threads`
 * runs go at a time, each with `threadsPerRun` intra-op threads (backend.configure in its thread).
 */
export async function runAll(
  specs: RunSpec[], data: Dataset, threads: number, onEvent: (e: RunnerEvent) => void, order?: number[], device: Device = cpu,
  threadsPerRun = 1,
): Promise<RunResult[]> {
  const queue = order ? [...order] : specs.map((_, i) => i);
  const results: (RunResult | undefined)[] = new Array(specs.length);
  const nWorkers = Math.min(threads, specs.length);
  // a GPU device lives in this thread: its runs go one after the other here
  if (nWorkers <= 1 || device !== cpu) {
    const before = backend.info().threads;
    if (device === cpu && threadsPerRun > 1) await backend.configure({ threads: threadsPerRun });
    try {
      for (const i of queue) {
        onEvent({ type: "start", index: i, spec: specs[i]! });
        // a finished run's resident tensors go back to the WebAssembly memory at once (residentScope)
        const r = await residentScope(() => trainRun(specs[i]!, data, (d, t) => onEvent({ type: "progress", index: i, samplesDone: d, samplesTotal: t }), device));
        results[i] = r;
        onEvent({ type: "done", index: i, result: r });
      }
    } finally {
      if (backend.info().threads !== before) await backend.configure({ threads: before });
    }
    return results as RunResult[];
  }

  const workers = Array.from({ length: nWorkers }, () => new Worker(new URL("./worker.js", import.meta.url), { workerData: { data, threadsPerRun } }));
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      let failed = false;
      const next = (w: Worker): void => {
        const i = queue.shift();
        if (i === undefined) {
          if (running === 0) resolve();
          return;
        }
        running++;
        onEvent({ type: "start", index: i, spec: specs[i]! });
        w.postMessage({ type: "run", index: i, spec: specs[i]! } satisfies WorkerRequest);
      };
      for (const w of workers) {
        w.on("message", (m: WorkerMessage) => {
          if (failed) return;
          if (m.type === "progress") onEvent(m);
          else if (m.type === "done") {
            results[m.index] = m.result;
            running--;
            onEvent(m);
            next(w);
          } else {
            failed = true;
            reject(new Error(m.message));
          }
        });
        w.on("error", (e) => {
          failed = true;
          reject(e);
        });
        w.on("exit", (code) => {
          if (!failed && code !== 0 && (queue.length > 0 || running > 0)) {
            failed = true;
            reject(new Error(`a training worker exited with code ${code}`));
          }
        });
      }
      for (const w of workers) next(w);
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results as RunResult[];
}
