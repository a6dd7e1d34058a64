/**
 * Backward kernels of the statistics engine. With xhat = ((x - shift) - dmean) * rstd, g = dy * w
 * and n values per statistic (src/kernels/ts/norm.ts, normalizeBackwardTS):
 *   batch statistics, centred:   dx = rstd * (g - mean_k(g) - xhat * mean_k(g * xhat))
 *   batch statistics, no centre: dx = rstd * (g - xhat * mean_k(g * xhat))
 *   fixed statistics (eval):     dx = rstd * g
 *   dweight += Σ dy * xhat       dbias += Σ dy      (ACCUMULATED, as PyTorch's autograd)
 *
 *   segmentSums      one workgroup per (row (n, c) of S values, chunk): Σ g and Σ g * (x - mean)
 *                    (g = dy, or dy * w[e] for an elementwise affine)
 *   statGrads        one thread per statistic: mg = mean(g), mgx = mean(g * xhat) from the row sums
 *   channelGrads     one thread per channel: dweight[c] += Σ_n rstd Σ dy (x - mean), dbias[c] += Σ dy
 *   dxApply          one thread per vector unit: dx from mg, mgx
 *   fusedRowBackward one workgroup per statistic whose row fits in registers (LayerNorm, RMSNorm):
 *                    the sums and dx in one pass over x and dy
 *   columnPartial / columnFinal   elementwise-affine parameter gradients: per column of the
 *                    [rows, C*S] view, sums over chunks of rows, then over the chunks
 */
import type { Program } from "../device.js";
import type { ReduceMode, VecWidth } from "../wgsl.js";
import { WG_INDEX, WORKGROUP_SIZE as WG, entryParams, hsum, storage, storeBuiltins, vecType, workgroupSum } from "../wgsl.js";
import { AffineSpec, affineBindings, affineKey, cachedProgram, header, unroll, weightAt } from "./common.js";

/** Only the weight of an affine is read in backward. */
const weightOnly = (a: AffineSpec): AffineSpec => ({ kind: a.kind, hasWeight: a.hasWeight, hasBias: false });

/**
 * Row sums; `perThread`: one thread per short row (BatchNorm1d's S = 1 and the like), one
 * workgroup per (row, chunk) otherwise.
 */
export function segmentSumsProgram(o: { vec: VecWidth; affine: AffineSpec; mode: ReduceMode; perThread?: boolean }): Program {
  // channel affine: unweighted sums (the weight is applied per channel in statGrads)
  const a: AffineSpec = o.affine.kind === "element" ? weightOnly(o.affine) : { kind: "none", hasWeight: false, hasBias: false };
  const perThread = o.perThread ?? false;
  return cachedProgram("segmentSums", [o.vec, affineKey(a), perThread ? "thread" : o.mode], () => {
    const T = vecType(o.vec);
    const bindings = [storage("x", T), storage("dy", T), storage("stats", "vec4<f32>"), storage("sums", "vec2<f32>", "read_write"), ...affineBindings(a, o.vec)];
    if (perThread) {
      const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let r = ${WG_INDEX} * ${WG}u + lid;
  if (r >= u.N * u.C) { return; }
  let st = stats[statOf(r * u.S)];
  var acc = vec2<f32>(0.0);
  for (var t = 0u; t < u.S; t = t + 1u) {
    let i = r * u.S + t;
    let d = (x[i] - ${T}(st.x)) - ${T}(st.y);
    let g = dy[i] * ${weightAt(a, "i")};
    acc = acc + vec2<f32>(${hsum(o.vec, "g")}, ${hsum(o.vec, "g * d")});
  }
  sums[r] = acc;
}
`;
      return { bindings, source };
    }
    const source = `${header(o.mode, bindings)}
${workgroupSum("wsum2", "vec2<f32>", o.mode)}
@compute @workgroup_size(${WG})
fn main(${entryParams(o.mode)}) {
${storeBuiltins(o.mode)}
  let wg = ${WG_INDEX};
  let rows = u.N * u.C;
  if (wg >= rows * u.J) { return; }
  let r = wg / u.J;
  let t0 = (wg % u.J) * u.chunkLen;
  let t1 = min(u.S, t0 + u.chunkLen);
  let st = stats[statOf(r * u.S)];
  var acc = vec2<f32>(0.0);
  for (var t = t0 + local_id; t < t1; t = t + ${WG}u) {
    let i = r * u.S + t;
    let d = (x[i] - ${T}(st.x)) - ${T}(st.y);
    let g = dy[i] * ${weightAt(a, "i")};
    acc = acc + vec2<f32>(${hsum(o.vec, "g")}, ${hsum(o.vec, "g * d")});
  }
  let tot = wsum2(acc);
  if (local_id == 0u) { sums[wg] = tot; }
}
`;
    return { bindings, source };
  });
}

/** gstats[k] = (mean(g), mean(g * xhat)); zero where statistics are fixed, mean(g) zero without centring. */
export function statGradsProgram(o: { affine: AffineSpec; center: boolean; fixed: boolean }): Program {
  const a: AffineSpec = o.affine.kind === "channel" ? weightOnly(o.affine) : { kind: "none", hasWeight: false, hasBias: false };
  return cachedProgram("statGrads", [affineKey(a), o.center, o.fixed], () => {
    const bindings = [storage("stats", "vec4<f32>"), storage("sums", "vec2<f32>"), storage("gstats", "vec2<f32>", "read_write"), ...affineBindings(a, 1)];
    const wc = a.kind === "channel" && a.hasWeight ? "w[c]" : "1.0";
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let k = ${WG_INDEX} * ${WG}u + lid;
  if (k >= u.K) { return; }
  ${o.fixed ? "gstats[k] = vec2<f32>(0.0);\n}\n" : `let n0 = select(0u, k / u.G, u.perSample != 0u);
  let n1 = select(u.N, n0 + 1u, u.perSample != 0u);
  let c0 = (k % u.G) * u.gs;
  var sg = 0.0;
  var sgd = 0.0;
  for (var n = n0; n < n1; n = n + 1u) {
    for (var c = c0; c < c0 + u.gs; c = c + 1u) {
      let r = n * u.C + c;
      var p = vec2<f32>(0.0);
      for (var j = 0u; j < u.J; j = j + 1u) { p = p + sums[r * u.J + j]; }
      sg = sg + ${wc} * p.x;
      sgd = sgd + ${wc} * p.y;
    }
  }
  let rstd = stats[k].z;
  gstats[k] = vec2<f32>(${o.center ? "sg / u.count" : "0.0"}, sgd * rstd / u.count);
}
`}`;
    return { bindings, source };
  });
}

