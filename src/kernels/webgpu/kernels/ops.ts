/**
 * WGSL kernels of the training stack (src/kernels/contract/ops.ts has the operations): the matrix
 * product of Linear, direct convolution, ReLU, pooling, softmax cross-entropy and the optimisers.
 * Every kernel runs one thread per output element (i < u.count), except the matrix product (16x16
 * tiles in workgroup memory) and the two reductions (a workgroup each). float32 storage and
 * arithmetic; accumulations of the gradients are `+=` into the destination, as on the host.
 */
import type { Program } from "../device.js";
import { WG_INDEX, WORKGROUP_SIZE as WG, entryParams, storage, storageDecls, uniformBlock, workgroupSum, builtinPrivates, storeBuiltins } from "../wgsl.js";
import type { StorageBinding, UniformFields } from "../wgsl.js";
import { cachedProgram } from "./common.js";

/** One thread per output element: `body` sees `i` (the element), returns early past u.count. */
export function perElement<F extends UniformFields>(name: string, key: readonly unknown[], uniforms: ReturnType<typeof uniformBlock<F>>, bindings: StorageBinding[], body: string, helpers = ""): Program {
  return cachedProgram(name, key, () => ({
    bindings,
    uniforms: uniforms as never,
    source: `${uniforms.wgsl}${storageDecls(bindings)}${helpers}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let i = ${WG_INDEX} * ${WG}u + lid;
  if (i >= u.count) { return; }
${body}
}
`,
  }));
}

// ---------------------------------------------------------------------------------------------
// Matrix product: C[m, n] = beta * C[m, n] + Σ_k A(m, k) B(k, n) (+ bias[n]), A(m, k) = a[m*sam + k*sak],
// B(k, n) = b[k*sbk + n*sbn]. 16x16 output tiles, 16-deep slices of A and B staged in workgroup memory.

export const GEMM_U = uniformBlock({ M: "u32", N: "u32", K: "u32", sam: "u32", sak: "u32", sbk: "u32", sbn: "u32", tilesN: "u32", beta: "f32" });
const T = 16;

export function gemmProgram(o: { bias: boolean }): Program {
  return cachedProgram("gemm", [o.bias], () => {
    const bindings = [storage("a", "f32"), storage("b", "f32"), storage("c", "f32", "read_write"), ...(o.bias ? [storage("bias", "f32")] : [])];
    const source = `${GEMM_U.wgsl}${storageDecls(bindings)}
var<workgroup> ta: array<f32, ${T * T}>;
var<workgroup> tb: array<f32, ${T * T}>;
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
  let tile = ${WG_INDEX};
  let tm = tile / u.tilesN;
  let tn = tile % u.tilesN;
  let r = lid / ${T}u;
  let q = lid % ${T}u;
  let m = tm * ${T}u + r;
  let n = tn * ${T}u + q;
  var acc = 0.0;
  for (var k0 = 0u; k0 < u.K; k0 = k0 + ${T}u) {
    // stage A(tm*16 + r, k0 + q) and B(k0 + r, tn*16 + q)
    let ka = k0 + q;
    ta[lid] = select(0.0, a[min(m, u.M - 1u) * u.sam + min(ka, u.K - 1u) * u.sak], m < u.M && ka < u.K);
    let kb = k0 + r;
    tb[lid] = select(0.0, b[min(kb, u.K - 1u) * u.sbk + min(n, u.N - 1u) * u.sbn], kb < u.K && n < u.N);
    workgroupBarrier();
    for (var kk = 0u; kk < ${T}u; kk = kk + 1u) { acc = acc + ta[r * ${T}u + kk] * tb[kk * ${T}u + q]; }
    workgroupBarrier();
  }
  if (m < u.M && n < u.N) {
    let at = m * u.N + n;
    ${o.bias ? "acc = acc + bias[n];" : ""}
    c[at] = select(acc, u.beta * c[at] + acc, u.beta != 0.0);
  }
}
`;
    return { bindings, source, uniforms: GEMM_U as never };
  });
}

/**
 * The same product, one thread per output and no workgroup memory: for CPU Vulkan drivers
 * (SwiftShader), where a workgroup barrier costs more than the loads it saves.
 */
