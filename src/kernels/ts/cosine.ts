/**
 * Cosine Norm's kernels on host arrays (src/nn/cosine_norm.ts has the layers, ../contract/ops.ts the
 * operations): F.normalize of strided vectors and its adjoint, and the cosine convolution
 * y[n,o,p] = ŵ_o · ĉ_p by im2col, the receptive-field columns normalised in float64. Pure functions
 * over typed arrays; the caller provides every output and the scratch (cosineConv2dScratchSize).
 */
import type { Conv2dGeometry } from "../contract/ops.js";
import type { FloatArray } from "../../tensor.js";
import { col2im, gemmDyColT, gemmWCol, gemmWTDy, im2col } from "./conv2d.js";

/**
 * F.normalize over `count` vectors of length `len`; element e of vector r is at r·vs + e·es
 * (rows of [R, S]: vs = S, es = 1; columns of [K, P]: vs = 1, es = P).
 *   n_r = ‖x_r‖₂,   u_r = x_r / max(n_r, eps).     u may alias x.
 */
export function normalizeForward(
  u: FloatArray, norms: FloatArray, x: FloatArray, count: number, len: number, vs: number, es: number, eps: number,
): FloatArray {
  for (let r = 0; r < count; r++) {
    const b = r * vs;
    let s = 0;
    for (let e = 0; e < len; e++) s += x[b + e * es]! * x[b + e * es]!;
    const n = Math.sqrt(s);
    norms[r] = n;
    const d = n > eps ? n : eps;
    for (let e = 0; e < len; e++) u[b + e * es] = x[b + e * es]! / d;
  }
  return u;
}

/**
 * The adjoint of normalizeForward, given u and the norms it stored:
 *   n ≥ eps:  dx = (du − u (u·du)) / n     (remove the component along u, scale by 1/n)
 *   n < eps:  dx = du / eps                 (torch.clamp_min passes no gradient to n there)
 * dx may alias du. With `accumulate` dx += instead of =.
 */
export function normalizeBackward(
  dx: FloatArray, du: FloatArray, u: FloatArray, norms: FloatArray,
  count: number, len: number, vs: number, es: number, eps: number, accumulate: boolean,
): FloatArray {
  for (let r = 0; r < count; r++) {
    const b = r * vs;
    const n = norms[r]!;
    let dot = 0;
    const project = n >= eps && n > 0;
    if (project) for (let e = 0; e < len; e++) dot += u[b + e * es]! * du[b + e * es]!;
    const d = project ? n : eps;
    for (let e = 0; e < len; e++) {
      const i = b + e * es;
      const t = (du[i]! - dot * u[i]!) / d;
      dx[i] = accumulate ? dx[i]! + t : t;
    }
  }
  return dx;
}

/** Float64 scratch of cosineConv2dForward / cosineConv2dBackward: ĉ [K, P], dĉ [K, P], column norms [P]. */
export function cosineConv2dScratchSize(g: Conv2dGeometry): number {
  return 2 * g.K * g.P + g.P;
}

/**
 * ĉ = the columns of im2col(x_n) (the receptive fields of image n, zero padding included), each
 * normalised; their norms into `cn` ([P]).
 */
function normalizedPatches(col: Float64Array, cn: FloatArray, x: FloatArray, n: number, g: Conv2dGeometry, eps: number): void {
  im2col(col, x, n * g.C * g.H * g.W, g);
  normalizeForward(col, cn, col, g.P, g.K, 1, g.P, eps);
}

/**
 * y[n,o,p] = ŵ_o · ĉ_p, ĉ_p = c_p / max(‖c_p‖, eps) with c_p the receptive field of position p
 * (column p of im2col(x_n)); `what` is the normalised weight [O, K]; norms[n, p] = ‖c_p‖.
 */
export function cosineConv2dForward(
  y: FloatArray, norms: FloatArray, x: FloatArray, what: FloatArray, g: Conv2dGeometry, eps: number, scratch: Float64Array,
): FloatArray {
  const { O, K, P } = g;
  const col = scratch.subarray(0, K * P);
  for (let n = 0; n < g.N; n++) {
    normalizedPatches(col, norms.subarray(n * P, (n + 1) * P), x, n, g, eps);
    gemmWCol(y, n * O * P, what, null, col, O, K, P);
  }
  return y;
}

/**
 * Per image (the normalised columns recomputed from x):
 *   dŴ += dy ĉᵀ                                   (accumulated)
 *   dĉ = Ŵᵀ dy → dc = normalizeBackward(dĉ) per column → dx = col2im(dc)   (dx overwritten; null: skipped)
 */
export function cosineConv2dBackward(
  dx: FloatArray | null, dwhat: FloatArray, dy: FloatArray, x: FloatArray, what: FloatArray, g: Conv2dGeometry, eps: number,
  scratch: Float64Array,
): void {
  const { O, K, P } = g;
  const col = scratch.subarray(0, K * P), dcol = scratch.subarray(K * P, 2 * K * P), cn = scratch.subarray(2 * K * P, 2 * K * P + P);
  for (let n = 0; n < g.N; n++) {
    normalizedPatches(col, cn, x, n, g, eps);
    gemmDyColT(dwhat, dy, n * O * P, col, O, K, P);
    if (dx === null) continue;
    gemmWTDy(dcol, what, dy, n * O * P, O, K, P);
    normalizeBackward(dcol, dcol, col, cn, P, K, 1, P, eps, false);
    col2im(dx, n * g.C * g.H * g.W, dcol, g, false);
  }
}
