/**
 * Per-vector L2 kernels: Weight Norm's weight computation and Cosine Norm's normalisation
 * (src/kernels/ts/weight_norm.ts and src/kernels/ts/cosine.ts have the math). One workgroup per vector; element e
 * of vector r is at r * vs + e * es (rows of [R, len]: vs = len, es = 1; columns of [len, R]:
 * vs = 1, es = R).
 *
 *   weightNormForward   n_r = ‖v_r‖, W_r = v_r * (g_r / n_r)              (PyTorch's order)
 *   weightNormBackward  dg_r += dW_r · v_r / n_r,  dv_r += (g_r / n_r)(dW_r - (dW_r · v̂_r) v̂_r)
 *   l2Forward           n_r = ‖x_r‖, u_r = x_r / max(n_r, eps)             (F.normalize)
 *   l2Backward          dx = (du - u (u · du)) / n  where n >= eps > 0, else du / eps  (= or +=)
 */
import type { Program } from "../device.js";
import type { ReduceMode } from "../wgsl.js";
import { WG_INDEX, WORKGROUP_SIZE as WG, builtinPrivates, enables, entryParams, storage, storageDecls, storeBuiltins, uniformBlock, workgroupSum } from "../wgsl.js";
import { cachedProgram } from "./common.js";

export const VEC_U = uniformBlock({ R: "u32", len: "u32", vs: "u32", es: "u32", eps: "f32" });

function head(mode: ReduceMode, bindings: ReturnType<typeof storage>[]): string {
  return enables(mode) + VEC_U.wgsl + storageDecls(bindings) + builtinPrivates(mode) + "fn at(r: u32, e: u32) -> u32 { return r * u.vs + e * u.es; }\n" + workgroupSum("wsum", "f32", mode);
}

const body = (mode: ReduceMode, inner: string) => `
@compute @workgroup_size(${WG})
fn main(${entryParams(mode)}) {
${storeBuiltins(mode)}
  let r = ${WG_INDEX};
  if (r >= u.R) { return; }
${inner}
}
`;

export function weightNormForwardProgram(mode: ReduceMode): Program {
  return cachedProgram("weightNormForward", [mode], () => {
    const bindings = [storage("g", "f32"), storage("v", "f32"), storage("wout", "f32", "read_write"), storage("nrm", "vec2<f32>", "read_write")];
    const source = head(mode, bindings) + body(mode, `
  var s = 0.0;
  for (var e = local_id; e < u.len; e = e + ${WG}u) { let t = v[at(r, e)]; s = s + t * t; }
  let n = sqrt(wsum(s));
  let k = g[r] / n;
  if (local_id == 0u) { nrm[r] = vec2<f32>(n, k); }
  for (var e = local_id; e < u.len; e = e + ${WG}u) { let i = at(r, e); wout[i] = v[i] * k; }`);
    return { bindings, source, uniforms: VEC_U };
  });
}

export function weightNormBackwardProgram(mode: ReduceMode): Program {
  return cachedProgram("weightNormBackward", [mode], () => {
    const bindings = [storage("v", "f32"), storage("dW", "f32"), storage("nrm", "vec2<f32>"), storage("dg", "f32", "read_write"), storage("dv", "f32", "read_write")];
    const source = head(mode, bindings) + body(mode, `
  let nk = nrm[r];
  var s = 0.0;
  for (var e = local_id; e < u.len; e = e + ${WG}u) { let i = at(r, e); s = s + dW[i] * (v[i] / nk.x); }
  let d = wsum(s);
  if (local_id == 0u) { dg[r] = dg[r] + d; }
  for (var e = local_id; e < u.len; e = e + ${WG}u) { let i = at(r, e); dv[i] = dv[i] + nk.y * (dW[i] - d * (v[i] / nk.x)); }`);
    return { bindings, source, uniforms: VEC_U };
  });
}

export function l2ForwardProgram(mode: ReduceMode): Program {
  return cachedProgram("l2Forward", [mode], () => {
    const bindings = [storage("x", "f32"), storage("uo", "f32", "read_write"), storage("norms", "f32", "read_write")];
    const source = head(mode, bindings) + body(mode, `
  var s = 0.0;
  for (var e = local_id; e < u.len; e = e + ${WG}u) { let t = x[at(r, e)]; s = s + t * t; }
  let n = sqrt(wsum(s));
  let d = select(u.eps, n, n > u.eps);
  if (local_id == 0u) { norms[r] = n; }
  for (var e = local_id; e < u.len; e = e + ${WG}u) { let i = at(r, e); uo[i] = x[i] / d; }`);
    return { bindings, source, uniforms: VEC_U };
  });
}

export function l2BackwardProgram(mode: ReduceMode, accumulate: boolean): Program {
  return cachedProgram("l2Backward", [mode, accumulate], () => {
    const bindings = [storage("uu", "f32"), storage("du", "f32"), storage("norms", "f32"), storage("dx", "f32", "read_write")];
    const source = head(mode, bindings) + body(mode, `
  let n = norms[r];
  var s = 0.0;
  for (var e = local_id; e < u.len; e = e + ${WG}u) { let i = at(r, e); s = s + uu[i] * du[i]; }
  let dotp = wsum(s);
  let project = n >= u.eps && n > 0.0;
  let dt = select(0.0, dotp, project);
  let d = select(u.eps, n, project);
  for (var e = local_id; e < u.len; e = e + ${WG}u) {
    let i = at(r, e);
    let t = (du[i] - dt * uu[i]) / d;
    dx[i] = ${accumulate ? "dx[i] + t" : "t"};
  }`);
    return { bindings, source, uniforms: VEC_U };
  });
}
