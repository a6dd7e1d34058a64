/**
 * WGSL kernels of Cosine Norm's convolution (src/kernels/contract/ops.ts, cosineConv2d and its
 * backward, has the math; src/kernels/ts/cosine.ts the host version by im2col). Direct, without an
 * im2col matrix: with c_p the receptive field of output position p (zero padding included),
 * d_p = max(‖c_p‖, eps),
 *
 *   patchNorm          norms[n,p] = ‖c_p‖ = √(conv2d(x ⊙ x, ones)[n,p])
 *   cosineConvForward  y[n,o,p] = conv2d(x, Ŵ)[n,o,p] / d_p
 *   cosineConvGrads    da[n,o,p] = dy / d_p;   g[n,p] = −(Σ_o dy·y) / (d_p ‖c_p‖)  where ‖c_p‖ ≥ eps, ‖c_p‖ > 0, else 0
 *   cosineConvInput    dx = conv_dx(da, Ŵ) + x ⊙ conv_dx(g, ones)                 (overwrites)
 *   and dŴ += conv_dW(da, x): Conv2d's weight-gradient kernel (./ops.ts) with da for dy.
 *
 * One thread per output element; x [N, C, H, W], Ŵ [O, C, kh, kw], y, dy, da [N, O, Ho, Wo],
 * norms and g [N, Ho, Wo]; float32.
 */
import type { Program } from "../device.js";
import { storage, uniformBlock } from "../wgsl.js";
import { convInputGather, overWindow, perElement } from "./ops.js";

export const COS_CONV_U = uniformBlock({
  count: "u32", N: "u32", C: "u32", H: "u32", W: "u32", O: "u32", kh: "u32", kw: "u32", sh: "u32", sw: "u32", ph: "u32", pw: "u32", Ho: "u32", Wo: "u32",
  eps: "f32",
});

/** norms[n,p] = ‖c_p‖ (one thread per (n, p)) */
export function patchNormProgram(): Program {
  return perElement("cosinePatchNorm", [], COS_CONV_U, [storage("x", "f32"), storage("norms", "f32", "read_write")], `
  let P = u.Ho * u.Wo;
  let ow = i % u.Wo;
  let oh = (i / u.Wo) % u.Ho;
  let n = i / P;
  var s = 0.0;
${overWindow("let t = x[xi]; s = s + t * t;")}
  norms[i] = sqrt(s);`);
}

/** y[n,o,p] = Σ_{c,i,j} Ŵ[o,c,i,j] x[n,c,oh·sh−ph+i,ow·sw−pw+j] / max(norms[n,p], eps) */
export function cosineConvForwardProgram(): Program {
  const bindings = [storage("x", "f32"), storage("w", "f32"), storage("norms", "f32"), storage("y", "f32", "read_write")];
  return perElement("cosineConvForward", [], COS_CONV_U, bindings, `
  let P = u.Ho * u.Wo;
  let ow = i % u.Wo;
  let oh = (i / u.Wo) % u.Ho;
  let oc = (i / P) % u.O;
  let n = i / (P * u.O);
  var s = 0.0;
${overWindow("s = s + w[((oc * u.C + c) * u.kh + ki) * u.kw + kj] * x[xi];")}
  let nrm = norms[n * P + oh * u.Wo + ow];
  y[i] = s / select(u.eps, nrm, nrm > u.eps);`);
}

/** da[n,o,p] = dy / d_p; g[n,p] = −(Σ_o dy·y) / (d_p ‖c_p‖) where the norm term applies, else 0 (one thread per (n, p)) */
export function cosineConvGradsProgram(): Program {
  const bindings = [storage("dy", "f32"), storage("y", "f32"), storage("norms", "f32"), storage("da", "f32", "read_write"), storage("g", "f32", "read_write")];
  return perElement("cosineConvGrads", [], COS_CONV_U, bindings, `
  let P = u.Ho * u.Wo;
  let p = i % P;
  let n = i / P;
  let nrm = norms[i];
  let d = select(u.eps, nrm, nrm > u.eps);
  var t = 0.0;
  for (var oc = 0u; oc < u.O; oc = oc + 1u) {
    let at = (n * u.O + oc) * P + p;
    let dyv = dy[at];
    t = t + dyv * y[at];
    da[at] = dyv / d;
  }
  g[i] = select(0.0, -t / (d * nrm), nrm >= u.eps && nrm > 0.0);`);
}

/** dx[n,c,h,w] = Σ over the outputs (oh, ow) whose window covers (h, w): Σ_o Ŵ[o,c,i,j] da[n,o,oh,ow] + x[n,c,h,w] g[n,oh,ow] (overwrites) */
export function cosineConvInputGradProgram(): Program {
  const bindings = [storage("da", "f32"), storage("g", "f32"), storage("w", "f32"), storage("x", "f32"), storage("dx", "f32", "read_write")];
  return perElement("cosineConvInputGrad", [], COS_CONV_U, bindings, `
  var gs = 0.0;
${convInputGather("da", "gs = gs + g[n * P + p];")}
  dx[i] = s + x[i] * gs;`);
}
