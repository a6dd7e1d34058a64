/** Weight normalisation's kernels on host arrays (src/nn/weight_norm.ts has the layer). */
import type { FloatArray } from "../../tensor.js";

/** Weight viewed as R groups of S values (R = out for dim 0, R = 1 for dim null): per group r,
 *  n_r = ‖v_r‖, v̂_r = v_r / n_r, gOverN[r] = g_r / n_r, W_r = v_r · (g_r / n_r)  (PyTorch's order).
 *  A zero v_r gives non-finite values, as in PyTorch. */
export function weightNormForward(
  w: FloatArray, vhat: Float64Array, gOverN: Float64Array, g: FloatArray, v: FloatArray, R: number, S: number,
): FloatArray {
  for (let r = 0; r < R; r++) {
    const o = r * S;
    let s = 0;
    for (let i = 0; i < S; i++) s += v[o + i] * v[o + i];
    const n = Math.sqrt(s);
    const k = g[r] / n;
    gOverN[r] = k;
    for (let i = 0; i < S; i++) {
      vhat[o + i] = v[o + i] / n;
      w[o + i] = v[o + i] * k;
    }
  }
  return w;
}

/** Given dW:  dg_r = dW_r · v̂_r,   dv_r = (g_r / n_r) · (dW_r − (dW_r · v̂_r) v̂_r).
 *  With `accumulate` both are added (+=) to their buffers, otherwise they overwrite them. */
export function weightNormBackward(
  dg: FloatArray, dv: FloatArray, dW: FloatArray, vhat: Float64Array, gOverN: Float64Array,
  R: number, S: number, accumulate: boolean,
): void {
  for (let r = 0; r < R; r++) {
    const o = r * S;
    let d = 0;
    for (let i = 0; i < S; i++) d += dW[o + i] * vhat[o + i];
    dg[r] = accumulate ? dg[r] + d : d;
    const k = gOverN[r];
    for (let i = 0; i < S; i++) {
      const t = k * (dW[o + i] - d * vhat[o + i]);
      dv[o + i] = accumulate ? dv[o + i] + t : t;
    }
  }
}
