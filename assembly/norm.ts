/**
 * normkit's WebAssembly SIMD kernels (AssemblyScript, compiled by `npm run build:wasm`).
 *
 * One kernel call = one "call block" in linear memory (layout: BLK_*, OP_*, F_* of ./call_block, generated
 * from scripts/wasm-call-block.json; written by src/kernels/wasm/wasm.ts) and a thread index: `run(block, tid, threads)` processes statistic groups
 * [K*tid/T, K*(tid+1)/T). The JS side runs tid 0 itself and the other tids on worker threads that
 * share this memory, so the kernels keep no state between calls except the per-instance globals.
 *
 * Data layout (float32, NCHW view [N, C, S]): statistic group k consists of `nseg` segments of
 * `L` contiguous values; segment j starts at element k*gStride + j*sStride and belongs to channel
 * ((k % Gc) * cpg + j * cstep). GroupNorm / InstanceNorm: segments = the group's channels of one
 * sample; BatchNorm: segments = channel c of every sample; LayerNorm / RMSNorm: one row.
 *
 * Numerics (see PERFORMANCE.md): statistics are shifted sums, with the shift s = the mean of the
 * group's first (up to) 16 values, accumulated in f32x4 and flushed to f64 every 512 values:
 *   mean = s + Σ(x - s)/M,  var = Σ(x - s)^2/M - (Σ(x - s)/M)^2   (clamped at 0)
 * Normalisation and backward use s = f32(mean) and apply to (x - s), never to x itself, so inputs
 * with a large offset lose nothing to cancellation.
 */

import {
  BLK_ACC, BLK_CHUNKS, BLK_COMB_A, BLK_COMB_B, BLK_COMB_D, BLK_CPG, BLK_CSTEP, BLK_DY, BLK_EPS, BLK_FLAGS, BLK_GC,
  BLK_GSTRIDE, BLK_INVM, BLK_K, BLK_L, BLK_MEAN, BLK_NEXT, BLK_NSEG, BLK_OP, BLK_P, BLK_PART, BLK_RSTD, BLK_SSTRIDE,
  BLK_SUMG, BLK_SUMGX, BLK_VAR, BLK_W, BLK_B, BLK_X, BLK_Y,
  F_CENTER, F_ELEMENT, F_FIXED, OP_APPLY, OP_BWD, OP_COMBINE, OP_CONV_BWD, OP_CONV_FWD, OP_FWD_TRAIN, OP_GEMM_NN, OP_GEMM_NT, OP_MAXPOOL_BWD, OP_RELU_FWD, OP_STATS,
} from "./call_block";
import { convRun } from "./conv";
import { elementwiseRun } from "./elementwise";
import { gemmRun } from "./gemm";

// f32 partial sums are flushed to f64 every FLUSH values (per lane: FLUSH / 8 additions)
const FLUSH: i32 = 512;
// element-affine parameter accumulators are flushed to f64 every ROWFLUSH rows
const ROWFLUSH: i32 = 128;

// per-instance accumulators (each thread has its own instance)
let s1: f64 = 0;
let s2: f64 = 0;

export function heapBase(): usize {
  return __heap_base;
}

@inline function hsum(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}

/** s1 += Σ(x - sh), s2 += Σ(x - sh)^2 over L values at xs. */
function statsSeg(xs: usize, L: i32, sh: f32): void {
  const sv = f32x4.splat(sh);
  const L8 = L & ~7;
  let i: i32 = 0;
  while (i < L8) {
    let a1 = f32x4.splat(0), b1 = f32x4.splat(0), a2 = f32x4.splat(0), b2 = f32x4.splat(0);
    const end = min(L8, i + FLUSH);
    for (; i < end; i += 8) {
      const p = xs + (<usize>i << 2);
      const d0 = f32x4.sub(v128.load(p), sv);
      const d1 = f32x4.sub(v128.load(p, 16), sv);
      a1 = f32x4.add(a1, d0);
      b1 = f32x4.add(b1, d1);
      a2 = f32x4.add(a2, f32x4.mul(d0, d0));
      b2 = f32x4.add(b2, f32x4.mul(d1, d1));
    }
    s1 += hsum(f32x4.add(a1, b1));
    s2 += hsum(f32x4.add(a2, b2));
  }
  for (; i < L; i++) {
    const d = <f64>(load<f32>(xs + (<usize>i << 2)) - sh);
    s1 += d;
    s2 += d * d;
  }
}

/** y = (x - sa) * A + C over one segment. */
function applyCh(xa: usize, ya: usize, L: i32, sa: f32, A: f32, C: f32): void {
  const sv = f32x4.splat(sa), av = f32x4.splat(A), cv = f32x4.splat(C);
  const L8 = L & ~7;
  let i: i32 = 0;
  for (; i < L8; i += 8) {
    const o = <usize>i << 2;
    v128.store(ya + o, f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o), sv), av), cv));
    v128.store(ya + o, f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o, 16), sv), av), cv), 16);
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    store<f32>(ya + o, (load<f32>(xa + o) - sa) * A + C);
  }
}

