/**
 * The WebAssembly SIMD backend: one shared `WebAssembly.Memory`, the kernels of assembly/norm.ts
 * instantiated on it, a small allocator for tensors that live in that memory (see WasmTensor), and
 * the host primitives (src/kernels/contract/host.ts) of the WebAssembly kernel set (./index.ts).
 *
 * Inputs and outputs already in the memory (WasmTensor data, or any Float32Array view of it) are
 * used in place. Plain Float32Arrays are copied into reusable scratch regions (and outputs copied
 * back out): correct, but the copy costs more than the kernel on large tensors.
 *
 * Requirements: WebAssembly SIMD. With SharedArrayBuffer (Node, or a cross-origin isolated page)
 * the memory is shared, so worker threads can run kernels on it; without (an ordinary web page) the
 * module is instantiated on an unshared memory ({@link unsharedMemoryVariant}) and runs on one
 * thread. Where SIMD is missing `wasmRuntime()` returns null and the engine runs the
 * TypeScript kernels. Nothing here allocates on the JS heap per call once the scratch regions
 * have grown to the sizes in use.
 */
import type { AffineKind, NormShape, StatsConfig } from "../contract/view.js";
import type { FloatArray } from "../../tensor.js";
import type { BackwardScratch, HostPrimitives } from "../contract/host.js";
import { WASM_BASE64 } from "./wasm_module.js";
// the call block's layout, generated with assembly/call_block.ts from scripts/wasm-call-block.json
import {
  BLK_BYTES, D_EPS, D_INVM, F_CENTER, F_ELEMENT, F_FIXED, I_ACC, I_B, I_CHUNKS, I_COMB_A, I_COMB_B, I_COMB_D, I_CPG,
  I_CSTEP, I_DY, I_FLAGS, I_GC, I_GSTRIDE, I_K, I_L, I_MEAN, I_NEXT, I_NSEG, I_OP, I_P, I_PART, I_RSTD, I_SSTRIDE,
  I_SUMG, I_SUMGX, I_VAR, I_W, I_X, I_Y, OP_APPLY, OP_BWD, OP_COMBINE, OP_FWD_TRAIN, OP_STATS,
} from "./call_block.js";

/** Maximum memory in 64 KiB pages (4 GiB, all wasm32 allows); must equal --maximumMemory in scripts/build-wasm.mjs. */
export const MAX_PAGES = 65536;
const PAGE = 65536;

/**
 * Staging regions (copies of plain-array operands, scratch) above this size are returned to the
 * memory at the end of the call that needed them; smaller ones are kept for the next call.
 */
export const STAGING_KEEP_BYTES = 64 << 20;

/**
 * The WebAssembly memory cannot take an allocation (it is at its 4 GiB, or the engine refused to
 * grow it). A RangeError, as the engine's own: callers with a fallback (the TypeScript kernels, the
 * JS heap for host tensors) catch it and use that instead.
 */
export class WasmMemoryError extends RangeError {
  readonly requestedBytes: number;
  constructor(requestedBytes: number, inUse: number, limit: number, cause?: unknown) {
    super(
      `normkit: the WebAssembly memory cannot take ${requestedBytes} more bytes (${inUse} in use, at most ${limit}` +
        `${cause ? `; ${(cause as Error).message ?? cause}` : ""}): the call runs on the TypeScript kernels, or free resident tensors (WasmTensor.dispose, residentScope)`,
    );
    this.name = "WasmMemoryError";
    this.requestedBytes = requestedBytes;
  }
}

/** Below this many elements a call runs on one thread (waking a worker costs more than it saves). */
export const PARALLEL_MIN_ELEMENTS = 1 << 16;

interface KernelExports {
  run(block: number, tid: number, threads: number): void;
  heapBase(): number;
}

/**
 * Runs `run(block, tid, T)` on the caller (tid 0) and on up to T - 1 worker threads that join the
 * call while it lasts (a worker the OS has not scheduled by then is not waited for). Returns how
 * many threads took part: their tids are 0..result-1.
 */