export const GEMM_FLAT_U = uniformBlock({ count: "u32", M: "u32", N: "u32", K: "u32", sam: "u32", sak: "u32", sbk: "u32", sbn: "u32", beta: "f32" });
export function gemmFlatProgram(o: { bias: boolean }): Program {
  const bindings = [storage("a", "f32"), storage("b", "f32"), storage("c", "f32", "read_write"), ...(o.bias ? [storage("bias", "f32")] : [])];
  return perElement("gemmFlat", [o.bias], GEMM_FLAT_U, bindings, `
  let m = i / u.N;
  let n = i % u.N;
  var acc = ${o.bias ? "bias[n]" : "0.0"};
  for (var k = 0u; k < u.K; k = k + 1u) { acc = acc + a[m * u.sam + k * u.sak] * b[k * u.sbk + n * u.sbn]; }
  c[i] = select(acc, u.beta * c[i] + acc, u.beta != 0.0);`);
}

/** dst[n] += Σ_r src[r * N + n] (the bias gradient of Linear): one thread per column. */
export const COLSUM_U = uniformBlock({ count: "u32", rows: "u32" });
export function columnSumProgram(): Program {
  return perElement("colsum", [], COLSUM_U, [storage("src", "f32"), storage("dst", "f32", "read_write")], `
  var s = 0.0;
  for (var r = 0u; r < u.rows; r = r + 1u) { s = s + src[r * u.count + i]; }
  dst[i] = dst[i] + s;`);
}

// ---------------------------------------------------------------------------------------------
// Convolution, direct: x [N, C, H, W], w [O, C, kh, kw], y [N, O, Ho, Wo], zero padding (ph, pw), stride (sh, sw).

export const CONV_U = uniformBlock({
  count: "u32", N: "u32", C: "u32", H: "u32", W: "u32", O: "u32", kh: "u32", kw: "u32", sh: "u32", sw: "u32", ph: "u32", pw: "u32", Ho: "u32", Wo: "u32",
});

/**
 * The in-bounds window of output (oh, ow), for the kernels over CONV_U-shaped uniforms (n, oh, ow in
 * scope): `body` sees c, ki, kj and xi, the flat index of x[n, c, oh·sh−ph+ki, ow·sw−pw+kj].
 */
export function overWindow(body: string): string {
  return `  for (var c = 0u; c < u.C; c = c + 1u) {
    for (var ki = 0u; ki < u.kh; ki = ki + 1u) {
      let hh = i32(oh * u.sh + ki) - i32(u.ph);
      if (hh < 0 || hh >= i32(u.H)) { continue; }
      for (var kj = 0u; kj < u.kw; kj = kj + 1u) {
        let ww = i32(ow * u.sw + kj) - i32(u.pw);
        if (ww < 0 || ww >= i32(u.W)) { continue; }
        let xi = ((n * u.C + c) * u.H + u32(hh)) * u.W + u32(ww);
        ${body}
      }
    }
  }`;
}

/**
 * The gather of a convolution's input gradient, conv_dx(g, w), for input element i = (n, c, xh, xw):
 *   s = Σ over the taps (ki, kj) and outputs (oh, ow) with oh·sh − ph + ki = xh, ow·sw − pw + kj = xw
 *       of Σ_o w[o,c,ki,kj] grad[n,o,oh,ow]
 * declaring xw, xh, c, n, P = Ho·Wo and `var s`; `perOutput` runs first at each such (oh, ow), with
 * p = oh·Wo + ow.
 */
export function convInputGather(grad: string, perOutput = ""): string {
  return `  let xw = i % u.W;
  let xh = (i / u.W) % u.H;
  let c = (i / (u.W * u.H)) % u.C;
  let n = i / (u.W * u.H * u.C);
  let P = u.Ho * u.Wo;
  var s = 0.0;
  for (var ki = 0u; ki < u.kh; ki = ki + 1u) {
    let th = i32(xh + u.ph) - i32(ki);
    if (th < 0 || th % i32(u.sh) != 0) { continue; }
    let oh = u32(th) / u.sh;
    if (oh >= u.Ho) { continue; }
    for (var kj = 0u; kj < u.kw; kj = kj + 1u) {
      let tw = i32(xw + u.pw) - i32(kj);
      if (tw < 0 || tw % i32(u.sw) != 0) { continue; }
      let ow = u32(tw) / u.sw;
      if (ow >= u.Wo) { continue; }
      let p = oh * u.Wo + ow;
      ${perOutput}
      for (var oc = 0u; oc < u.O; oc = oc + 1u) {
        s = s + w[((oc * u.C + c) * u.kh + ki) * u.kw + kj] * ${grad}[(n * u.O + oc) * P + p];
      }
    }
  }`;
}

