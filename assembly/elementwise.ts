/**
 * Element-wise and pooling kernels of the training stack (WebAssembly SIMD, f32x4), for operands
 * resident in the kernels' memory (src/kernels/wasm/elementwise.ts calls them; the TypeScript kernels
 * of src/kernels/ts/relu.ts and pool.ts are the reference they match bit for bit). Each takes a
 * range [i0, i1) of its work so that a call can be split across threads: `elementwiseRun` does that
 * for the call block's RELU_* and MAXPOOL_* ops (from `run` in assembly/norm.ts). Pointers are byte
 * addresses.
 */
import {
  BLK_CHUNKS, BLK_CV_H, BLK_CV_HO, BLK_CV_W, BLK_CV_WO, BLK_DY, BLK_IDX, BLK_K, BLK_NEXT, BLK_X, BLK_Y,
  OP_MAXPOOL_BWD, OP_MAXPOOL_FWD, OP_RELU_BWD, OP_RELU_FWD,
} from "./call_block";

/** The call block's element-wise ops on this thread: chunks of K items (elements or planes) as they come. */
export function elementwiseRun(blk: usize, op: i32): void {
  const K = load<i32>(blk + BLK_K), chunks = load<i32>(blk + BLK_CHUNKS);
  const x = <usize>load<i32>(blk + BLK_X), y = <usize>load<i32>(blk + BLK_Y), dy = <usize>load<i32>(blk + BLK_DY);
  const idx = <usize>load<i32>(blk + BLK_IDX);
  const H = load<i32>(blk + BLK_CV_H), W = load<i32>(blk + BLK_CV_W), Ho = load<i32>(blk + BLK_CV_HO), Wo = load<i32>(blk + BLK_CV_WO);
  for (;;) {
    const c = atomic.add<i32>(blk + BLK_NEXT, 1);
    if (c >= chunks) break;
    const k0 = <i32>((<i64>K * <i64>c) / <i64>chunks);
    const k1 = <i32>((<i64>K * <i64>(c + 1)) / <i64>chunks);
    if (op == OP_RELU_FWD) reluFwd(y, x, k0, k1);
    else if (op == OP_RELU_BWD) reluBwd(y, dy, x, k0, k1);
    else if (op == OP_MAXPOOL_FWD) maxPool2x2Fwd(y, idx, x, H, W, Ho, Wo, k0, k1);
    else if (op == OP_MAXPOOL_BWD) maxPoolBwdDisjoint(y, dy, idx, H * W, Ho * Wo, k0, k1);
  }
}

/**
 * ReLU on the IEEE bit patterns, as src/kernels/ts/relu.ts:
 *   y  = x & ~(x >> 31)            (sign bit set → +0; x ≥ 0 and +NaN kept)
 *   dx = dy & ((~x & −x) >> 31)    (all ones exactly when x's int32 pattern is > 0, i.e. x > 0)
 * over elements [i0, i1).
 */
export function reluFwd(y: usize, x: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(y + o, v128.andnot(v, i32x4.shr_s(v, 31)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const b = load<i32>(x + o);
    store<i32>(y + o, b & ~(b >> 31));
  }
}

export function reluBwd(dx: usize, dy: usize, x: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const m = i32x4.shr_s(v128.and(v128.not(v), i32x4.neg(v)), 31);
    v128.store(dx + o, v128.and(v128.load(dy + o), m));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const b = load<i32>(x + o);
    store<i32>(dx + o, load<i32>(dy + o) & ((~b & -b) >> 31));
  }
}

/** Lanes where v replaces the best so far: v > best, or v is NaN and best is not (NaN wins; first maximum kept). */
@inline function takes(v: v128, best: v128): v128 {
  return v128.or(f32x4.gt(v, best), v128.andnot(f32x4.ne(v, v), f32x4.ne(best, best)));
}

