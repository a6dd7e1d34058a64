/**
 * The TypeScript kernels of the statistics engine, on plain typed arrays: one set of kernels that
 * every normalization method configures through its view (src/kernels/contract/view.ts: which values
 * share a mean and variance, whether they are centred, the affine kind).
 *
 * The variance is computed in two passes (mean, then squared deviations), accumulated in float64
 * whatever the storage, so float32 inputs with a large offset stay exact. These are the exact
 * reference; ./index.ts wraps them as the TypeScript kernel set of the contract.
 *
 * Kernels are pure functions over typed arrays: outputs are explicit arguments and nothing is
 * allocated inside them.
 */
import type { FloatArray } from "../../tensor.js";
import type { AffineKind, NormShape, StatsConfig } from "../contract/view.js";
import { numStats, statCount } from "../contract/view.js";
import type { BackwardScratch } from "../contract/host.js";

export type { AffineKind, NormPlan, NormShape, StatsConfig } from "../contract/view.js";
export { numGroups, numStats, statCount } from "../contract/view.js";

// ---------------------------------------------------------------------------------------------
// The TypeScript kernels

/** out = A_k * dy + B_k * (x - M_k) + D_k over every value of statistic group k (M_k: the group's mean). */
export function combineTS(
  out: FloatArray, dy: Readonly<FloatArray>, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig,
  A: Readonly<Float64Array>, B: Readonly<Float64Array>, M: Readonly<Float64Array>, D: Readonly<Float64Array>,
): void {
  forEachRun(shape, cfg, (k, base, stride, len) => {
    const a = A[k]!, b = B[k]!, m = M[k]!, d = D[k]!;
    for (let i = 0, j = base; i < len; i++, j += stride) out[j] = a * dy[j]! + b * (x[j]! - m) + d;
  });
}

/**
 * Statistics of every group. Biased (population) variance:
 *   mean_k = (1/M) Σ x          var_k = (1/M) Σ (x - mean_k)^2     (center)
 *   mean_k = 0                  var_k = (1/M) Σ x^2                (no center)
 * `mean` and `variance` have numStats entries and are overwritten.
 */
export function momentsTS(
  x: Readonly<FloatArray>,
  shape: NormShape,
  cfg: StatsConfig,
  mean: Float64Array,
  variance: Float64Array,
): void {
  const K = numStats(shape, cfg);
  const inv = 1 / statCount(shape, cfg);
  mean.fill(0, 0, K);
  variance.fill(0, 0, K);
  if (cfg.center) {
    forEachRun(shape, cfg, (k, base, stride, len) => {
      let s = 0;
      for (let i = 0, j = base; i < len; i++, j += stride) s += x[j]!;
      mean[k] += s;
    });
    for (let k = 0; k < K; k++) mean[k] *= inv;
  }
  forEachRun(shape, cfg, (k, base, stride, len) => {
    const m = mean[k]!;
    let s = 0;
    for (let i = 0, j = base; i < len; i++, j += stride) {
      const d = x[j]! - m;
      s += d * d;
    }
    variance[k] += s;
  });
  for (let k = 0; k < K; k++) variance[k] *= inv;
}

/** rstd_k = 1 / sqrt(var_k + eps) */
export function rstdFromVar(rstd: Float64Array, variance: Readonly<Float64Array>, eps: number, K: number): void {
  for (let k = 0; k < K; k++) rstd[k] = 1 / Math.sqrt(variance[k]! + eps);
}

/**
 * Forward:  y = (x - mean_k) * rstd_k * w + b
 * For `channel` affine this is y = x * a_c + b'_c with a = rstd*w and b' = b - mean*a, one
 * multiply-add per element. `weight`/`bias` may be null (treated as 1 / 0).
 */
export function normalizeForwardTS(
  y: FloatArray,
  x: Readonly<FloatArray>,
  shape: NormShape,
  cfg: StatsConfig,
  mean: Readonly<Float64Array>,
  rstd: Readonly<Float64Array>,
  affine: AffineKind,
  weight: Readonly<FloatArray> | null,
  bias: Readonly<FloatArray> | null,
): void {
  const { N, C, S } = shape;
  if (affine !== "element") {
    forEachRun(shape, cfg, (k, base, stride, len, c) => {
      const w = affine === "channel" && weight ? weight[c]! : 1;
      const a = rstd[k]! * w;
      const b = (affine === "channel" && bias ? bias[c]! : 0) - mean[k]! * a;
      for (let i = 0, j = base; i < len; i++, j += stride) y[j] = x[j]! * a + b;
    });
    return;
  }
  // element affine: weight index = position inside the sample (memory order)
  const per = C * S;
  forEachRun(shape, cfg, (k, base, stride, len) => {
    const m = mean[k]!;
    const r = rstd[k]!;
    const off = base - Math.floor(base / per) * per;
    for (let i = 0, j = base, e = off; i < len; i++, j += stride, e += stride) {
      const w = weight ? weight[e]! : 1;
      const b = bias ? bias[e]! : 0;
      y[j] = (x[j]! - m) * r * w + b;
    }
  });
  void N;
}

/** momentsTS + rstdFromVar + normalizeForwardTS. */
export function forwardTrainTS(
  y: FloatArray, x: Readonly<FloatArray>, shape: NormShape, cfg: StatsConfig, eps: number, affine: AffineKind,
  weight: Readonly<FloatArray> | null, bias: Readonly<FloatArray> | null, mean: Float64Array, variance: Float64Array,
  rstd: Float64Array,
): void {
  momentsTS(x, shape, cfg, mean, variance);
  rstdFromVar(rstd, variance, eps, numStats(shape, cfg));
  normalizeForwardTS(y, x, shape, cfg, mean, rstd, affine, weight, bias);
}

