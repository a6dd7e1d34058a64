/**
 * The WebAssembly SIMD path of ReLU, 2×2 max pooling and the SGD step (assembly/elementwise.ts), for float32
 * operands that are all resident in the kernels' memory (the host device's float32 tensors are:
 * src/kernels/cpu.ts). Anything else — a plain Float32Array, float64, kernel mode "ts", no
 * WebAssembly — gets null from {@link wasmElementwiseFor} and runs the TypeScript kernels, which give
 * the same bits; copying an operand in and out would cost as much as the operation.
 */
import type { Pool2dGeometry } from "../contract/ops.js";
import { getKernelMode } from "../registry.js";
import { WasmRuntime, wasmRuntime } from "./wasm.js";

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

  relu(y: Float32Array, x: Float32Array): void {
    this.rt.calls++;
    this.ex.reluFwd(y.byteOffset, x.byteOffset, 0, x.length);
  }

  reluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array): void {
    this.rt.calls++;
    this.ex.reluBwd(dx.byteOffset, dy.byteOffset, x.byteOffset, 0, x.length);
  }

  /** 2×2 stride-2 windows: y, argmax (flat input indices). */
  maxPool2x2(y: Float32Array, argmax: Int32Array, x: Float32Array, g: Pool2dGeometry): void {
    this.rt.calls++;
    this.ex.maxPool2x2Fwd(y.byteOffset, argmax.byteOffset, x.byteOffset, g.H, g.W, g.Ho, g.Wo, 0, g.planes);
  }

  /** Windows that do not overlap (stride ≥ kernel): dx = 0, dx[argmax] = dy. */
  maxPoolBackwardDisjoint(dx: Float32Array, dy: Float32Array, argmax: Int32Array, g: Pool2dGeometry): void {
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
    return a;
  }

  /** Returns indices() storage. */
  freeIndices(a: Int32Array): void {
    if (this.rt.owns(a)) this.rt.free(a.byteOffset);
  }
}

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
