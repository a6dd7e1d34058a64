/**
 * 2-D pooling kernels over NCHW planes. Pure functions: outputs (and, for max pooling, the argmax
 * index buffer) are provided by the caller; nothing is allocated. Windows are kh×kw with stride
 * sh×sw and no padding: Ho = ⌊(H − kh) / sh⌋ + 1 (PyTorch's default, ceil_mode false).
 */
import type { FloatArray } from "../../tensor.js";

import type { Pool2dGeometry } from "../contract/ops.js";
export type { Pool2dGeometry } from "../contract/ops.js";
export { pool2dGeometry } from "../contract/ops.js";

/**
 * y[q, oh, ow] = max over the window of x[q, oh·sh + i, ow·sw + j]; argmax holds the flat input
 * index of the first maximum (PyTorch's tie rule: the first in row-major window order). NaN wins.
 */
export function maxPool2dForward(y: FloatArray, argmax: Int32Array, x: Readonly<FloatArray>, g: Pool2dGeometry): FloatArray {
  const { planes, H, W, kh, kw, sh, sw, Ho, Wo } = g;
  let o = 0;
  for (let q = 0; q < planes; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++, o++) {
        const r0 = base + oh * sh * W + ow * sw;
        let best = r0, bv = x[r0]!;
        for (let i = 0; i < kh; i++) {
          for (let j = 0, t = r0 + i * W; j < kw; j++, t++) {
            const v = x[t]!;
            if (v > bv || (v !== v && bv === bv)) {
              bv = v;
              best = t;
            }
          }
        }
        y[o] = bv;
        argmax[o] = best;
      }
    }
  }
  return y;
}

/** 2×2 stride-2 fast path of maxPool2dForward (same results). */
export function maxPool2x2Forward(y: FloatArray, argmax: Int32Array, x: Readonly<FloatArray>, g: Pool2dGeometry): FloatArray {
  const { planes, H, W, Ho, Wo } = g;
  let o = 0;
  for (let q = 0; q < planes; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < Ho; oh++) {
      let t = base + 2 * oh * W;
      for (let ow = 0; ow < Wo; ow++, o++, t += 2) {
        let best = t, bv = x[t]!;
        let v = x[t + 1]!;
        if (v > bv || (v !== v && bv === bv)) { bv = v; best = t + 1; }
        v = x[t + W]!;
        if (v > bv || (v !== v && bv === bv)) { bv = v; best = t + W; }
        v = x[t + W + 1]!;
        if (v > bv || (v !== v && bv === bv)) { bv = v; best = t + W + 1; }
        y[o] = bv;
        argmax[o] = best;
      }
    }
  }
  return y;
}

/** dx = 0, then dx[argmax[o]] += dy[o] (overlapping windows add). dx has planes·H·W entries. */
export function maxPool2dBackward(dx: FloatArray, dy: Readonly<FloatArray>, argmax: Readonly<Int32Array>, outSize: number): FloatArray {
  dx.fill(0);
  for (let o = 0; o < outSize; o++) dx[argmax[o]!] += dy[o]!;
  return dx;
}

/** y[q, oh, ow] = mean over the kh×kw window (sum in float64). */
export function avgPool2dForward(y: FloatArray, x: Readonly<FloatArray>, g: Pool2dGeometry): FloatArray {
  const { planes, H, W, kh, kw, sh, sw, Ho, Wo } = g;
  const inv = 1 / (kh * kw);
  let o = 0;
  for (let q = 0; q < planes; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++, o++) {
        const r0 = base + oh * sh * W + ow * sw;
        let s = 0;
        for (let i = 0; i < kh; i++) for (let j = 0, t = r0 + i * W; j < kw; j++, t++) s += x[t]!;
        y[o] = s * inv;
      }
    }
  }
  return y;
}

/** dx = 0, then every input of output o's window gets dy[o] / (kh·kw). */
export function avgPool2dBackward(dx: FloatArray, dy: Readonly<FloatArray>, g: Pool2dGeometry): FloatArray {
  const { planes, H, W, kh, kw, sh, sw, Ho, Wo } = g;
  const inv = 1 / (kh * kw);
  dx.fill(0);
  let o = 0;
  for (let q = 0; q < planes; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++, o++) {
        const r0 = base + oh * sh * W + ow * sw;
        const d = dy[o]! * inv;
        for (let i = 0; i < kh; i++) for (let j = 0, t = r0 + i * W; j < kw; j++, t++) dx[t] += d;
      }
    }
  }
  return dx;
}

/** y[q] = mean of plane q (S values each). */
export function globalAvgPoolForward(y: FloatArray, x: Readonly<FloatArray>, planes: number, S: number): FloatArray {
  for (let q = 0, t = 0; q < planes; q++) {
    let s = 0;
    for (let i = 0; i < S; i++, t++) s += x[t]!;
    y[q] = s / S;
  }
  return y;
}

/** dx[q, s] = dy[q] / S. */
export function globalAvgPoolBackward(dx: FloatArray, dy: Readonly<FloatArray>, planes: number, S: number): FloatArray {
  for (let q = 0, t = 0; q < planes; q++) {
    const d = dy[q]! / S;
    for (let i = 0; i < S; i++, t++) dx[t] = d;
  }
  return dx;
}