/** applyCh on segment a and statsSeg on segment s (same length) in one loop. */
function fusedCh(xa: usize, ya: usize, L: i32, sa: f32, A: f32, C: f32, xs: usize, sh: f32): void {
  const sv = f32x4.splat(sa), av = f32x4.splat(A), cv = f32x4.splat(C), hv = f32x4.splat(sh);
  const L8 = L & ~7;
  let i: i32 = 0;
  while (i < L8) {
    let a1 = f32x4.splat(0), b1 = f32x4.splat(0), a2 = f32x4.splat(0), b2 = f32x4.splat(0);
    const end = min(L8, i + FLUSH);
    for (; i < end; i += 8) {
      const o = <usize>i << 2;
      const d0 = f32x4.sub(v128.load(xs + o), hv);
      const d1 = f32x4.sub(v128.load(xs + o, 16), hv);
      v128.store(ya + o, f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o), sv), av), cv));
      v128.store(ya + o, f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o, 16), sv), av), cv), 16);
      a1 = f32x4.add(a1, d0);
      b1 = f32x4.add(b1, d1);
      a2 = f32x4.add(a2, f32x4.mul(d0, d0));
      b2 = f32x4.add(b2, f32x4.mul(d1, d1));
    }
    s1 += hsum(f32x4.add(a1, b1));
    s2 += hsum(f32x4.add(a2, b2));
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    store<f32>(ya + o, (load<f32>(xa + o) - sa) * A + C);
    const d = <f64>(load<f32>(xs + o) - sh);
    s1 += d;
    s2 += d * d;
  }
}

/** y = ((x - sa) * R + C0) * w + b over one row (element affine). */
function applyEl(xa: usize, ya: usize, L: i32, sa: f32, R: f32, C0: f32, w: usize, b: usize): void {
  const sv = f32x4.splat(sa), rv = f32x4.splat(R), cv = f32x4.splat(C0);
  const L8 = L & ~7;
  let i: i32 = 0;
  for (; i < L8; i += 8) {
    const o = <usize>i << 2;
    const n0 = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o), sv), rv), cv);
    const n1 = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o, 16), sv), rv), cv);
    v128.store(ya + o, f32x4.add(f32x4.mul(n0, v128.load(w + o)), v128.load(b + o)));
    v128.store(ya + o, f32x4.add(f32x4.mul(n1, v128.load(w + o, 16)), v128.load(b + o, 16)), 16);
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    store<f32>(ya + o, ((load<f32>(xa + o) - sa) * R + C0) * load<f32>(w + o) + load<f32>(b + o));
  }
}

function fusedEl(xa: usize, ya: usize, L: i32, sa: f32, R: f32, C0: f32, w: usize, b: usize, xs: usize, sh: f32): void {
  const sv = f32x4.splat(sa), rv = f32x4.splat(R), cv = f32x4.splat(C0), hv = f32x4.splat(sh);
  const L8 = L & ~7;
  let i: i32 = 0;
  while (i < L8) {
    let a1 = f32x4.splat(0), b1 = f32x4.splat(0), a2 = f32x4.splat(0), b2 = f32x4.splat(0);
    const end = min(L8, i + FLUSH);
    for (; i < end; i += 8) {
      const o = <usize>i << 2;
      const d0 = f32x4.sub(v128.load(xs + o), hv);
      const d1 = f32x4.sub(v128.load(xs + o, 16), hv);
      const n0 = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o), sv), rv), cv);
      const n1 = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o, 16), sv), rv), cv);
      v128.store(ya + o, f32x4.add(f32x4.mul(n0, v128.load(w + o)), v128.load(b + o)));
      v128.store(ya + o, f32x4.add(f32x4.mul(n1, v128.load(w + o, 16)), v128.load(b + o, 16)), 16);
      a1 = f32x4.add(a1, d0);
      b1 = f32x4.add(b1, d1);
      a2 = f32x4.add(a2, f32x4.mul(d0, d0));
      b2 = f32x4.add(b2, f32x4.mul(d1, d1));
    }
    s1 += hsum(f32x4.add(a1, b1));
    s2 += hsum(f32x4.add(a2, b2));
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    store<f32>(ya + o, ((load<f32>(xa + o) - sa) * R + C0) * load<f32>(w + o) + load<f32>(b + o));
    const d = <f64>(load<f32>(xs + o) - sh);
    s1 += d;
    s2 += d * d;
  }
}

// ---------------------------------------------------------------------------------------------
// forward

@inline function segPtr(base: usize, k: i32, j: i32, gStride: i32, sStride: i32): usize {
  return base + ((<usize>k * <usize>gStride + <usize>j * <usize>sStride) << 2);
}

/** The shift of group k: f32 mean of the first (up to) 16 values of its first segment. */
function groupShift(x: usize, k: i32, gStride: i32, L: i32, center: bool): f32 {
  if (!center) return 0;
  const p = x + ((<usize>k * <usize>gStride) << 2);
  const n = min(L, 16);
  let s: f32 = 0;
  for (let i = 0; i < n; i++) s += load<f32>(p + (<usize>i << 2));
  return s / <f32>n;
}

