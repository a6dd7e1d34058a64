/**
 * One general matrix multiply over strided views, the workhorse of Linear and Conv2d:
 *
 *   C(i, j) = [C(i, j) +] Σ_k A(i, k) · B(k, j)        i < M, j < N, k < K
 *
 * where each operand is a view into a typed array with an offset and two strides:
 *   A(i, k) = A[ao + i·ai + k·ak]     B(k, j) = B[bo + k·bk + j·bj]     C(i, j) = C[co + i·ci + j·cj]
 * so a transposed operand is the same array with its strides swapped (no copy). Sums run in
 * JavaScript numbers (float64) and are stored once per element, whatever the storage type.
 *
 * Speed in plain JS comes from register blocking: the main kernel keeps a 4×4 block of C in 16 local
 * accumulators and, per k, loads 4 values of A and 4 of B for 16 multiply-adds (memory traffic is
 * half a load per multiply-add instead of two). Edges use 4×2, 4×1, 1×4 and 1×1 kernels; when M < 4
 * the problem is transposed (Cᵀ = Bᵀ Aᵀ) so a tall operand feeds the 4-row kernels. Nothing is
 * allocated.
 */
import type { FloatArray } from "../../tensor.js";

/** A strided 2-D view: element (r, c) is data[off + r·rs + c·cs]. */
export interface MatView {
  readonly data: FloatArray;
  readonly off: number;
  /** Stride between rows. */
  readonly rs: number;
  /** Stride between columns. */
  readonly cs: number;
}

/** A row-major [rows, cols] matrix starting at `off`. */
export function rowMajor(data: FloatArray, off: number, cols: number): MatView {
  return { data, off, rs: cols, cs: 1 };
}
/** The transpose of a row-major [cols, rows] matrix starting at `off`, viewed as [rows, cols]. */
export function transposed(data: FloatArray, off: number, rows: number): MatView {
  return { data, off, rs: 1, cs: rows };
}

/** C = A·B (accumulate = false) or C += A·B (accumulate = true); A is M×K, B is K×N, C is M×N. */
export function gemm(M: number, N: number, K: number, a: MatView, b: MatView, c: MatView, accumulate: boolean): void {
  if (M === 0 || N === 0) return;
  if (K === 0) {
    if (!accumulate) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) c.data[c.off + i * c.rs + j * c.cs] = 0;
    return;
  }
  if (M < 4 && N >= 4) {
    // Cᵀ(j, i) = Σ_k Bᵀ(j, k) Aᵀ(k, i): the same memory with the roles (and strides) swapped.
    gemmStrided(N, M, K, b.data, b.off, b.cs, b.rs, a.data, a.off, a.cs, a.rs, c.data, c.off, c.cs, c.rs, accumulate);
  } else {
    gemmStrided(M, N, K, a.data, a.off, a.rs, a.cs, b.data, b.off, b.rs, b.cs, c.data, c.off, c.rs, c.cs, accumulate);
  }
}

/** gemm with the views spelled out as (array, offset, row stride, column stride). */
export function gemmStrided(
  M: number, N: number, K: number,
  A: FloatArray, ao: number, ai: number, ak: number,
  B: FloatArray, bo: number, bk: number, bj: number,
  C: FloatArray, co: number, ci: number, cj: number,
  acc: boolean,
): void {
  const M4 = M - (M % 4);
  const N4 = N - (N % 4);
  for (let i = 0; i < M4; i += 4) {
    const pa = ao + i * ai;
    const pc = co + i * ci;
    let j = 0;
    for (; j < N4; j += 4) kernel4x4(K, A, pa, ai, ak, B, bo + j * bj, bk, bj, C, pc + j * cj, ci, cj, acc);
    if (N - j >= 2) {
      kernel4x2(K, A, pa, ai, ak, B, bo + j * bj, bk, bj, C, pc + j * cj, ci, cj, acc);
      j += 2;
    }
    if (j < N) kernel4x1(K, A, pa, ai, ak, B, bo + j * bj, bk, C, pc + j * cj, ci, acc);
  }
  for (let i = M4; i < M; i++) {
    const pa = ao + i * ai;
    const pc = co + i * ci;
    let j = 0;
    for (; j < N4; j += 4) kernel1x4(K, A, pa, ak, B, bo + j * bj, bk, bj, C, pc + j * cj, cj, acc);
    for (; j < N; j++) {
      let s = 0;
      for (let k = 0, p = pa, q = bo + j * bj; k < K; k++, p += ak, q += bk) s += A[p]! * B[q]!;
      const t = pc + j * cj;
      C[t] = acc ? C[t]! + s : s;
    }
  }
}

