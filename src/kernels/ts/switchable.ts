/**
 * Switchable Normalization on host arrays (the TypeScript and WebAssembly kernel sets), written
 * over the host primitives (moments, normalizeForward, normalizeBackward, combine), so that each
 * set runs its own primitives under one blend. The layer (src/nn/switchable_norm.ts) has the
 * options and checks; the semantics are those of the official code (see there).
 *
 * Every statistic derives from the per-instance ones (x viewed as [N, C, S]), by the law of total
 * variance on CENTRED terms — never E[x^2] - mean^2, which cancels catastrophically for inputs
 * with a large offset (the reference code gives NaN for float64 inputs at 1e8):
 *   mu_in, var_in  per (n, c) over S (var_in *= f_in)
 *   mu_ln = mean_c mu_in     var_ln = f_ln * mean_c(var_in + (mu_in - mu_ln)^2)
 *   mu_bn = mean_n mu_in     var_bn = f_bn * mean_n(var_in + (mu_in - mu_bn)^2)
 *   mu = Σ_k softmax(mean_weight)_k mu_k     sigma^2 = Σ_k softmax(var_weight)_k sigma^2_k
 */
import type { Tensor } from "../../tensor.js";
import type { SwitchBackwardArgs, SwitchConfig, SwitchForwardArgs } from "../contract/kernels.js";
import type { HostPrimitives, HostSwitchArrays } from "../contract/host.js";
import { softmaxInto } from "../contract/math.js";
import type { HostScratch } from "./host_set.js";

/** Every statistic and gradient array of one (N, C), reused from call to call. */
export class HostSwitchWork implements HostSwitchArrays {
  readonly muIn: Float64Array; // per (n,c)
  readonly vIn: Float64Array;
  readonly mean: Float64Array; // mixed, per (n,c)
  readonly rstd: Float64Array;
  readonly vMix: Float64Array;
  readonly gMu: Float64Array; // backward, per (n,c)
  readonly gV: Float64Array;
  readonly cA: Float64Array; // dx = cA*dy + cB*(x - mu_in) + cD, per (n,c)
  readonly cB: Float64Array;
  readonly cD: Float64Array;
  readonly muLn: Float64Array; // per n
  readonly vLn: Float64Array;
  readonly sMuN: Float64Array;
  readonly sVN: Float64Array;
  readonly muBn: Float64Array; // per c
  readonly vBn: Float64Array;
  readonly sMuC: Float64Array;
  readonly sVC: Float64Array;
  /** softmax(mean_weight), softmax(var_weight) in component order, and their gradients. */
  readonly a = new Float64Array(3);
  readonly b = new Float64Array(3);
  readonly dA = new Float64Array(3);
  readonly dB = new Float64Array(3);
  /** The same weights by kind: (in, ln, bn), 0 for an absent component. */
  readonly aKind = new Float64Array(3);
  readonly bKind = new Float64Array(3);
  constructor(readonly N: number, readonly C: number) {
    const NC = N * C;
    const f = (n: number) => new Float64Array(n);
    this.muIn = f(NC); this.vIn = f(NC); this.mean = f(NC); this.rstd = f(NC); this.vMix = f(NC);
    this.gMu = f(NC); this.gV = f(NC); this.cA = f(NC); this.cB = f(NC); this.cD = f(NC);
    this.muLn = f(N); this.vLn = f(N); this.sMuN = f(N); this.sVN = f(N);
    this.muBn = f(C); this.vBn = f(C); this.sMuC = f(C); this.sVC = f(C);
  }
  /** Host memory: garbage collection frees it. */
  destroy(): void {}
}

/** d logit_j += p_j * (d p_j - Σ_k p_k d p_k) */
function softmaxBackwardAccumulate(grad: { [i: number]: number }, p: Float64Array, dp: Float64Array, n: number): void {
  let s = 0;
  for (let k = 0; k < n; k++) s += p[k]! * dp[k]!;
  for (let j = 0; j < n; j++) grad[j] = grad[j]! + p[j]! * (dp[j]! - s);
}

