/**
 * Collectives for data-parallel training: the all-reduce SyncBatchNorm and the gradient average use,
 * and its implementations.
 *
 * - {@link AllReduce}: one worker's handle on a group of `size` workers — `sum(values)` replaces
 *   `values` by the element-wise sum of every worker's `values`, in place, and returns when it has.
 *   Every worker calls the same collectives in the same order with arrays of the same length.
 *   Synchronous: normkit's forward and backward are synchronous, so a worker blocks in `sum` until
 *   the others have contributed. Any collective can back it (a user's MPI, NCCL or WebSocket
 *   all-reduce across machines, run on a thread that may block): implement `rank`, `size`, `sum`.
 * - {@link SharedMemoryGroup}: workers of one process (Node's worker_threads, or a browser's Web
 *   Workers) over one SharedArrayBuffer, with Atomics.wait between them. A browser's main thread may
 *   not block (Atomics.wait throws there): run the ranks in Web Workers (a cross-origin-isolated
 *   page, for SharedArrayBuffer). Node's main thread may be a rank. No Node API: it is in the core.
 * - {@link InProcessGroup}: W simulated workers in one thread, in lock-step. A layer given it sees
 *   the concatenation along dim 0 of every worker's batch (worker 0's rows first) and combines the
 *   workers' per-channel contributions exactly as an all-reduce of them would (summed in rank order).
 *   Since every other layer of a network works per sample, one network on the concatenated batch,
 *   with its loss the mean over the global batch, computes what W replicas with DDP's averaged
 *   gradients compute.
 *
 * Sums are float64 and taken in rank order on every worker, so every rank gets the same bits.
 */
import { ConfigError, ShapeError, StateError } from "../errors.js";
import type { Module } from "./module.js";

/** One worker's handle on a group: an all-reduce (sum) over every worker's array. */
export interface AllReduce {
  /** This worker's index, 0 … size − 1. */
  readonly rank: number;
  /** The number of workers. */
  readonly size: number;
  /**
   * Replaces `values` by the element-wise sum over the group's workers, in place. Every worker calls
   * it with an array of the same length (else a ShapeError on every worker). Blocks until done.
   */
  sum(values: Float64Array): void;
}

/** What a SyncBatchNorm (or the gradient helpers) can synchronise over. */
export type SyncGroup = AllReduce | InProcessGroup;

// ---------------------------------------------------------------------------------------------
// One worker

/** A group of one (rank 0 of 1): sum leaves the values as they are. SyncBatchNorm with it is BatchNorm. */
export const singleWorker: AllReduce = Object.freeze({ rank: 0, size: 1, sum(_values: Float64Array): void {} });

// ---------------------------------------------------------------------------------------------
// Simulated workers in one thread

export interface InProcessGroupOptions {
  /** W, the number of simulated workers; the batch is split in W equal parts. */
  workers?: number;
  /** Rows of the batch per worker, in rank order (uneven splits, a worker with 0 rows); overrides `workers`. */
  counts?: readonly number[];
}

/**
 * W simulated workers run in lock-step in one thread (see the module comment): worker k's rows of a
 * batch are rows offset_k … offset_k + count_k − 1 of dim 0.
 */
export class InProcessGroup {
  readonly size: number;
  /** The fixed split, or null for W equal parts of whatever batch comes. */
  readonly counts: readonly number[] | null;

  constructor(options: InProcessGroupOptions) {
    const ctx = "InProcessGroup";
    if (options === null || typeof options !== "object") throw new ConfigError("options", "{ workers } or { counts }", String(options), ctx);
    if (options.counts !== undefined) {
      const c = options.counts;
      if (!Array.isArray(c) || c.length === 0 || c.some((v) => !Number.isInteger(v) || v < 0)) {
        throw new ConfigError("counts", "a non-empty array of non-negative integers", JSON.stringify(c), ctx);
      }
      this.counts = Object.freeze([...c]);
      this.size = c.length;
    } else {
      const w = options.workers;
      if (typeof w !== "number" || !Number.isInteger(w) || w < 1) throw new ConfigError("workers", "a positive integer", String(w), ctx);
      this.counts = null;
      this.size = w;
    }
  }

  /** The rows of each worker for a batch of N. */
  split(N: number, ctx = "InProcessGroup.split"): readonly number[] {
    if (this.counts) {
      const total = this.counts.reduce((a, b) => a + b, 0);
      if (total !== N) throw new ShapeError("x", `a batch of ${total} rows (the group's counts ${JSON.stringify(this.counts)})`, `${N} rows`, ctx);
      return this.counts;
    }
    if (N % this.size !== 0) throw new ShapeError("x", `a batch divisible by the group's ${this.size} workers`, `${N} rows`, ctx);
    return new Array<number>(this.size).fill(N / this.size);
  }
}

// ---------------------------------------------------------------------------------------------
// Workers of one process over shared memory

