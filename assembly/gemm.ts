/**
 * Float32 GEMM and im2col / col2im kernels (WebAssembly SIMD, f32x4) for Conv2d and Linear, compiled
 * into the same module as assembly/norm.ts (scripts/build-wasm.mjs). Called from
 * src/kernels/wasm/gemm.ts on the main thread only, with every argument a parameter (no call block,
 * unlike norm.ts). Pointers are byte addresses; strides and sizes are in elements. Sums accumulate in f32 lanes (as PyTorch's CPU GEMMs do); the float64 path of the
 * library never comes here.
 *
 *   gemmNN:  C[M,N] (+)= A(i,k) · B[k,j]   A(i,k) = a[i·ai + k·ak] (any strides), B row-major (ldb)
 *   gemmNT:  C[M,N] (+)= Σ_k A[i,k] · B[j,k]   A, B row-major along k (lda, ldb): dot products
 * `gemmRun` splits either over the rows of C for the call block's GEMM_* ops (from `run` in
 * assembly/norm.ts): each chunk owns its rows, so the result does not depend on the split.
 */
import {
  BLK_CHUNKS, BLK_FLAGS, BLK_G_AI, BLK_G_AK, BLK_G_K, BLK_G_LDB, BLK_G_LDC, BLK_G_N, BLK_K, BLK_NEXT, BLK_W, BLK_X, BLK_Y,
  F_ACCUMULATE, OP_GEMM_NN,
} from "./call_block";

/** The call block's GEMM on this thread: chunks of C's K rows as they come. */
export function gemmRun(blk: usize, op: i32): void {
  const M = load<i32>(blk + BLK_K), chunks = load<i32>(blk + BLK_CHUNKS);
  const N = load<i32>(blk + BLK_G_N), K = load<i32>(blk + BLK_G_K), ai = load<i32>(blk + BLK_G_AI), ak = load<i32>(blk + BLK_G_AK);
  const ldb = load<i32>(blk + BLK_G_LDB), ldc = load<i32>(blk + BLK_G_LDC);
  const a = <usize>load<i32>(blk + BLK_X), b = <usize>load<i32>(blk + BLK_W), c = <usize>load<i32>(blk + BLK_Y);
  const acc = (load<i32>(blk + BLK_FLAGS) & F_ACCUMULATE) != 0;
  for (;;) {
    const ch = atomic.add<i32>(blk + BLK_NEXT, 1);
    if (ch >= chunks) break;
    // chunk boundaries on multiples of 4 rows (the micro-kernel's height)
    const i0 = <i32>((<i64>(M >> 2) * <i64>ch) / <i64>chunks) << 2;
    const i1 = ch + 1 == chunks ? M : <i32>((<i64>(M >> 2) * <i64>(ch + 1)) / <i64>chunks) << 2;
    if (i0 >= i1) continue;
    const pa = a + ((<usize>i0 * <usize>ai) << 2), pc = c + ((<usize>i0 * <usize>ldc) << 2);
    if (op == OP_GEMM_NN) gemmNN(i1 - i0, N, K, pa, ai, ak, b, ldb, pc, ldc, acc);
    else gemmNT(i1 - i0, N, K, pa, ai, b, ldb, pc, ldc, acc);
  }
}

@inline function ldf(p: usize): f32 {
  return load<f32>(p);
}