/** Turns s1, s2 (over M values, shifted by sh) into mean, var and rstd of group k. */
function finishStats(blk: usize, k: i32, sh: f32, M: f64, center: bool, withRstd: bool): void {
  const m1 = s1 / M;
  let v: f64;
  let mean: f64;
  if (center) {
    v = s2 / M - m1 * m1;
    if (v < 0) v = 0;
    mean = <f64>sh + m1;
  } else {
    v = s2 / M;
    mean = 0;
  }
  const o = <usize>k << 3;
  store<f64>(<usize>load<i32>(blk + BLK_MEAN) + o, mean);
  store<f64>(<usize>load<i32>(blk + BLK_VAR) + o, v);
  if (withRstd) store<f64>(<usize>load<i32>(blk + BLK_RSTD) + o, 1.0 / Math.sqrt(v + load<f64>(blk + BLK_EPS)));
}

function groupStats(blk: usize, x: usize, k: i32, nseg: i32, L: i32, gStride: i32, sStride: i32, center: bool): f32 {
  const sh = groupShift(x, k, gStride, L, center);
  s1 = 0;
  s2 = 0;
  for (let j = 0; j < nseg; j++) statsSeg(segPtr(x, k, j, gStride, sStride), L, sh);
  return sh;
}

/**
 * Forward over groups [k0, k1). train: statistics of group k+1 are computed in the same loop that
 * normalises group k (read from memory while group k is still in cache).
 */
function forward(blk: usize, k0: i32, k1: i32, train: bool): void {
  const x = <usize>load<i32>(blk + BLK_X);
  const y = <usize>load<i32>(blk + BLK_Y);
  const w = <usize>load<i32>(blk + BLK_W);
  const b = <usize>load<i32>(blk + BLK_B);
  const nseg = load<i32>(blk + BLK_NSEG);
  const L = load<i32>(blk + BLK_L);
  const gStride = load<i32>(blk + BLK_GSTRIDE);
  const sStride = load<i32>(blk + BLK_SSTRIDE);
  const Gc = load<i32>(blk + BLK_GC);
  const cpg = load<i32>(blk + BLK_CPG);
  const cstep = load<i32>(blk + BLK_CSTEP);
  const flags = load<i32>(blk + BLK_FLAGS);
  const center = (flags & F_CENTER) != 0;
  const element = (flags & F_ELEMENT) != 0;
  const meanP = <usize>load<i32>(blk + BLK_MEAN);
  const rstdP = <usize>load<i32>(blk + BLK_RSTD);
  const M = <f64>nseg * <f64>L;

  let shNext: f32 = 0;
  if (train) {
    shNext = groupStats(blk, x, k0, nseg, L, gStride, sStride, center);
    finishStats(blk, k0, shNext, M, center, true);
  }
  for (let k = k0; k < k1; k++) {
    const more = train && k + 1 < k1;
    if (more) {
      shNext = groupShift(x, k + 1, gStride, L, center);
      s1 = 0;
      s2 = 0;
    }
    const m = load<f64>(meanP + (<usize>k << 3));
    const r = load<f64>(rstdP + (<usize>k << 3));
    const sa = <f32>m;
    if (element) {
      const R = <f32>r;
      const C0 = <f32>((<f64>sa - m) * r);
      const xa = segPtr(x, k, 0, gStride, sStride), ya = segPtr(y, k, 0, gStride, sStride);
      if (more) fusedEl(xa, ya, L, sa, R, C0, w, b, segPtr(x, k + 1, 0, gStride, sStride), shNext);
      else applyEl(xa, ya, L, sa, R, C0, w, b);
    } else {
      const cbase = (k % Gc) * cpg;
      for (let j = 0; j < nseg; j++) {
        const c = cbase + j * cstep;
        const wc: f64 = w ? <f64>load<f32>(w + (<usize>c << 2)) : 1.0;
        const bc: f64 = b ? <f64>load<f32>(b + (<usize>c << 2)) : 0.0;
        const a = r * wc;
        const A = <f32>a;
        const C = <f32>(bc + (<f64>sa - m) * a);
        const xa = segPtr(x, k, j, gStride, sStride), ya = segPtr(y, k, j, gStride, sStride);
        if (more) fusedCh(xa, ya, L, sa, A, C, segPtr(x, k + 1, j, gStride, sStride), shNext);
        else applyCh(xa, ya, L, sa, A, C);
      }
    }
    if (more) finishStats(blk, k + 1, shNext, M, center, true);
  }
}

function statsOnly(blk: usize, k0: i32, k1: i32): void {
  const x = <usize>load<i32>(blk + BLK_X);
  const nseg = load<i32>(blk + BLK_NSEG);
  const L = load<i32>(blk + BLK_L);
  const gStride = load<i32>(blk + BLK_GSTRIDE);
  const sStride = load<i32>(blk + BLK_SSTRIDE);
  const center = (load<i32>(blk + BLK_FLAGS) & F_CENTER) != 0;
  const M = <f64>nseg * <f64>L;
  for (let k = k0; k < k1; k++) {
    const sh = groupStats(blk, x, k, nseg, L, gStride, sStride, center);
    finishStats(blk, k, sh, M, center, false);
  }
}

// ---------------------------------------------------------------------------------------------
// backward

// accumulators of the channel backward
let t1: f64 = 0; // Σ dy
let t2: f64 = 0; // Σ dy * (x - s)

