/**
 * Forward kernels of the statistics engine:
 *
 *   fusedForward   one workgroup per statistic whose values fit in registers (R vector units per
 *                  thread): load once, mean and variance in registers (exact two-pass), write the
 *                  statistics and y = ((x - shift) - dmean) * rstd * w + b. One read, one write.
 *   momentsPartial one workgroup per (statistic, chunk): chunk mean and M2 by a shifted two-pass
 *                  (the chunk is re-read from cache); with one chunk per statistic it writes the
 *                  statistics directly.
 *   momentsRow     one thread per statistic, for statistics of a few vector units (InstanceNorm or
 *                  Switchable Norm on a few positions, the 1d case: one): the same shifted two-pass,
 *                  serial — a workgroup per statistic would be 256 threads for a handful of values.
 *   momentsCombine one thread per statistic: Chan's combination of the chunks,
 *                    mean = Σ n_j m_j / n,   M2 = Σ (M2_j + n_j (m_j - mean)^2),   var = M2 / n.
 *   normalizeApply one thread per vector unit: y from given statistics (the fused scale/shift pass).
 *   evalStats      statistics from running buffers: (running_mean, 0, 1/sqrt(running_var + eps)).
 *   instanceRunning  InstanceNorm's running update from the per-instance statistics.
 *
 * Running update (BatchNorm, PyTorch convention), where the statistic is final:
 *   running_mean = (1 - f) running_mean + f mean,   running_var = (1 - f) running_var + f var * n/(n-1).
 * Without centring (RMSNorm) var is mean(x^2) and shift = dmean = 0.
 */
import type { Program } from "../device.js";
import type { ReduceMode, VecWidth } from "../wgsl.js";
import { WG_INDEX, WORKGROUP_SIZE as WG, entryParams, hsum, storage, storeBuiltins, vecType, workgroupSum } from "../wgsl.js";
import { AffineSpec, affineBindings, affineExpr, affineKey, cachedProgram, header, unroll } from "./common.js";

const first = (vec: VecWidth, k: string) => (vec === 4 ? `x[addr(${k}, 0u)].x` : `x[addr(${k}, 0u)]`);

const runningBatch = (st: string) => `
    rm[k] = (1.0 - u.factor) * rm[k] + u.factor * (${st}.x + ${st}.y);
    rv[k] = (1.0 - u.factor) * rv[k] + u.factor * ${st}.w * u.unbias;`;

export interface FusedForwardOptions {
  vec: VecWidth;
  /** vector units per thread (1, 2, 4 or 8) */
  R: number;
  center: boolean;
  affine: AffineSpec;
  /** update BatchNorm running buffers (rm, rv) */
  running: boolean;
  mode: ReduceMode;
}

export function fusedForwardProgram(o: FusedForwardOptions): Program {
  return cachedProgram("fusedForward", [o.vec, o.R, o.center, affineKey(o.affine), o.running, o.mode], () => {
    const T = vecType(o.vec);
    const bindings = [
      storage("x", T), storage("y", T, "read_write"), storage("stats", "vec4<f32>", "read_write"),
      ...affineBindings(o.affine, o.vec),
      ...(o.running ? [storage("rm", "f32", "read_write"), storage("rv", "f32", "read_write")] : []),
    ];
    const load = unroll(o.R, (r) => `
  let t${r} = local_id + ${r * WG}u;
  var v${r} = ${T}(0.0);
  if (t${r} < u.M) {
    v${r} = x[addr(k, t${r})] - ${T}(shift);
    s = s + ${hsum(o.vec, `v${r}`)};
    ${o.center ? "" : `q = q + ${hsum(o.vec, `v${r} * v${r}`)};`}
  }`);
    const second = o.center
      ? unroll(o.R, (r) => `  if (t${r} < u.M) { let d = v${r} - ${T}(dm); q = q + ${hsum(o.vec, "d * d")}; }`)
      : "";
    const store = unroll(o.R, (r) => `
  if (t${r} < u.M) {
    let i = addr(k, t${r});
    y[i] = ${affineExpr(o.affine, `(v${r} - ${T}(dm))`, "rstd", "i")};
  }`);
    const source = `${header(o.mode, bindings)}
${workgroupSum("wsum", "f32", o.mode)}
@compute @workgroup_size(${WG})
fn main(${entryParams(o.mode)}) {
${storeBuiltins(o.mode)}
  let k = ${WG_INDEX};
  if (k >= u.K) { return; }
  let shift = ${o.center ? first(o.vec, "k") : "0.0"};
  var s = 0.0;
  var q = 0.0;
${load}
  ${o.center ? "let dm = wsum(s) / u.count;" : "let dm = 0.0;"}
${second}
  let vr = wsum(q) / u.count;
  let rstd = 1.0 / sqrt(vr + u.eps);
  if (local_id == 0u) {
    let st = vec4<f32>(shift, dm, rstd, vr);
    stats[k] = st;${o.running ? runningBatch("st") : ""}
  }
${store}
}
`;
    return { bindings, source };
  });
}