@inline function hsum4(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** Stores v (or adds it to what is there when acc) at p. */
@inline function st4(p: usize, v: v128, acc: bool): void {
  if (acc) v = f32x4.add(v128.load(p), v);
  v128.store(p, v);
}

@inline function st1(p: usize, v: f32, acc: bool): void {
  store<f32>(p, acc ? load<f32>(p) + v : v);
}

/** C (+)= A·B with B and C row-major; A element (i, k) at a + 4·(i·ai + k·ak). */
export function gemmNN(
  M: i32, N: i32, K: i32, a: usize, ai: i32, ak: i32, b: usize, ldb: i32, c: usize, ldc: i32, acc: bool,
): void {
  if (M <= 0 || N <= 0) return;
  const sai = <usize>ai << 2, sak = <usize>ak << 2, sb = <usize>ldb << 2, sc = <usize>ldc << 2;
  const M4 = M & ~3, N8 = N & ~7, N4 = N & ~3;
  let i = 0;
  for (; i < M4; i += 4) {
    const pa = a + <usize>i * sai;
    const pc = c + <usize>i * sc;
    let j = 0;
    // 4x8 block: 8 accumulators + 2 B vectors + 1 splat stay in the 16 SIMD registers of x64
    for (; j < N8; j += 8) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let qa = pa;
      let qb = b + (<usize>j << 2);
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(qb), b1 = v128.load(qb, 16);
        let x = f32x4.splat(ldf(qa));
        c00 = f32x4.add(c00, f32x4.mul(x, b0)); c01 = f32x4.add(c01, f32x4.mul(x, b1));
        x = f32x4.splat(ldf(qa + sai));
        c10 = f32x4.add(c10, f32x4.mul(x, b0)); c11 = f32x4.add(c11, f32x4.mul(x, b1));
        x = f32x4.splat(ldf(qa + 2 * sai));
        c20 = f32x4.add(c20, f32x4.mul(x, b0)); c21 = f32x4.add(c21, f32x4.mul(x, b1));
        x = f32x4.splat(ldf(qa + 3 * sai));
        c30 = f32x4.add(c30, f32x4.mul(x, b0)); c31 = f32x4.add(c31, f32x4.mul(x, b1));
        qa += sak;
        qb += sb;
      }
      let q = pc + (<usize>j << 2);
      st4(q, c00, acc); st4(q + 16, c01, acc);
      q += sc;
      st4(q, c10, acc); st4(q + 16, c11, acc);
      q += sc;
      st4(q, c20, acc); st4(q + 16, c21, acc);
      q += sc;
      st4(q, c30, acc); st4(q + 16, c31, acc);
    }
    for (; j < N4; j += 4) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let qa = pa;
      let qb = b + (<usize>j << 2);
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(qb);
        c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(ldf(qa)), b0));
        c1 = f32x4.add(c1, f32x4.mul(f32x4.splat(ldf(qa + sai)), b0));
        c2 = f32x4.add(c2, f32x4.mul(f32x4.splat(ldf(qa + 2 * sai)), b0));
        c3 = f32x4.add(c3, f32x4.mul(f32x4.splat(ldf(qa + 3 * sai)), b0));
        qa += sak;
        qb += sb;
      }
      const q = pc + (<usize>j << 2);
      st4(q, c0, acc); st4(q + sc, c1, acc); st4(q + 2 * sc, c2, acc); st4(q + 3 * sc, c3, acc);
    }
    for (; j < N; j++) {
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
      let qa = pa;
      let qb = b + (<usize>j << 2);
      for (let k = 0; k < K; k++) {
        const y = ldf(qb);
        s0 += ldf(qa) * y; s1 += ldf(qa + sai) * y; s2 += ldf(qa + 2 * sai) * y; s3 += ldf(qa + 3 * sai) * y;
        qa += sak;
        qb += sb;
      }
      const q = pc + (<usize>j << 2);
      st1(q, s0, acc); st1(q + sc, s1, acc); st1(q + 2 * sc, s2, acc); st1(q + 3 * sc, s3, acc);
    }
  }
  for (; i < M; i++) {
    const pa = a + <usize>i * sai;
    const pc = c + <usize>i * sc;
    let j = 0;
    for (; j < N8; j += 8) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
      let qa = pa;
      let qb = b + (<usize>j << 2);
      for (let k = 0; k < K; k++) {
        const x = f32x4.splat(ldf(qa));
        c0 = f32x4.add(c0, f32x4.mul(x, v128.load(qb)));
        c1 = f32x4.add(c1, f32x4.mul(x, v128.load(qb, 16)));
        qa += sak;
        qb += sb;
      }
      const q = pc + (<usize>j << 2);
      st4(q, c0, acc); st4(q + 16, c1, acc);
    }
    for (; j < N4; j += 4) {
      let c0 = f32x4.splat(0);
      let qa = pa;
      let qb = b + (<usize>j << 2);
      for (let k = 0; k < K; k++) {
        c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(ldf(qa)), v128.load(qb)));
        qa += sak;
        qb += sb;
      }
      st4(pc + (<usize>j << 2), c0, acc);
    }
    for (; j < N; j++) {
      let s: f32 = 0;
      let qa = pa;
      let qb = b + (<usize>j << 2);
      for (let k = 0; k < K; k++) {
        s += ldf(qa) * ldf(qb);
        qa += sak;
        qb += sb;
      }
      st1(pc + (<usize>j << 2), s, acc);
    }
  }
}