/** t1 = Σ dy, t2 = Σ dy * (x - s) over one segment. */
function sumsCh(xs: usize, ds: usize, L: i32, sh: f32): void {
  const hv = f32x4.splat(sh);
  const L8 = L & ~7;
  t1 = 0;
  t2 = 0;
  let i: i32 = 0;
  while (i < L8) {
    let a1 = f32x4.splat(0), b1 = f32x4.splat(0), a2 = f32x4.splat(0), b2 = f32x4.splat(0);
    const end = min(L8, i + FLUSH);
    for (; i < end; i += 8) {
      const o = <usize>i << 2;
      const g0 = v128.load(ds + o), g1 = v128.load(ds + o, 16);
      a1 = f32x4.add(a1, g0);
      b1 = f32x4.add(b1, g1);
      a2 = f32x4.add(a2, f32x4.mul(g0, f32x4.sub(v128.load(xs + o), hv)));
      b2 = f32x4.add(b2, f32x4.mul(g1, f32x4.sub(v128.load(xs + o, 16), hv)));
    }
    t1 += hsum(f32x4.add(a1, b1));
    t2 += hsum(f32x4.add(a2, b2));
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    const g = <f64>load<f32>(ds + o);
    t1 += g;
    t2 += g * <f64>(load<f32>(xs + o) - sh);
  }
}

/** dx = A * dy + B * (x - sa) + D over one segment. */
function dxCh(xa: usize, da: usize, dxa: usize, L: i32, sa: f32, A: f32, B: f32, D: f32): void {
  const sv = f32x4.splat(sa), av = f32x4.splat(A), bv = f32x4.splat(B), dv = f32x4.splat(D);
  const L8 = L & ~7;
  let i: i32 = 0;
  for (; i < L8; i += 8) {
    const o = <usize>i << 2;
    v128.store(dxa + o, f32x4.add(f32x4.add(f32x4.mul(v128.load(da + o), av), f32x4.mul(f32x4.sub(v128.load(xa + o), sv), bv)), dv));
    v128.store(dxa + o, f32x4.add(f32x4.add(f32x4.mul(v128.load(da + o, 16), av), f32x4.mul(f32x4.sub(v128.load(xa + o, 16), sv), bv)), dv), 16);
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    store<f32>(dxa + o, load<f32>(da + o) * A + (load<f32>(xa + o) - sa) * B + D);
  }
}

function fusedBwdCh(xa: usize, da: usize, dxa: usize, L: i32, sa: f32, A: f32, B: f32, D: f32, xs: usize, ds: usize, sh: f32): void {
  const sv = f32x4.splat(sa), av = f32x4.splat(A), bv = f32x4.splat(B), dv = f32x4.splat(D), hv = f32x4.splat(sh);
  const L8 = L & ~7;
  t1 = 0;
  t2 = 0;
  let i: i32 = 0;
  while (i < L8) {
    let a1 = f32x4.splat(0), b1 = f32x4.splat(0), a2 = f32x4.splat(0), b2 = f32x4.splat(0);
    const end = min(L8, i + FLUSH);
    for (; i < end; i += 8) {
      const o = <usize>i << 2;
      const g0 = v128.load(ds + o), g1 = v128.load(ds + o, 16);
      a1 = f32x4.add(a1, g0);
      b1 = f32x4.add(b1, g1);
      a2 = f32x4.add(a2, f32x4.mul(g0, f32x4.sub(v128.load(xs + o), hv)));
      b2 = f32x4.add(b2, f32x4.mul(g1, f32x4.sub(v128.load(xs + o, 16), hv)));
      v128.store(dxa + o, f32x4.add(f32x4.add(f32x4.mul(v128.load(da + o), av), f32x4.mul(f32x4.sub(v128.load(xa + o), sv), bv)), dv));
      v128.store(dxa + o, f32x4.add(f32x4.add(f32x4.mul(v128.load(da + o, 16), av), f32x4.mul(f32x4.sub(v128.load(xa + o, 16), sv), bv)), dv), 16);
    }
    t1 += hsum(f32x4.add(a1, b1));
    t2 += hsum(f32x4.add(a2, b2));
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    store<f32>(dxa + o, load<f32>(da + o) * A + (load<f32>(xa + o) - sa) * B + D);
    const g = <f64>load<f32>(ds + o);
    t1 += g;
    t2 += g * <f64>(load<f32>(xs + o) - sh);
  }
}

// accumulators of the element backward: Σ g, Σ g * xhat (g = dy * w)
let u1: f64 = 0;
let u2: f64 = 0;

/**
 * One row of the element backward, pass 1: u1 = Σ g, u2 = Σ g * xhat with xhat = (x - sh) * R + C0,
 * and dw[i] += dy * xhat, db[i] += dy (f32 accumulators, flushed by the caller).
 */
function sumsEl(xs: usize, ds: usize, L: i32, sh: f32, R: f32, C0: f32, w: usize, dw: usize, db: usize): void {
  const hv = f32x4.splat(sh), rv = f32x4.splat(R), cv = f32x4.splat(C0);
  const L4 = L & ~3;
  u1 = 0;
  u2 = 0;
  let i: i32 = 0;
  while (i < L4) {
    let a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    const end = min(L4, i + FLUSH);
    for (; i < end; i += 4) {
      const o = <usize>i << 2;
      const d = v128.load(ds + o);
      const xh = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xs + o), hv), rv), cv);
      const g = f32x4.mul(d, v128.load(w + o));
      a1 = f32x4.add(a1, g);
      a2 = f32x4.add(a2, f32x4.mul(g, xh));
      v128.store(dw + o, f32x4.add(v128.load(dw + o), f32x4.mul(d, xh)));
      v128.store(db + o, f32x4.add(v128.load(db + o), d));
    }
    u1 += hsum(a1);
    u2 += hsum(a2);
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    const d = load<f32>(ds + o);
    const xh = (load<f32>(xs + o) - sh) * R + C0;
    const g = d * load<f32>(w + o);
    u1 += <f64>g;
    u2 += <f64>(g * xh);
    store<f32>(dw + o, load<f32>(dw + o) + d * xh);
    store<f32>(db + o, load<f32>(db + o) + d);
  }
}