export type { BackwardScratch } from "../contract/host.js";

export function makeBackwardScratch(stats: number, affineSize: number): BackwardScratch {
  return {
    sumG: new Float64Array(stats),
    sumGX: new Float64Array(stats),
    dw: new Float64Array(affineSize),
    db: new Float64Array(affineSize),
  };
}

/**
 * Backward, with xhat = (x - mean_k) * rstd_k, g = dy * w and M values per statistic:
 *   batch statistics, centred:   dx = rstd_k * (g - mean_k(g) - xhat * mean_k(g * xhat))
 *   batch statistics, no centre: dx = rstd_k * (g - xhat * mean_k(g * xhat))
 *   fixed statistics (eval):     dx = rstd_k * g
 *   dweight += Σ dy * xhat       dbias += Σ dy     (over everything that shares the parameter)
 * Parameter gradients are ACCUMULATED into `dweight` / `dbias` (pass null to skip them).
 * `scratch.sumG` / `scratch.sumGX` hold the per-statistic sums afterwards (Switchable Norm
 * reuses them). `dx` may be null when only parameter gradients are wanted.
 */
export function normalizeBackwardTS(
  dx: FloatArray | null,
  dweight: FloatArray | null,
  dbias: FloatArray | null,
  dy: Readonly<FloatArray>,
  x: Readonly<FloatArray>,
  shape: NormShape,
  cfg: StatsConfig,
  mean: Readonly<Float64Array>,
  rstd: Readonly<Float64Array>,
  affine: AffineKind,
  weight: Readonly<FloatArray> | null,
  fixedStats: boolean,
  scratch: BackwardScratch,
): void {
  const K = numStats(shape, cfg);
  const per = shape.C * shape.S;
  const { sumG, sumGX, dw, db } = scratch;
  sumG.fill(0, 0, K);
  sumGX.fill(0, 0, K);
  const P = affine === "channel" ? shape.C : affine === "element" ? per : 0;
  dw.fill(0, 0, P);
  db.fill(0, 0, P);

  // pass 1: per-statistic sums and parameter gradients
  forEachRun(shape, cfg, (k, base, stride, len, c) => {
    const m = mean[k]!;
    const r = rstd[k]!;
    if (affine === "element") {
      const off = base - Math.floor(base / per) * per;
      let sg = 0, sgx = 0;
      for (let i = 0, j = base, e = off; i < len; i++, j += stride, e += stride) {
        const d = dy[j]!;
        const xh = (x[j]! - m) * r;
        const g = weight ? d * weight[e]! : d;
        sg += g;
        sgx += g * xh;
        dw[e] += d * xh;
        db[e] += d;
      }
      sumG[k] += sg;
      sumGX[k] += sgx;
    } else {
      let sd = 0, sdx = 0;
      for (let i = 0, j = base; i < len; i++, j += stride) {
        const d = dy[j]!;
        sd += d;
        sdx += d * (x[j]! - m);
      }
      sdx *= r;
      const w = affine === "channel" && weight ? weight[c]! : 1;
      sumG[k] += sd * w;
      sumGX[k] += sdx * w;
      if (affine === "channel") {
        dw[c] += sdx;
        db[c] += sd;
      }
    }
  });
  if (dweight) for (let p = 0; p < P; p++) dweight[p] += dw[p]!;
  if (dbias) for (let p = 0; p < P; p++) dbias[p] += db[p]!;
  if (!dx) return;

  // pass 2: dx
  const invM = 1 / statCount(shape, cfg);
  const center = cfg.center;
  forEachRun(shape, cfg, (k, base, stride, len, c) => {
    const m = mean[k]!;
    const r = rstd[k]!;
    const mg = fixedStats || !center ? 0 : sumG[k]! * invM;
    const mgx = fixedStats ? 0 : sumGX[k]! * invM;
    if (affine === "element") {
      const off = base - Math.floor(base / per) * per;
      for (let i = 0, j = base, e = off; i < len; i++, j += stride, e += stride) {
        const g = weight ? dy[j]! * weight[e]! : dy[j]!;
        const xh = (x[j]! - m) * r;
        dx[j] = r * (g - mg - xh * mgx);
      }
    } else {
      // dx = A*dy + B*x + D with A = r*w, B = -r*r*mgx, D = r*(r*m*mgx - mg)
      const w = affine === "channel" && weight ? weight[c]! : 1;
      const A = r * w;
      const B = -r * r * mgx;
      const D = r * (r * m * mgx - mg);
      for (let i = 0, j = base; i < len; i++, j += stride) dx[j] = A * dy[j]! + B * x[j]! + D;
    }
  });
}

/**
 * Visits every maximal run of values that share one statistic and one channel:
 * `fn(k, base, stride, len, c)`. NCHW: one contiguous run of S per (n, c). Channels-last: one
 * strided run of S (stride C) per (n, c).
 */
export function forEachRun(
  shape: NormShape,
  cfg: StatsConfig,
  fn: (k: number, base: number, stride: number, len: number, c: number) => void,
): void {
  const { N, C, S, channelsLast } = shape;
  const G = C / cfg.groupSize;
  const gs = cfg.groupSize;
  for (let n = 0; n < N; n++) {
    const k0 = cfg.perSample ? n * G : 0;
    for (let c = 0; c < C; c++) {
      const k = k0 + ((c / gs) | 0);
      if (channelsLast) fn(k, n * S * C + c, C, S, c);
      else fn(k, (n * C + c) * S, 1, S, c);
    }
  }
}
