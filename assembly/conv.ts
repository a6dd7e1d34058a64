/**
 * Conv2d on the call block (ops CONV_FWD and CONV_BWD of scripts/wasm-call-block.json), split over
 * the batch: `run` in assembly/norm.ts hands these ops here, on every thread that joins the call.
 * Threads take chunks of images as they come (atomic NEXT, as the norm kernels take groups); each
 * thread has its own im2col matrix, and each CHUNK its own dweight partial, which the caller sums
 * in chunk order afterwards — so the result does not depend on which thread ran which chunk.
 *
 * Per image n (im2col, gemmNN, gemmNT and col2im of assembly/gemm.ts; Kc = C·kh·kw, P = Ho·Wo):
 *   forward:   col = im2col(x_n)            y_n  = W·col (+ b)          W [O, Kc], y_n [O, P]
 *   backward:  col = im2col(x_n)            dWc += dy_n·colᵀ            (the chunk's partials)
 *                                           dbc[o] += Σ_p dy_n[o, p]
 *              col = Wᵀ·dy_n                dx_n (+)= col2im(col)
 */
import {
  BLK_B, BLK_CHUNKS, BLK_CV_C, BLK_CV_COL, BLK_CV_DB, BLK_CV_DW, BLK_CV_DX, BLK_CV_H, BLK_CV_HO, BLK_CV_KH, BLK_CV_KW, BLK_CV_O,
  BLK_CV_PH, BLK_CV_PW, BLK_CV_SH, BLK_CV_SW, BLK_CV_W, BLK_CV_WO, BLK_DY, BLK_FLAGS, BLK_K, BLK_NEXT, BLK_W, BLK_X,
  BLK_Y, F_ACCUMULATE, OP_CONV_FWD,
} from "./call_block";
import { col2im, gemmNN, gemmNT, im2col } from "./gemm";

@inline function ld(blk: usize, f: i32): i32 {
  return load<i32>(blk + <usize>f);
}

/** dst[0..n) = v */
@inline function fill(dst: usize, v: f32, n: i32): void {
  const s = f32x4.splat(v);
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(dst + (<usize>t << 2), s);
  for (; t < n; t++) store<f32>(dst + (<usize>t << 2), v);
}

/** Σ src[0..n) (f32 lanes, then the lanes pairwise) */
@inline function rowSum(src: usize, n: i32): f32 {
  let a = f32x4.splat(0);
  let t = 0;
  for (; t + 4 <= n; t += 4) a = f32x4.add(a, v128.load(src + (<usize>t << 2)));
  let s = (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
  for (; t < n; t++) s += load<f32>(src + (<usize>t << 2));
  return s;
}

export function convRun(blk: usize, op: i32, tid: i32): void {
  const N = ld(blk, BLK_K), chunks = ld(blk, BLK_CHUNKS);
  const C = ld(blk, BLK_CV_C), H = ld(blk, BLK_CV_H), W = ld(blk, BLK_CV_W), O = ld(blk, BLK_CV_O);
  const kh = ld(blk, BLK_CV_KH), kw = ld(blk, BLK_CV_KW), sh = ld(blk, BLK_CV_SH), sw = ld(blk, BLK_CV_SW);
  const ph = ld(blk, BLK_CV_PH), pw = ld(blk, BLK_CV_PW), Ho = ld(blk, BLK_CV_HO), Wo = ld(blk, BLK_CV_WO);
  const Kc = C * kh * kw, P = Ho * Wo;
  const xs = <usize>(C * H * W) << 2, ys = <usize>(O * P) << 2;
  const x = <usize>ld(blk, BLK_X), w = <usize>ld(blk, BLK_W), dy = <usize>ld(blk, BLK_DY);
  const col = <usize>ld(blk, BLK_CV_COL) + ((<usize>tid * <usize>Kc * <usize>P) << 2);
  const y = <usize>ld(blk, BLK_Y), b = <usize>ld(blk, BLK_B);
  const dwBase = <usize>ld(blk, BLK_CV_DW), dx = <usize>ld(blk, BLK_CV_DX), dbBase = <usize>ld(blk, BLK_CV_DB);
  const acc = (ld(blk, BLK_FLAGS) & F_ACCUMULATE) != 0;
  for (;;) {
    const c = atomic.add<i32>(blk + BLK_NEXT, 1);
    if (c >= chunks) break;
    const n0 = <i32>((<i64>N * <i64>c) / <i64>chunks);
    const n1 = <i32>((<i64>N * <i64>(c + 1)) / <i64>chunks);
    if (op == OP_CONV_FWD) {
      for (let n = n0; n < n1; n++) {
        const yn = y + <usize>n * ys;
        if (b != 0) {
          for (let o = 0; o < O; o++) fill(yn + ((<usize>o * <usize>P) << 2), load<f32>(b + (<usize>o << 2)), P);
        }
        im2col(col, x + <usize>n * xs, C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo);
        gemmNN(O, P, Kc, w, Kc, 1, col, P, yn, P, b != 0);
      }
      continue;
    }
    const dw = dwBase != 0 ? dwBase + ((<usize>c * <usize>O * <usize>Kc) << 2) : 0;
    if (dw != 0) memory.fill(dw, 0, (<usize>O * <usize>Kc) << 2);
    const db = dbBase != 0 ? dbBase + ((<usize>c * <usize>O) << 2) : 0;
    if (db != 0) memory.fill(db, 0, <usize>O << 2);
    for (let n = n0; n < n1; n++) {
      const dyn = dy + <usize>n * ys;
      if (db != 0) {
        for (let o = 0; o < O; o++) {
          const q = db + (<usize>o << 2);
          store<f32>(q, load<f32>(q) + rowSum(dyn + ((<usize>o * <usize>P) << 2), P));
        }
      }
      if (dw != 0) {
        im2col(col, x + <usize>n * xs, C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo);
        gemmNT(O, Kc, P, dyn, P, col, P, dw, Kc, true);
      }
      if (dx != 0) {
        gemmNN(Kc, P, O, w, 1, Kc, dyn, P, col, P, false);
        col2im(dx + <usize>n * xs, col, C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, acc);
      }
    }
  }
}