/** C[i,j] (+)= Σ_k A[i,k]·B[j,k]; A row i at a + 4·i·lda, B row j at b + 4·j·ldb, C row-major (ldc). */
export function gemmNT(
  M: i32, N: i32, K: i32, a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, acc: bool,
): void {
  if (M <= 0 || N <= 0) return;
  const sa = <usize>lda << 2, sb = <usize>ldb << 2, sc = <usize>ldc << 2;
  const M2 = M & ~1, N4 = N & ~3, K4 = K & ~3;
  const kt = <usize>K4 << 2, ke = <usize>K << 2;
  let i = 0;
  // 2x4 block: 8 accumulators + 4 B vectors + 1 A vector stay in the 16 SIMD registers of x64
  for (; i < M2; i += 2) {
    const a0 = a + <usize>i * sa, a1 = a0 + sa;
    const pc = c + <usize>i * sc;
    let j = 0;
    for (; j < N4; j += 4) {
      const b0 = b + <usize>j * sb, b1 = b0 + sb, b2 = b1 + sb, b3 = b2 + sb;
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
      let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
      for (let o: usize = 0; o < kt; o += 16) {
        const y0 = v128.load(b0 + o), y1 = v128.load(b1 + o), y2 = v128.load(b2 + o), y3 = v128.load(b3 + o);
        let x = v128.load(a0 + o);
        c00 = f32x4.add(c00, f32x4.mul(x, y0)); c01 = f32x4.add(c01, f32x4.mul(x, y1));
        c02 = f32x4.add(c02, f32x4.mul(x, y2)); c03 = f32x4.add(c03, f32x4.mul(x, y3));
        x = v128.load(a1 + o);
        c10 = f32x4.add(c10, f32x4.mul(x, y0)); c11 = f32x4.add(c11, f32x4.mul(x, y1));
        c12 = f32x4.add(c12, f32x4.mul(x, y2)); c13 = f32x4.add(c13, f32x4.mul(x, y3));
      }
      let s00 = hsum4(c00), s01 = hsum4(c01), s02 = hsum4(c02), s03 = hsum4(c03);
      let s10 = hsum4(c10), s11 = hsum4(c11), s12 = hsum4(c12), s13 = hsum4(c13);
      for (let o: usize = kt; o < ke; o += 4) {
        const y0 = ldf(b0 + o), y1 = ldf(b1 + o), y2 = ldf(b2 + o), y3 = ldf(b3 + o);
        let x = ldf(a0 + o);
        s00 += x * y0; s01 += x * y1; s02 += x * y2; s03 += x * y3;
        x = ldf(a1 + o);
        s10 += x * y0; s11 += x * y1; s12 += x * y2; s13 += x * y3;
      }
      let q = pc + (<usize>j << 2);
      st1(q, s00, acc); st1(q + 4, s01, acc); st1(q + 8, s02, acc); st1(q + 12, s03, acc);
      q += sc;
      st1(q, s10, acc); st1(q + 4, s11, acc); st1(q + 8, s12, acc); st1(q + 12, s13, acc);
    }
    for (; j < N; j++) {
      const b0 = b + <usize>j * sb;
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
      for (let o: usize = 0; o < kt; o += 16) {
        const y = v128.load(b0 + o);
        c0 = f32x4.add(c0, f32x4.mul(v128.load(a0 + o), y));
        c1 = f32x4.add(c1, f32x4.mul(v128.load(a1 + o), y));
      }
      let s0 = hsum4(c0), s1 = hsum4(c1);
      for (let o: usize = kt; o < ke; o += 4) {
        const y = ldf(b0 + o);
        s0 += ldf(a0 + o) * y; s1 += ldf(a1 + o) * y;
      }
      const q = pc + (<usize>j << 2);
      st1(q, s0, acc); st1(q + sc, s1, acc);
    }
  }
  for (; i < M; i++) {
    const a0 = a + <usize>i * sa;
    const pc = c + <usize>i * sc;
    let j = 0;
    for (; j < N4; j += 4) {
      const b0 = b + <usize>j * sb, b1 = b0 + sb, b2 = b1 + sb, b3 = b2 + sb;
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      for (let o: usize = 0; o < kt; o += 16) {
        const x = v128.load(a0 + o);
        c0 = f32x4.add(c0, f32x4.mul(x, v128.load(b0 + o)));
        c1 = f32x4.add(c1, f32x4.mul(x, v128.load(b1 + o)));
        c2 = f32x4.add(c2, f32x4.mul(x, v128.load(b2 + o)));
        c3 = f32x4.add(c3, f32x4.mul(x, v128.load(b3 + o)));
      }
      let s0 = hsum4(c0), s1 = hsum4(c1), s2 = hsum4(c2), s3 = hsum4(c3);
      for (let o: usize = kt; o < ke; o += 4) {
        const x = ldf(a0 + o);
        s0 += x * ldf(b0 + o); s1 += x * ldf(b1 + o); s2 += x * ldf(b2 + o); s3 += x * ldf(b3 + o);
      }
      const q = pc + (<usize>j << 2);
      st1(q, s0, acc); st1(q + 4, s1, acc); st1(q + 8, s2, acc); st1(q + 12, s3, acc);
    }
    for (; j < N; j++) {
      const b0 = b + <usize>j * sb;
      let c0 = f32x4.splat(0);
      for (let o: usize = 0; o < kt; o += 16) c0 = f32x4.add(c0, f32x4.mul(v128.load(a0 + o), v128.load(b0 + o)));
      let s = hsum4(c0);
      for (let o: usize = kt; o < ke; o += 4) s += ldf(a0 + o) * ldf(b0 + o);
      st1(pc + (<usize>j << 2), s, acc);
    }
  }
}

