/**
 * A training worker (see runner.ts): receives runs one at a time, trains each with the shared data
 * set, reports progress (at most every ~100 ms) and the result.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Dataset } from "./data.js";
import type { WorkerMessage, WorkerRequest } from "./runner.js";
import { runFunction } from "./runner.js";
import * as backend from "../kernels/backend.js";
import { residentScope } from "../kernels/wasm/wasm_tensor.js";
import { saveModel } from "./save.js";
import { setModelSaver } from "./train.js";

// --save: trained models are written from the thread that trained them
setModelSaver(saveModel);

const port = parentPort;
if (!port) throw new Error("lab worker: must run as a worker thread");
const { data, threadsPerRun } = workerData as { data: Dataset; threadsPerRun?: number };
// intra-op threads of this worker's runs: its own kernel workers, on its own WebAssembly memory
const ready = threadsPerRun !== undefined && threadsPerRun > 1 ? backend.configure({ threads: threadsPerRun }) : Promise.resolve();

port.on("message", async (req: WorkerRequest<unknown>) => {
  const index = req.index;
  let last = 0;
  try {
    await ready;
    // a finished run's resident tensors go back to the WebAssembly memory at once (residentScope)
    const run = runFunction<unknown, unknown>(req.experiment);
    const result = await residentScope(() => run(req.spec, data, (samplesDone, samplesTotal) => {
      const now = performance.now();
      if (now - last < 100 && samplesDone < samplesTotal) return;
      last = now;
      port.postMessage({ type: "progress", index, samplesDone, samplesTotal } satisfies WorkerMessage);
    }));
    port.postMessage({ type: "done", index, result } satisfies WorkerMessage<unknown>);
  } catch (e) {
    port.postMessage({ type: "error", index, message: e instanceof Error ? e.message : String(e) } satisfies WorkerMessage);
  }
});