export interface ParallelRunner {
  /** Worker threads ready to take a share (the call uses at most this + 1 threads). */
  readonly workers: number;
  run(block: number, threads: number, main: (block: number, tid: number, threads: number) => void): number;
}

/** Chunks of statistic groups a parallel call is split into (threads take them as they come). */
const CHUNKS = 16;

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  if (typeof atob === "function") {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  throw new Error("no base64 decoder (atob) in this environment");
}

/** A region of the memory that grows on demand and is reused between calls. */
export class Region {
  ptr = 0;
  bytes = 0;
  private cachedView: Float32Array | null = null;
  constructor(private readonly rt: WasmRuntime, private readonly fill: number | null = null) {}
  /**
   * Byte address of at least `bytes` bytes (contents kept only when no growth happens). Growing past
   * the runtime's stagingKeepBytes marks the region for release at the end of the call (trimStaging).
   */
  ensure(bytes: number): number {
    if (bytes > this.bytes) {
      if (this.bytes) this.release();
      const keep = this.rt.stagingKeepBytes;
      const size = bytes > keep ? bytes : Math.max(bytes, Math.min(this.bytes * 2, bytes + (16 << 20), keep));
      this.ptr = this.rt.alloc(size);
      this.bytes = size;
      this.cachedView = null;
      if (this.fill !== null) this.rt.f32.fill(this.fill, this.ptr >>> 2, (this.ptr + size) >>> 2);
      if (size > keep) this.rt.oversized.add(this);
    }
    return this.ptr;
  }
  /** Returns the block to the memory (the next ensure allocates anew). */
  release(): void {
    if (this.bytes) this.rt.free(this.ptr);
    this.ptr = 0;
    this.bytes = 0;
    this.cachedView = null;
    this.rt.oversized.delete(this);
  }
  /** A Float32Array view of the first n floats (cached: no allocation when n repeats). */
  view(n: number): Float32Array {
    const v = this.cachedView;
    if (v && v.length === n && v.buffer === this.rt.buffer) return v;
    return (this.cachedView = new Float32Array(this.rt.buffer, this.ptr, n));
  }
}

export class WasmRuntime {
  readonly memory: WebAssembly.Memory;
  readonly module: WebAssembly.Module;
  readonly exports: KernelExports;
  buffer!: ArrayBufferLike;
  f32!: Float32Array;
  f64!: Float64Array;
  i32!: Int32Array;
  /** Every buffer object the memory has had (views made before a grow keep the old object). */
  private readonly buffers = new Set<ArrayBufferLike>();
  private top: number;
  private readonly sizes = new Map<number, number>();
  private freeList: { ptr: number; size: number }[] = [];
  /** The call block: the kernels' arguments. */
  readonly block: number;
  runner: ParallelRunner | null = null;
  /** Calls that ran on these kernels (tests check that a forced path really ran). */
  calls = 0;
  /** Staging regions above stagingKeepBytes, released at the end of the call (trimStaging). */
  readonly oversized = new Set<Region>();
  /** See STAGING_KEEP_BYTES (tests lower it). */
  stagingKeepBytes = STAGING_KEEP_BYTES;
  /** The most bytes the allocator hands out: the memory's maximum (tests lower it to simulate a full memory). */
  limitBytes = MAX_PAGES * PAGE;
  /** The most threads that took part in one call so far (tests check that a split really happened). */
  maxJoined = 1;

  /** Whether the memory is shared (worker threads possible) or ordinary (one thread). */
  readonly shared: boolean;