/** dx = R * (dy * w - MG - xhat * MGX) = (dy * w) * R - xhat * RMGX - RMG over one row. */
function dxEl(xa: usize, da: usize, dxa: usize, L: i32, sa: f32, R: f32, C0: f32, w: usize, RMG: f32, RMGX: f32): void {
  const sv = f32x4.splat(sa), rv = f32x4.splat(R), cv = f32x4.splat(C0), mv = f32x4.splat(RMG), xv = f32x4.splat(RMGX);
  const L4 = L & ~3;
  let i: i32 = 0;
  for (; i < L4; i += 4) {
    const o = <usize>i << 2;
    const xh = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xa + o), sv), rv), cv);
    const g = f32x4.mul(f32x4.mul(v128.load(da + o), v128.load(w + o)), rv);
    v128.store(dxa + o, f32x4.sub(f32x4.sub(g, f32x4.mul(xh, xv)), mv));
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    const xh = (load<f32>(xa + o) - sa) * R + C0;
    store<f32>(dxa + o, load<f32>(da + o) * load<f32>(w + o) * R - xh * RMGX - RMG);
  }
}

// accumulators of the two-row element backward: Σ g and Σ g * (x - s) for rows A and B
let vA1: f64 = 0;
let vA2: f64 = 0;
let vB1: f64 = 0;
let vB2: f64 = 0;

/** Pass 1 for two rows at once (w loaded once): Σ g and Σ g * (x - s) per row, g = dy * w. */
function sums2El(xA: usize, dA: usize, shA: f32, xB: usize, dB: usize, shB: f32, L: i32, w: usize): void {
  const hA = f32x4.splat(shA), hB = f32x4.splat(shB);
  const L4 = L & ~3;
  vA1 = 0;
  vA2 = 0;
  vB1 = 0;
  vB2 = 0;
  let i: i32 = 0;
  while (i < L4) {
    let a1 = f32x4.splat(0), a2 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0);
    const end = min(L4, i + FLUSH);
    for (; i < end; i += 4) {
      const o = <usize>i << 2;
      const wv = v128.load(w + o);
      const gA = f32x4.mul(v128.load(dA + o), wv);
      const gB = f32x4.mul(v128.load(dB + o), wv);
      a1 = f32x4.add(a1, gA);
      b1 = f32x4.add(b1, gB);
      a2 = f32x4.add(a2, f32x4.mul(gA, f32x4.sub(v128.load(xA + o), hA)));
      b2 = f32x4.add(b2, f32x4.mul(gB, f32x4.sub(v128.load(xB + o), hB)));
    }
    vA1 += hsum(a1);
    vA2 += hsum(a2);
    vB1 += hsum(b1);
    vB2 += hsum(b2);
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    const wi = load<f32>(w + o);
    const gA = <f64>(load<f32>(dA + o) * wi), gB = <f64>(load<f32>(dB + o) * wi);
    vA1 += gA;
    vB1 += gB;
    vA2 += gA * <f64>(load<f32>(xA + o) - shA);
    vB2 += gB * <f64>(load<f32>(xB + o) - shB);
  }
}

/**
 * Pass 2 for two rows at once: dx = (dy * w) * R - xhat * RMGX - RMG per row, and
 * dw += dyA * xhatA + dyB * xhatB, db += dyA + dyB (f32 accumulators, flushed by the caller).
 */
function dx2El(
  xA: usize, dA: usize, dxA: usize, sA: f32, RA: f32, CA: f32, MA: f32, XA: f32,
  xB: usize, dB: usize, dxB: usize, sB: f32, RB: f32, CB: f32, MB: f32, XB: f32,
  L: i32, w: usize, dw: usize, db: usize,
): void {
  const sAv = f32x4.splat(sA), rAv = f32x4.splat(RA), cAv = f32x4.splat(CA), mAv = f32x4.splat(MA), xAv = f32x4.splat(XA);
  const sBv = f32x4.splat(sB), rBv = f32x4.splat(RB), cBv = f32x4.splat(CB), mBv = f32x4.splat(MB), xBv = f32x4.splat(XB);
  const L4 = L & ~3;
  let i: i32 = 0;
  for (; i < L4; i += 4) {
    const o = <usize>i << 2;
    const wv = v128.load(w + o);
    const yA = v128.load(dA + o), yB = v128.load(dB + o);
    const hA = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xA + o), sAv), rAv), cAv);
    const hB = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xB + o), sBv), rBv), cBv);
    v128.store(dxA + o, f32x4.sub(f32x4.sub(f32x4.mul(f32x4.mul(yA, wv), rAv), f32x4.mul(hA, xAv)), mAv));
    v128.store(dxB + o, f32x4.sub(f32x4.sub(f32x4.mul(f32x4.mul(yB, wv), rBv), f32x4.mul(hB, xBv)), mBv));
    v128.store(dw + o, f32x4.add(v128.load(dw + o), f32x4.add(f32x4.mul(yA, hA), f32x4.mul(yB, hB))));
    v128.store(db + o, f32x4.add(v128.load(db + o), f32x4.add(yA, yB)));
  }
  for (; i < L; i++) {
    const o = <usize>i << 2;
    const wi = load<f32>(w + o);
    const yA = load<f32>(dA + o), yB = load<f32>(dB + o);
    const hA = (load<f32>(xA + o) - sA) * RA + CA;
    const hB = (load<f32>(xB + o) - sB) * RB + CB;
    store<f32>(dxA + o, yA * wi * RA - hA * XA - MA);
    store<f32>(dxB + o, yB * wi * RB - hB * XB - MB);
    store<f32>(dw + o, load<f32>(dw + o) + yA * hA + yB * hB);
    store<f32>(db + o, load<f32>(db + o) + yA + yB);
  }
}

