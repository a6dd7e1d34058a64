/**
 * Dense (fully connected) kernels: pure functions over row-major typed arrays, writing into
 * caller-provided buffers. Every sum is accumulated in a JavaScript number (float64), whatever the
 * storage type, and stored once.
 */
import type { FloatArray } from "../tensor.js";

/**
 * y = x Wᵀ + b:   y[n,o] = b[o] + Σ_k x[n,k]·W[o,k]
 * x [N,inF], W [outF,inF], b [outF] or null, out [N,outF]. Row-dot products (both rows contiguous).
 */
export function linearForward(
  out: FloatArray, x: FloatArray, w: FloatArray, b: FloatArray | null,
  N: number, inF: number, outF: number,
): FloatArray {
  for (let n = 0; n < N; n++) {
    const xo = n * inF;
    const yo = n * outF;
    for (let o = 0; o < outF; o++) {
      const wo = o * inF;
      let s = b === null ? 0 : b[o];
      for (let k = 0; k < inF; k++) s += x[xo + k] * w[wo + k];
      out[yo + o] = s;
    }
  }
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
  if (dx !== null) {
    for (let n = 0; n < N; n++) {
      const dyo = n * outF;
      const dxo = n * inF;
      for (let k = 0; k < inF; k++) {
        let s = accumulate ? dx[dxo + k] : 0;
        for (let o = 0; o < outF; o++) s += dy[dyo + o] * w[o * inF + k];
        dx[dxo + k] = s;
      }
    }
  }
  if (dw !== null) {
    for (let o = 0; o < outF; o++) {
      const wo = o * inF;
      for (let k = 0; k < inF; k++) {
        let s = accumulate ? dw[wo + k] : 0;
        for (let n = 0; n < N; n++) s += dy[n * outF + o] * x[n * inF + k];
        dw[wo + k] = s;
      }
    }
  }
  if (db !== null) {
    for (let o = 0; o < outF; o++) {
      let s = accumulate ? db[o] : 0;
      for (let n = 0; n < N; n++) s += dy[n * outF + o];
      db[o] = s;
    }
  }
}
