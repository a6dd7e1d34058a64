/**
 * Switchable Normalization kernels (src/kernels/ts/switchable.ts has the math, src/nn/switchable_norm.ts
 * the reference semantics). The per-(n, c) instance moments come from the engine's moment kernels; then
 *
 *   switchMix      one workgroup: mu_in, var_in (x f_in); LN statistics per n and BN statistics per
 *                  c from them by the law of total variance on centred terms,
 *                  var = f * mean(var_in + (mu_in - mu)^2) (never E[x^2] - mu^2), the BN running
 *                  update (momentum weights the OLD value, or accumulation), softmax of the mixing
 *                  logits, and the mixed (mean, rstd) per (n, c), written as engine statistics.
 *                  Every mean is held relative to s0, the shift of the first instance statistic (a
 *                  value of x): with a large common offset, mu_in - s0 and x - s0 are exact in
 *                  float32 where mu_in itself is not, so the centred terms keep their precision.
 *   switchBackward one workgroup: from the row sums Σ dy, Σ dy (x - mu): dL/dmu, dL/dvar per (n, c),
 *                  the logits' gradients (accumulated), the LN / BN terms, and per (n, c) the
 *                  coefficients of dx = A dy + B (x - mu_in) + E.
 *   switchDx       one thread per vector unit: dx from those coefficients.
 * N*C is the size of the statistics (small next to x), so one workgroup looping over it is enough.
 */
import type { Program } from "../device.js";
import type { VecWidth } from "../wgsl.js";
import { WG_INDEX, WORKGROUP_SIZE as WG, entryParams, storage, storageDecls, uniformBlock, builtinPrivates, vecType, workgroupSum, storeBuiltins } from "../wgsl.js";
import { cachedProgram } from "./common.js";

export const SN_U = uniformBlock({
  N: "u32",
  C: "u32",
  /** positions per channel (scalars) and in vector units */
  S: "u32",
  Sv: "u32",
  E: "u32",
  J: "u32",
  ncomp: "u32",
  /** component index of IN, LN, BN in the logits (>= ncomp: absent) */
  iIn: "u32",
  iLn: "u32",
  iBn: "u32",
  bnFromBatch: "u32",
  movingAverage: "u32",
  fIn: "f32",
  fLn: "f32",
  fBn: "f32",
  eps: "f32",
  momentum: "f32",
  /** offsets (in f32) into the one scratch buffer ws: inS, lnS, bnS, gbuf, nbuf, cbuf (vec2 each), coef (vec4), s0 */
  oIn: "u32",
  oLn: "u32",
  oBn: "u32",
  oG: "u32",
  oN: "u32",
  oC: "u32",
  oCoef: "u32",
  oS0: "u32",
});

/** f32 offsets of the scratch regions for N, C (ws holds them all: at most 8 storage buffers per kernel). */
export function switchableLayout(N: number, C: number) {
  const NC = N * C;
  let at = 0;
  const take = (n: number) => ((at += n), at - n);
  const o = { oIn: take(2 * NC), oLn: take(2 * N), oBn: take(2 * C), oG: take(2 * NC), oN: take(2 * N), oC: take(2 * C), oCoef: take(4 * NC), oS0: take(4) };
  return { ...o, floats: at };
}

const SOFTMAX = `
fn softmax3(z: ptr<function, array<f32, 3>>) {
  var m = -3.0e38;
  for (var j = 0u; j < u.ncomp; j = j + 1u) { m = max(m, (*z)[j]); }
  var s = 0.0;
  for (var j = 0u; j < u.ncomp; j = j + 1u) { (*z)[j] = exp((*z)[j] - m); s = s + (*z)[j]; }
  for (var j = 0u; j < u.ncomp; j = j + 1u) { (*z)[j] = (*z)[j] / s; }
}
fn ld2(o: u32, i: u32) -> vec2<f32> { return vec2<f32>(ws[o + 2u * i], ws[o + 2u * i + 1u]); }
fn st2(o: u32, i: u32, v: vec2<f32>) { ws[o + 2u * i] = v.x; ws[o + 2u * i + 1u] = v.y; }
fn comp(z: ptr<function, array<f32, 3>>, j: u32) -> f32 { return select(0.0, (*z)[min(j, 2u)], j < u.ncomp); }
`;

function head(bindings: ReturnType<typeof storage>[]): string {
  return SN_U.wgsl + storageDecls(bindings) + builtinPrivates("shared") + SOFTMAX;
}