export interface PartialOptions {
  vec: VecWidth;
  center: boolean;
  /** one chunk per statistic: write the statistics (and running update) directly */
  final: boolean;
  running: boolean;
  mode: ReduceMode;
}

export function momentsPartialProgram(o: PartialOptions): Program {
  return cachedProgram("momentsPartial", [o.vec, o.center, o.final, o.running, o.mode], () => {
    const T = vecType(o.vec);
    const bindings = [
      storage("x", T),
      o.final ? storage("stats", "vec4<f32>", "read_write") : storage("part", "vec2<f32>", "read_write"),
      ...(o.final && o.running ? [storage("rm", "f32", "read_write"), storage("rv", "f32", "read_write")] : []),
    ];
    const pass1 = o.center
      ? `for (var t = t0 + local_id; t < t1; t = t + ${WG}u) { s = s + ${hsum(o.vec, `x[addr(k, t)] - ${T}(shift)`)}; }
  let cm = wsum(s) / n;
  for (var t = t0 + local_id; t < t1; t = t + ${WG}u) { let d = (x[addr(k, t)] - ${T}(shift)) - ${T}(cm); q = q + ${hsum(o.vec, "d * d")}; }`
      : `for (var t = t0 + local_id; t < t1; t = t + ${WG}u) { let v = x[addr(k, t)]; q = q + ${hsum(o.vec, "v * v")}; }
  let cm = 0.0;`;
    const out = o.final
      ? `let vr = Q / n;
    let st = vec4<f32>(shift, cm, 1.0 / sqrt(vr + u.eps), vr);
    stats[k] = st;${o.running ? runningBatch("st") : ""}`
      : "part[w] = vec2<f32>(cm, Q);";
    const source = `${header(o.mode, bindings)}
${workgroupSum("wsum", "f32", o.mode)}
@compute @workgroup_size(${WG})
fn main(${entryParams(o.mode)}) {
${storeBuiltins(o.mode)}
  let w = ${WG_INDEX};
  if (w >= u.K * u.J) { return; }
  let k = w / u.J;
  let t0 = (w % u.J) * u.chunkLen;
  let t1 = min(u.M, t0 + u.chunkLen);
  let n = f32(t1 - t0) * ${o.vec}.0;
  let shift = ${o.center ? first(o.vec, "k") : "0.0"};
  var s = 0.0;
  var q = 0.0;
  ${pass1}
  let Q = wsum(q);
  if (local_id == 0u) {
    ${out}
  }
}
`;
    return { bindings, source };
  });
}

