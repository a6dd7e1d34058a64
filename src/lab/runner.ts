/**
 * Runs a list of training runs, in this thread (threads = 1) or on a pool of worker threads started
 * once and reused (each takes the next run when it finishes one; the data set is shared with them
 * through SharedArrayBuffers, not copied). Workers are shut down when the list is done, so the
 * process can exit by itself. Results come back in the order of the list, whichever thread ran them.
 *
 * A run is trainRun (the batch-size lab) or, when `experiment` names one, that experiment's run
 * function from experiments/registry.ts (in this thread and in the workers alike).
 */
import { Worker } from "node:worker_threads";
import type { Dataset } from "./data.js";
import { type RunResult, type RunSpec, trainRun } from "./train.js";
import type { Device } from "../kernels/contract/device.js";
import { cpu } from "../kernels/cpu.js";
import * as backend from "../kernels/backend.js";
import { residentScope } from "../kernels/wasm/wasm_tensor.js";
import { saveModel } from "./save.js";
import { setModelSaver } from "./train.js";

// --save: trained models are written from the thread that trained them
setModelSaver(saveModel);
import { experimentNamed } from "./experiments/registry.js";
import type { ProgressFn } from "./train.js";

/** One run: a spec and the data set → its result (trainRun, or an experiment's run). */
export type RunFn<S, R> = (spec: S, data: Dataset, onProgress?: ProgressFn, device?: Device) => Promise<R>;

/** trainRun, or the run function of the registered experiment `experiment`. */
export function runFunction<S = RunSpec, R = RunResult>(experiment?: string): RunFn<S, R> {
  return (experiment === undefined ? trainRun : experimentNamed(experiment).run) as unknown as RunFn<S, R>;
}

export type RunnerEvent<S = RunSpec, R = RunResult> =
  | { type: "start"; index: number; spec: S }
  | { type: "progress"; index: number; samplesDone: number; samplesTotal: number }
  | { type: "done"; index: number; result: R };

/** Messages from a worker (see worker.ts). */
export type WorkerMessage<R = RunResult> =
  | { type: "progress"; index: number; samplesDone: number; samplesTotal: number }
  | { type: "done"; index: number; result: R }
  | { type: "error"; index: number; message: string };

/** Messages to a worker: one run to do (`experiment`: the registered experiment whose run it is; absent: trainRun). */
export type WorkerRequest<S = RunSpec> = { type: "run"; index: number; spec: S; experiment?: string };

/**
 * Runs every spec and returns the results in the same order. `order` optionally gives the order in
 * which to start them (longest first balances the threads); by default the list order. `threads`
 * runs go at a time, each with `threadsPerRun` intra-op threads (backend.configure in its thread).
 */
export async function runAll<S = RunSpec, R = RunResult>(
  specs: S[], data: Dataset, threads: number, onEvent: (e: RunnerEvent<S, R>) => void, order?: number[], device: Device = cpu,
  threadsPerRun = 1, experiment?: string,
): Promise<R[]> {
  const run = runFunction<S, R>(experiment);
  const queue = order ? [...order] : specs.map((_, i) => i);
  const results: (R | undefined)[] = new Array(specs.length);
  const nWorkers = Math.min(threads, specs.length);
  // a GPU device lives in this thread: its runs go one after the other here
  if (nWorkers <= 1 || device !== cpu) {
    const before = backend.info().threads;
    if (device === cpu && threadsPerRun > 1) await backend.configure({ threads: threadsPerRun });
    try {
      for (const i of queue) {
        onEvent({ type: "start", index: i, spec: specs[i]! });
        // a finished run's resident tensors go back to the WebAssembly memory at once (residentScope)
        const r = await residentScope(() => run(specs[i]!, data, (d, t) => onEvent({ type: "progress", index: i, samplesDone: d, samplesTotal: t }), device));
        results[i] = r;
        onEvent({ type: "done", index: i, result: r });
      }
    } finally {
      if (backend.info().threads !== before) await backend.configure({ threads: before });
    }
    return results as R[];
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
        const req: WorkerRequest<S> = { type: "run", index: i, spec: specs[i]! };
        if (experiment !== undefined) req.experiment = experiment;
        w.postMessage(req);
      };
      for (const w of workers) {
        w.on("message", (m: WorkerMessage<R>) => {
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
  return results as R[];
}