/** takes() for one value, without branches (random data would mispredict them half the time). */
@inline function takes1(v: f32, best: f32): bool {
  return <bool>(<i32>(v > best) | (<i32>(v != v) & <i32>(best == best)));
}

/**
 * 2×2 max pooling, stride 2, over planes [q0, q1) of H×W (output Ho×Wo each, Ho = ⌊H/2⌋, Wo = ⌊W/2⌋):
 * y = the window's maximum, argmax = its flat input index (i32), the first maximum in row-major window
 * order as PyTorch; NaN wins.
 */
export function maxPool2x2Fwd(y: usize, argmax: usize, x: usize, H: i32, W: i32, Ho: i32, Wo: i32, q0: i32, q1: i32): void {
  const lane = i32x4(0, 2, 4, 6);
  for (let q = q0; q < q1; q++) {
    const base = q * H * W;
    let o = q * Ho * Wo;
    for (let oh = 0; oh < Ho; oh++, o += Wo) {
      const r0 = base + 2 * oh * W; // flat index of the window row pair's first element
      if (Wo >= 4) {
        // blocks of 4 outputs; a last partial block is done as the 4 that end the row (recomputing a
        // few: the same values), since a scalar tail on random data runs ~10x slower per output
        for (let ow = 0; ow < Wo; ow += 4) {
          const o4 = ow + 4 <= Wo ? ow : Wo - 4;
          pool4(y, argmax, x, r0 + 2 * o4, W, o + o4, lane);
        }
      } else {
        for (let ow = 0; ow < Wo; ow++) pool1(y, argmax, x, r0 + 2 * ow, W, o + ow);
      }
    }
  }
}

/** Four windows side by side: inputs t .. t+7 of rows t and t + W; outputs o .. o+3. */
@inline function pool4(y: usize, argmax: usize, x: usize, t: i32, W: i32, o: i32, lane: v128): void {
  const p0 = x + (<usize>t << 2), p1 = x + (<usize>(t + W) << 2);
  const a0 = v128.load(p0), a1 = v128.load(p0, 16), b0 = v128.load(p1), b1 = v128.load(p1, 16);
  const i00 = i32x4.add(i32x4.splat(t), lane);
  // window order: (0,0) (0,1) (1,0) (1,1)
  let best = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6);
  let idx = i00;
  let v = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
  let m = takes(v, best);
  best = v128.bitselect(v, best, m);
  idx = v128.bitselect(i32x4.add(i00, i32x4.splat(1)), idx, m);
  v = v128.shuffle<f32>(b0, b1, 0, 2, 4, 6);
  m = takes(v, best);
  best = v128.bitselect(v, best, m);
  idx = v128.bitselect(i32x4.add(i00, i32x4.splat(W)), idx, m);
  v = v128.shuffle<f32>(b0, b1, 1, 3, 5, 7);
  m = takes(v, best);
  best = v128.bitselect(v, best, m);
  idx = v128.bitselect(i32x4.add(i00, i32x4.splat(W + 1)), idx, m);
  v128.store(y + (<usize>o << 2), best);
  v128.store(argmax + (<usize>o << 2), idx);
}

/** One window: inputs t, t+1, t+W, t+W+1; output o. */
@inline function pool1(y: usize, argmax: usize, x: usize, t: i32, W: i32, o: i32): void {
  let best = load<f32>(x + (<usize>t << 2));
  let bi = t;
  let v = load<f32>(x + (<usize>(t + 1) << 2));
  let m = takes1(v, best);
  best = select<f32>(v, best, m);
  bi = select<i32>(t + 1, bi, m);
  v = load<f32>(x + (<usize>(t + W) << 2));
  m = takes1(v, best);
  best = select<f32>(v, best, m);
  bi = select<i32>(t + W, bi, m);
  v = load<f32>(x + (<usize>(t + W + 1) << 2));
  m = takes1(v, best);
  best = select<f32>(v, best, m);
  bi = select<i32>(t + W + 1, bi, m);
  store<f32>(y + (<usize>o << 2), best);
  store<i32>(argmax + (<usize>o << 2), bi);
}

