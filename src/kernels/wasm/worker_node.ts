/**
 * A kernel worker (Node worker_threads): instantiates the kernels on the shared memory and joins
 * every parallel call it wakes up in time for (protocol: pool_protocol.ts) until told to stop.
 * Started by src/kernels/wasm/threads_node.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import {
  CTL_BLOCK, CTL_DONE, CTL_READY, CTL_SEQ, CTL_STATE, CTL_STOP, CTL_THREADS, SPIN, STATE_CLOSED, STATE_JOINED_MASK, WorkerInit,
} from "./pool_protocol.js";

const init = workerData as WorkerInit;
const inst = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
const run = (inst.exports as unknown as { run(block: number, tid: number, threads: number): void }).run;
const ctl = new Int32Array(init.ctl);

let seen = Atomics.load(ctl, CTL_SEQ);
Atomics.store(ctl, CTL_READY + init.index, 1);
parentPort?.postMessage("ready");

for (;;) {
  let s = Atomics.load(ctl, CTL_SEQ);
  for (let i = 0; s === seen && i < SPIN; i++) s = Atomics.load(ctl, CTL_SEQ);
  if (s === seen) {
    Atomics.wait(ctl, CTL_SEQ, seen);
    continue;
  }
  seen = s;
  if (Atomics.load(ctl, CTL_STOP)) break;
  // join the call if it is still open
  let st = Atomics.load(ctl, CTL_STATE);
  let tid = 0;
  const threads = Atomics.load(ctl, CTL_THREADS);
  while (st >>> 7 === seen && (st & STATE_CLOSED) === 0 && (st & STATE_JOINED_MASK) + 1 < threads) {
    const prev = Atomics.compareExchange(ctl, CTL_STATE, st, st + 1);
    if (prev === st) {
      tid = (st & STATE_JOINED_MASK) + 1;
      break;
    }
    st = prev;
  }
  if (tid === 0) continue;
  run(Atomics.load(ctl, CTL_BLOCK), tid, threads);
  Atomics.add(ctl, CTL_DONE, 1);
  Atomics.notify(ctl, CTL_DONE);
}