  constructor(bytes: Uint8Array<ArrayBuffer>, shared = true) {
    this.shared = shared;
    this.module = new WebAssembly.Module(bytes);
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared });
    const inst = new WebAssembly.Instance(this.module, { env: { memory: this.memory } });
    this.exports = inst.exports as unknown as KernelExports;
    this.refresh();
    this.top = (this.exports.heapBase() + 63) & ~63;
    this.block = this.alloc(BLK_BYTES);
  }

  private refresh(): void {
    this.buffer = this.memory.buffer;
    this.buffers.add(this.buffer);
    this.f32 = new Float32Array(this.buffer);
    this.f64 = new Float64Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
  }

  /** Whether `a` is a view of this memory (so kernels can use it in place). */
  owns(a: ArrayBufferView): boolean {
    return this.buffers.has(a.buffer);
  }

  /**
   * 64-byte aligned allocation; grows the memory when needed. Growing replaces `buffer` and the
   * f32 / f64 / i32 views, and on an unshared memory DETACHES the old ones: read those views after
   * the last allocation of a call, never before.
   */
  alloc(bytes: number): number {
    const size = Math.max(64, Math.ceil(bytes / 64) * 64); // arithmetic, not & ~63: sizes may pass 2^31
    for (let i = 0; i < this.freeList.length; i++) {
      const f = this.freeList[i]!;
      if (f.size >= size) {
        const ptr = f.ptr;
        if (f.size === size) this.freeList.splice(i, 1);
        else {
          f.ptr += size;
          f.size -= size;
        }
        this.sizes.set(ptr, size);
        return ptr;
      }
    }
    const ptr = this.top;
    const end = ptr + size;
    if (end > this.limitBytes) throw new WasmMemoryError(size, this.allocatedBytes(), this.limitBytes);
    const have = this.buffer.byteLength;
    if (end > have) {
      const grow = Math.max(Math.ceil((end - have) / PAGE), Math.min(MAX_PAGES - have / PAGE, Math.ceil(have / PAGE / 4)));
      try {
        this.memory.grow(grow);
      } catch (e) {
        // the engine may refuse the headroom; try the exact need before giving up
        try {
          this.memory.grow(Math.ceil((end - have) / PAGE));
        } catch {
          throw new WasmMemoryError(size, this.allocatedBytes(), this.limitBytes, e);
        }
      }
      this.refresh();
    }
    this.top = end;
    this.sizes.set(ptr, size);
    return ptr;
  }

  free(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    if (ptr + size === this.top) {
      this.top = ptr;
      // absorb a free block that now ends at the top
      const last = this.freeList.at(-1);
      if (last && last.ptr + last.size === this.top) {
        this.top = last.ptr;
        this.freeList.pop();
      }
      return;
    }
    let i = 0;
    while (i < this.freeList.length && this.freeList[i]!.ptr < ptr) i++;
    this.freeList.splice(i, 0, { ptr, size });
    // coalesce with neighbours
    const cur = this.freeList[i]!;
    const next = this.freeList[i + 1];
    if (next && cur.ptr + cur.size === next.ptr) {
      cur.size += next.size;
      this.freeList.splice(i + 1, 1);
    }
    const prev = this.freeList[i - 1];
    if (prev && prev.ptr + prev.size === cur.ptr) {
      prev.size += cur.size;
      this.freeList.splice(i, 1);
    }
  }

  /** Releases the staging regions that grew past stagingKeepBytes (the end of a call that needed them). */
  trimStaging(): void {
    if (this.oversized.size === 0) return;
    for (const r of [...this.oversized]) r.release();
  }

  /** Bytes allocated from the memory (tensors and scratch). */
  allocatedBytes(): number {
    let n = 0;
    for (const s of this.sizes.values()) n += s;
    return n;
  }

  /**
   * Runs the call block on up to `threads` threads (1 = this thread only) over K statistic groups;
   * returns how many threads took part (tids 0..n-1).
   */
  exec(threads: number, K: number): number {
    this.calls++;
    const r = this.runner;
    const b = this.block >>> 2;
    const T = threads > 1 && r && r.workers > 0 ? Math.min(threads, r.workers + 1) : 1;
    // chunks of at least 8 groups (each chunk starts its pipeline anew), at most CHUNKS per thread
    this.i32[b + I_CHUNKS] = T > 1 ? Math.max(1, Math.min(K, CHUNKS * T, Math.max(T, K >>> 3))) : 1;
    this.i32[b + I_NEXT] = 0;
    if (T === 1) {
      this.exports.run(this.block, 0, 1);
      return 1;
    }
    const joined = r!.run(this.block, T, this.exports.run);
    if (joined > this.maxJoined) this.maxJoined = joined;
    return joined;
  }
}