/** n floats from src to dst (short rows: a loop beats memory.copy's call). */
@inline function copy(dst: usize, src: usize, n: i32): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(dst + (<usize>t << 2), v128.load(src + (<usize>t << 2)));
  for (; t < n; t++) store<f32>(dst + (<usize>t << 2), load<f32>(src + (<usize>t << 2)));
}

@inline function zero(dst: usize, n: i32): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(dst + (<usize>t << 2), f32x4.splat(0));
  for (; t < n; t++) store<f32>(dst + (<usize>t << 2), 0);
}

/**
 * col[(c,i,j), (oh,ow)] = x[c, oh·sh − ph + i, ow·sw − pw + j] (0 in the padding) for one image at x;
 * col is [C·kh·kw, Ho·Wo] row-major.
 */
export function im2col(
  col: usize, x: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, Ho: i32, Wo: i32,
): void {
  let q = col;
  for (let c = 0; c < C; c++) {
    const xc = x + ((<usize>(c * H * W)) << 2);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        // ow range with iw = ow·sw − pw + j inside [0, W)
        let ow0 = 0;
        if (j < pw) ow0 = (pw - j + sw - 1) / sw;
        let ow1 = Wo; // exclusive
        const lim = W - 1 + pw - j; // ow·sw ≤ lim
        if (lim < 0) ow1 = 0;
        else if (lim / sw + 1 < Wo) ow1 = lim / sw + 1;
        if (ow0 > ow1) ow0 = ow1;
        for (let oh = 0; oh < Ho; oh++, q += <usize>Wo << 2) {
          const ih = oh * sh - ph + i;
          if (ih < 0 || ih >= H) {
            zero(q, Wo);
            continue;
          }
          const xr = xc + ((<usize>(ih * W)) << 2);
          let ow = 0;
          for (; ow < ow0; ow++) store<f32>(q + (<usize>ow << 2), 0);
          if (sw === 1) {
            const src = xr + (<usize>(ow0 - pw + j) << 2);
            copy(q + (<usize>ow0 << 2), src, ow1 - ow0);
            ow = ow1;
          } else {
            for (; ow < ow1; ow++) store<f32>(q + (<usize>ow << 2), load<f32>(xr + (<usize>(ow * sw - pw + j) << 2)));
          }
          for (ow = ow1; ow < Wo; ow++) store<f32>(q + (<usize>ow << 2), 0);
        }
      }
    }
  }
}

/** The adjoint of im2col: dx[c,ih,iw] (+)= Σ col entries that read x[c,ih,iw] (stride 1: a scatter of rows; else a gather). */
export function col2im(
  dx: usize, col: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, Ho: i32, Wo: i32,
  acc: bool,
): void {
  const P = Ho * Wo;
  if (sh === 1 && sw === 1) {
    // stride 1 as a scatter of whole rows: dx[c, oh + i − ph, ow + j − pw] += col[(c,i,j), (oh, ow)],
    // each (row of col, oh) a contiguous run of ow — SIMD adds instead of a 9-way gather per pixel
    const HW = H * W;
    if (!acc) zero(dx, C * HW);
    let q = col;
    for (let c = 0; c < C; c++) {
      const dc = dx + (<usize>(c * HW) << 2);
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++, q += <usize>P << 2) {
          // ow with iw = ow + j − pw in [0, W)
          const ow0 = max(0, pw - j), ow1 = min(Wo, W + pw - j);
          if (ow1 <= ow0) continue;
          const len = ow1 - ow0;
          for (let oh = 0; oh < Ho; oh++) {
            const ih = oh + i - ph;
            if (ih < 0 || ih >= H) continue;
            const src = q + (<usize>(oh * Wo + ow0) << 2);
            const dst = dc + (<usize>(ih * W + ow0 + j - pw) << 2);
            let t = 0;
            for (; t + 4 <= len; t += 4) {
              const o = <usize>t << 2;
              v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
            }
            for (; t < len; t++) {
              const o = <usize>t << 2;
              store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
            }
          }
        }
      }
    }
    return;
  }
  for (let c = 0; c < C; c++) {
    for (let ih = 0; ih < H; ih++) {
      for (let iw = 0; iw < W; iw++) {
        let s: f32 = 0;
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
            s += load<f32>(col + (<usize>((rowBase + j) * P + oh * Wo + ow) << 2));
          }
        }
        st1(dx + (<usize>((c * H + ih) * W + iw) << 2), s, acc);
      }
    }
  }
}