/** Per channel: dweight[c] += Σ_n rstd_k Σ dy (x - mean_k), dbias[c] += Σ_n Σ dy (from unweighted row sums). */
export function channelGradsProgram(o: { hasWeight: boolean; hasBias: boolean }): Program {
  return cachedProgram("channelGrads", [o.hasWeight, o.hasBias], () => {
    const bindings = [
      storage("stats", "vec4<f32>"), storage("sums", "vec2<f32>"),
      ...(o.hasWeight ? [storage("dw", "f32", "read_write")] : []),
      ...(o.hasBias ? [storage("db", "f32", "read_write")] : []),
    ];
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let c = ${WG_INDEX} * ${WG}u + lid;
  if (c >= u.C) { return; }
  var aw = 0.0;
  var ab = 0.0;
  for (var n = 0u; n < u.N; n = n + 1u) {
    let r = n * u.C + c;
    let rstd = stats[statOf(r * u.S)].z;
    var p = vec2<f32>(0.0);
    for (var j = 0u; j < u.J; j = j + 1u) { p = p + sums[r * u.J + j]; }
    aw = aw + rstd * p.y;
    ab = ab + p.x;
  }
  ${o.hasWeight ? "dw[c] = dw[c] + aw;" : ""}
  ${o.hasBias ? "db[c] = db[c] + ab;" : ""}
}
`;
    return { bindings, source };
  });
}

export function dxApplyProgram(o: { vec: VecWidth; affine: AffineSpec }): Program {
  const a = weightOnly(o.affine);
  return cachedProgram("dxApply", [o.vec, affineKey(a)], () => {
    const T = vecType(o.vec);
    const bindings = [
      storage("x", T), storage("dy", T), storage("stats", "vec4<f32>"), storage("gstats", "vec2<f32>"),
      storage("dx", T, "read_write"), ...affineBindings(a, o.vec),
    ];
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let i = ${WG_INDEX} * ${WG}u + lid;
  if (i >= u.E) { return; }
  let k = statOf(i);
  let st = stats[k];
  let gg = gstats[k];
  let xhat = ((x[i] - ${T}(st.x)) - ${T}(st.y)) * st.z;
  let g = dy[i] * ${weightAt(a, "i")};
  dx[i] = st.z * (g - ${T}(gg.x) - xhat * gg.y);
}
`;
    return { bindings, source };
  });
}