let runtime: WasmRuntime | null | undefined;
let runtimeError: unknown = null;

/**
 * The module with its imported memory declared unshared (limits flag 0x03 → 0x01, same length).
 * The kernels use no atomics, so they run unchanged on an ordinary memory: this is how pages that
 * are not cross-origin isolated (no SharedArrayBuffer) get them, on one thread.
 */
export function unsharedMemoryVariant(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes);
  let p = 8; // magic + version
  const leb = (): number => {
    let v = 0, shift = 0, b: number;
    do {
      b = out[p++]!;
      v |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return v >>> 0;
  };
  while (p < out.length) {
    const id = out[p++]!;
    const size = leb();
    const end = p + size;
    if (id === 2) {
      for (let n = leb(); n > 0; n--) {
        const moduleName = leb();
        p += moduleName;
        const fieldName = leb();
        p += fieldName;
        const kind = out[p++]!;
        if (kind === 0) leb();
        else if (kind === 1) { p++; const f = out[p++]!; leb(); if (f & 1) leb(); }
        else if (kind === 3) p += 2;
        else if (kind === 2) {
          if (out[p] === 0x03) out[p] = 0x01;
          return out;
        } else break;
      }
      throw new Error("the WebAssembly module imports no memory");
    }
    p = end;
  }
  throw new Error("the WebAssembly module has no import section");
}

/**
 * The runtime, created on first use: on a shared memory where SharedArrayBuffer exists, else on an
 * ordinary one (one thread); null where WebAssembly SIMD is missing.
 */
export function wasmRuntime(): WasmRuntime | null {
  if (runtime !== undefined) return runtime;
  try {
    if (typeof WebAssembly !== "object") throw new Error("no WebAssembly");
    const shared = typeof SharedArrayBuffer === "function";
    const bytes = shared ? decodeBase64(WASM_BASE64) : unsharedMemoryVariant(decodeBase64(WASM_BASE64));
    if (!WebAssembly.validate(bytes)) throw new Error("WebAssembly SIMD not supported");
    runtime = new WasmRuntime(bytes, shared);
  } catch (e) {
    runtimeError = e;
    runtime = null;
  }
  return runtime;
}

/** Why the runtime is unavailable (null when it is available or not tried yet). */
export function wasmUnavailableReason(): string | null {
  return runtimeError ? String((runtimeError as Error).message ?? runtimeError) : null;
}

// ---------------------------------------------------------------------------------------------
// The kernels

/** Threads a call on n elements uses (1 for small inputs). */
let threadSetting = 1;
export function setWasmThreads(n: number): void {
  threadSetting = n;
}
/** The thread setting (backend.configure({ threads })): the most threads one call may use. */
export function wasmThreadSetting(): number {
  return threadSetting;
}
function threadsFor(n: number): number {
  return n >= PARALLEL_MIN_ELEMENTS ? threadSetting : 1;
}

class WasmKernels implements HostPrimitives {
  readonly name = "wasm" as const;
  private readonly xR: Region;
  private readonly yR: Region;
  private readonly dyR: Region;
  private readonly wR: Region;
  private readonly bR: Region;
  private readonly ones: Region;
  private readonly zeros: Region;
  private readonly meanR: Region;
  private readonly varR: Region;
  private readonly rstdR: Region;
  private readonly sumGR: Region;
  private readonly sumGXR: Region;
  private readonly partR: Region;
  private readonly accR: Region;

  constructor(private readonly rt: WasmRuntime) {
    this.xR = new Region(rt);
    this.yR = new Region(rt);
    this.dyR = new Region(rt);
    this.wR = new Region(rt);
    this.bR = new Region(rt);
    this.ones = new Region(rt, 1);
    this.zeros = new Region(rt, 0);
    this.meanR = new Region(rt);
    this.varR = new Region(rt);
    this.rstdR = new Region(rt);
    this.sumGR = new Region(rt);
    this.sumGXR = new Region(rt);
    this.partR = new Region(rt);
    this.accR = new Region(rt);
  }