export function switchMixProgram(o: { bn: boolean }): Program {
  return cachedProgram("switchMix", [o.bn], () => {
    const bindings = [
      storage("stats", "vec4<f32>"), storage("mw", "f32"), storage("vw", "f32"), storage("ws", "f32", "read_write"),
      storage("mixed", "vec4<f32>", "read_write"),
      ...(o.bn ? [storage("rm", "f32", "read_write"), storage("rv", "f32", "read_write")] : []),
    ];
    const bnPhase = o.bn
      ? `
  for (var c = lid; c < u.C; c = c + ${WG}u) {
    if (u.bnFromBatch != 0u) {
      var m = 0.0;
      for (var n = 0u; n < u.N; n = n + 1u) { m = m + ld2(u.oIn, n * u.C + c).x; }
      m = m / f32(u.N);
      var t = 0.0;
      for (var n = 0u; n < u.N; n = n + 1u) {
        let p = ld2(u.oIn, n * u.C + c);
        t = t + p.y + (p.x - m) * (p.x - m);
      }
      let v = u.fBn * t / f32(u.N);
      st2(u.oBn, c, vec2<f32>(m, v));
      let mAbs = s0 + m;
      if (u.movingAverage != 0u) {
        rm[c] = u.momentum * rm[c] + (1.0 - u.momentum) * mAbs;
        rv[c] = u.momentum * rv[c] + (1.0 - u.momentum) * v;
      } else {
        rm[c] = rm[c] + mAbs;
        rv[c] = rv[c] + mAbs * mAbs + v;
      }
    } else {
      st2(u.oBn, c, vec2<f32>(rm[c] - s0, rv[c]));
    }
  }`
      : `
  for (var c = lid; c < u.C; c = c + ${WG}u) { st2(u.oBn, c, vec2<f32>(0.0)); }`;
    const source = `${head(bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let NC = u.N * u.C;
  let s0 = stats[0].x;
  if (lid == 0u) { ws[u.oS0] = s0; }
  for (var i = lid; i < NC; i = i + ${WG}u) {
    let st = stats[i];
    st2(u.oIn, i, vec2<f32>((st.x - s0) + st.y, st.w * u.fIn));
  }
  storageBarrier();
  workgroupBarrier();
  for (var n = lid; n < u.N; n = n + ${WG}u) {
    var m = 0.0;
    for (var c = 0u; c < u.C; c = c + 1u) { m = m + ld2(u.oIn, n * u.C + c).x; }
    m = m / f32(u.C);
    var t = 0.0;
    for (var c = 0u; c < u.C; c = c + 1u) {
      let p = ld2(u.oIn, n * u.C + c);
      t = t + p.y + (p.x - m) * (p.x - m);
    }
    st2(u.oLn, n, vec2<f32>(m, u.fLn * t / f32(u.C)));
  }
${bnPhase}
  storageBarrier();
  workgroupBarrier();
  var a = array<f32, 3>(mw[0], mw[min(1u, u.ncomp - 1u)], mw[min(2u, u.ncomp - 1u)]);
  var b = array<f32, 3>(vw[0], vw[min(1u, u.ncomp - 1u)], vw[min(2u, u.ncomp - 1u)]);
  softmax3(&a);
  softmax3(&b);
  for (var i = lid; i < NC; i = i + ${WG}u) {
    let n = i / u.C;
    let c = i % u.C;
    let mu = comp(&a, u.iIn) * ld2(u.oIn, i).x + comp(&a, u.iLn) * ld2(u.oLn, n).x + comp(&a, u.iBn) * ld2(u.oBn, c).x;
    let v = comp(&b, u.iIn) * ld2(u.oIn, i).y + comp(&b, u.iLn) * ld2(u.oLn, n).y + comp(&b, u.iBn) * ld2(u.oBn, c).y;
    mixed[i] = vec4<f32>(s0, mu, 1.0 / sqrt(v + u.eps), v);
  }
}
`;
    return { bindings, source, uniforms: SN_U };
  });
}

