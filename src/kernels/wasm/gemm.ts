/**
 * The WebAssembly SIMD path of Conv2d and Linear (float32): im2col, the GEMMs and col2im of
 * assembly/gemm.ts run on operands in the kernels' shared memory (inputs already there — WasmTensor
 * data — are used in place; plain Float32Arrays are copied into reusable regions and outputs copied
 * back). Sums accumulate in f32 SIMD lanes, as PyTorch's CPU GEMMs do.
 *
 * src/kernels/ts/conv2d.ts and src/kernels/ts/linear.ts ask {@link wasmGemmFor} first and run their TypeScript
 * loops (float64 sums, the exact path) when it answers null: for float64 (or mixed) arrays, in
 * kernel mode "ts" (backend.configure({ kernels: "ts" }) or NORMKIT_KERNELS=ts), where WebAssembly
 * SIMD or shared memory is missing, and for operands too big for the memory.
 */
import type { Conv2dGeometry } from "../ts/conv2d.js";
import type { FloatArray } from "../../tensor.js";
import { getKernelMode } from "../registry.js";
import { Region, WasmMemoryError, WasmRuntime, wasmRuntime, wasmThreadSetting } from "./wasm.js";
import {
  F_ACCUMULATE, I_B, I_CHUNKS, I_CV_C, I_CV_COL, I_CV_DB, I_CV_DW, I_CV_DX, I_CV_H, I_CV_HO, I_CV_KH, I_CV_KW, I_CV_O, I_CV_PH,
  I_CV_PW, I_CV_SH, I_CV_SW, I_CV_W, I_CV_WO, I_DY, I_FLAGS, I_G_AI, I_G_AK, I_G_K, I_G_LDB, I_G_LDC, I_G_N, I_K, I_OP, I_W,
  I_X, I_Y, OP_CONV_BWD, OP_CONV_FWD, OP_GEMM_NN, OP_GEMM_NT,
} from "./call_block.js";

/** A convolution is split over the batch (threads > 1) from this many multiply-adds on. */
const CONV_PARALLEL_MIN_MACS = 1 << 20;
/** A matrix product is split over the rows of its result (threads > 1) from this many multiply-adds on. */
const GEMM_PARALLEL_MIN_MACS = 1 << 20;
/** At most this many chunks of images per thread (each chunk keeps a dweight partial). */
const CONV_CHUNKS_PER_THREAD = 16;

interface GemmExports {
  gemmNN(M: number, N: number, K: number, a: number, ai: number, ak: number, b: number, ldb: number, c: number, ldc: number, acc: number): void;
  gemmNT(M: number, N: number, K: number, a: number, lda: number, b: number, ldb: number, c: number, ldc: number, acc: number): void;
  im2col(col: number, x: number, C: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number,
    ph: number, pw: number, Ho: number, Wo: number): void;
  col2im(dx: number, col: number, C: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number,
    ph: number, pw: number, Ho: number, Wo: number, acc: number): void;
}

/** Operands above this many bytes in all run on the TypeScript path. */
const MAX_BYTES = 2 ** 30;

export class WasmGemm {
  private readonly ex: GemmExports;
  private readonly xR: Region;
  private readonly wR: Region;
  private readonly yR: Region;
  private readonly colR: Region;
  private readonly dyR: Region;
  private readonly dxR: Region;
  private readonly dwR: Region;

  constructor(private readonly rt: WasmRuntime) {
    this.ex = rt.exports as unknown as GemmExports;
    this.xR = new Region(rt);
    this.wR = new Region(rt);
    this.yR = new Region(rt);
    this.colR = new Region(rt);
    this.dyR = new Region(rt);
    this.dxR = new Region(rt);
    this.dwR = new Region(rt);
  }

  /** Byte address of the first n floats of `a`: in place when in the memory, else copied into r (copy = false: space only). */
  private place(a: Float32Array, n: number, r: Region, copy: boolean): number {
    if (this.rt.owns(a)) return a.byteOffset;
    const p = r.ensure(n * 4);
    if (copy) this.rt.f32.set(n === a.length ? a : a.subarray(0, n), p >>> 2);
    return p;
  }

  /** Copies n floats at p back into dst unless dst is that memory already. */
  private out(dst: Float32Array, p: number, n: number): void {
    if (this.rt.owns(dst)) return;
    dst.set(this.rt.f32.subarray(p >>> 2, (p >>> 2) + n));
  }

  /** Threads a convolution of this geometry may use: the setting, for a batch of ≥ 2 and enough work. */
  private convThreads(g: Conv2dGeometry): number {
    const T = wasmThreadSetting();
    return T > 1 && g.N >= 2 && g.N * g.O * g.K * g.P >= CONV_PARALLEL_MIN_MACS ? Math.min(T, g.N) : 1;
  }