  supports(x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, affine: AffineKind): boolean {
    if (!(x instanceof Float32Array)) return false;
    const { N, C, S } = shape;
    if (N * C * S === 0 || N * C * S !== x.length) return false;
    if (shape.channelsLast && C !== 1) return false;
    if (affine === "element" && C !== 1) return false;
    if (!cfg.perSample && cfg.groupSize !== 1) return false;
    return x.length * 4 < 2 ** 30;
  }

  /** Writes the layout of (shape, cfg) into the call block; returns K (statistic groups). */
  private layout(shape: NormShape, cfg: StatsConfig, affine: AffineKind): number {
    const i32 = this.rt.i32, b = this.rt.block >>> 2;
    const { N, C, S } = shape;
    let K: number;
    if (cfg.perSample) {
      const gs = cfg.groupSize, G = C / gs;
      K = N * G;
      i32[b + I_NSEG] = gs;
      i32[b + I_GSTRIDE] = gs * S;
      i32[b + I_SSTRIDE] = S;
      i32[b + I_GC] = G;
      i32[b + I_CPG] = gs;
      i32[b + I_CSTEP] = 1;
    } else {
      K = C;
      i32[b + I_NSEG] = N;
      i32[b + I_GSTRIDE] = S;
      i32[b + I_SSTRIDE] = C * S;
      i32[b + I_GC] = C;
      i32[b + I_CPG] = 1;
      i32[b + I_CSTEP] = 0;
    }
    i32[b + I_K] = K;
    i32[b + I_L] = S;
    i32[b + I_FLAGS] = (cfg.center ? F_CENTER : 0) | (affine === "element" ? F_ELEMENT : 0);
    return K;
  }

  /** Address of `a` in the memory: in place, or copied into region r (copy = false: output only). */
  private place(a: Readonly<Float32Array>, r: Region, copy: boolean): number {
    if (this.rt.owns(a)) return a.byteOffset;
    const p = r.ensure(a.length * 4);
    if (copy) this.rt.f32.set(a, p >>> 2);
    return p;
  }

  private copyOut(dst: Float32Array, p: number, r: Region): void {
    if (this.rt.owns(dst)) return;
    dst.set(r.view(dst.length));
    void p;
  }

  /** Affine parameters into the block (element affine: ones / zeros where absent). */
  private params(affine: AffineKind, weight: Readonly<FloatArray> | null, bias: Readonly<FloatArray> | null, P: number): void {
    let w = 0, bb = 0;
    if (affine !== "none") {
      if (weight) w = this.place(weight as Float32Array, this.wR, true);
      else if (affine === "element") w = this.ones.ensure(P * 4);
      if (bias) bb = this.place(bias as Float32Array, this.bR, true);
      else if (affine === "element") bb = this.zeros.ensure(P * 4);
    }
    const i32 = this.rt.i32, b = this.rt.block >>> 2; // after the allocations (see WasmRuntime.alloc)
    i32[b + I_W] = w;
    i32[b + I_B] = bb;
  }

  private statsIn(mean: Readonly<Float64Array>, rstd: Readonly<Float64Array>, K: number): void {
    const pm = this.meanR.ensure(K * 8), pr = this.rstdR.ensure(K * 8);
    const i32 = this.rt.i32, b = this.rt.block >>> 2, f64 = this.rt.f64, om = pm >>> 3, or = pr >>> 3;
    for (let k = 0; k < K; k++) {
      f64[om + k] = mean[k]!;
      f64[or + k] = rstd[k]!;
    }
    i32[b + I_MEAN] = pm;
    i32[b + I_RSTD] = pr;
  }

