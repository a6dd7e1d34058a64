/**
 * WasmTensor: a float32 Tensor whose storage lives in the kernels' (shared) WebAssembly memory, so
 * that the WebAssembly kernels read and write it in place — no copy in, no copy out. It is a
 * Tensor like any other (its `data` is an ordinary Float32Array view), usable everywhere a Tensor
 * is. Where the WebAssembly runtime is unavailable, or its memory is not shared (web pages that are
 * not cross-origin isolated), it falls back to ordinary memory (`inWasm` false).
 *
 * Storage is returned to the WebAssembly memory by `dispose()`, or when the `data` view is garbage
 * collected. Do not use `data` after `dispose()`.
 */
import { ShapeError, fmtShape } from "../../errors.js";
import { Tensor, sizeOf } from "../../tensor.js";
import { wasmRuntime } from "./wasm.js";

const registry: FinalizationRegistry<number> | null =
  typeof FinalizationRegistry === "function" ? new FinalizationRegistry<number>((ptr) => wasmRuntime()?.free(ptr)) : null;

/** Something holding WebAssembly-memory storage that a scope can release. */
interface Releasable {
  dispose(): void;
}
/**
 * The open resident scopes, innermost last: what each allocated (see residentScope), held weakly —
 * storage dropped inside a scope is still the garbage collector's to free, so a loop that makes a
 * fresh tensor per step does not keep them all until the scope ends.
 */
const scopes: WeakRef<Releasable>[][] = [];

/** Records storage allocated now, for the innermost resident scope (if any) to release. */
export function trackResident(r: Releasable): void {
  if (scopes.length > 0 && typeof WeakRef === "function") scopes[scopes.length - 1]!.push(new WeakRef(r));
}

/**
 * Runs `fn` and then returns to the WebAssembly memory every resident tensor (and max-pooling index
 * buffer) allocated while it ran that is still held, rather than waiting for the garbage collector:
 * storage in that memory is invisible to the JS heap, so a collection that would free it can be
 * long in coming (a finished training run's model, say, stays in the memory for the next runs).
 * Use it around work whose resident tensors are all garbage at its end — nothing allocated in it
 * may be used after (its `data` would read reused memory). The lab runs each training run in one.
 */
export async function residentScope<T>(fn: () => Promise<T> | T): Promise<T> {
  const list: WeakRef<Releasable>[] = [];
  scopes.push(list);
  try {
    return await fn();
  } finally {
    scopes.splice(scopes.lastIndexOf(list), 1);
    for (const r of list) r.deref()?.dispose();
  }
}

export class WasmTensor extends Tensor {
  /** Byte address in the WebAssembly memory (-1 when not in it). */
  readonly address: number;
  private disposed = false;

  private constructor(data: Float32Array, shape: readonly number[], address: number) {
    super(data, shape);
    this.address = address;
  }

  /** Whether the storage is in the WebAssembly memory (false where WebAssembly SIMD is unavailable). */
  get inWasm(): boolean {
    return this.address >= 0;
  }

  /** A zero-filled float32 tensor in the WebAssembly memory. */
  static override zeros(shape: readonly number[]): WasmTensor {
    const n = sizeOf(shape);
    const rt = wasmRuntime();
    // On an unshared memory (pages without SharedArrayBuffer) growing the memory detaches every view
    // of it, so a tensor's `data` could not outlive the next allocation: ordinary memory there.
    if (!rt || !rt.shared) return new WasmTensor(new Float32Array(n), shape, -1);
    const ptr = rt.alloc(n * 4);
    const data = new Float32Array(rt.buffer, ptr, n);
    data.fill(0);
    const t = new WasmTensor(data, shape, ptr);
    registry?.register(data, ptr, t);
    trackResident(t);
    return t;
  }

  /**
   * A zero-filled float32 tensor in the WebAssembly memory, or null where it cannot be there (no
   * shared memory, or the memory is full): for callers with a fallback of their own.
   */
  static zerosOrNull(shape: readonly number[]): WasmTensor | null {
    const rt = wasmRuntime();
    if (!rt || !rt.shared) return null;
    const n = sizeOf(shape);
    let ptr: number;
    try {
      ptr = rt.alloc(n * 4);
    } catch (e) {
      if (e instanceof RangeError) return null;
      throw e;
    }
    const data = new Float32Array(rt.buffer, ptr, n);
    data.fill(0);
    const t = new WasmTensor(data, shape, ptr);
    registry?.register(data, ptr, t);
    trackResident(t);
    return t;
  }

  /** A copy of `src` (a Tensor, or values with a shape) in the WebAssembly memory. */
  static override from(src: Tensor | ArrayLike<number>, shape?: readonly number[]): WasmTensor {
    const sh = src instanceof Tensor ? (shape ?? src.shape) : shape;
    if (!sh) throw new ShapeError("shape", "a shape for plain values", "nothing", "WasmTensor.from");
    const values = src instanceof Tensor ? src.data : src;
    if (values.length !== sizeOf(sh)) throw new ShapeError("src", `${sizeOf(sh)} values for shape ${fmtShape(sh)}`, `${values.length}`, "WasmTensor.from");
    const t = WasmTensor.zeros(sh);
    if (ArrayBuffer.isView(values)) t.data.set(values as unknown as ArrayLike<number>);
    else for (let i = 0; i < values.length; i++) t.data[i] = values[i]!;
    return t;
  }

  /** Same storage, another shape (still in the WebAssembly memory; the original owns the storage). */
  override reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape);
  }

  /** Returns the storage to the WebAssembly memory now. */
  dispose(): void {
    if (this.disposed || this.address < 0) return;
    this.disposed = true;
    registry?.unregister(this);
    wasmRuntime()?.free(this.address);
  }
}