/** y[n,o,oh,ow] = b[o] + Σ_{c,i,j} w[o,c,i,j] x[n,c,oh·sh−ph+i,ow·sw−pw+j] */
export function convForwardProgram(o: { bias: boolean }): Program {
  const bindings = [storage("x", "f32"), storage("w", "f32"), storage("y", "f32", "read_write"), ...(o.bias ? [storage("b", "f32")] : [])];
  return perElement("convForward", [o.bias], CONV_U, bindings, `
  let ow = i % u.Wo;
  let oh = (i / u.Wo) % u.Ho;
  let oc = (i / (u.Wo * u.Ho)) % u.O;
  let n = i / (u.Wo * u.Ho * u.O);
  var s = ${o.bias ? "b[oc]" : "0.0"};
${overWindow("s = s + w[((oc * u.C + c) * u.kh + ki) * u.kw + kj] * x[xi];")}
  y[i] = s;`);
}

/** dx[n,c,h,w] = Σ over the outputs whose window covers (h, w): w[o,c,i,j] dy[n,o,oh,ow] (overwrites). */
export function convInputGradProgram(): Program {
  const bindings = [storage("dy", "f32"), storage("w", "f32"), storage("dx", "f32", "read_write")];
  return perElement("convInputGrad", [], CONV_U, bindings, `
${convInputGather("dy")}
  dx[i] = s;`);
}

/** dw[o,c,i,j] += Σ_{n,oh,ow} dy[n,o,oh,ow] x[n,c,oh·sh−ph+i,ow·sw−pw+j] */
export function convWeightGradProgram(): Program {
  const bindings = [storage("dy", "f32"), storage("x", "f32"), storage("dw", "f32", "read_write")];
  return perElement("convWeightGrad", [], CONV_U, bindings, `
  let kj = i % u.kw;
  let ki = (i / u.kw) % u.kh;
  let c = (i / (u.kw * u.kh)) % u.C;
  let oc = i / (u.kw * u.kh * u.C);
  var s = 0.0;
  for (var n = 0u; n < u.N; n = n + 1u) {
    for (var oh = 0u; oh < u.Ho; oh = oh + 1u) {
      let hh = i32(oh * u.sh + ki) - i32(u.ph);
      if (hh < 0 || hh >= i32(u.H)) { continue; }
      for (var ow = 0u; ow < u.Wo; ow = ow + 1u) {
        let ww = i32(ow * u.sw + kj) - i32(u.pw);
        if (ww < 0 || ww >= i32(u.W)) { continue; }
        s = s + dy[((n * u.O + oc) * u.Ho + oh) * u.Wo + ow] * x[((n * u.C + c) * u.H + u32(hh)) * u.W + u32(ww)];
      }
    }
  }
  dw[i] = dw[i] + s;`);
}

/** db[o] += Σ_{n,p} dy[n,o,p] */
export function convBiasGradProgram(): Program {
  return perElement("convBiasGrad", [], CONV_U, [storage("dy", "f32"), storage("db", "f32", "read_write")], `
  let P = u.Ho * u.Wo;
  var s = 0.0;
  for (var n = 0u; n < u.N; n = n + 1u) { for (var p = 0u; p < P; p = p + 1u) { s = s + dy[(n * u.O + i) * P + p]; } }
  db[i] = db[i] + s;`);
}

// ---------------------------------------------------------------------------------------------
// Elementwise

export const EW_U = uniformBlock({ count: "u32" });

/** y = max(x, 0) (NaN propagates, as torch.relu). */
export function reluForwardProgram(): Program {
  return perElement("reluForward", [], EW_U, [storage("x", "f32"), storage("y", "f32", "read_write")], `
  let v = x[i];
  y[i] = select(v, 0.0, v < 0.0);`);
}
/** dx = dy where x > 0, else 0 */
export function reluBackwardProgram(): Program {
  return perElement("reluBackward", [], EW_U, [storage("dy", "f32"), storage("x", "f32"), storage("dx", "f32", "read_write")], `
  dx[i] = select(0.0, dy[i], x[i] > 0.0);`);
}