  moments(x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Float64Array, variance: Float64Array): void {
    const rt = this.rt;
    const K = this.layout(shape, cfg, "none");
    const px = this.place(x as Float32Array, this.xR, true);
    const pm = this.meanR.ensure(K * 8), pv = this.varR.ensure(K * 8);
    const i32 = rt.i32, b = rt.block >>> 2; // after the allocations (see WasmRuntime.alloc)
    i32[b + I_OP] = OP_STATS;
    i32[b + I_X] = px;
    i32[b + I_MEAN] = pm;
    i32[b + I_VAR] = pv;
    rt.exec(threadsFor(x.length), K);
    const f64 = rt.f64, om = pm >>> 3, ov = pv >>> 3;
    for (let k = 0; k < K; k++) {
      mean[k] = f64[om + k]!;
      variance[k] = f64[ov + k]!;
    }
  }

  normalizeForward(
    y: FloatArray, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Readonly<Float64Array>,
    rstd: Readonly<Float64Array>, affine: AffineKind, weight: Readonly<FloatArray> | null, bias: Readonly<FloatArray> | null,
  ): void {
    const rt = this.rt;
    const K = this.layout(shape, cfg, affine);
    const px = this.place(x as Float32Array, this.xR, true);
    const py = this.place(y as Float32Array, this.yR, false);
    this.params(affine, weight, bias, shape.C * shape.S);
    this.statsIn(mean, rstd, K);
    const i32 = rt.i32, b = rt.block >>> 2; // after the allocations (see WasmRuntime.alloc)
    i32[b + I_OP] = OP_APPLY;
    i32[b + I_X] = px;
    i32[b + I_Y] = py;
    rt.exec(threadsFor(x.length), K);
    this.copyOut(y as Float32Array, py, this.yR);
  }

  forwardTrain(
    y: FloatArray, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, eps: number, affine: AffineKind,
    weight: Readonly<FloatArray> | null, bias: Readonly<FloatArray> | null, mean: Float64Array, variance: Float64Array,
    rstd: Float64Array,
  ): void {
    const rt = this.rt;
    const K = this.layout(shape, cfg, affine);
    const px = this.place(x as Float32Array, this.xR, true);
    const py = this.place(y as Float32Array, this.yR, false);
    this.params(affine, weight, bias, shape.C * shape.S);
    const pm = this.meanR.ensure(K * 8), pv = this.varR.ensure(K * 8), pr = this.rstdR.ensure(K * 8);
    const i32 = rt.i32, b = rt.block >>> 2; // after the allocations (see WasmRuntime.alloc)
    i32[b + I_OP] = OP_FWD_TRAIN;
    i32[b + I_X] = px;
    i32[b + I_Y] = py;
    i32[b + I_MEAN] = pm;
    i32[b + I_VAR] = pv;
    i32[b + I_RSTD] = pr;
    rt.f64[(rt.block >>> 3) + D_EPS] = eps;
    rt.exec(threadsFor(x.length), K);
    const f64 = rt.f64, om = pm >>> 3, ov = pv >>> 3, or = pr >>> 3;
    for (let k = 0; k < K; k++) {
      mean[k] = f64[om + k]!;
      variance[k] = f64[ov + k]!;
      rstd[k] = f64[or + k]!;
    }
    this.copyOut(y as Float32Array, py, this.yR);
  }

  combine(
    out: FloatArray, dy: Readonly<FloatArray>, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig,
    A: Readonly<Float64Array>, B: Readonly<Float64Array>, M: Readonly<Float64Array>, D: Readonly<Float64Array>,
  ): void {
    const rt = this.rt;
    const K = this.layout(shape, cfg, "none");
    const px = this.place(x as Float32Array, this.xR, true);
    const pdy = this.place(dy as Float32Array, this.dyR, true);
    const po = this.place(out as Float32Array, this.yR, false);
    const pm = this.meanR.ensure(K * 8), pa = this.varR.ensure(K * 8), pb = this.rstdR.ensure(K * 8), pd = this.sumGR.ensure(K * 8);
    const i32 = rt.i32, b = rt.block >>> 2, f64 = rt.f64; // after the allocations (see WasmRuntime.alloc)
    for (let k = 0, om = pm >>> 3, oa = pa >>> 3, ob = pb >>> 3, od = pd >>> 3; k < K; k++) {
      f64[om + k] = M[k]!;
      f64[oa + k] = A[k]!;
      f64[ob + k] = B[k]!;
      f64[od + k] = D[k]!;
    }
    i32[b + I_OP] = OP_COMBINE;
    i32[b + I_X] = px;
    i32[b + I_Y] = po;
    i32[b + I_DY] = pdy;
    i32[b + I_MEAN] = pm;
    i32[b + I_COMB_A] = pa;
    i32[b + I_COMB_B] = pb;
    i32[b + I_COMB_D] = pd;
    rt.exec(threadsFor(x.length), K);
    this.copyOut(out as Float32Array, po, this.yR);
  }