function flushAcc(acc: usize, part: usize, P: i32): void {
  for (let p = 0; p < P; p++) {
    const o = <usize>p << 2;
    store<f64>(part + (<usize>p << 3), load<f64>(part + (<usize>p << 3)) + <f64>load<f32>(acc + o));
    store<f32>(acc + o, 0);
  }
}

function backward(blk: usize, k0: i32, k1: i32, tid: i32): void {
  const x = <usize>load<i32>(blk + BLK_X);
  const dx = <usize>load<i32>(blk + BLK_Y);
  const dy = <usize>load<i32>(blk + BLK_DY);
  const w = <usize>load<i32>(blk + BLK_W);
  const nseg = load<i32>(blk + BLK_NSEG);
  const L = load<i32>(blk + BLK_L);
  const gStride = load<i32>(blk + BLK_GSTRIDE);
  const sStride = load<i32>(blk + BLK_SSTRIDE);
  const Gc = load<i32>(blk + BLK_GC);
  const cpg = load<i32>(blk + BLK_CPG);
  const cstep = load<i32>(blk + BLK_CSTEP);
  const flags = load<i32>(blk + BLK_FLAGS);
  const center = (flags & F_CENTER) != 0;
  const element = (flags & F_ELEMENT) != 0;
  const fixed = (flags & F_FIXED) != 0;
  const meanP = <usize>load<i32>(blk + BLK_MEAN);
  const rstdP = <usize>load<i32>(blk + BLK_RSTD);
  const sumG = <usize>load<i32>(blk + BLK_SUMG);
  const sumGX = <usize>load<i32>(blk + BLK_SUMGX);
  const P = load<i32>(blk + BLK_P);
  const invM = load<f64>(blk + BLK_INVM);
  // per-thread partial dweight, dbias (f64): part[tid][0..P), part[tid][P..2P)
  const part = <usize>load<i32>(blk + BLK_PART) + ((<usize>tid * 2 * <usize>P) << 3);
  const dwP = part, dbP = part + (<usize>P << 3);

  if (element) {
    const acc = <usize>load<i32>(blk + BLK_ACC) + ((<usize>tid * 2 * <usize>P) << 2);
    const dwA = acc, dbA = acc + (<usize>P << 2);
    let rows = 0;
    let k = k0;
    // two rows at a time while there are two (and dx is wanted)
    for (; dx && k + 1 < k1; k += 2) {
      const mA = load<f64>(meanP + (<usize>k << 3)), rA = load<f64>(rstdP + (<usize>k << 3));
      const mB = load<f64>(meanP + (<usize>(k + 1) << 3)), rB = load<f64>(rstdP + (<usize>(k + 1) << 3));
      const sA = <f32>mA, sB = <f32>mB;
      const xA = segPtr(x, k, 0, gStride, sStride), dA = segPtr(dy, k, 0, gStride, sStride);
      const xB = segPtr(x, k + 1, 0, gStride, sStride), dB = segPtr(dy, k + 1, 0, gStride, sStride);
      sums2El(xA, dA, sA, xB, dB, sB, L, w);
      // Σ g * xhat = r * Σ g * (x - s) + (s - m) * r * Σ g
      const cA = (<f64>sA - mA) * rA, cB = (<f64>sB - mB) * rB;
      const gA = vA1, gxA = rA * vA2 + cA * vA1, gB = vB1, gxB = rB * vB2 + cB * vB1;
      store<f64>(sumG + (<usize>k << 3), gA);
      store<f64>(sumGX + (<usize>k << 3), gxA);
      store<f64>(sumG + (<usize>(k + 1) << 3), gB);
      store<f64>(sumGX + (<usize>(k + 1) << 3), gxB);
      const mgA = fixed || !center ? 0.0 : gA * invM, mgxA = fixed ? 0.0 : gxA * invM;
      const mgB = fixed || !center ? 0.0 : gB * invM, mgxB = fixed ? 0.0 : gxB * invM;
      dx2El(
        xA, dA, segPtr(dx, k, 0, gStride, sStride), sA, <f32>rA, <f32>cA, <f32>(rA * mgA), <f32>(rA * mgxA),
        xB, dB, segPtr(dx, k + 1, 0, gStride, sStride), sB, <f32>rB, <f32>cB, <f32>(rB * mgB), <f32>(rB * mgxB),
        L, w, dwA, dbA,
      );
      rows += 2;
      if (rows >= ROWFLUSH) {
        flushAcc(dwA, dwP, P);
        flushAcc(dbA, dbP, P);
        rows = 0;
      }
    }
    for (; k < k1; k++) {
      const m = load<f64>(meanP + (<usize>k << 3));
      const r = load<f64>(rstdP + (<usize>k << 3));
      const sa = <f32>m;
      const R = <f32>r;
      const C0 = <f32>((<f64>sa - m) * r);
      const xa = segPtr(x, k, 0, gStride, sStride), da = segPtr(dy, k, 0, gStride, sStride);
      sumsEl(xa, da, L, sa, R, C0, w, dwA, dbA);
      store<f64>(sumG + (<usize>k << 3), u1);
      store<f64>(sumGX + (<usize>k << 3), u2);
      if (++rows >= ROWFLUSH) {
        flushAcc(dwA, dwP, P);
        flushAcc(dbA, dbP, P);
        rows = 0;
      }
      if (dx) {
        // the row is in cache now: dx for it
        const mg = fixed || !center ? 0.0 : u1 * invM;
        const mgx = fixed ? 0.0 : u2 * invM;
        dxEl(xa, da, segPtr(dx, k, 0, gStride, sStride), L, sa, R, C0, w, <f32>(r * mg), <f32>(r * mgx));
      }
    }
    flushAcc(dwA, dwP, P);
    flushAcc(dbA, dbP, P);
    return;
  }

  // channel (or no) affine: pass 1 of group k+1 runs in the loop of pass 2 of group k
  let shNext: f32 = <f32>load<f64>(meanP + (<usize>k0 << 3));
  // pass 1 of k0
  passOneCh(x, dy, k0, nseg, L, gStride, sStride, Gc, cpg, cstep, w, meanP, rstdP, sumG, sumGX, dwP, dbP, shNext, false, 0, 0, 0, 0, 0, 0);
  if (!dx) {
    for (let k = k0 + 1; k < k1; k++) {
      shNext = <f32>load<f64>(meanP + (<usize>k << 3));
      passOneCh(x, dy, k, nseg, L, gStride, sStride, Gc, cpg, cstep, w, meanP, rstdP, sumG, sumGX, dwP, dbP, shNext, false, 0, 0, 0, 0, 0, 0);
    }
    return;
  }
  for (let k = k0; k < k1; k++) {
    const m = load<f64>(meanP + (<usize>k << 3));
    const r = load<f64>(rstdP + (<usize>k << 3));
    const sa = <f32>m;
    const mg = fixed || !center ? 0.0 : load<f64>(sumG + (<usize>k << 3)) * invM;
    const mgx = fixed ? 0.0 : load<f64>(sumGX + (<usize>k << 3)) * invM;
    // dx = A*dy + B*(x - sa) + D with A = r*w, B = -r*r*mgx, D = -r*mg - r*r*mgx*(sa - m)
    const Bf = -r * r * mgx;
    const Df = -r * mg + Bf * (<f64>sa - m);
    if (k + 1 < k1) {
      shNext = <f32>load<f64>(meanP + (<usize>(k + 1) << 3));
      passOneCh(x, dy, k + 1, nseg, L, gStride, sStride, Gc, cpg, cstep, w, meanP, rstdP, sumG, sumGX, dwP, dbP, shNext, true, k, dx, sa, r, Bf, Df);
    } else {
      const cbase = (k % Gc) * cpg;
      for (let j = 0; j < nseg; j++) {
        const c = cbase + j * cstep;
        const wc: f64 = w ? <f64>load<f32>(w + (<usize>c << 2)) : 1.0;
        dxCh(segPtr(x, k, j, gStride, sStride), segPtr(dy, k, j, gStride, sStride), segPtr(dx, k, j, gStride, sStride), L, sa, <f32>(r * wc), <f32>Bf, <f32>Df);
      }
    }
  }
}