  /** Writes the geometry and the operands of a CONV_* op into the call block. */
  private convBlock(op: number, g: Conv2dGeometry, T: number): Int32Array {
    const col = this.colR.ensure(T * g.K * g.P * 4); // may grow the memory: views after it
    const i32 = this.rt.i32, b = this.rt.block >>> 2;
    i32[b + I_OP] = op;
    i32[b + I_K] = g.N;
    i32[b + I_CV_C] = g.C; i32[b + I_CV_H] = g.H; i32[b + I_CV_W] = g.W; i32[b + I_CV_O] = g.O;
    i32[b + I_CV_KH] = g.kh; i32[b + I_CV_KW] = g.kw; i32[b + I_CV_SH] = g.sh; i32[b + I_CV_SW] = g.sw;
    i32[b + I_CV_PH] = g.ph; i32[b + I_CV_PW] = g.pw; i32[b + I_CV_HO] = g.Ho; i32[b + I_CV_WO] = g.Wo;
    i32[b + I_CV_COL] = col;
    return i32;
  }

  /** y = conv(x, W) + b for the whole batch (see conv2dForward in src/kernels/ts/conv2d.ts), split over images. */
  private conv2dForwardImpl(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, g: Conv2dGeometry): void {
    const { N, C, H, W, O, K, P } = g;
    const T = this.convThreads(g);
    const px = this.place(x, N * C * H * W, this.xR, true);
    const pw = this.place(w, O * K, this.wR, true);
    const py = this.place(out, N * O * P, this.yR, false);
    const pb = b !== null ? this.place(b, O, this.dyR, true) : 0;
    const i32 = this.convBlock(OP_CONV_FWD, g, T), blk = this.rt.block >>> 2;
    i32[blk + I_X] = px; i32[blk + I_W] = pw; i32[blk + I_Y] = py; i32[blk + I_B] = pb;
    this.rt.exec(T, N);
    this.out(out, py, N * O * P);
  }

  /**
   * dW (+)= Σ_n dy_n·col_nᵀ, db (+)= Σ_{n,p} dy_n and dx (+)= col2im(Wᵀ·dy_n), split over images.
   * Null outputs are skipped. dW and db are sums of the chunks' partials, taken in chunk order.
   */
  private conv2dBackwardImpl(
    dx: Float32Array | null, dw: Float32Array | null, db: Float32Array | null, dy: Float32Array, x: Float32Array, w: Float32Array,
    g: Conv2dGeometry, accumulate: boolean,
  ): void {
    const { N, C, H, W, O, K, P } = g;
    const T = this.convThreads(g);
    const pdy = this.place(dy, N * O * P, this.dyR, true);
    const px = dw !== null ? this.place(x, N * C * H * W, this.xR, true) : 0;
    const pw = dx !== null ? this.place(w, O * K, this.wR, true) : 0;
    const pdx = dx !== null ? this.place(dx, N * C * H * W, this.dxR, accumulate) : 0;
    const maxChunks = T > 1 ? Math.min(N, CONV_CHUNKS_PER_THREAD * T) : 1;
    // the chunks' partials: dW [chunks, O·K], then db [chunks, O]
    const ppart = dw !== null || db !== null ? this.dwR.ensure(maxChunks * (O * K + O) * 4) : 0;
    const pdb = db !== null ? ppart + maxChunks * O * K * 4 : 0;
    const i32 = this.convBlock(OP_CONV_BWD, g, T), blk = this.rt.block >>> 2;
    i32[blk + I_X] = px; i32[blk + I_W] = pw; i32[blk + I_DY] = pdy;
    i32[blk + I_CV_DW] = dw !== null ? ppart : 0; i32[blk + I_CV_DX] = pdx; i32[blk + I_CV_DB] = pdb;
    i32[blk + I_FLAGS] = accumulate ? F_ACCUMULATE : 0;
    this.rt.exec(T, N);
    const chunks = Math.min(this.rt.i32[blk + I_CHUNKS]!, maxChunks);
    if (dw !== null) sumPartials(dw, this.rt.f32, ppart >>> 2, O * K, chunks, accumulate);
    if (db !== null) sumPartials(db, this.rt.f32, pdb >>> 2, O, chunks, accumulate);
    if (dx !== null) this.out(dx, pdx, N * C * H * W);
  }

  /**
   * C[M,N] (+)= A·B (NN: A(i,k) at a + 4·(i·ai + k·ak), B row-major ldb) or A·Bᵀ (NT: A row i at
   * a + 4·i·ai, B row j at b + 4·j·ldb), split over the rows of C on the thread setting when the
   * product is big enough (each row of C is one thread's: the same result on any split).
   */
  private gemm(nt: boolean, M: number, N: number, K: number, a: number, ai: number, ak: number, b: number, ldb: number, c: number, ldc: number, acc: boolean): void {
    const T = wasmThreadSetting();
    if (T > 1 && M >= 8 && M * N * K >= GEMM_PARALLEL_MIN_MACS) {
      const i32 = this.rt.i32, blk = this.rt.block >>> 2;
      i32[blk + I_OP] = nt ? OP_GEMM_NT : OP_GEMM_NN;
      i32[blk + I_K] = M; i32[blk + I_G_N] = N; i32[blk + I_G_K] = K; i32[blk + I_G_AI] = ai; i32[blk + I_G_AK] = ak;
      i32[blk + I_X] = a; i32[blk + I_W] = b; i32[blk + I_Y] = c; i32[blk + I_G_LDB] = ldb; i32[blk + I_G_LDC] = ldc;
      i32[blk + I_FLAGS] = acc ? F_ACCUMULATE : 0;
      this.rt.exec(Math.min(T, M >>> 2), M);
      return;
    }
    if (nt) this.ex.gemmNT(M, N, K, a, ai, b, ldb, c, ldc, acc ? 1 : 0);
    else this.ex.gemmNN(M, N, K, a, ai, ak, b, ldb, c, ldc, acc ? 1 : 0);
  }