/** The weights `w` (component order) by kind into out = (in, ln, bn), 0 where absent. */
function byKind(out: Float64Array, w: Float64Array, cfg: SwitchConfig): Float64Array {
  const { index } = cfg;
  out[0] = index.in < 0 ? 0 : w[index.in]!;
  out[1] = index.ln < 0 ? 0 : w[index.ln]!;
  out[2] = index.bn < 0 ? 0 : w[index.bn]!;
  return out;
}

const hostData = (t: Tensor) => t.data;

/** Switchable Norm's forward on host arrays with the given primitives. */
export function switchForwardHost(prims: HostPrimitives, o: SwitchForwardArgs): void {
  const wk = o.work as HostSwitchWork;
  const { shape } = o.plan;
  const { N, C } = shape;
  const cfg = o.config;
  const { muIn, vIn, muLn, vLn, muBn, vBn, mean, rstd, vMix } = wk;
  const NC = N * C;
  prims.moments(o.x.data, shape, o.plan.cfg, muIn, vIn);
  for (let i = 0; i < NC; i++) vIn[i] *= cfg.fIn;

  // LN per n and (in training) BN per c, each from centred terms
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += muIn[n * C + c]!;
    m /= C;
    let t = 0;
    for (let c = 0; c < C; c++) {
      const d = muIn[n * C + c]! - m;
      t += vIn[n * C + c]! + d * d;
    }
    muLn[n] = m;
    vLn[n] = (cfg.fLn * t) / C;
  }
  const hasBn = cfg.index.bn >= 0;
  if (hasBn && o.bnFromBatch) {
    for (let c = 0; c < C; c++) {
      let m = 0;
      for (let n = 0; n < N; n++) m += muIn[n * C + c]!;
      m /= N;
      let t = 0;
      for (let n = 0; n < N; n++) {
        const d = muIn[n * C + c]! - m;
        t += vIn[n * C + c]! + d * d;
      }
      muBn[c] = m;
      vBn[c] = (cfg.fBn * t) / N;
    }
  } else if (hasBn) {
    const rm = hostData(o.runningMean!), rv = hostData(o.runningVar!);
    for (let c = 0; c < C; c++) {
      muBn[c] = rm[c]!;
      vBn[c] = rv[c]!;
    }
  }

  const a = softmaxInto(wk.a, o.meanWeight.data), b = softmaxInto(wk.b, o.varWeight.data);
  const ak = byKind(wk.aKind, a, cfg), bk = byKind(wk.bKind, b, cfg);
  const aIn = ak[0]!, aLn = ak[1]!, aBn = ak[2]!;
  const bIn = bk[0]!, bLn = bk[1]!, bBn = bk[2]!;
  const hasIn = cfg.index.in >= 0;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      let m = hasIn ? aIn * muIn[i]! : 0, v = hasIn ? bIn * vIn[i]! : 0;
      m += aLn * muLn[n]!;
      v += bLn * vLn[n]!;
      if (hasBn) {
        m += aBn * muBn[c]!;
        v += bBn * vBn[c]!;
      }
      mean[i] = m;
      vMix[i] = v;
      rstd[i] = 1 / Math.sqrt(v + cfg.eps);
    }
  }

  if (hasBn && o.bnFromBatch) {
    const rm = hostData(o.runningMean!), rv = hostData(o.runningVar!);
    const mo = cfg.momentum;
    for (let c = 0; c < C; c++) {
      if (cfg.movingAverage) {
        rm[c] = mo * rm[c]! + (1 - mo) * muBn[c]!;
        rv[c] = mo * rv[c]! + (1 - mo) * vBn[c]!;
      } else {
        rm[c] = rm[c]! + muBn[c]!;
        rv[c] = rv[c]! + muBn[c]! * muBn[c]! + vBn[c]!;
      }
    }
  }
  prims.normalizeForward(o.y.data, o.x.data, shape, o.plan.cfg, mean, rstd, "channel", o.weight.data, o.bias.data);
}

/**
 * Backward through the normalisation, the mixture and every statistic. With g = dy * weight,
 * per (n, c): dL/dmu = -rstd Σ_s g, dL/dvar = -rstd^2/2 Σ_s g * xhat; these flow to the
 * components (LN summed over c, BN over n, skipped for BN from running stats), to the softmax
 * logits (d logit_j = a_j (dA_j - Σ_k a_k dA_k)), and back to mu_in, var_in:
 *   dx = rstd * g + dmu_in / S + dvar_in * f_in * 2 (x - mu_in) / S.
 * Parameter gradients accumulate (+=).
 */