// ---------------------------------------------------------------------------------------------
// Pooling over planes [Q, H, W] (Q = N·C), windows kh×kw, stride sh×sw, no padding.

export const POOL_U = uniformBlock({ count: "u32", H: "u32", W: "u32", kh: "u32", kw: "u32", sh: "u32", sw: "u32", Ho: "u32", Wo: "u32" });

/**
 * The gather of a pooling backward: for input element i = (q, xh, xw), `body` runs once per output o
 * whose window covers it (oh·sh ≤ xh < oh·sh + kh, likewise for w), summing into `s`.
 */
function overWindowsCovering(body: string): string {
  return `  let xw = i % u.W;
  let xh = (i / u.W) % u.H;
  let q = i / (u.W * u.H);
  var s = 0.0;
  let oh0 = select(0u, (xh - u.kh + 1u + u.sh - 1u) / u.sh, xh + 1u > u.kh);
  let ow0 = select(0u, (xw - u.kw + 1u + u.sw - 1u) / u.sw, xw + 1u > u.kw);
  for (var oh = oh0; oh < u.Ho && oh * u.sh <= xh; oh = oh + 1u) {
    for (var ow = ow0; ow < u.Wo && ow * u.sw <= xw; ow = ow + 1u) {
      let o = (q * u.Ho + oh) * u.Wo + ow;
      ${body}
    }
  }`;
}

