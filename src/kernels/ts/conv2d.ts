/**
 * 2-D convolution (cross-correlation, as PyTorch) over NCHW tensors via im2col + GEMM, one image at
 * a time. Pure functions: outputs and a float64 scratch buffer are provided by the caller
 * (`conv2dScratchSize` says how big), nothing is allocated inside. Sums are accumulated in float64,
 * except that float32 calls run on the WebAssembly SIMD kernels (f32 sums, as PyTorch's CPU GEMMs)
 * where available and the kernel mode is not "ts" (src/kernels/wasm/gemm.ts).
 *
 * For one image the im2col matrix `col` is [K, P] with K = C·kh·kw (one receptive field per column)
 * and P = Ho·Wo (one column per output position); the convolution is then y = W·col with W [O, K].
 */
import type { Conv2dGeometry } from "../contract/ops.js";
import type { FloatArray } from "../../tensor.js";
import { gemm, rowMajor, transposed } from "./gemm.js";
import { wasmGemmFor, wasmTook } from "../wasm/gemm.js";

export type { Conv2dGeometry } from "../contract/ops.js";
export { conv2dGeometry } from "../contract/ops.js";

/**
 * Length of the Float64Array scratch that conv2dForward / conv2dBackward need: col [K,P], a float64
 * copy of W [O·K], the dW accumulator [O·K] and a float64 copy of one image's dy [O·P].
 * (The GEMMs read only float64 operands: V8 loads a Float64Array element in one instruction where a
 * Float32Array element needs a load and a conversion, and one element type keeps the kernels
 * monomorphic. The copies are O(K·P + O·P) per image against O·K·P multiply-adds.)
 */
export function conv2dScratchSize(g: Conv2dGeometry): number {
  return g.K * g.P + 2 * g.O * g.K + g.O * g.P;
}

/** The scratch regions (see conv2dScratchSize). */
function regions(scratch: Float64Array, g: Conv2dGeometry) {
  const { K, P, O } = g;
  let at = 0;
  const take = (n: number) => scratch.subarray(at, (at += n));
  return { col: take(K * P), w64: take(O * K), dwAcc: take(O * K), dy64: take(O * P) };
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
  if (sh === 1 && sw === 1) {
    // stride 1: oh = ih + ph − i and ow = iw + pw − j, in range for a contiguous range of i and j
    for (let c = 0; c < C; c++) {
      for (let ih = 0; ih < H; ih++) {
        const i0 = Math.max(0, ih + ph - Ho + 1), i1 = Math.min(kh - 1, ih + ph);
        for (let iw = 0; iw < W; iw++) {
          const j0 = Math.max(0, iw + pw - Wo + 1), j1 = Math.min(kw - 1, iw + pw);
          let s = 0;
          for (let i = i0; i <= i1; i++) {
            const base = (c * kh + i) * kw * P + (ih + ph - i) * Wo + iw + pw;
            for (let j = j0; j <= j1; j++) s += col[base + j * P - j];
          }
          const d = dxOff + (c * H + ih) * W + iw;
          dx[d] = accumulate ? dx[d] + s : s;
        }
      }
    }
    return dx;
  }
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

/** y[o,p] = b[o] + Σ_k W[o,k]·col[k,p]   for one image (written at out[outOff], [O, P]). */
export function gemmWCol(
  out: FloatArray, outOff: number, w: FloatArray, b: FloatArray | null, col: FloatArray,
  O: number, K: number, P: number,
): FloatArray {
  if (b !== null) for (let o = 0; o < O; o++) out.fill(b[o]!, outOff + o * P, outOff + (o + 1) * P);
  gemm(O, P, K, rowMajor(w, 0, K), rowMajor(col, 0, P), rowMajor(out, outOff, P), b !== null);
  return out;
}

/** dW[o,k] += Σ_p dy[o,p]·col[k,p]   for one image (dy at dy[dyOff], [O, P]). */
export function gemmDyColT(dw: FloatArray, dy: FloatArray, dyOff: number, col: FloatArray, O: number, K: number, P: number): FloatArray {
  gemm(O, K, P, rowMajor(dy, dyOff, P), transposed(col, 0, P), rowMajor(dw, 0, K), true);
  return dw;
}

/** dcol[k,p] = Σ_o W[o,k]·dy[o,p]   for one image. */
export function gemmWTDy(dcol: FloatArray, w: FloatArray, dy: FloatArray, dyOff: number, O: number, K: number, P: number): FloatArray {
  gemm(K, P, O, transposed(w, 0, K), rowMajor(dy, dyOff, P), rowMajor(dcol, 0, P), false);
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
  // float32: the WebAssembly SIMD path (f32 sums) where available; otherwise the loops below
  const fast = wasmGemmFor(N * (C * H * W + O * P) + O * K + K * P, out, x, w, b);
  // a WebAssembly memory too full for the call's staging falls back to the loops below (nothing written yet)
  if (fast && wasmTook(() => fast.conv2dForward(out as Float32Array, x as Float32Array, w as Float32Array, b as Float32Array | null, g))) return out;
  const { col, w64 } = regions(scratch, g);
  w64.set(w.subarray(0, O * K));
  for (let n = 0; n < N; n++) {
    im2col(col, x, n * C * H * W, g);
    gemmWCol(out, n * O * P, w64, b, col, O, K, P);
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
  const fast = dx !== null || dw !== null ? wasmGemmFor(N * (2 * C * H * W + O * P) + 2 * O * K + K * P, dx, dw, db, dy, x, w) : null;
  if (fast && wasmTook(() => fast.conv2dBackward(dx as Float32Array | null, dw as Float32Array | null, db as Float32Array | null, dy as Float32Array,
    x as Float32Array, w as Float32Array, g, accumulate))) return;
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
  const { col, w64, dwAcc, dy64 } = regions(scratch, g);
  w64.set(w.subarray(0, O * K));
  if (dw !== null) for (let i = 0; i < O * K; i++) dwAcc[i] = accumulate ? dw[i]! : 0;
  for (let n = 0; n < N; n++) {
    dy64.set(dy.subarray(n * O * P, (n + 1) * O * P));
    if (dw !== null) gemmDyColT(dwAcc, dy64, 0, im2col(col, x, n * C * H * W, g), O, K, P);
    if (dx !== null) col2im(dx, n * C * H * W, gemmWTDy(col, w64, dy64, 0, O, K, P), g, accumulate);
  }
  if (dw !== null) for (let i = 0; i < O * K; i++) dw[i] = dwAcc[i]!;
}
