/**
 * The WebAssembly SIMD path of ReLU, 2×2 max pooling and the SGD step (assembly/elementwise.ts), for float32
 * operands that are all resident in the kernels' memory (the host device's float32 tensors are:
 * src/kernels/cpu.ts). Anything else — a plain Float32Array, float64, kernel mode "ts", no
 * WebAssembly — gets null from {@link wasmElementwiseFor} and runs the TypeScript kernels, which give
 * the same bits; copying an operand in and out would cost as much as the operation.
 */
import type { Pool2dGeometry } from "../contract/ops.js";
import { getKernelMode } from "../registry.js";
import { PARALLEL_MIN_ELEMENTS, WasmRuntime, wasmRuntime, wasmThreadSetting } from "./wasm.js";
import { trackResident } from "./wasm_tensor.js";
import {
  I_CV_H, I_CV_HO, I_CV_W, I_CV_WO, I_DY, I_IDX, I_K, I_OP, I_X, I_Y, OP_MAXPOOL_BWD, OP_MAXPOOL_FWD, OP_RELU_BWD, OP_RELU_FWD,
} from "./call_block.js";

interface ElementwiseExports {
  reluFwd(y: number, x: number, i0: number, i1: number): void;
  reluBwd(dx: number, dy: number, x: number, i0: number, i1: number): void;
  maxPool2x2Fwd(y: number, argmax: number, x: number, H: number, W: number, Ho: number, Wo: number, q0: number, q1: number): void;
  maxPoolBwdDisjoint(dx: number, dy: number, argmax: number, S: number, R: number, q0: number, q1: number): void;
  sgdStep(p: number, g: number, b: number, mode: number, lr: number, mu: number, keep: number, wd: number, i0: number, i1: number): void;
}

/** sgd()'s modes: the plain step, the first momentum step, a momentum step. */
export const SGD_PLAIN = 0, SGD_MOMENTUM_FIRST = 1, SGD_MOMENTUM = 2;

export class WasmElementwise {
  private readonly ex: ElementwiseExports;
  constructor(private readonly rt: WasmRuntime) {
    this.ex = rt.exports as unknown as ElementwiseExports;
  }

  /** Whether every array is a view of the kernels' memory. */
  resident(...arrays: ArrayBufferView[]): boolean {
    for (const a of arrays) if (!this.rt.owns(a)) return false;
    return true;
  }

  /**
   * Threads for a call touching `elements` values: the setting from PARALLEL_MIN_ELEMENTS on, else 1.
   * With more than one the call goes through the call block (`run`, split in chunks of `items`).
   */
  private threads(elements: number): number {
    return elements >= PARALLEL_MIN_ELEMENTS ? wasmThreadSetting() : 1;
  }

  /** Runs op `op` on the call block over `items` items, on T threads. */
  private split(op: number, T: number, items: number, y: number, x: number, dy: number, idx: number, g: Pool2dGeometry | null): void {
    const i32 = this.rt.i32, b = this.rt.block >>> 2;
    i32[b + I_OP] = op;
    i32[b + I_K] = items;
    i32[b + I_Y] = y; i32[b + I_X] = x; i32[b + I_DY] = dy; i32[b + I_IDX] = idx;
    if (g) {
      i32[b + I_CV_H] = g.H; i32[b + I_CV_W] = g.W; i32[b + I_CV_HO] = g.Ho; i32[b + I_CV_WO] = g.Wo;
    }
    this.rt.exec(T, items);
  }

  relu(y: Float32Array, x: Float32Array): void {
    const T = this.threads(x.length);
    if (T > 1) return this.split(OP_RELU_FWD, T, x.length, y.byteOffset, x.byteOffset, 0, 0, null);
    this.rt.calls++;
    this.ex.reluFwd(y.byteOffset, x.byteOffset, 0, x.length);
  }

  reluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array): void {
    const T = this.threads(x.length);
    if (T > 1) return this.split(OP_RELU_BWD, T, x.length, dx.byteOffset, x.byteOffset, dy.byteOffset, 0, null);
    this.rt.calls++;
    this.ex.reluBwd(dx.byteOffset, dy.byteOffset, x.byteOffset, 0, x.length);
  }

  /** 2×2 stride-2 windows: y, argmax (flat input indices). */
  maxPool2x2(y: Float32Array, argmax: Int32Array, x: Float32Array, g: Pool2dGeometry): void {
    const T = this.threads(x.length);
    if (T > 1 && g.planes > 1) return this.split(OP_MAXPOOL_FWD, T, g.planes, y.byteOffset, x.byteOffset, 0, argmax.byteOffset, g);
    this.rt.calls++;
    this.ex.maxPool2x2Fwd(y.byteOffset, argmax.byteOffset, x.byteOffset, g.H, g.W, g.Ho, g.Wo, 0, g.planes);
  }

  /** Windows that do not overlap (stride ≥ kernel): dx = 0, dx[argmax] = dy. */
  maxPoolBackwardDisjoint(dx: Float32Array, dy: Float32Array, argmax: Int32Array, g: Pool2dGeometry): void {
    const T = this.threads(dx.length);
    if (T > 1 && g.planes > 1) return this.split(OP_MAXPOOL_BWD, T, g.planes, dx.byteOffset, 0, dy.byteOffset, argmax.byteOffset, g);
    this.rt.calls++;
    this.ex.maxPoolBwdDisjoint(dx.byteOffset, dy.byteOffset, argmax.byteOffset, g.H * g.W, g.Ho * g.Wo, 0, g.planes);
  }

  /** torch.optim.SGD's step (without Nesterov) on resident p, g and momentum buffer b (unused by SGD_PLAIN). */
  sgd(p: Float32Array, g: Float32Array, b: Float32Array | null, mode: number, lr: number, mu: number, keep: number, wd: number): void {
    this.rt.calls++;
    this.ex.sgdStep(p.byteOffset, g.byteOffset, b === null ? 0 : b.byteOffset, mode, lr, mu, keep, wd, 0, p.length);
  }

  /** An Int32Array of n zeros in the kernels' memory, or null when the memory is full. */
  indices(n: number): Int32Array | null {
    let p: number;
    try {
      p = this.rt.alloc(Math.max(4, n * 4));
    } catch (e) {
      if (e instanceof RangeError) return null;
      throw e;
    }
    const a = new Int32Array(this.rt.buffer, p, n);
    a.fill(0);
    // freed by freeIndices, by the garbage collector, or at the end of a resident scope
    const rt = this.rt;
    let freed = false;
    const owner = { dispose: () => { if (!freed) { freed = true; indexRegistry?.unregister(owner); rt.free(p); } } };
    indexRegistry?.register(a, p, owner);
    trackResident(owner);
    indexOwners.set(a, owner);
    return a;
  }

  /** Returns indices() storage. */
  freeIndices(a: Int32Array): void {
    indexOwners.get(a)?.dispose();
    indexOwners.delete(a);
  }
}

const indexRegistry: FinalizationRegistry<number> | null =
  typeof FinalizationRegistry === "function" ? new FinalizationRegistry<number>((ptr) => wasmRuntime()?.free(ptr)) : null;
/** Each index buffer's release (held weakly: a dropped buffer is the registry's to free). */
const indexOwners = new WeakMap<Int32Array, { dispose(): void }>();

let backend: WasmElementwise | null | undefined;

/** The WebAssembly element-wise kernels when the kernel mode allows them and the runtime (with shared memory) exists; else null. */
export function wasmElementwise(): WasmElementwise | null {
  if (getKernelMode() === "ts") return null;
  if (backend === undefined) {
    const rt = wasmRuntime();
    backend = rt && rt.shared ? new WasmElementwise(rt) : null;
  }
  return backend;
}
