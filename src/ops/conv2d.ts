/**
 * 2-D convolution (cross-correlation, as PyTorch) over NCHW tensors via im2col + GEMM, one image at
 * a time. Pure functions: outputs and a float64 scratch buffer are provided by the caller
 * (`conv2dScratchSize` says how big), nothing is allocated inside. Sums are accumulated in float64.
 *
 * For one image the im2col matrix `col` is [K, P] with K = C·kh·kw (one receptive field per column)
 * and P = Ho·Wo (one column per output position); the convolution is then y = W·col with W [O, K].
 */
import { ShapeError, fmtShape } from "../errors.js";
import type { FloatArray } from "../tensor.js";

export interface Conv2dGeometry {
  readonly N: number; readonly C: number; readonly H: number; readonly W: number;
  readonly O: number;
  readonly kh: number; readonly kw: number;
  readonly sh: number; readonly sw: number;
  readonly ph: number; readonly pw: number;
  readonly Ho: number; readonly Wo: number;
  /** C·kh·kw: rows of the im2col matrix. */
  readonly K: number;
  /** Ho·Wo: columns of the im2col matrix. */
  readonly P: number;
}

/**
 * The geometry of a convolution of an input [N, C, H, W] with O filters of size kh×kw:
 * Ho = ⌊(H + 2·ph − kh) / sh⌋ + 1, Wo likewise. Throws a ShapeError (param "x") when the padded
 * input is smaller than the kernel.
 */
export function conv2dGeometry(
  input: readonly number[], outChannels: number,
  kernel: readonly [number, number], stride: readonly [number, number], padding: readonly [number, number],
): Conv2dGeometry {
  const [N, C, H, W] = input as [number, number, number, number];
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  if (H + 2 * ph < kh || W + 2 * pw < kw) {
    throw new ShapeError("x", `a padded input of at least ${kh}x${kw}`, `shape ${fmtShape(input)} with padding [${ph}, ${pw}]`, "conv2d");
  }
  const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  return { N, C, H, W, O: outChannels, kh, kw, sh, sw, ph, pw, Ho, Wo, K: C * kh * kw, P: Ho * Wo };
}

/** Length of the Float64Array scratch that conv2dForward / conv2dBackward need: col [K,P] plus max(P, O·K). */
export function conv2dScratchSize(g: Conv2dGeometry): number {
  return g.K * g.P + Math.max(g.P, g.O * g.K);
}

/**
 * col[(c,i,j), (oh,ow)] = x[c, oh·sh − ph + i, ow·sw − pw + j]   (0 where that falls in the padding)
 * for the image that starts at x[xOff]; col is [K, P].
 */
export function im2col(col: FloatArray, x: FloatArray, xOff: number, g: Conv2dGeometry): FloatArray {
  const { C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, P } = g;
  let row = 0;
  for (let c = 0; c < C; c++) {
    const xc = xOff + c * H * W;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++, row++) {
        const ro = row * P;
        for (let oh = 0; oh < Ho; oh++) {
          const ih = oh * sh - ph + i;
          const co = ro + oh * Wo;
          if (ih < 0 || ih >= H) {
            col.fill(0, co, co + Wo);
            continue;
          }
          const xr = xc + ih * W;
          for (let ow = 0; ow < Wo; ow++) {
            const iw = ow * sw - pw + j;
            col[co + ow] = iw >= 0 && iw < W ? x[xr + iw] : 0;
          }
        }
      }
    }
  }
  return col;
}

/**
 * The adjoint of im2col, written as a gather so each pixel is one float64 sum:
 *   dx[c,ih,iw] (+)= Σ_{i,j} col[(c,i,j), (oh,ow)]  over oh = (ih + ph − i)/sh, ow = (iw + pw − j)/sw
 *   integral and in range. Writes the image that starts at dx[dxOff]; with `accumulate`, adds to it.
 */
export function col2im(dx: FloatArray, dxOff: number, col: FloatArray, g: Conv2dGeometry, accumulate: boolean): FloatArray {
  const { C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, P } = g;
  for (let c = 0; c < C; c++) {
    for (let ih = 0; ih < H; ih++) {
      for (let iw = 0; iw < W; iw++) {
        let s = 0;
        for (let i = 0; i < kh; i++) {
          const th = ih + ph - i;
          if (th < 0 || th % sh !== 0) continue;
          const oh = th / sh;
          if (oh >= Ho) continue;
          const rowBase = (c * kh + i) * kw;
          for (let j = 0; j < kw; j++) {
            const tw = iw + pw - j;
            if (tw < 0 || tw % sw !== 0) continue;
            const ow = tw / sw;
            if (ow >= Wo) continue;
            s += col[(rowBase + j) * P + oh * Wo + ow];
          }
        }
        const d = dxOff + (c * H + ih) * W + iw;
        dx[d] = accumulate ? dx[d] + s : s;
      }
    }
  }
  return dx;
}

/**
 * y[o,p] = b[o] + Σ_k W[o,k]·col[k,p]   for one image (written at out[outOff], [O, P]).
 * For each output row: axpy the contiguous rows of col, four at a time, into a float64 row `acc`
 * (length ≥ P), then store it.
 */