/**
 * Max pooling's backward for windows that do not overlap (stride ≥ kernel), over planes [q0, q1):
 * dx = 0 on the planes' S = H·W inputs, then dx[argmax[o]] = dy[o] for their outputs (R per plane).
 */
export function maxPoolBwdDisjoint(dx: usize, dy: usize, argmax: usize, S: i32, R: i32, q0: i32, q1: i32): void {
  const s0 = <usize>q0 * <usize>S, s1 = <usize>q1 * <usize>S;
  memory.fill(dx + (s0 << 2), 0, (s1 - s0) << 2);
  const o1 = q1 * R;
  for (let o = q0 * R; o < o1; o++) {
    const a = load<i32>(argmax + (<usize>o << 2));
    store<f32>(dx + (<usize>a << 2), load<f32>(dy + (<usize>o << 2)));
  }
}

// ---- SGD (torch.optim.SGD) on f32 storage in f32 arithmetic, as PyTorch's float32 step and the
// WGSL kernel compute it: every product and sum rounded to f32 (lr, μ, keep and wd too), no fused
// multiply-add. src/kernels/ts/optim.ts's sgdStepF32 is the reference it matches bit for bit. Over
// elements [i0, i1); the plain step's b is unused. (Float64 arithmetic here cost 2.4x: its f64x2
// conversions made the step compute-bound, where in f32 it runs at the memory's speed.)

/** mode 0: p ← p − lr·(g + wd·p);  1: b = g + wd·p (the first momentum step);  2: b = μ·b + keep·(g + wd·p);
 *  then p ← p − lr·b for modes 1 and 2. keep = 1 (dampening 0) skips its product, which is exact. */
export function sgdStep(p: usize, g: usize, b: usize, mode: i32, lr: f64, mu: f64, keep: f64, wd: f64, i0: i32, i1: i32): void {
  const lr32 = <f32>lr, mu32 = <f32>mu, keep32 = <f32>keep, wd32 = <f32>wd;
  const vlr = f32x4.splat(lr32), vmu = f32x4.splat(mu32), vkeep = f32x4.splat(keep32), vwd = f32x4.splat(wd32);
  let i = i0;
  if (mode == 2 && keep32 == 1) {
    for (; i + 4 <= i1; i += 4) {
      const o = <usize>i << 2;
      const P = v128.load(p + o);
      const d = f32x4.add(f32x4.mul(vmu, v128.load(b + o)), f32x4.add(v128.load(g + o), f32x4.mul(vwd, P)));
      v128.store(b + o, d);
      v128.store(p + o, f32x4.sub(P, f32x4.mul(vlr, d)));
    }
  } else if (mode == 2) {
    for (; i + 4 <= i1; i += 4) {
      const o = <usize>i << 2;
      const P = v128.load(p + o);
      const d = f32x4.add(f32x4.mul(vmu, v128.load(b + o)), f32x4.mul(vkeep, f32x4.add(v128.load(g + o), f32x4.mul(vwd, P))));
      v128.store(b + o, d);
      v128.store(p + o, f32x4.sub(P, f32x4.mul(vlr, d)));
    }
  } else {
    for (; i + 4 <= i1; i += 4) {
      const o = <usize>i << 2;
      const P = v128.load(p + o);
      const d = f32x4.add(v128.load(g + o), f32x4.mul(vwd, P));
      if (mode == 1) v128.store(b + o, d);
      v128.store(p + o, f32x4.sub(P, f32x4.mul(vlr, d)));
    }
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const pi = load<f32>(p + o);
    const gi: f32 = load<f32>(g + o) + wd32 * pi;
    let d = gi;
    if (mode == 2) d = mu32 * load<f32>(b + o) + keep32 * gi;
    if (mode != 0) store<f32>(b + o, d);
    store<f32>(p + o, pi - lr32 * d);
  }
}