function kernel4x4(
  K: number, A: FloatArray, pa: number, ai: number, ak: number, B: FloatArray, pb: number, bk: number, bj: number,
  C: FloatArray, pc: number, ci: number, cj: number, acc: boolean,
): void {
  let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
  const a1 = ai, a2 = 2 * ai, a3 = 3 * ai, b1 = bj, b2 = 2 * bj, b3 = 3 * bj;
  for (let k = 0; k < K; k++, pa += ak, pb += bk) {
    const y0 = B[pb]!, y1 = B[pb + b1]!, y2 = B[pb + b2]!, y3 = B[pb + b3]!;
    let x = A[pa]!;
    s00 += x * y0; s01 += x * y1; s02 += x * y2; s03 += x * y3;
    x = A[pa + a1]!;
    s10 += x * y0; s11 += x * y1; s12 += x * y2; s13 += x * y3;
    x = A[pa + a2]!;
    s20 += x * y0; s21 += x * y1; s22 += x * y2; s23 += x * y3;
    x = A[pa + a3]!;
    s30 += x * y0; s31 += x * y1; s32 += x * y2; s33 += x * y3;
  }
  const c1 = pc + ci, c2 = pc + 2 * ci, c3 = pc + 3 * ci, d1 = cj, d2 = 2 * cj, d3 = 3 * cj;
  if (acc) {
    C[pc] += s00; C[pc + d1] += s01; C[pc + d2] += s02; C[pc + d3] += s03;
    C[c1] += s10; C[c1 + d1] += s11; C[c1 + d2] += s12; C[c1 + d3] += s13;
    C[c2] += s20; C[c2 + d1] += s21; C[c2 + d2] += s22; C[c2 + d3] += s23;
    C[c3] += s30; C[c3 + d1] += s31; C[c3 + d2] += s32; C[c3 + d3] += s33;
  } else {
    C[pc] = s00; C[pc + d1] = s01; C[pc + d2] = s02; C[pc + d3] = s03;
    C[c1] = s10; C[c1 + d1] = s11; C[c1 + d2] = s12; C[c1 + d3] = s13;
    C[c2] = s20; C[c2 + d1] = s21; C[c2 + d2] = s22; C[c2 + d3] = s23;
    C[c3] = s30; C[c3 + d1] = s31; C[c3 + d2] = s32; C[c3 + d3] = s33;
  }
}

function kernel4x2(
  K: number, A: FloatArray, pa: number, ai: number, ak: number, B: FloatArray, pb: number, bk: number, bj: number,
  C: FloatArray, pc: number, ci: number, cj: number, acc: boolean,
): void {
  let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
  const a1 = ai, a2 = 2 * ai, a3 = 3 * ai;
  for (let k = 0; k < K; k++, pa += ak, pb += bk) {
    const y0 = B[pb]!, y1 = B[pb + bj]!;
    const x0 = A[pa]!, x1 = A[pa + a1]!, x2 = A[pa + a2]!, x3 = A[pa + a3]!;
    s00 += x0 * y0; s01 += x0 * y1; s10 += x1 * y0; s11 += x1 * y1;
    s20 += x2 * y0; s21 += x2 * y1; s30 += x3 * y0; s31 += x3 * y1;
  }
  const c1 = pc + ci, c2 = pc + 2 * ci, c3 = pc + 3 * ci;
  if (acc) {
    C[pc] += s00; C[pc + cj] += s01; C[c1] += s10; C[c1 + cj] += s11;
    C[c2] += s20; C[c2 + cj] += s21; C[c3] += s30; C[c3 + cj] += s31;
  } else {
    C[pc] = s00; C[pc + cj] = s01; C[c1] = s10; C[c1 + cj] = s11;
    C[c2] = s20; C[c2 + cj] = s21; C[c3] = s30; C[c3 + cj] = s31;
  }
}

function kernel4x1(
  K: number, A: FloatArray, pa: number, ai: number, ak: number, B: FloatArray, pb: number, bk: number,
  C: FloatArray, pc: number, ci: number, acc: boolean,
): void {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const a1 = ai, a2 = 2 * ai, a3 = 3 * ai;
  for (let k = 0; k < K; k++, pa += ak, pb += bk) {
    const y = B[pb]!;
    s0 += A[pa]! * y; s1 += A[pa + a1]! * y; s2 += A[pa + a2]! * y; s3 += A[pa + a3]! * y;
  }
  if (acc) {
    C[pc] += s0; C[pc + ci] += s1; C[pc + 2 * ci] += s2; C[pc + 3 * ci] += s3;
  } else {
    C[pc] = s0; C[pc + ci] = s1; C[pc + 2 * ci] = s2; C[pc + 3 * ci] = s3;
  }
}

function kernel1x4(
  K: number, A: FloatArray, pa: number, ak: number, B: FloatArray, pb: number, bk: number, bj: number,
  C: FloatArray, pc: number, cj: number, acc: boolean,
): void {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const b1 = bj, b2 = 2 * bj, b3 = 3 * bj;
  for (let k = 0; k < K; k++, pa += ak, pb += bk) {
    const x = A[pa]!;
    s0 += x * B[pb]!; s1 += x * B[pb + b1]!; s2 += x * B[pb + b2]!; s3 += x * B[pb + b3]!;
  }
  if (acc) {
    C[pc] += s0; C[pc + cj] += s1; C[pc + 2 * cj] += s2; C[pc + 3 * cj] += s3;
  } else {
    C[pc] = s0; C[pc + cj] = s1; C[pc + 2 * cj] = s2; C[pc + 3 * cj] = s3;
  }
}
