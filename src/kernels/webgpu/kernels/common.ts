/**
 * What the normalisation kernels share: one uniform block describing the engine's view of the
 * input (src/kernels/contract/view.ts: [N, C, S], statistics of groups of `gs` channels, per sample or
 * across the batch), the WGSL index helpers over it, the affine expression, and the program cache.
 *
 * Units: every size with a `vec` in its kernel is counted in vector units of that width (S, M,
 * segLen, segStride, chunkLen, E); `count` is the number of scalar values per statistic.
 *
 * The statistics buffer holds one vec4 per statistic: (shift, dmean, rstd, var), where the mean
 * is shift + dmean. The shift is the statistic's first value; sums run over x - shift, so a large
 * common offset never enters a float32 sum (the numerics of a shifted two-pass variance), and
 * kernels apply (x - shift) - dmean, which stays exact where x - mean rounded to float32 would not.
 */
import type { Program } from "../device.js";
import type { ReduceMode, StorageBinding, VecWidth } from "../wgsl.js";
import { builtinPrivates, enables, storageDecls, uniformBlock, vecType } from "../wgsl.js";
import type { AffineKind } from "../../contract/view.js";

export const NORM_U = uniformBlock({
  /** statistics */
  K: "u32",
  /** vector units per statistic */
  M: "u32",
  /** a statistic is segments of segLen units, segStride apart, the first at k * segLen */
  segLen: "u32",
  segStride: "u32",
  /** split reduction: units per chunk, chunks per statistic (or per row) */
  chunkLen: "u32",
  J: "u32",
  N: "u32",
  C: "u32",
  /** positions per channel, vector units */
  S: "u32",
  /** groups per sample (C / gs) and channels per group */
  G: "u32",
  gs: "u32",
  perSample: "u32",
  /** total vector units of x */
  E: "u32",
  /** rows per chunk in the column (parameter-gradient) reduction */
  rowChunk: "u32",
  /** scalar values per statistic */
  count: "f32",
  eps: "f32",
  /** running-average weight of the new value */
  factor: "f32",
  /** count / (count - 1): unbiased running variance */
  unbias: "f32",
});
export type NormUniforms = Parameters<typeof NORM_U.pack>[0];

/** Index helpers (vector units). */
export const NORM_PRELUDE = `
fn addr(k: u32, t: u32) -> u32 { return k * u.segLen + (t / u.segLen) * u.segStride + (t % u.segLen); }
fn chanOf(i: u32) -> u32 { return (i / u.S) % u.C; }
fn elemOf(i: u32) -> u32 { return i % (u.C * u.S); }
fn statOf(i: u32) -> u32 {
  let n = i / (u.C * u.S);
  return select(0u, n * u.G, u.perSample != 0u) + chanOf(i) / u.gs;
}
`;

export interface AffineSpec {
  readonly kind: AffineKind;
  readonly hasWeight: boolean;
  readonly hasBias: boolean;
}
export const affineKey = (a: AffineSpec): string => `${a.kind}${a.hasWeight ? "W" : ""}${a.hasBias ? "B" : ""}`;

/** Bindings w (and b) for an affine: per channel scalars, or per element of width vec. */
export function affineBindings(a: AffineSpec, vec: VecWidth): StorageBinding[] {
  if (a.kind === "none") return [];
  const t = a.kind === "element" ? vecType(vec) : "f32";
  const out: StorageBinding[] = [];
  if (a.hasWeight) out.push({ name: "w", type: t, access: "read" });
  if (a.hasBias) out.push({ name: "b", type: t, access: "read" });
  return out;
}

/** The weight factor of value i (an expression): w[c], w[e] or 1. */
export function weightAt(a: AffineSpec, i: string): string {
  if (a.kind === "none" || !a.hasWeight) return "1.0";
  return a.kind === "channel" ? `w[chanOf(${i})]` : `w[elemOf(${i})]`;
}
export function biasAt(a: AffineSpec, i: string): string {
  if (a.kind === "none" || !a.hasBias) return "0.0";
  return a.kind === "channel" ? `b[chanOf(${i})]` : `b[elemOf(${i})]`;
}

/** y = d * rstd * w + b, with d = (x - shift) - dmean. */
export function affineExpr(a: AffineSpec, d: string, rstd: string, i: string): string {
  if (a.kind === "channel") return `${d} * (${rstd} * ${weightAt(a, i)}) + ${biasAt(a, i)}`;
  return `${d} * ${rstd} * ${weightAt(a, i)} + ${biasAt(a, i)}`;
}

/** The shared module header: enables, uniforms, bindings, builtin privates, index helpers. */
export function header(mode: ReduceMode, bindings: readonly StorageBinding[]): string {
  return enables(mode) + NORM_U.wgsl + storageDecls(bindings) + builtinPrivates(mode) + NORM_PRELUDE;
}

const cache = new Map<string, Program>();

/** A program from its key parts, generated once per key. */
export function cachedProgram<F extends Program>(name: string, key: readonly unknown[], make: () => { bindings: StorageBinding[]; source: string; uniforms?: F["uniforms"] }): Program {
  const cacheKey = `${name}|${key.join("|")}`;
  let p = cache.get(cacheKey);
  if (!p) {
    const m = make();
    p = { name, cacheKey, uniforms: m.uniforms ?? NORM_U, bindings: m.bindings, source: m.source };
    cache.set(cacheKey, p);
  }
  return p;
}

/** Unrolled statements, one per register slot r = 0..R-1. */
export const unroll = (R: number, f: (r: number) => string): string => Array.from({ length: R }, (_, r) => f(r)).join("\n");