/**
 * Pass 1 of the channel backward for group k (per-statistic Σg, Σg*xhat, per-channel dweight and
 * dbias partials); with `fuse`, also pass 2 (dx) of group kp, segment by segment.
 */
function passOneCh(
  x: usize, dy: usize, k: i32, nseg: i32, L: i32, gStride: i32, sStride: i32, Gc: i32, cpg: i32, cstep: i32, w: usize,
  meanP: usize, rstdP: usize, sumG: usize, sumGX: usize, dwP: usize, dbP: usize, sh: f32,
  fuse: bool, kp: i32, dx: usize, sap: f32, rp: f64, Bp: f64, Dp: f64,
): void {
  const m = load<f64>(meanP + (<usize>k << 3));
  const r = load<f64>(rstdP + (<usize>k << 3));
  const cbase = (k % Gc) * cpg;
  const cbaseP = (kp % Gc) * cpg;
  let sg: f64 = 0, sgx: f64 = 0;
  for (let j = 0; j < nseg; j++) {
    const xs = segPtr(x, k, j, gStride, sStride), ds = segPtr(dy, k, j, gStride, sStride);
    if (fuse) {
      const cp = cbaseP + j * cstep;
      const wp: f64 = w ? <f64>load<f32>(w + (<usize>cp << 2)) : 1.0;
      fusedBwdCh(segPtr(x, kp, j, gStride, sStride), segPtr(dy, kp, j, gStride, sStride), segPtr(dx, kp, j, gStride, sStride), L, sap, <f32>(rp * wp), <f32>Bp, <f32>Dp, xs, ds, sh);
    } else {
      sumsCh(xs, ds, L, sh);
    }
    // Σ dy * (x - m) = Σ dy * (x - s) - (m - s) Σ dy
    const sdx = r * (t2 - (m - <f64>sh) * t1);
    const c = cbase + j * cstep;
    const wc: f64 = w ? <f64>load<f32>(w + (<usize>c << 2)) : 1.0;
    const oc = <usize>c << 3;
    store<f64>(dwP + oc, load<f64>(dwP + oc) + sdx);
    store<f64>(dbP + oc, load<f64>(dbP + oc) + t1);
    sg += t1 * wc;
    sgx += sdx * wc;
  }
  store<f64>(sumG + (<usize>k << 3), sg);
  store<f64>(sumGX + (<usize>k << 3), sgx);
}