export function momentsRowProgram(o: { vec: VecWidth; center: boolean }): Program {
  return cachedProgram("momentsRow", [o.vec, o.center], () => {
    const T = vecType(o.vec);
    const bindings = [storage("x", T), storage("stats", "vec4<f32>", "read_write")];
    const pass = o.center
      ? `for (var t = 0u; t < u.M; t = t + 1u) { s = s + ${hsum(o.vec, `x[addr(k, t)] - ${T}(shift)`)}; }
  let cm = s / n;
  for (var t = 0u; t < u.M; t = t + 1u) { let d = (x[addr(k, t)] - ${T}(shift)) - ${T}(cm); q = q + ${hsum(o.vec, "d * d")}; }`
      : `for (var t = 0u; t < u.M; t = t + 1u) { let v = x[addr(k, t)]; q = q + ${hsum(o.vec, "v * v")}; }
  let cm = 0.0;`;
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let k = ${WG_INDEX} * ${WG}u + lid;
  if (k >= u.K) { return; }
  let n = f32(u.M) * ${o.vec}.0;
  let shift = ${o.center ? first(o.vec, "k") : "0.0"};
  var s = 0.0;
  var q = 0.0;
  ${pass}
  let vr = q / n;
  stats[k] = vec4<f32>(shift, cm, 1.0 / sqrt(vr + u.eps), vr);
}
`;
    return { bindings, source };
  });
}

export function momentsCombineProgram(o: { vec: VecWidth; center: boolean; running: boolean }): Program {
  return cachedProgram("momentsCombine", [o.vec, o.center, o.running], () => {
    const T = vecType(o.vec);
    const bindings = [
      storage("x", T), storage("part", "vec2<f32>"), storage("stats", "vec4<f32>", "read_write"),
      ...(o.running ? [storage("rm", "f32", "read_write"), storage("rv", "f32", "read_write")] : []),
    ];
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let k = ${WG_INDEX} * ${WG}u + lid;
  if (k >= u.K) { return; }
  let shift = ${o.center ? first(o.vec, "k") : "0.0"};
  var mean = 0.0;
  for (var j = 0u; j < u.J; j = j + 1u) {
    let nj = f32(min(u.chunkLen, u.M - j * u.chunkLen)) * ${o.vec}.0;
    mean = mean + nj * part[k * u.J + j].x;
  }
  mean = mean / u.count;
  var m2 = 0.0;
  for (var j = 0u; j < u.J; j = j + 1u) {
    let nj = f32(min(u.chunkLen, u.M - j * u.chunkLen)) * ${o.vec}.0;
    let p = part[k * u.J + j];
    let d = p.x - mean;
    m2 = m2 + p.y + nj * d * d;
  }
  let vr = m2 / u.count;
  let st = vec4<f32>(shift, mean, 1.0 / sqrt(vr + u.eps), vr);
  stats[k] = st;${o.running ? runningBatch("st") : ""}
}
`;
    return { bindings, source };
  });
}

export function normalizeApplyProgram(o: { vec: VecWidth; affine: AffineSpec }): Program {
  return cachedProgram("normalizeApply", [o.vec, affineKey(o.affine)], () => {
    const T = vecType(o.vec);
    const bindings = [storage("x", T), storage("y", T, "read_write"), storage("stats", "vec4<f32>"), ...affineBindings(o.affine, o.vec)];
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let i = ${WG_INDEX} * ${WG}u + lid;
  if (i >= u.E) { return; }
  let st = stats[statOf(i)];
  let d = (x[i] - ${T}(st.x)) - ${T}(st.y);
  y[i] = ${affineExpr(o.affine, "d", "st.z", "i")};
}
`;
    return { bindings, source };
  });
}

export function evalStatsProgram(): Program {
  return cachedProgram("evalStats", [], () => {
    const bindings = [storage("rm", "f32"), storage("rv", "f32"), storage("stats", "vec4<f32>", "read_write")];
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let c = ${WG_INDEX} * ${WG}u + lid;
  if (c >= u.K) { return; }
  stats[c] = vec4<f32>(rm[c], 0.0, 1.0 / sqrt(rv[c] + u.eps), rv[c]);
}
`;
    return { bindings, source };
  });
}

/** Per channel c: mean over n of the instance means and (unbiased) variances, then the running update. */
export function instanceRunningProgram(): Program {
  return cachedProgram("instanceRunning", [], () => {
    const bindings = [storage("stats", "vec4<f32>"), storage("rm", "f32", "read_write"), storage("rv", "f32", "read_write")];
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let c = ${WG_INDEX} * ${WG}u + lid;
  if (c >= u.C) { return; }
  var m = 0.0;
  var v = 0.0;
  for (var n = 0u; n < u.N; n = n + 1u) {
    let st = stats[n * u.C + c];
    m = m + (st.x + st.y);
    v = v + st.w;
  }
  m = m / f32(u.N);
  v = v / f32(u.N) * u.unbias;
  rm[c] = (1.0 - u.factor) * rm[c] + u.factor * m;
  rv[c] = (1.0 - u.factor) * rv[c] + u.factor * v;
}
`;
    return { bindings, source };
  });
}