export function switchBackwardProgram(): Program {
  return cachedProgram("switchBackward", [], () => {
    const bindings = [
      storage("mixed", "vec4<f32>"), storage("sums", "vec2<f32>"), storage("w", "f32"), storage("mw", "f32"), storage("vw", "f32"),
      storage("ws", "f32", "read_write"), storage("gmw", "f32", "read_write"), storage("gvw", "f32", "read_write"),
    ];
    const source = `${head(bindings)}
${workgroupSum("wsum3", "vec3<f32>", "shared")}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
${storeBuiltins("shared")}
  let NC = u.N * u.C;
  var a = array<f32, 3>(mw[0], mw[min(1u, u.ncomp - 1u)], mw[min(2u, u.ncomp - 1u)]);
  var b = array<f32, 3>(vw[0], vw[min(1u, u.ncomp - 1u)], vw[min(2u, u.ncomp - 1u)]);
  softmax3(&a);
  softmax3(&b);
  var dA = vec3<f32>(0.0);
  var dB = vec3<f32>(0.0);
  for (var i = lid; i < NC; i = i + ${WG}u) {
    let n = i / u.C;
    let c = i % u.C;
    let r = mixed[i].z;
    var p = vec2<f32>(0.0);
    for (var j = 0u; j < u.J; j = j + 1u) { p = p + sums[i * u.J + j]; }
    let gMu = -r * w[c] * p.x;
    let gV = -0.5 * r * r * (w[c] * r * p.y);
    st2(u.oG, i, vec2<f32>(gMu, gV));
    dA = dA + gMu * vec3<f32>(ld2(u.oIn, i).x, ld2(u.oLn, n).x, ld2(u.oBn, c).x);
    dB = dB + gV * vec3<f32>(ld2(u.oIn, i).y, ld2(u.oLn, n).y, ld2(u.oBn, c).y);
  }
  let tA = wsum3(dA);
  let tB = wsum3(dB);
  if (lid == 0u) {
    // d logit_j += p_j (dp_j - Σ_k p_k dp_k), dp in component order
    var da = array<f32, 3>(0.0, 0.0, 0.0);
    var db = array<f32, 3>(0.0, 0.0, 0.0);
    if (u.iIn < u.ncomp) { da[u.iIn] = tA.x; db[u.iIn] = tB.x; }
    if (u.iLn < u.ncomp) { da[u.iLn] = tA.y; db[u.iLn] = tB.y; }
    if (u.iBn < u.ncomp) { da[u.iBn] = tA.z; db[u.iBn] = tB.z; }
    var sa = 0.0;
    var sb = 0.0;
    for (var j = 0u; j < u.ncomp; j = j + 1u) { sa = sa + a[j] * da[j]; sb = sb + b[j] * db[j]; }
    for (var j = 0u; j < u.ncomp; j = j + 1u) {
      gmw[j] = gmw[j] + a[j] * (da[j] - sa);
      gvw[j] = gvw[j] + b[j] * (db[j] - sb);
    }
  }
  storageBarrier();
  workgroupBarrier();
  for (var n = lid; n < u.N; n = n + ${WG}u) {
    var s = vec2<f32>(0.0);
    for (var c = 0u; c < u.C; c = c + 1u) { s = s + ld2(u.oG, n * u.C + c); }
    st2(u.oN, n, s);
  }
  for (var c = lid; c < u.C; c = c + ${WG}u) {
    var s = vec2<f32>(0.0);
    for (var n = 0u; n < u.N; n = n + 1u) { s = s + ld2(u.oG, n * u.C + c); }
    st2(u.oC, c, s);
  }
  storageBarrier();
  workgroupBarrier();
  let fromBatch = u.bnFromBatch != 0u;
  let aIn = comp(&a, u.iIn);
  let aLn = comp(&a, u.iLn);
  let aBn = select(0.0, comp(&a, u.iBn), fromBatch);
  let bIn = comp(&b, u.iIn);
  let bLn = comp(&b, u.iLn);
  let bBn = select(0.0, comp(&b, u.iBn), fromBatch);
  let fC = f32(u.C);
  let fN = f32(u.N);
  let fS = f32(u.S);
  for (var i = lid; i < NC; i = i + ${WG}u) {
    let n = i / u.C;
    let c = i % u.C;
    let g = ld2(u.oG, i);
    let gMuLn = aLn * ld2(u.oN, n).x;
    let gVLn = bLn * ld2(u.oN, n).y;
    let gMuBn = aBn * ld2(u.oC, c).x;
    let gVBn = bBn * ld2(u.oC, c).y;
    let mi = ld2(u.oIn, i).x;
    let dMuIn = aIn * g.x + gMuLn / fC + gVLn * u.fLn * 2.0 * (mi - ld2(u.oLn, n).x) / fC + gMuBn / fN + gVBn * u.fBn * 2.0 * (mi - ld2(u.oBn, c).x) / fN;
    let dVIn = (bIn * g.y + gVLn * u.fLn / fC + gVBn * u.fBn / fN) * u.fIn;
    let o = u.oCoef + 4u * i;
    ws[o] = mixed[i].z * w[c];
    ws[o + 1u] = 2.0 * dVIn / fS;
    ws[o + 2u] = mi;
    ws[o + 3u] = dMuIn / fS;
  }
}
`;
    return { bindings, source, uniforms: SN_U };
  });
}

export function switchDxProgram(o: { vec: VecWidth }): Program {
  return cachedProgram("switchDx", [o.vec], () => {
    const T = vecType(o.vec);
    const bindings = [storage("x", T), storage("dy", T), storage("ws", "f32"), storage("dx", T, "read_write")];
    const source = `${SN_U.wgsl}${storageDecls(bindings)}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let i = ${WG_INDEX} * ${WG}u + lid;
  if (i >= u.E) { return; }
  let o = u.oCoef + 4u * (i / u.Sv);
  let cf = vec4<f32>(ws[o], ws[o + 1u], ws[o + 2u], ws[o + 3u]);
  // mu_in relative to s0 (see switchMix): (x - s0) - (mu_in - s0)
  dx[i] = cf.x * dy[i] + cf.y * ((x[i] - ${T}(ws[u.oS0])) - ${T}(cf.z)) + ${T}(cf.w);
}
`;
    return { bindings, source, uniforms: SN_U };
  });
}
