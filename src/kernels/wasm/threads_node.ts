/**
 * Kernel threads for Node: worker_threads that share the kernels' WebAssembly memory. Started once
 * (`startThreads`), reused by every call, unref'd so that they never keep a process alive, and
 * stopped by `stopThreads` (or at process exit). In a browser (no worker_threads) starting threads
 * is a no-op and every call runs on the calling thread.
 */
import {
  CTL_BLOCK, CTL_DONE, CTL_SEQ, CTL_STATE, CTL_STOP, CTL_THREADS, CTL_WORDS, MAX_WORKERS, SEQ_MASK, SPIN, STATE_CLOSED,
  STATE_JOINED_MASK, WorkerInit,
} from "./pool_protocol.js";
import type { ParallelRunner, WasmRuntime } from "./wasm.js";

interface NodeWorker {
  unref(): void;
  terminate(): Promise<number>;
  once(ev: string, fn: (v: unknown) => void): void;
}

class Pool implements ParallelRunner {
  readonly ctl: Int32Array;
  workers = 0;
  private seq = 0;
  constructor(
    readonly sab: SharedArrayBuffer,
    readonly handles: NodeWorker[],
  ) {
    this.ctl = new Int32Array(sab);
  }

  run(block: number, threads: number, main: (block: number, tid: number, threads: number) => void): number {
    const ctl = this.ctl;
    const seq = (this.seq = (this.seq + 1) & SEQ_MASK);
    Atomics.store(ctl, CTL_THREADS, threads);
    Atomics.store(ctl, CTL_BLOCK, block);
    Atomics.store(ctl, CTL_DONE, 0);
    Atomics.store(ctl, CTL_STATE, seq << 7);
    Atomics.store(ctl, CTL_SEQ, seq);
    Atomics.notify(ctl, CTL_SEQ);
    main(block, 0, threads);
    // close the call; wait for the workers that joined it
    let st = Atomics.load(ctl, CTL_STATE);
    for (;;) {
      const prev = Atomics.compareExchange(ctl, CTL_STATE, st, st | STATE_CLOSED);
      if (prev === st) break;
      st = prev;
    }
    const joined = st & STATE_JOINED_MASK;
    let d = Atomics.load(ctl, CTL_DONE);
    for (let i = 0; d < joined && i < SPIN * 4; i++) d = Atomics.load(ctl, CTL_DONE);
    while (d < joined) {
      Atomics.wait(ctl, CTL_DONE, d, 50);
      d = Atomics.load(ctl, CTL_DONE);
    }
    return joined + 1;
  }

  async stop(): Promise<void> {
    Atomics.store(this.ctl, CTL_STOP, 1);
    Atomics.add(this.ctl, CTL_SEQ, 1);
    Atomics.notify(this.ctl, CTL_SEQ);
    this.workers = 0;
    await Promise.all(this.handles.map((w) => w.terminate()));
  }
}

let pool: Pool | null = null;

/** Starts `count` kernel workers (replacing any running ones); resolves once they are ready. */
export async function startThreads(rt: WasmRuntime, count: number): Promise<number> {
  await stopThreads(rt);
  if (count <= 0) return 0;
  const isNode = typeof process === "object" && !!process.versions?.node;
  if (!isNode || !rt.shared) return 0; // workers need the shared memory
  const wt = await import("node:worker_threads");
  const n = Math.min(count, MAX_WORKERS);
  const sab = new SharedArrayBuffer(CTL_WORDS * 4);
  const handles: NodeWorker[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const data: WorkerInit = { module: rt.module, memory: rt.memory, ctl: sab, index: i };
    const w = new wt.Worker(new URL("./worker_node.js", import.meta.url), { workerData: data });
    w.unref();
    handles.push(w);
    ready.push(
      new Promise<void>((resolve, reject) => {
        w.once("message", () => resolve());
        w.once("error", (e) => reject(e));
      }),
    );
  }
  const p = new Pool(sab, handles);
  pool = p;
  rt.runner = p;
  try {
    await Promise.all(ready);
  } catch (e) {
    await stopThreads(rt);
    throw e;
  }
  p.workers = n;
  return n;
}

export async function stopThreads(rt: WasmRuntime | null): Promise<void> {
  const p = pool;
  pool = null;
  if (rt) rt.runner = null;
  if (p) await p.stop();
}
