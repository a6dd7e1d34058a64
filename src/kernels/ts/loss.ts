/** Softmax cross-entropy on host arrays (src/nn/loss.ts has the loss and its checks). */
import type { FloatArray } from "../../tensor.js";

/** The kernel: writes dz ([N, K]) and returns the mean loss. No validation, no allocation. */
export function softmaxCrossEntropyKernel(dz: FloatArray, z: Readonly<FloatArray>, labels: ArrayLike<number>, N: number, K: number): number {
  let total = 0;
  const invN = 1 / N;
  for (let n = 0; n < N; n++) {
    const o = n * K;
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, z[o + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(z[o + k]! - m);
    const lse = m + Math.log(s);
    const y = labels[n]!;
    total += lse - z[o + y]!;
    for (let k = 0; k < K; k++) dz[o + k] = (Math.exp(z[o + k]! - lse) - (k === y ? 1 : 0)) * invN;
  }
  return total * invN;
}