/**
 * OP_COMBINE over groups [k0, k1): out = A_k * dy + B_k * (x - M_k) + D_k, applied as the kernels above
 * apply theirs, to (x - s) with s = f32(M_k) in f32: out = A*dy + B*(x - s) + (D + B*(s - M_k)), the
 * constant term in f64. With the group's mean as M_k, B*(x - s) is small where B*x would cancel
 * against D (inputs with a large offset).
 */
function combine(blk: usize, k0: i32, k1: i32): void {
  const x = <usize>load<i32>(blk + BLK_X);
  const out = <usize>load<i32>(blk + BLK_Y);
  const dy = <usize>load<i32>(blk + BLK_DY);
  const nseg = load<i32>(blk + BLK_NSEG);
  const L = load<i32>(blk + BLK_L);
  const gStride = load<i32>(blk + BLK_GSTRIDE);
  const sStride = load<i32>(blk + BLK_SSTRIDE);
  const Mp = <usize>load<i32>(blk + BLK_MEAN);
  const Ap = <usize>load<i32>(blk + BLK_COMB_A);
  const Bp = <usize>load<i32>(blk + BLK_COMB_B);
  const Dp = <usize>load<i32>(blk + BLK_COMB_D);
  for (let k = k0; k < k1; k++) {
    const o = <usize>k << 3;
    const a = load<f64>(Ap + o), b = load<f64>(Bp + o), m = load<f64>(Mp + o), d = load<f64>(Dp + o);
    const sa = <f32>m;
    const D = <f32>(d + b * (<f64>sa - m));
    for (let j = 0; j < nseg; j++) {
      dxCh(segPtr(x, k, j, gStride, sStride), segPtr(dy, k, j, gStride, sStride), segPtr(out, k, j, gStride, sStride), L, sa, <f32>a, <f32>b, D);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Runs the call block's op as thread `tid`: takes chunks of statistic groups (an atomic counter
 * shared by every thread of the call) until none is left, so that a thread the OS delays takes
 * fewer chunks instead of holding the others up. `threads` is the call's thread capacity.
 */
export function run(blk: usize, tid: i32, threads: i32): void {
  const K = load<i32>(blk + BLK_K);
  const chunks = load<i32>(blk + BLK_CHUNKS);
  const op = load<i32>(blk + BLK_OP);
  if (op == OP_CONV_FWD || op == OP_CONV_BWD) {
    convRun(blk, op, tid);
    return;
  }
  if (op >= OP_RELU_FWD && op <= OP_MAXPOOL_BWD) {
    elementwiseRun(blk, op);
    return;
  }
  if (op == OP_GEMM_NN || op == OP_GEMM_NT) {
    gemmRun(blk, op);
    return;
  }
  if (op == OP_BWD) {
    // this thread's parameter partials (f64) and, for element affine, its f32 accumulators
    const P = load<i32>(blk + BLK_P);
    memory.fill(<usize>load<i32>(blk + BLK_PART) + ((<usize>tid * 2 * <usize>P) << 3), 0, (<usize>P * 2) << 3);
    if (load<i32>(blk + BLK_FLAGS) & F_ELEMENT) memory.fill(<usize>load<i32>(blk + BLK_ACC) + ((<usize>tid * 2 * <usize>P) << 2), 0, (<usize>P * 2) << 2);
  }
  void threads;
  for (;;) {
    const c = atomic.add<i32>(blk + BLK_NEXT, 1);
    if (c >= chunks) break;
    const k0 = <i32>((<i64>K * <i64>c) / <i64>chunks);
    const k1 = <i32>((<i64>K * <i64>(c + 1)) / <i64>chunks);
    if (k0 >= k1) continue;
    if (op == OP_BWD) backward(blk, k0, k1, tid);
    else if (op == OP_FWD_TRAIN) forward(blk, k0, k1, true);
    else if (op == OP_STATS) statsOnly(blk, k0, k1);
    else if (op == OP_APPLY) forward(blk, k0, k1, false);
    else if (op == OP_COMBINE) combine(blk, k0, k1);
  }
}