export function fusedRowBackwardProgram(o: { vec: VecWidth; R: number; affine: AffineSpec; center: boolean; mode: ReduceMode }): Program {
  const a = weightOnly(o.affine);
  return cachedProgram("fusedRowBackward", [o.vec, o.R, affineKey(a), o.center, o.mode], () => {
    const T = vecType(o.vec);
    const bindings = [storage("x", T), storage("dy", T), storage("stats", "vec4<f32>"), storage("dx", T, "read_write"), ...affineBindings(a, o.vec)];
    const load = unroll(o.R, (r) => `
  let t${r} = local_id + ${r * WG}u;
  var d${r} = ${T}(0.0);
  var g${r} = ${T}(0.0);
  if (t${r} < u.M) {
    let i = addr(k, t${r});
    d${r} = (x[i] - ${T}(st.x)) - ${T}(st.y);
    g${r} = dy[i] * ${weightAt(a, "i")};
    acc = acc + vec2<f32>(${hsum(o.vec, `g${r}`)}, ${hsum(o.vec, `g${r} * d${r}`)});
  }`);
    const store = unroll(o.R, (r) => `  if (t${r} < u.M) { dx[addr(k, t${r})] = rstd * (g${r} - ${T}(mg) - d${r} * (rstd * mgx)); }`);
    const source = `${header(o.mode, bindings)}
${workgroupSum("wsum2", "vec2<f32>", o.mode)}
@compute @workgroup_size(${WG})
fn main(${entryParams(o.mode)}) {
${storeBuiltins(o.mode)}
  let k = ${WG_INDEX};
  if (k >= u.K) { return; }
  let st = stats[k];
  let rstd = st.z;
  var acc = vec2<f32>(0.0);
${load}
  let tot = wsum2(acc);
  let mg = ${o.center ? "tot.x / u.count" : "0.0"};
  let mgx = tot.y * rstd / u.count;
${store}
}
`;
    return { bindings, source };
  });
}

/**
 * Elementwise-affine parameter gradients, stage 1: x viewed as [N, P] with P = C*S (vector units).
 * Workgroup (column block, row chunk): each thread one column unit, summing dy * xhat and dy over
 * its rows; written to partW/partB[chunk * P + column].
 */
export function columnPartialProgram(o: { vec: VecWidth }): Program {
  return cachedProgram("columnPartial", [o.vec], () => {
    const T = vecType(o.vec);
    const bindings = [storage("x", T), storage("dy", T), storage("stats", "vec4<f32>"), storage("partW", T, "read_write"), storage("partB", T, "read_write")];
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let P = u.C * u.S;
  let blocks = (P + ${WG - 1}u) / ${WG}u;
  let w = ${WG_INDEX};
  if (w >= blocks * u.J) { return; }
  let q = (w % blocks) * ${WG}u + lid;
  let j = w / blocks;
  if (q >= P) { return; }
  let n0 = j * u.rowChunk;
  let n1 = min(u.N, n0 + u.rowChunk);
  var aw = ${T}(0.0);
  var ab = ${T}(0.0);
  for (var n = n0; n < n1; n = n + 1u) {
    let i = n * P + q;
    let st = stats[statOf(i)];
    let g = dy[i];
    aw = aw + g * (((x[i] - ${T}(st.x)) - ${T}(st.y)) * st.z);
    ab = ab + g;
  }
  partW[j * P + q] = aw;
  partB[j * P + q] = ab;
}
`;
    return { bindings, source };
  });
}

export function columnFinalProgram(o: { vec: VecWidth; hasWeight: boolean; hasBias: boolean }): Program {
  return cachedProgram("columnFinal", [o.vec, o.hasWeight, o.hasBias], () => {
    const T = vecType(o.vec);
    const bindings = [
      storage("partW", T), storage("partB", T),
      ...(o.hasWeight ? [storage("dw", T, "read_write")] : []),
      ...(o.hasBias ? [storage("db", T, "read_write")] : []),
    ];
    const source = `${header("shared", bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let P = u.C * u.S;
  let q = ${WG_INDEX} * ${WG}u + lid;
  if (q >= P) { return; }
  var aw = ${T}(0.0);
  var ab = ${T}(0.0);
  for (var j = 0u; j < u.J; j = j + 1u) {
    aw = aw + partW[j * P + q];
    ab = ab + partB[j * P + q];
  }
  ${o.hasWeight ? "dw[q] = dw[q] + aw;" : ""}
  ${o.hasBias ? "db[q] = db[q] + ab;" : ""}
}
`;
    return { bindings, source };
  });
}