  normalizeBackward(
    dx: FloatArray | null, dweight: FloatArray | null, dbias: FloatArray | null, dy: Readonly<FloatArray>,
    x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Readonly<Float64Array>, rstd: Readonly<Float64Array>,
    affine: AffineKind, weight: Readonly<FloatArray> | null, fixedStats: boolean, scratch: BackwardScratch,
  ): void {
    const rt = this.rt;
    const K = this.layout(shape, cfg, affine);
    const P = affine === "channel" ? shape.C : affine === "element" ? shape.C * shape.S : 0;
    // channel affine or none: per-channel sums are needed for dweight even without weight
    const Pk = affine === "none" ? shape.C : P;
    const T = threadsFor(x.length);
    const px = this.place(x as Float32Array, this.xR, true);
    const pdy = this.place(dy as Float32Array, this.dyR, true);
    const pdx = dx ? this.place(dx as Float32Array, this.yR, false) : 0;
    this.params(affine, weight, null, P);
    const ones = affine === "element" && !weight ? this.ones.ensure(P * 4) : 0;
    this.statsIn(mean, rstd, K);
    const pg = this.sumGR.ensure(K * 8), pgx = this.sumGXR.ensure(K * 8);
    const part = this.partR.ensure(Math.max(1, T * 2 * Pk) * 8);
    const acc = affine === "element" ? this.accR.ensure(Math.max(1, T * 2 * Pk) * 4) : 0;
    const i32 = rt.i32, b = rt.block >>> 2; // after the allocations (see WasmRuntime.alloc)
    if (ones) i32[b + I_W] = ones;
    i32[b + I_OP] = OP_BWD;
    i32[b + I_X] = px;
    i32[b + I_Y] = pdx;
    i32[b + I_DY] = pdy;
    i32[b + I_FLAGS] |= fixedStats ? F_FIXED : 0;
    i32[b + I_SUMG] = pg;
    i32[b + I_SUMGX] = pgx;
    i32[b + I_PART] = part;
    i32[b + I_ACC] = acc;
    i32[b + I_P] = Pk;
    const fb = rt.block >>> 3;
    rt.f64[fb + D_INVM] = 1 / ((cfg.perSample ? 1 : shape.N) * cfg.groupSize * shape.S);
    const used = rt.exec(T, K);
    const f64 = rt.f64;
    const { sumG, sumGX, dw, db } = scratch;
    for (let k = 0, og = pg >>> 3, ogx = pgx >>> 3; k < K; k++) {
      sumG[k] = f64[og + k]!;
      sumGX[k] = f64[ogx + k]!;
    }
    // sum the per-thread partials
    const op = part >>> 3;
    for (let p = 0; p < P; p++) {
      let w = 0, bb = 0;
      for (let t = 0; t < used; t++) {
        w += f64[op + t * 2 * Pk + p]!;
        bb += f64[op + t * 2 * Pk + Pk + p]!;
      }
      dw[p] = w;
      db[p] = bb;
      if (dweight) dweight[p] = dweight[p]! + w;
      if (dbias) dbias[p] = dbias[p]! + bb;
    }
    if (dx) this.copyOut(dx as Float32Array, pdx, this.yR);
  }

}

let kernels: HostPrimitives | null = null;
let fallback: HostPrimitives | null = null;

/**
 * WasmKernels' calls with the fallback and the staging trim around each (fixed parameter lists: a
 * rest-parameter wrapper would allocate an array per call, and these calls allocate nothing).
 */