// Control words (Int32): the barrier's generation and arrival count, then each rank's array length.
const GEN = 0, ARRIVED = 1, LEN0 = 2;

/** What every worker of a SharedMemoryGroup needs (post it to each; structured clone shares the buffer). */
export interface SharedGroupInit {
  readonly size: number;
  /** Float64 values per rank per round; longer arrays go in several rounds. */
  readonly capacity: number;
  readonly buffer: SharedArrayBuffer;
}

export interface SharedMemoryGroupOptions {
  /** Milliseconds a worker waits for the others at one collective before a StateError. Default: forever. */
  timeoutMs?: number;
}

/**
 * An all-reduce among the workers (threads) of one process over a SharedArrayBuffer:
 *
 *   const init = SharedMemoryGroup.create(W);            // once, then post `init` to every worker
 *   const group = SharedMemoryGroup.join(init, rank);    // in worker `rank`
 *
 * `sum` writes this rank's values to its slot, waits at a barrier for all, sums the slots in rank
 * order (every rank the same bits), and waits at a second barrier before the slots are reused.
 * Ranks block in Atomics.wait: worker threads, Web Workers, or Node's main thread — not a browser's
 * main thread.
 */
export class SharedMemoryGroup implements AllReduce {
  private readonly ctl: Int32Array;
  private readonly slots: Float64Array;
  private readonly capacity: number;
  private readonly timeoutMs: number;

  private constructor(init: SharedGroupInit, readonly rank: number, options: SharedMemoryGroupOptions) {
    this.size = init.size;
    this.capacity = init.capacity;
    const ctlBytes = ctlBytesOf(init.size);
    this.ctl = new Int32Array(init.buffer, 0, ctlBytes / 4);
    this.slots = new Float64Array(init.buffer, ctlBytes, init.size * init.capacity);
    this.timeoutMs = options.timeoutMs ?? Infinity;
  }
  readonly size: number;

  /** The shared state of a group of `size` workers; `capacity` float64 values per rank per round (default 65,536). */
  static create(size: number, options: { capacity?: number } = {}): SharedGroupInit {
    const ctx = "SharedMemoryGroup.create";
    if (!Number.isInteger(size) || size < 1) throw new ConfigError("size", "a positive integer", String(size), ctx);
    const capacity = options.capacity ?? 65536;
    if (!Number.isInteger(capacity) || capacity < 1) throw new ConfigError("capacity", "a positive integer", String(capacity), ctx);
    if (typeof SharedArrayBuffer === "undefined") throw new ConfigError("SharedArrayBuffer", "available (a cross-origin-isolated page in a browser)", "undefined", ctx);
    return { size, capacity, buffer: new SharedArrayBuffer(ctlBytesOf(size) + size * capacity * 8) };
  }

  /** This worker's handle on the group of `init` as rank `rank`. */
  static join(init: SharedGroupInit, rank: number, options: SharedMemoryGroupOptions = {}): SharedMemoryGroup {
    const ctx = "SharedMemoryGroup.join";
    if (init === null || typeof init !== "object" || !(init.buffer instanceof SharedArrayBuffer)) {
      throw new ConfigError("init", "what SharedMemoryGroup.create returned", String(init), ctx);
    }
    if (!Number.isInteger(rank) || rank < 0 || rank >= init.size) throw new ConfigError("rank", `an integer in 0 … ${init.size - 1}`, String(rank), ctx);
    const t = options.timeoutMs;
    if (t !== undefined && !(typeof t === "number" && t > 0)) throw new ConfigError("timeoutMs", "a positive number of milliseconds", String(t), ctx);
    return new SharedMemoryGroup(init, rank, options);
  }

  sum(values: Float64Array): void {
    const ctx = `SharedMemoryGroup.sum (rank ${this.rank})`;
    if (!(values instanceof Float64Array)) throw new ConfigError("values", "a Float64Array", Object.prototype.toString.call(values), ctx);
    const { size, capacity, ctl, slots, rank } = this;
    if (size === 1) return;
    // round 0 also checks that every rank brought as many values
    Atomics.store(ctl, LEN0 + rank, values.length);
    let first = true;
    for (let off = 0; first || off < values.length; off += capacity) {
      const n = Math.min(capacity, values.length - off);
      slots.set(values.subarray(off, off + n), rank * capacity);
      this.barrier(ctx);
      if (first) {
        first = false;
        for (let r = 0; r < size; r++) {
          const len = Atomics.load(ctl, LEN0 + r);
          if (len !== values.length) {
            // every rank sees the same lengths and throws the same error; a last barrier lets the slots go
            this.barrier(ctx);
            throw new ShapeError("values", `the same number of values on every rank (rank ${r} gave ${len})`, `${values.length} on rank ${rank}`, ctx);
          }
        }
      }
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let r = 0; r < size; r++) s += slots[r * capacity + i]!;
        values[off + i] = s;
      }
      this.barrier(ctx);
    }
  }

  /** Waits until every rank has arrived (a generation counter: reusable at once). */
  private barrier(ctx: string): void {
    const ctl = this.ctl;
    const gen = Atomics.load(ctl, GEN);
    if (Atomics.add(ctl, ARRIVED, 1) === this.size - 1) {
      Atomics.store(ctl, ARRIVED, 0);
      Atomics.add(ctl, GEN, 1);
      Atomics.notify(ctl, GEN);
      return;
    }
    const deadline = this.timeoutMs === Infinity ? Infinity : performance.now() + this.timeoutMs;
    while (Atomics.load(ctl, GEN) === gen) {
      const left = deadline === Infinity ? 1000 : deadline - performance.now();
      if (left <= 0) throw new StateError("group", `all ${this.size} ranks at the collective within ${this.timeoutMs} ms`, "a rank missing (it failed, or called other collectives)", ctx);
      Atomics.wait(ctl, GEN, gen, Math.min(left, 1000));
    }
  }
}