export function gemmWCol(
  out: FloatArray, outOff: number, w: FloatArray, b: FloatArray | null, col: FloatArray,
  O: number, K: number, P: number, acc: Float64Array,
): FloatArray {
  for (let o = 0; o < O; o++) {
    const wo = o * K;
    acc.fill(b === null ? 0 : b[o], 0, P);
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const a0 = w[wo + k], a1 = w[wo + k + 1], a2 = w[wo + k + 2], a3 = w[wo + k + 3];
      const c0 = k * P, c1 = c0 + P, c2 = c1 + P, c3 = c2 + P;
      for (let p = 0; p < P; p++) acc[p] += a0 * col[c0 + p] + a1 * col[c1 + p] + a2 * col[c2 + p] + a3 * col[c3 + p];
    }
    for (; k < K; k++) {
      const a = w[wo + k], c0 = k * P;
      for (let p = 0; p < P; p++) acc[p] += a * col[c0 + p];
    }
    const yo = outOff + o * P;
    for (let p = 0; p < P; p++) out[yo + p] = acc[p];
  }
  return out;
}

/** dW[o,k] += Σ_p dy[o,p]·col[k,p]   for one image (dy at dy[dyOff], [O, P]): contiguous row dots, four rows of col per pass. */
export function gemmDyColT(dw: Float64Array, dy: FloatArray, dyOff: number, col: FloatArray, O: number, K: number, P: number): Float64Array {
  for (let o = 0; o < O; o++) {
    const dyo = dyOff + o * P, wo = o * K;
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const c0 = k * P, c1 = c0 + P, c2 = c1 + P, c3 = c2 + P;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let p = 0; p < P; p++) {
        const d = dy[dyo + p];
        s0 += d * col[c0 + p]; s1 += d * col[c1 + p]; s2 += d * col[c2 + p]; s3 += d * col[c3 + p];
      }
      dw[wo + k] += s0; dw[wo + k + 1] += s1; dw[wo + k + 2] += s2; dw[wo + k + 3] += s3;
    }
    for (; k < K; k++) {
      const c0 = k * P;
      let s = 0;
      for (let p = 0; p < P; p++) s += dy[dyo + p] * col[c0 + p];
      dw[wo + k] += s;
    }
  }
  return dw;
}

/** dcol[k,p] = Σ_o W[o,k]·dy[o,p]   for one image: axpy the rows of dy, four at a time, into each row of dcol. */
export function gemmWTDy(dcol: Float64Array, w: FloatArray, dy: FloatArray, dyOff: number, O: number, K: number, P: number): Float64Array {
  for (let k = 0; k < K; k++) {
    const co = k * P;
    dcol.fill(0, co, co + P);
    let o = 0;
    for (; o + 4 <= O; o += 4) {
      const a0 = w[o * K + k], a1 = w[(o + 1) * K + k], a2 = w[(o + 2) * K + k], a3 = w[(o + 3) * K + k];
      const d0 = dyOff + o * P, d1 = d0 + P, d2 = d1 + P, d3 = d2 + P;
      for (let p = 0; p < P; p++) dcol[co + p] += a0 * dy[d0 + p] + a1 * dy[d1 + p] + a2 * dy[d2 + p] + a3 * dy[d3 + p];
    }
    for (; o < O; o++) {
      const a = w[o * K + k], d0 = dyOff + o * P;
      for (let p = 0; p < P; p++) dcol[co + p] += a * dy[d0 + p];
    }
  }
  return dcol;
}

/**
 * y[n,o,oh,ow] = b[o] + Σ_{c,i,j} W[o,c,i,j]·x[n, c, oh·sh − ph + i, ow·sw − pw + j]
 * x [N,C,H,W], W [O,C,kh,kw], b [O] or null, out [N,O,Ho,Wo]; scratch: conv2dScratchSize(g) float64s.
 */
export function conv2dForward(
  out: FloatArray, x: FloatArray, w: FloatArray, b: FloatArray | null, g: Conv2dGeometry, scratch: Float64Array,
): FloatArray {
  const { N, C, H, W, O, K, P } = g;
  const col = scratch.subarray(0, K * P);
  const acc = scratch.subarray(K * P, K * P + P);
  for (let n = 0; n < N; n++) {
    im2col(col, x, n * C * H * W, g);
    gemmWCol(out, n * O * P, w, b, col, O, K, P, acc);
  }
  return out;
}

/**
 * dW = Σ_n dy_n · col_nᵀ      dx_n = col2im(Wᵀ · dy_n)      db[o] = Σ_{n,p} dy[n,o,p]
 * A null output is skipped; with `accumulate` each result is added (+=) to its buffer, otherwise it
 * overwrites it. dW is summed over the batch in float64 scratch and stored once.
 */
export function conv2dBackward(
  dx: FloatArray | null, dw: FloatArray | null, db: FloatArray | null,
  dy: FloatArray, x: FloatArray, w: FloatArray, g: Conv2dGeometry, scratch: Float64Array, accumulate: boolean,
): void {
  const { N, C, H, W, O, K, P } = g;
  if (db !== null) {
    for (let o = 0; o < O; o++) {
      let s = accumulate ? db[o] : 0;
      for (let n = 0; n < N; n++) {
        const dyo = (n * O + o) * P;
        for (let p = 0; p < P; p++) s += dy[dyo + p];
      }
      db[o] = s;
    }
  }
  if (dx === null && dw === null) return;
  const col = scratch.subarray(0, K * P);
  const dwAcc = scratch.subarray(K * P, K * P + O * K);
  if (dw !== null) for (let i = 0; i < O * K; i++) dwAcc[i] = accumulate ? dw[i] : 0;
  for (let n = 0; n < N; n++) {
    if (dw !== null) gemmDyColT(dwAcc, dy, n * O * P, im2col(col, x, n * C * H * W, g), O, K, P);
    if (dx !== null) col2im(dx, n * C * H * W, gemmWTDy(col, w, dy, n * O * P, O, K, P), g, accumulate);
  }
  if (dw !== null) for (let i = 0; i < O * K; i++) dw[i] = dwAcc[i];
}
