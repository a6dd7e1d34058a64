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
import { Region, WasmRuntime, wasmRuntime } from "./wasm.js";

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
    if (copy) this.rt.f32.set(n === a.length ? a : a.subarray(0, n), p >> 2);
    return p;
  }

  /** Copies n floats at p back into dst unless dst is that memory already. */
  private out(dst: Float32Array, p: number, n: number): void {
    if (this.rt.owns(dst)) return;
    dst.set(this.rt.f32.subarray(p >> 2, (p >> 2) + n));
  }

  /** y = conv(x, W) + b for the whole batch (see conv2dForward in src/kernels/ts/conv2d.ts). */
  conv2dForward(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, g: Conv2dGeometry): void {
    const { N, C, H, W, O, K, P } = g;
    const xs = C * H * W, ys = O * P;
    this.rt.calls++;
    const px = this.place(x, N * xs, this.xR, true);
    const pw = this.place(w, O * K, this.wR, true);
    const py = this.place(out, N * ys, this.yR, false);
    const pcol = this.colR.ensure(K * P * 4);
    if (b !== null) {
      const f32 = this.rt.f32;
      for (let n = 0, q = py >> 2; n < N; n++) for (let o = 0; o < O; o++, q += P) f32.fill(b[o]!, q, q + P);
    }
    const ex = this.ex;
    for (let n = 0; n < N; n++) {
      ex.im2col(pcol, px + n * xs * 4, C, H, W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.Ho, g.Wo);
      ex.gemmNN(O, P, K, pw, K, 1, pcol, P, py + n * ys * 4, P, b !== null ? 1 : 0);
    }
    this.out(out, py, N * ys);
  }

  /** dW (+)= Σ_n dy_n·col_nᵀ and dx (+)= col2im(Wᵀ·dy_n); db is left to the caller. Null outputs are skipped. */
  conv2dBackward(
    dx: Float32Array | null, dw: Float32Array | null, dy: Float32Array, x: Float32Array, w: Float32Array,
    g: Conv2dGeometry, accumulate: boolean,
  ): void {
    const { N, C, H, W, O, K, P } = g;
    const xs = C * H * W, ys = O * P;
    this.rt.calls++;
    const pdy = this.place(dy, N * ys, this.dyR, true);
    const px = dw !== null ? this.place(x, N * xs, this.xR, true) : 0;
    const pw = dx !== null ? this.place(w, O * K, this.wR, true) : 0;
    const pdw = dw !== null ? this.place(dw, O * K, this.dwR, accumulate) : 0;
    const pdx = dx !== null ? this.place(dx, N * xs, this.dxR, accumulate) : 0;
    const pcol = this.colR.ensure(K * P * 4);
    if (dw !== null && !accumulate) this.rt.f32.fill(0, pdw >> 2, (pdw >> 2) + O * K);
    const ex = this.ex;
    for (let n = 0; n < N; n++) {
      const pdyn = pdy + n * ys * 4;
      if (dw !== null) {
        ex.im2col(pcol, px + n * xs * 4, C, H, W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.Ho, g.Wo);
        ex.gemmNT(O, K, P, pdyn, P, pcol, P, pdw, K, 1);
      }
      if (dx !== null) {
        ex.gemmNN(K, P, O, pw, 1, K, pdyn, P, pcol, P, 0);
        ex.col2im(pdx + n * xs * 4, pcol, C, H, W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.Ho, g.Wo, accumulate ? 1 : 0);
      }
    }
    if (dw !== null) this.out(dw, pdw, O * K);
    if (dx !== null) this.out(dx, pdx, N * xs);
  }

  /** y = x·Wᵀ + b (see linearForward in src/kernels/ts/linear.ts). */
  linearForward(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, N: number, inF: number, outF: number): void {
    this.rt.calls++;
    const px = this.place(x, N * inF, this.xR, true);
    const pw = this.place(w, outF * inF, this.wR, true);
    const py = this.place(out, N * outF, this.yR, false);
    if (b !== null) {
      const f32 = this.rt.f32, bb = b.length === outF ? b : b.subarray(0, outF);
      for (let n = 0; n < N; n++) f32.set(bb, (py >> 2) + n * outF);
    }
    this.ex.gemmNT(N, outF, inF, px, inF, pw, inF, py, outF, b !== null ? 1 : 0);
    this.out(out, py, N * outF);
  }

  /** dx (+)= dy·W and dW (+)= dyᵀ·x; db is left to the caller. Null outputs are skipped. */
  linearBackward(
    dx: Float32Array | null, dw: Float32Array | null, dy: Float32Array, x: Float32Array, w: Float32Array,
    N: number, inF: number, outF: number, accumulate: boolean,
  ): void {
    this.rt.calls++;
    const pdy = this.place(dy, N * outF, this.dyR, true);
    const acc = accumulate ? 1 : 0;
    if (dx !== null) {
      const pw = this.place(w, outF * inF, this.wR, true);
      const pdx = this.place(dx, N * inF, this.dxR, accumulate);
      this.ex.gemmNN(N, inF, outF, pdy, outF, 1, pw, inF, pdx, inF, acc);
      this.out(dx, pdx, N * inF);
    }
    if (dw !== null) {
      const px = this.place(x, N * inF, this.xR, true);
      const pdw = this.place(dw, outF * inF, this.dwR, accumulate);
      this.ex.gemmNN(outF, inF, N, pdy, 1, outF, px, inF, pdw, inF, acc);
      this.out(dw, pdw, outF * inF);
    }
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