function ctlBytesOf(size: number): number {
  return Math.ceil(((LEN0 + size) * 4) / 8) * 8;
}

// ---------------------------------------------------------------------------------------------
// Checks and the data-parallel helpers

/** Throws a ConfigError unless `g` is an AllReduce or an InProcessGroup. */
export function checkGroup(g: unknown, ctx: string): SyncGroup {
  if (g instanceof InProcessGroup) return g;
  const a = g as Partial<AllReduce> | null;
  if (a === null || typeof a !== "object" || typeof a.sum !== "function") {
    throw new ConfigError("group", "an AllReduce ({ rank, size, sum(values) }) or an InProcessGroup", describe(g), ctx);
  }
  if (!Number.isInteger(a.size) || a.size! < 1 || !Number.isInteger(a.rank) || a.rank! < 0 || a.rank! >= a.size!) {
    throw new ConfigError("group", "rank in 0 … size − 1 and size ≥ 1", `rank ${String(a.rank)}, size ${String(a.size)}`, ctx);
  }
  return a as AllReduce;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "object") return `an object with keys ${JSON.stringify(Object.keys(v as object).slice(0, 5))}`;
  return `${typeof v} ${String(v)}`;
}

/** Every parameter gradient of `model` (each tensor once), in namedParameters order. */
function gradients(model: Module) {
  const seen = new Set<unknown>();
  const out = [];
  for (const p of Object.values(model.namedParameters())) {
    if (seen.has(p.grad)) continue;
    seen.add(p.grad);
    out.push(p.grad);
  }
  return out;
}

/**
 * Data-parallel training's gradient all-reduce (DDP's): every parameter gradient of `model` becomes
 * the mean over the group's workers, in one `sum` of all of them (float64). With an InProcessGroup
 * there is nothing to do: the one network's gradients already sum the workers' (with the loss the
 * mean over the global batch, that is DDP's average). Host modules only.
 */
export function allReduceGradients(model: Module, group: SyncGroup): void {
  const g = checkGroup(group, "allReduceGradients");
  if (g instanceof InProcessGroup || g.size === 1) return;
  const grads = gradients(model);
  let n = 0;
  for (const t of grads) n += t.size;
  const buf = new Float64Array(n);
  let off = 0;
  for (const t of grads) {
    buf.set(t.data, off);
    off += t.size;
  }
  g.sum(buf);
  const inv = 1 / g.size;
  off = 0;
  for (const t of grads) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) d[i] = buf[off + i]! * inv;
    off += d.length;
  }
}

/**
 * Copies rank `root`'s parameters and buffers (running statistics, num_batches_tracked) to every
 * worker of the group — DDP's broadcast at construction and, with broadcast_buffers, of the buffers
 * before each forward. Built on `sum` (the other ranks contribute zeros). A no-op for an
 * InProcessGroup (one network) and a group of one.
 */
export function broadcastState(model: Module, group: SyncGroup, options: { root?: number; buffersOnly?: boolean } = {}): void {
  const g = checkGroup(group, "broadcastState");
  if (g instanceof InProcessGroup || g.size === 1) return;
  const root = options.root ?? 0;
  if (!Number.isInteger(root) || root < 0 || root >= g.size) throw new ConfigError("root", `a rank in 0 … ${g.size - 1}`, String(root), "broadcastState");
  const tensors = [
    ...(options.buffersOnly ? [] : Object.values(model.namedParameters()).map((p) => p.value)),
    ...Object.values(model.namedBuffers()),
  ];
  let n = 0;
  for (const t of tensors) n += t.size;
  const buf = new Float64Array(n);
  let off = 0;
  for (const t of tensors) {
    if (g.rank === root) buf.set(t.data, off);
    off += t.size;
  }
  g.sum(buf);
  off = 0;
  for (const t of tensors) {
    t.data.set(buf.subarray(off, off + t.size));
    off += t.size;
  }
}