export function switchBackwardHost(prims: HostPrimitives, o: SwitchBackwardArgs): void {
  const wk = o.work as HostSwitchWork;
  const cfg = o.config;
  const { shape } = o.plan;
  const { N, C, S } = shape;
  const NC = N * C;
  const { muIn, vIn, muLn, vLn, muBn, vBn, mean, rstd, gMu, gV, sMuN, sVN, sMuC, sVC, cA, cB, cD } = wk;
  const sc = (o.scratch as HostScratch).backward(NC, C);
  // sums per (n,c) and dweight/dbias (accumulated into the grads)
  prims.normalizeBackward(null, o.dweight.data, o.dbias.data, o.dy.data, o.x.data, shape, o.plan.cfg, mean, rstd, "channel", o.weight.data, false, sc);
  for (let i = 0; i < NC; i++) {
    const r = rstd[i]!;
    gMu[i] = -r * sc.sumG[i]!;
    gV[i] = -0.5 * r * r * sc.sumGX[i]!;
  }
  const a = softmaxInto(wk.a, o.meanWeight.data), b = softmaxInto(wk.b, o.varWeight.data);
  // d softmax input of component j: Σ_(n,c) gMu * mu_j (and gV * var_j)
  const dA = wk.dA, dB = wk.dB;
  for (let kind = 0; kind < 3; kind++) {
    const j = kind === 0 ? cfg.index.in : kind === 1 ? cfg.index.ln : cfg.index.bn;
    if (j < 0) continue;
    let sa = 0, sb = 0;
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        sa += gMu[i]! * (kind === 0 ? muIn[i]! : kind === 1 ? muLn[n]! : muBn[c]!);
        sb += gV[i]! * (kind === 0 ? vIn[i]! : kind === 1 ? vLn[n]! : vBn[c]!);
      }
    }
    dA[j] = sa;
    dB[j] = sb;
  }
  softmaxBackwardAccumulate(o.dMeanWeight.data, a, dA, cfg.components);
  softmaxBackwardAccumulate(o.dVarWeight.data, b, dB, cfg.components);

  const ak = byKind(wk.aKind, a, cfg), bk = byKind(wk.bKind, b, cfg);
  const aIn = ak[0]!, aLn = ak[1]!, aBn = o.bnFromBatch ? ak[2]! : 0;
  const bIn = bk[0]!, bLn = bk[1]!, bBn = o.bnFromBatch ? bk[2]! : 0;
  sMuN.fill(0);
  sVN.fill(0);
  sMuC.fill(0);
  sVC.fill(0);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      sMuN[n] += gMu[i]!;
      sVN[n] += gV[i]!;
      sMuC[c] += gMu[i]!;
      sVC[c] += gV[i]!;
    }
  }
  const w = o.weight.data;
  const { fIn, fLn, fBn } = cfg;
  // dx = A*dy + B*(x - mu_in) + D per (n, c), applied by the combine primitive
  for (let n = 0; n < N; n++) {
    const gMuLn = aLn * sMuN[n]!, gVLn = bLn * sVN[n]!;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      const gMuBn = aBn * sMuC[c]!, gVBn = bBn * sVC[c]!;
      const mi = muIn[i]!;
      const dMuIn = aIn * gMu[i]! + gMuLn / C + (gVLn * fLn * 2 * (mi - muLn[n]!)) / C + gMuBn / N + (gVBn * fBn * 2 * (mi - muBn[c]!)) / N;
      const dVIn = (bIn * gV[i]! + (gVLn * fLn) / C + (gVBn * fBn) / N) * fIn;
      cA[i] = rstd[i]! * w[c]!;
      cB[i] = (2 * dVIn) / S;
      cD[i] = dMuIn / S;
    }
  }
  prims.combine(o.dx.data, o.dy.data, o.x.data, shape, o.plan.cfg, cA, cB, muIn, cD);
}
