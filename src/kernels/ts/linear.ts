/**
 * Dense (fully connected) kernels: pure functions over row-major typed arrays, writing into
 * caller-provided buffers. Each is one call of the register-blocked {@link gemm} (sums in float64,
 * stored once per element, whatever the storage type). Float32 calls run on the WebAssembly SIMD
 * kernels instead (f32 sums, as PyTorch's CPU GEMMs) where available and the kernel mode is not "ts"
 * (src/kernels/wasm/gemm.ts).
 */
import type { FloatArray } from "../../tensor.js";
import { gemm, rowMajor, transposed } from "./gemm.js";
import { wasmGemmFor, wasmTook } from "../wasm/gemm.js";

/**
 * y = x Wᵀ + b:   y[n,o] = b[o] + Σ_k x[n,k]·W[o,k]
 * x [N,inF], W [outF,inF], b [outF] or null, out [N,outF].
 */
export function linearForward(
  out: FloatArray, x: FloatArray, w: FloatArray, b: FloatArray | null,
  N: number, inF: number, outF: number,
): FloatArray {
  // float32: the WebAssembly SIMD path (f32 sums) where available; otherwise the loops below
  const fast = wasmGemmFor(N * (inF + outF) + outF * inF, out, x, w, b);
  if (fast && wasmTook(() => fast.linearForward(out as Float32Array, x as Float32Array, w as Float32Array, b as Float32Array | null, N, inF, outF))) {
    return out;
  }
  if (b !== null) for (let n = 0; n < N; n++) out.set(b.length === outF ? b : b.subarray(0, outF), n * outF);
  gemm(N, outF, inF, rowMajor(x, 0, inF), transposed(w, 0, inF), rowMajor(out, 0, outF), b !== null);
  return out;
}

/**
 * dx[n,k] = Σ_o dy[n,o]·W[o,k]      dW[o,k] = Σ_n dy[n,o]·x[n,k]      db[o] = Σ_n dy[n,o]
 * A null output is skipped. With `accumulate` each result is added (+=) to what its buffer holds,
 * otherwise it overwrites it.
 */
export function linearBackward(
  dx: FloatArray | null, dw: FloatArray | null, db: FloatArray | null,
  dy: FloatArray, x: FloatArray, w: FloatArray,
  N: number, inF: number, outF: number, accumulate: boolean,
): void {
  const fast = dx !== null || dw !== null ? wasmGemmFor(N * (2 * inF + outF) + 2 * outF * inF, dx, dw, dy, x, w) : null;
  if (fast && wasmTook(() => fast.linearBackward(dx as Float32Array | null, dw as Float32Array | null, dy as Float32Array, x as Float32Array,
    w as Float32Array, N, inF, outF, accumulate))) {
    // done on the WebAssembly GEMM
  } else {
    if (dx !== null) gemm(N, inF, outF, rowMajor(dy, 0, outF), rowMajor(w, 0, inF), rowMajor(dx, 0, inF), accumulate);
    if (dw !== null) gemm(outF, inF, N, transposed(dy, 0, outF), rowMajor(x, 0, inF), rowMajor(dw, 0, inF), accumulate);
  }
  if (db !== null) {
    for (let o = 0; o < outF; o++) {
      let s = accumulate ? db[o]! : 0;
      for (let n = 0; n < N; n++) s += dy[n * outF + o]!;
      db[o] = s;
    }
  }
}