class GuardedKernels implements HostPrimitives {
  readonly name = "wasm" as const;
  constructor(private readonly w: WasmKernels, private readonly rt: WasmRuntime) {}
  private miss(e: unknown): HostPrimitives {
    if (!(e instanceof WasmMemoryError) || !fallback) throw e;
    return fallback;
  }
  supports(x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, affine: AffineKind): boolean {
    return this.w.supports(x, shape, cfg, affine);
  }
  moments(x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Float64Array, variance: Float64Array): void {
    try {
      this.w.moments(x, shape, cfg, mean, variance);
    } catch (e) {
      this.miss(e).moments(x, shape, cfg, mean, variance);
    } finally {
      this.rt.trimStaging();
    }
  }
  normalizeForward(
    y: FloatArray, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Readonly<Float64Array>,
    rstd: Readonly<Float64Array>, affine: AffineKind, weight: Readonly<FloatArray> | null, bias: Readonly<FloatArray> | null,
  ): void {
    try {
      this.w.normalizeForward(y, x, shape, cfg, mean, rstd, affine, weight, bias);
    } catch (e) {
      this.miss(e).normalizeForward(y, x, shape, cfg, mean, rstd, affine, weight, bias);
    } finally {
      this.rt.trimStaging();
    }
  }
  forwardTrain(
    y: FloatArray, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, eps: number, affine: AffineKind,
    weight: Readonly<FloatArray> | null, bias: Readonly<FloatArray> | null, mean: Float64Array, variance: Float64Array,
    rstd: Float64Array,
  ): void {
    try {
      this.w.forwardTrain(y, x, shape, cfg, eps, affine, weight, bias, mean, variance, rstd);
    } catch (e) {
      this.miss(e).forwardTrain(y, x, shape, cfg, eps, affine, weight, bias, mean, variance, rstd);
    } finally {
      this.rt.trimStaging();
    }
  }
  combine(
    out: FloatArray, dy: Readonly<FloatArray>, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig,
    A: Readonly<Float64Array>, B: Readonly<Float64Array>, M: Readonly<Float64Array>, D: Readonly<Float64Array>,
  ): void {
    try {
      this.w.combine(out, dy, x, shape, cfg, A, B, M, D);
    } catch (e) {
      this.miss(e).combine(out, dy, x, shape, cfg, A, B, M, D);
    } finally {
      this.rt.trimStaging();
    }
  }
  normalizeBackward(
    dx: FloatArray | null, dweight: FloatArray | null, dbias: FloatArray | null, dy: Readonly<FloatArray>,
    x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, mean: Readonly<Float64Array>, rstd: Readonly<Float64Array>,
    affine: AffineKind, weight: Readonly<FloatArray> | null, fixedStats: boolean, scratch: BackwardScratch,
  ): void {
    try {
      this.w.normalizeBackward(dx, dweight, dbias, dy, x, shape, cfg, mean, rstd, affine, weight, fixedStats, scratch);
    } catch (e) {
      this.miss(e).normalizeBackward(dx, dweight, dbias, dy, x, shape, cfg, mean, rstd, affine, weight, fixedStats, scratch);
    } finally {
      this.rt.trimStaging();
    }
  }
}

/**
 * The primitives a WebAssembly call falls back to when the memory cannot take its staging (set by
 * the registry: the TypeScript primitives; this file does not import them).
 */
export function setWasmFallback(p: HostPrimitives): void {
  fallback = p;
}

/**
 * The WebAssembly kernels, or null where the runtime is unavailable. Each call places every operand
 * before it computes, so one that the memory cannot take (WasmMemoryError) has written nothing and
 * runs on the fallback primitives instead; staging regions grown past STAGING_KEEP_BYTES go back to
 * the memory at the end of every call.
 */
export function wasmKernels(): HostPrimitives | null {
  if (kernels) return kernels;
  const rt = wasmRuntime();
  if (!rt) return null;
  kernels = new GuardedKernels(new WasmKernels(rt), rt);
  return kernels;
}