  /** y = x·Wᵀ + b (see linearForward in src/kernels/ts/linear.ts). */
  private linearForwardImpl(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, N: number, inF: number, outF: number): void {
    this.rt.calls++;
    const px = this.place(x, N * inF, this.xR, true);
    const pw = this.place(w, outF * inF, this.wR, true);
    const py = this.place(out, N * outF, this.yR, false);
    if (b !== null) {
      const f32 = this.rt.f32, bb = b.length === outF ? b : b.subarray(0, outF);
      for (let n = 0; n < N; n++) f32.set(bb, (py >>> 2) + n * outF);
    }
    this.gemm(true, N, outF, inF, px, inF, 0, pw, inF, py, outF, b !== null);
    this.out(out, py, N * outF);
  }

  /** dx (+)= dy·W and dW (+)= dyᵀ·x; db is left to the caller. Null outputs are skipped. */
  private linearBackwardImpl(
    dx: Float32Array | null, dw: Float32Array | null, dy: Float32Array, x: Float32Array, w: Float32Array,
    N: number, inF: number, outF: number, accumulate: boolean,
  ): void {
    this.rt.calls++;
    // every operand placed before anything is computed: a full memory leaves the outputs untouched
    const pdy = this.place(dy, N * outF, this.dyR, true);
    const pw = dx !== null ? this.place(w, outF * inF, this.wR, true) : 0;
    const pdx = dx !== null ? this.place(dx, N * inF, this.dxR, accumulate) : 0;
    const px = dw !== null ? this.place(x, N * inF, this.xR, true) : 0;
    const pdw = dw !== null ? this.place(dw, outF * inF, this.dwR, accumulate) : 0;
    if (dx !== null) {
      this.gemm(false, N, inF, outF, pdy, outF, 1, pw, inF, pdx, inF, accumulate);
      this.out(dx, pdx, N * inF);
    }
    if (dw !== null) {
      this.gemm(false, outF, inF, N, pdy, 1, outF, px, inF, pdw, inF, accumulate);
      this.out(dw, pdw, outF * inF);
    }
  }


  // The public calls: staging regions grown past STAGING_KEEP_BYTES go back at the end of each.
  conv2dForward(...a: Parameters<WasmGemm["conv2dForwardImpl"]>): void {
    try { this.conv2dForwardImpl(...a); } finally { this.rt.trimStaging(); }
  }
  conv2dBackward(...a: Parameters<WasmGemm["conv2dBackwardImpl"]>): void {
    try { this.conv2dBackwardImpl(...a); } finally { this.rt.trimStaging(); }
  }
  linearForward(...a: Parameters<WasmGemm["linearForwardImpl"]>): void {
    try { this.linearForwardImpl(...a); } finally { this.rt.trimStaging(); }
  }
  linearBackward(...a: Parameters<WasmGemm["linearBackwardImpl"]>): void {
    try { this.linearBackwardImpl(...a); } finally { this.rt.trimStaging(); }
  }
}

/** dst[i] (+)= Σ_c part[q + c·n + i] over `chunks` partials of n values, in chunk order (float64 sums). */
function sumPartials(dst: Float32Array, f32: Float32Array, q: number, n: number, chunks: number, accumulate: boolean): void {
  for (let i = 0; i < n; i++) {
    let s = accumulate ? dst[i]! : 0;
    for (let c = 0; c < chunks; c++) s += f32[q + c * n + i]!;
    dst[i] = s;
  }
}

/**
 * Runs a WebAssembly GEMM-path call; false (nothing written) when the memory could not take its
 * staging, so the caller runs its TypeScript loops instead. Other errors propagate.
 */
export function wasmTook(call: () => void): boolean {
  try {
    call();
    return true;
  } catch (e) {
    if (e instanceof WasmMemoryError) return false;
    throw e;
  }
}

let gemmBackend: WasmGemm | null | undefined;

/**
 * The WebAssembly GEMM backend for a call on these arrays, or null (run the TypeScript loops): null
 * unless every given array is a Float32Array, the kernel mode is not "ts", the runtime exists here,
 * and the operands (`elements` floats in all) fit the memory comfortably.
 */
export function wasmGemmFor(elements: number, ...arrays: (Readonly<FloatArray> | null)[]): WasmGemm | null {
  if (getKernelMode() === "ts") return null;
  for (const a of arrays) if (a !== null && !(a instanceof Float32Array)) return null;
  if (elements * 4 > MAX_BYTES) return null;
  if (gemmBackend === undefined) {
    const rt = wasmRuntime();
    gemmBackend = rt ? new WasmGemm(rt) : null;
  }
  return gemmBackend;
}