/** y = the window's max; arg = the flat input index of its first maximum (NaN wins, as on the host). */
export function maxPoolForwardProgram(): Program {
  const bindings = [storage("x", "f32"), storage("y", "f32", "read_write"), storage("arg", "u32", "read_write")];
  return perElement("maxPoolForward", [], POOL_U, bindings, `
  let ow = i % u.Wo;
  let oh = (i / u.Wo) % u.Ho;
  let q = i / (u.Wo * u.Ho);
  var best = q * u.H * u.W + (oh * u.sh) * u.W + ow * u.sw;
  var m = x[best];
  for (var ki = 0u; ki < u.kh; ki = ki + 1u) {
    for (var kj = 0u; kj < u.kw; kj = kj + 1u) {
      let at = q * u.H * u.W + (oh * u.sh + ki) * u.W + ow * u.sw + kj;
      let v = x[at];
      if (v > m || (v != v && m == m)) { m = v; best = at; }
    }
  }
  y[i] = m;
  arg[i] = best;`);
}
/** dx[e] = Σ of dy over the outputs whose argmax is e (a gather over the windows covering e; overwrites). */
export function maxPoolBackwardProgram(): Program {
  const bindings = [storage("dy", "f32"), storage("arg", "u32"), storage("dx", "f32", "read_write")];
  return perElement("maxPoolBackward", [], POOL_U, bindings, `
${overWindowsCovering("if (arg[o] == i) { s = s + dy[o]; }")}
  dx[i] = s;`);
}
/** y = the window's mean */
export function avgPoolForwardProgram(): Program {
  return perElement("avgPoolForward", [], POOL_U, [storage("x", "f32"), storage("y", "f32", "read_write")], `
  let ow = i % u.Wo;
  let oh = (i / u.Wo) % u.Ho;
  let q = i / (u.Wo * u.Ho);
  var s = 0.0;
  for (var ki = 0u; ki < u.kh; ki = ki + 1u) {
    for (var kj = 0u; kj < u.kw; kj = kj + 1u) { s = s + x[q * u.H * u.W + (oh * u.sh + ki) * u.W + ow * u.sw + kj]; }
  }
  y[i] = s / f32(u.kh * u.kw);`);
}
/** dx[e] = Σ over the windows covering e of dy / (kh·kw) (overwrites) */
export function avgPoolBackwardProgram(): Program {
  return perElement("avgPoolBackward", [], POOL_U, [storage("dy", "f32"), storage("dx", "f32", "read_write")], `
${overWindowsCovering("s = s + dy[o];")}
  dx[i] = s / f32(u.kh * u.kw);`);
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy (mean over N): one thread per row writes dz and its loss; one workgroup sums.

export const CE_U = uniformBlock({ count: "u32", K: "u32" });

/** lse = max + log Σ exp(z − max); rowLoss[n] = lse − z[y_n]; dz = (softmax − onehot) / N */
export function crossEntropyRowsProgram(): Program {
  const bindings = [storage("z", "f32"), storage("labels", "f32"), storage("dz", "f32", "read_write"), storage("rows", "f32", "read_write")];
  return perElement("crossEntropyRows", [], CE_U, bindings, `
  let o = i * u.K;
  var m = z[o];
  for (var k = 1u; k < u.K; k = k + 1u) { m = max(m, z[o + k]); }
  var s = 0.0;
  for (var k = 0u; k < u.K; k = k + 1u) { s = s + exp(z[o + k] - m); }
  let lse = m + log(s);
  let y = u32(labels[i]);
  rows[i] = lse - z[o + y];
  let invN = 1.0 / f32(u.count);
  for (var k = 0u; k < u.K; k = k + 1u) { dz[o + k] = (exp(z[o + k] - lse) - select(0.0, 1.0, k == y)) * invN; }`);
}
/** loss[0] = (1/N) Σ_n rowLoss[n] — one workgroup */
export function meanProgram(): Program {
  return cachedProgram("mean", [], () => {
    const bindings = [storage("src", "f32"), storage("dst", "f32", "read_write")];
    const source = `${EW_U.wgsl}${storageDecls(bindings)}${builtinPrivates("shared")}${workgroupSum("wsum", "f32", "shared")}
@compute @workgroup_size(${WG})
fn main(${entryParams("shared")}) {
${storeBuiltins("shared")}
  var s = 0.0;
  for (var i = lid; i < u.count; i = i + ${WG}u) { s = s + src[i]; }
  let t = wsum(s);
  if (lid == 0u) { dst[0] = t / f32(u.count); }
}
`;
    return { bindings, source, uniforms: EW_U as never };
  });
}

// ---------------------------------------------------------------------------------------------
// Optimisers (torch.optim's update rules; see src/nn/optim.ts)

export const SGD_U = uniformBlock({ count: "u32", lr: "f32", mu: "f32", keep: "f32", wd: "f32", first: "u32", nesterov: "u32", momentum: "u32" });

/** g' = g + wd·p; b = g' (first) or μ·b + keep·g'; d = nesterov ? g' + μ·b : b (or g' without momentum); p −= lr·d */
export function sgdProgram(): Program {
  const bindings = [storage("p", "f32", "read_write"), storage("g", "f32"), storage("buf", "f32", "read_write")];
  return perElement("sgd", [], SGD_U, bindings, `
  let pi = p[i];
  let gi = g[i] + u.wd * pi;
  if (u.momentum == 0u) { p[i] = pi - u.lr * gi; return; }
  let bi = select(u.mu * buf[i] + u.keep * gi, gi, u.first != 0u);
  buf[i] = bi;
  p[i] = pi - u.lr * select(bi, gi + u.mu * bi, u.nesterov != 0u);`);
}

export const ADAM_U = uniformBlock({ count: "u32", lr: "f32", b1: "f32", b2: "f32", eps: "f32", wd: "f32", c1: "f32", c2: "f32", decay: "f32" });

/**
 * p ← (1 − decay)·p (AdamW; 0 for Adam); g' = g + wd·p; m = β1 m + (1−β1) g'; v = β2 v + (1−β2) g'²;
 * p −= (lr / c1) m / (√v / √c2 + eps), c = 1 − βᵗ
 */
export function adamProgram(): Program {
  const bindings = [storage("p", "f32", "read_write"), storage("g", "f32"), storage("m", "f32", "read_write"), storage("v", "f32", "read_write")];
  return perElement("adam", [], ADAM_U, bindings, `
  let pi = p[i] * (1.0 - u.decay);
  let gi = g[i] + u.wd * pi;
  let mi = u.b1 * m[i] + (1.0 - u.b1) * gi;
  let vi = u.b2 * v[i] + (1.0 - u.b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - (u.lr / u.c1) * mi / (sqrt(vi) / sqrt(u.c2) + u.eps);`);
}
