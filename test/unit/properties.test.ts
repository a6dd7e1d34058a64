/**
 * Mathematical properties of the normalization layers, each checked against an independently
 * computed value (a naive reference written here with plain loops, another layer, or a closed form):
 * scale invariances and the gradient identities they imply, equivalences between methods,
 * channels-last ≡ channels-first, running statistics, float32 ≡ float64 on large offsets, and a
 * visible effect for every public option.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Module } from "../../src/nn/module.js";
import {
  BatchNorm, BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm, RMSNorm,
} from "../../src/nn/normalization.js";
import { SwitchableNorm, SwitchableNorm1d, SwitchableNorm2d, SwitchableNorm3d } from "../../src/nn/switchable_norm.js";
import { Tensor, type DType } from "../../src/tensor.js";
import { assertClose, fromChannelsLast, gradsOf, maxRelDiff, randTensor, randn, setRandomParams, toChannelsLast } from "./helpers.js";

const F64 = { dtype: "float64" as const };
/** Small enough that eps does not break exact scale invariance at the tested scales (eps / var ≲ 1e-12). */
const TINY_EPS = 1e-15;

// ---------------------------------------------------------------------------------------------
// Naive references (plain loops over an [N, C, S] view; nothing from src/kernels)

function ncs(shape: readonly number[]): [number, number, number] {
  const N = shape[0]!, C = shape[1] ?? 1;
  return [N, C, shape.slice(2).reduce((a, b) => a * b, 1)];
}
function meanOf(a: number[]): number {
  return a.reduce((s, v) => s + v, 0) / a.length;
}
function varOf(a: number[], unbiased = false): number {
  const m = meanOf(a);
  return a.reduce((s, v) => s + (v - m) * (v - m), 0) / (a.length - (unbiased ? 1 : 0));
}
function scaled(t: Tensor, l: number): Tensor {
  const o = t.clone();
  for (let i = 0; i < o.size; i++) o.data[i] = o.data[i]! * l;
  return o;
}
function valuesOf(x: Tensor, n: number, c: number): number[] {
  const [, C, S] = ncs(x.shape);
  return Array.from(x.data.subarray((n * C + c) * S, (n * C + c + 1) * S));
}

/**
 * y = (x - mean_g) / sqrt(var_g + eps) * w[c] + b[c], where group g = group(n, c) and mean/var
 * (biased) run over every value of every (n, c) in the group. `stats` overrides the statistics.
 */
function naiveChannelNorm(
  x: Tensor, group: (n: number, c: number) => string, eps: number,
  w: ArrayLike<number> | null = null, b: ArrayLike<number> | null = null,
  stats?: (n: number, c: number) => { m: number; v: number },
): Float64Array {
  const [N, C, S] = ncs(x.shape);
  const members = new Map<string, number[]>();
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
    const k = group(n, c);
    members.set(k, [...(members.get(k) ?? []), ...valuesOf(x, n, c)]);
  }
  const y = new Float64Array(x.size);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
    const vals = members.get(group(n, c))!;
    const { m, v } = stats ? stats(n, c) : { m: meanOf(vals), v: varOf(vals) };
    for (let s = 0; s < S; s++) {
      const i = (n * C + c) * S + s;
      y[i] = ((x.data[i]! - m) / Math.sqrt(v + eps)) * (w ? w[c]! : 1) + (b ? b[c]! : 0);
    }
  }
  return y;
}
const BN_GROUP = (_n: number, c: number) => `${c}`;
const IN_GROUP = (n: number, c: number) => `${n},${c}`;
const LN_GROUP = (n: number) => `${n}`;
const gnGroup = (C: number, G: number) => (n: number, c: number) => `${n},${Math.floor(c / (C / G))}`;

/** LayerNorm (center) / RMSNorm (no center) over the trailing K values of each row. */
function naiveRowNorm(x: Tensor, K: number, eps: number, center: boolean, w: ArrayLike<number> | null, b: ArrayLike<number> | null): Float64Array {
  const y = new Float64Array(x.size);
  for (let r = 0; r < x.size / K; r++) {
    const row = Array.from(x.data.subarray(r * K, (r + 1) * K));
    const m = center ? meanOf(row) : 0;
    const v = center ? varOf(row) : meanOf(row.map((t) => t * t));
    for (let k = 0; k < K; k++) y[r * K + k] = ((row[k]! - m) / Math.sqrt(v + eps)) * (w ? w[k]! : 1) + (b ? b[k]! : 0);
  }
  return y;
}

function softmaxNaive(z: ArrayLike<number>): number[] {
  const e = Array.from(z, (v) => Math.exp(v));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/**
 * Switchable Norm by its definition. paper: biased variances over the sets each statistic covers.
 * reference (official code): 2d/3d use the unbiased per-instance variance and derive LN/BN from
 * it via mean(var_in + mu_in^2) - mu^2; 1d uses unbiased variances over C (LN) and over N (BN).
 * `running` (eval): the BN branch uses the running statistics.
 */
function naiveSN(
  x: Tensor, o: { reference: boolean; usingBN: boolean; eps: number; running?: { mean: ArrayLike<number>; var: ArrayLike<number> } },
  layer: SwitchableNorm,
): Float64Array {
  const is1d = x.rank === 2;
  const [N, C, S] = ncs(x.shape);
  const comps = is1d ? ["ln", "bn"] : o.usingBN ? ["in", "ln", "bn"] : ["in", "ln"];
  const a = softmaxNaive(layer.meanWeight.value.data), bw = softmaxNaive(layer.varWeight.value.data);
  const muIn = (n: number, c: number) => meanOf(valuesOf(x, n, c));
  const vIn = (n: number, c: number) => varOf(valuesOf(x, n, c), o.reference && !is1d);
  const sample = (n: number) => Array.from({ length: C }, (_, c) => valuesOf(x, n, c)).flat();
  const channel = (c: number) => Array.from({ length: N }, (_, n) => valuesOf(x, n, c)).flat();
  const range = (k: number) => Array.from({ length: k }, (_, i) => i);
  const stat = (kind: string, n: number, c: number): [number, number] => {
    if (kind === "in") return [muIn(n, c), vIn(n, c)];
    if (kind === "ln") {
      if (!o.reference) return [meanOf(sample(n)), varOf(sample(n))];
      if (is1d) return [meanOf(sample(n)), varOf(sample(n), true)];
      const m = meanOf(range(C).map((cc) => muIn(n, cc)));
      return [m, meanOf(range(C).map((cc) => vIn(n, cc) + muIn(n, cc) ** 2)) - m * m];
    }
    if (o.running) return [o.running.mean[c]!, o.running.var[c]!];
    if (!o.reference) return [meanOf(channel(c)), varOf(channel(c))];
    if (is1d) return [meanOf(channel(c)), varOf(channel(c), true)];
    const m = meanOf(range(N).map((nn) => muIn(nn, c)));
    return [m, meanOf(range(N).map((nn) => vIn(nn, c) + muIn(nn, c) ** 2)) - m * m];
  };
  const w = layer.weight.value.data, b = layer.bias.value.data;
  const y = new Float64Array(x.size);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
    let m = 0, v = 0;
    comps.forEach((k, j) => {
      const [mk, vk] = stat(k, n, c);
      m += a[j]! * mk;
      v += bw[j]! * vk;
    });
    for (let s = 0; s < S; s++) {
      const i = (n * C + c) * S + s;
      y[i] = ((x.data[i]! - m) / Math.sqrt(v + o.eps)) * w[c]! + b[c]!;
    }
  }
  return y;
}

function setParam(layer: Module, name: string, values: ArrayLike<number>): void {
  const p = layer.namedParameters()[name]!;
  assert.equal(values.length, p.value.size);
  for (let i = 0; i < values.length; i++) p.value.data[i] = values[i]!;
}
function copyParams(from: Module, to: Module): void {
  for (const [k, p] of Object.entries(from.namedParameters())) setParam(to, k, p.value.data);
}

// ---------------------------------------------------------------------------------------------

describe("data scale invariance: y(λx) = y(x)", () => {
  const makers: [string, () => Module, number[]][] = [
    ["BatchNorm2d (train)", () => new BatchNorm2d({ numFeatures: 3, eps: TINY_EPS, ...F64 }), [3, 3, 2, 3]],
    ["LayerNorm [C,L]", () => new LayerNorm({ normalizedShape: [3, 4], eps: TINY_EPS, ...F64 }), [3, 3, 4]],
    ["InstanceNorm2d", () => new InstanceNorm2d({ numFeatures: 3, affine: true, eps: TINY_EPS, ...F64 }), [2, 3, 2, 3]],
    ["GroupNorm G=2", () => new GroupNorm({ numGroups: 2, numChannels: 4, eps: TINY_EPS, ...F64 }), [2, 4, 3, 2]],
    ["SwitchableNorm2d reference", () => new SwitchableNorm2d({ numFeatures: 3, eps: TINY_EPS, ...F64 }), [3, 3, 2, 3]],
    ["SwitchableNorm2d paper", () => new SwitchableNorm2d({ numFeatures: 3, eps: TINY_EPS, variance: "paper", ...F64 }), [3, 3, 2, 3]],
    ["SwitchableNorm1d", () => new SwitchableNorm1d({ numFeatures: 4, eps: TINY_EPS, ...F64 }), [5, 4]],
    ["RMSNorm", () => new RMSNorm({ normalizedShape: 6, eps: TINY_EPS, ...F64 }), [3, 6]],
  ];
  for (const [name, make, shape] of makers) {
    for (const lambda of [3.7, 0.02]) {
      it(`${name}, λ = ${lambda}`, () => {
        const x = randTensor(shape, "float64", 11, { offset: 0.4 });
        const a = make(), b = make();
        setRandomParams(a, 5);
        setRandomParams(b, 5);
        const y = a.forward(x);
        assert.ok(maxRelDiff(y, x) > 0.05, "the layer changes its input");
        assertClose(b.forward(scaled(x, lambda)), y, 1e-10, "y(λx) vs y(x)");
      });
    }
  }
  it("eps breaks exact invariance (eps = 0.1, λ = 0.02: outputs differ)", () => {
    const x = randTensor([3, 3, 2, 3], "float64", 11);
    const a = new BatchNorm2d({ numFeatures: 3, eps: 0.1, ...F64 }), b = new BatchNorm2d({ numFeatures: 3, eps: 0.1, ...F64 });
    assert.ok(maxRelDiff(b.forward(scaled(x, 0.02)), a.forward(x)) > 0.1);
  });
});

// ---------------------------------------------------------------------------------------------
// Weight scale invariance through a channel-mixing linear map z[n,o,s] = Σ_i W[o,i] x[n,i,s].
// On [N, F] features this is the plain linear layer y = x W^T; on [N, C, *spatial] it is the same
// map applied at every position (a 1x1 convolution), which is what makes InstanceNorm (which needs
// spatial positions) and the 2d Switchable Norm meaningful here. Scaling W (or x) by λ scales every
// value of z by λ, so every statistic a norm takes over z scales with it: y is unchanged, and
//   W' = λW:  dL/dW' = dL/dW / λ,  dL/dx unchanged;      x' = λx:  dL/dW unchanged,  dL/dx' = dL/dx / λ.

function mix(W: ArrayLike<number>, Cout: number, x: Tensor): Tensor {
  const [N, Cin, S] = ncs(x.shape);
  const z = Tensor.zeros([N, Cout, ...x.shape.slice(2)], "float64");
  for (let n = 0; n < N; n++) for (let o = 0; o < Cout; o++) for (let s = 0; s < S; s++) {
    let t = 0;
    for (let i = 0; i < Cin; i++) t += W[o * Cin + i]! * x.data[(n * Cin + i) * S + s]!;
    z.data[(n * Cout + o) * S + s] = t;
  }
  return z;
}
function mixBackward(W: ArrayLike<number>, Cout: number, x: Tensor, dz: Tensor): { dW: Float64Array; dx: Tensor } {
  const [N, Cin, S] = ncs(x.shape);
  const dW = new Float64Array(Cout * Cin);
  const dx = Tensor.zeros(x.shape, "float64");
  for (let n = 0; n < N; n++) for (let o = 0; o < Cout; o++) for (let s = 0; s < S; s++) {
    const g = dz.data[(n * Cout + o) * S + s]!;
    for (let i = 0; i < Cin; i++) {
      dW[o * Cin + i] += g * x.data[(n * Cin + i) * S + s]!;
      dx.data[(n * Cin + i) * S + s] += g * W[o * Cin + i]!;
    }
  }
  return { dW, dx };
}

describe("weight scale invariance: norm(x (λW)^T) = norm(x W^T), and the gradient identities", () => {
  const Cin = 5, Cout = 6; // GroupNorm G=2: groups of 3 (a group of 2 normalises to ±1 whatever z is)
  const makers: [string, () => Module, number[]][] = [
    ["BatchNorm1d on [N,F]", () => new BatchNorm1d({ numFeatures: Cout, eps: TINY_EPS, ...F64 }), [6, Cin]],
    ["LayerNorm on [N,F]", () => new LayerNorm({ normalizedShape: Cout, eps: TINY_EPS, ...F64 }), [6, Cin]],
    ["GroupNorm G=2 on [N,F]", () => new GroupNorm({ numGroups: 2, numChannels: Cout, eps: TINY_EPS, ...F64 }), [6, Cin]],
    ["RMSNorm on [N,F]", () => new RMSNorm({ normalizedShape: Cout, eps: TINY_EPS, ...F64 }), [6, Cin]],
    ["SwitchableNorm1d on [N,F]", () => new SwitchableNorm1d({ numFeatures: Cout, eps: TINY_EPS, ...F64 }), [6, Cin]],
    ["InstanceNorm1d on [N,C,L] (per-position linear)", () => new InstanceNorm1d({ numFeatures: Cout, affine: true, eps: TINY_EPS, ...F64 }), [3, Cin, 5]],
    ["BatchNorm1d on [N,C,L] (per-position linear)", () => new BatchNorm1d({ numFeatures: Cout, eps: TINY_EPS, ...F64 }), [3, Cin, 5]],
    ["GroupNorm G=2 on [N,C,H,W] (per-pixel linear)", () => new GroupNorm({ numGroups: 2, numChannels: Cout, eps: TINY_EPS, ...F64 }), [2, Cin, 2, 3]],
    ["SwitchableNorm2d on [N,C,H,W] (per-pixel linear)", () => new SwitchableNorm2d({ numFeatures: Cout, eps: TINY_EPS, ...F64 }), [3, Cin, 2, 3]],
  ];
  for (const [name, make, xShape] of makers) {
    for (const lambda of [3.7, 0.02]) {
      it(`${name}, λ = ${lambda}`, () => {
        const x = randTensor(xShape, "float64", 21, { offset: 0.2 });
        const W = randn(Cout * Cin, 22);
        const zShape = [xShape[0]!, Cout, ...xShape.slice(2)];
        const dy = randTensor(zShape, "float64", 23);
        const run = (Wm: number[], xm: Tensor) => {
          const layer = make();
          setRandomParams(layer, 24);
          const y = layer.forward(mix(Wm, Cout, xm));
          layer.zeroGrad();
          const dz = layer.backward(dy);
          return { y, ...mixBackward(Wm, Cout, xm, dz), grads: gradsOf(layer) };
        };
        const base = run(W, x);
        const w2 = run(W.map((v) => v * lambda), x);
        assertClose(w2.y, base.y, 1e-10, "y(λW)");
        assertClose(w2.dW, base.dW.map((v) => v / lambda), 1e-9, "dL/d(λW) = dL/dW / λ");
        assertClose(w2.dx, base.dx, 1e-9, "dL/dx with λW");
        for (const k of Object.keys(base.grads)) assertClose(w2.grads[k]!, base.grads[k]!, 1e-9, `d${k} with λW`);
        const x2 = run(W, scaled(x, lambda));
        assertClose(x2.y, base.y, 1e-10, "y(λx)");
        assertClose(x2.dW, base.dW, 1e-9, "dL/dW with λx");
        assertClose(x2.dx, base.dx.data.map((v) => v / lambda), 1e-9, "dL/d(λx) = dL/dx / λ");
        assert.ok(base.dW.some((v) => Math.abs(v) > 1e-3), "dW is not zero");
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------

describe("equivalences between methods", () => {
  it("GroupNorm(G=1) ≡ LayerNorm over (C,H,W) with the per-channel affine broadcast", () => {
    const [N, C, H, W] = [2, 3, 4, 5];
    const x = randTensor([N, C, H, W], "float64", 31, { offset: 1 });
    const dy = randTensor([N, C, H, W], "float64", 32);
    const gn = new GroupNorm({ numGroups: 1, numChannels: C, ...F64 });
    setRandomParams(gn, 33);
    const ln = new LayerNorm({ normalizedShape: [C, H, W], ...F64 });
    const gw = gn.weight!.value.data, gb = gn.bias!.value.data;
    setParam(ln, "weight", Array.from({ length: C * H * W }, (_, i) => gw[Math.floor(i / (H * W))]!));
    setParam(ln, "bias", Array.from({ length: C * H * W }, (_, i) => gb[Math.floor(i / (H * W))]!));
    assertClose(gn.forward(x), ln.forward(x), 1e-13, "y");
    assertClose(gn.backward(dy), ln.backward(dy), 1e-12, "dx");
    for (const name of ["weight", "bias"]) {
      const lg = ln.namedParameters()[name]!.grad.data;
      const summed = Array.from({ length: C }, (_, c) => { let s = 0; for (let i = 0; i < H * W; i++) s += lg[c * H * W + i]!; return s; });
      assertClose(gn.namedParameters()[name]!.grad.data, summed, 1e-12, `d${name} = Σ_hw LayerNorm d${name}`);
    }
  });

  for (const shape of [[2, 4, 3, 3], [3, 3, 5], [2, 2, 2, 3, 2]]) {
    it(`GroupNorm(G=C) ≡ InstanceNorm(affine) on ${JSON.stringify(shape)}`, () => {
      const C = shape[1]!;
      const x = randTensor(shape, "float64", 41, { offset: -0.5 });
      const dy = randTensor(shape, "float64", 42);
      const gn = new GroupNorm({ numGroups: C, numChannels: C, ...F64 });
      const inorm = new InstanceNorm({ numFeatures: C, affine: true, ...F64 });
      setRandomParams(gn, 43);
      copyParams(gn, inorm);
      assertClose(gn.forward(x), inorm.forward(x), 1e-13, "y");
      assertClose(gn.backward(dy), inorm.backward(dy), 1e-12, "dx");
      assertClose(gn.weight!.grad.data, inorm.weight!.grad.data, 1e-12, "dweight");
      assertClose(gn.bias!.grad.data, inorm.bias!.grad.data, 1e-12, "dbias");
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Switchable Norm with one-hot mixing. softmax([60, 0, 0]) = [1, 8.8e-27, 8.8e-27]: the other
// statistics contribute ~1e-26 relative, far below float64 rounding.

describe("Switchable Norm with one-hot mixing weights", () => {
  const [N, C, H, W] = [3, 4, 2, 3];
  const S = H * W;
  const eps = 1e-5;
  const oneHot = (j: number, k: number) => Array.from({ length: k }, (_, i) => (i === j ? 60 : 0));
  const x = randTensor([N, C, H, W], "float64", 51, { offset: 0.7, scale: 1.3 });
  const dy = randTensor([N, C, H, W], "float64", 52);

  const cases: [string, number, () => Module][] = [
    ["IN ≡ InstanceNorm2d(affine)", 0, () => new InstanceNorm2d({ numFeatures: C, affine: true, eps, ...F64 })],
    ["LN ≡ GroupNorm(1)", 1, () => new GroupNorm({ numGroups: 1, numChannels: C, eps, ...F64 })],
    ["BN ≡ BatchNorm2d (train)", 2, () => new BatchNorm2d({ numFeatures: C, eps, ...F64 })],
  ];
  for (const [name, j, make] of cases) {
    it(`2d, variance "paper": ${name} (y, dx, dweight, dbias)`, () => {
      const sn = new SwitchableNorm2d({ numFeatures: C, variance: "paper", eps, ...F64 });
      setRandomParams(sn, 53);
      setParam(sn, "mean_weight", oneHot(j, 3));
      setParam(sn, "var_weight", oneHot(j, 3));
      const other = make();
      setParam(other, "weight", sn.weight.value.data);
      setParam(other, "bias", sn.bias.value.data);
      assertClose(sn.forward(x), other.forward(x), 1e-12, "y");
      assertClose(sn.backward(dy), other.backward(dy), 1e-11, "dx");
      assertClose(sn.weight.grad.data, other.namedParameters()["weight"]!.grad.data, 1e-12, "dweight");
      assertClose(sn.bias.grad.data, other.namedParameters()["bias"]!.grad.data, 1e-12, "dbias");
      if (j === 2) {
        // Running mean: SN's momentum 0.9 weights the OLD value, BatchNorm's 0.1 the NEW one: same update.
        assertClose(sn.runningMean!.data, (other as BatchNorm2d).runningMean!.data, 1e-13, "running_mean");
        // Running var differs by convention: SN (paper) stores 0.1 * biased var from 0; BatchNorm 0.9 + 0.1 * unbiased var.
        const M = N * S;
        const bnVar = (other as BatchNorm2d).runningVar!.data;
        assertClose(Array.from(sn.runningVar!.data, (v) => 0.9 + v * (M / (M - 1))), bnVar, 1e-12, "running_var (convention mapped)");
      }
    });
  }

  // reference mode: var_in is UNBIASED (f = S/(S-1)), so IN one-hot is InstanceNorm with the variance
  // scaled by f: (x-μ)/sqrt(f var + eps) = InstanceNorm_{eps/f}(x) / sqrt(f).
  it('2d, variance "reference": IN one-hot = InstanceNorm2d with eps/f, divided by sqrt(f), f = S/(S-1)', () => {
    const f = S / (S - 1);
    const sn = new SwitchableNorm2d({ numFeatures: C, eps, ...F64 });
    setParam(sn, "mean_weight", oneHot(0, 3));
    setParam(sn, "var_weight", oneHot(0, 3));
    const inorm = new InstanceNorm2d({ numFeatures: C, eps: eps / f, ...F64 });
    assertClose(sn.forward(x), inorm.forward(x).data.map((v) => v / Math.sqrt(f)), 1e-12, "y");
    assertClose(sn.backward(dy), inorm.backward(dy).data.map((v) => v / Math.sqrt(f)), 1e-11, "dx");
    // and it is NOT plain InstanceNorm (the documented difference is visible)
    assert.ok(maxRelDiff(sn.forward(x), new InstanceNorm2d({ numFeatures: C, eps, ...F64 }).forward(x)) > 1e-3);
  });
  // LN / BN one-hot in reference mode: var = mean(var_in_unbiased + μ_in²) - μ² = the biased variance
  // over the whole set + (f - 1) * mean(var_in_biased) — neither LayerNorm's nor BatchNorm's.
  for (const [kind, j] of [["LN", 1], ["BN", 2]] as const) {
    it(`2d, variance "reference": ${kind} one-hot uses biased var + (f-1)·mean(var_in)`, () => {
      const f = S / (S - 1);
      const sn = new SwitchableNorm2d({ numFeatures: C, eps, ...F64 });
      setParam(sn, "mean_weight", oneHot(j, 3));
      setParam(sn, "var_weight", oneHot(j, 3));
      const group = kind === "LN" ? LN_GROUP : BN_GROUP;
      const members = (n: number, c: number) => {
        const out: [number, number][] = [];
        for (let nn = 0; nn < N; nn++) for (let cc = 0; cc < C; cc++) if (group(nn, cc) === group(n, c)) out.push([nn, cc]);
        return out;
      };
      const stats = (n: number, c: number) => {
        const all = members(n, c).flatMap(([a, b]) => valuesOf(x, a, b));
        const extra = (f - 1) * meanOf(members(n, c).map(([a, b]) => varOf(valuesOf(x, a, b))));
        return { m: meanOf(all), v: varOf(all) + extra };
      };
      assertClose(sn.forward(x), naiveChannelNorm(x, group, eps, null, null, stats), 1e-12, "y");
      assert.ok(maxRelDiff(sn.forward(x), naiveChannelNorm(x, group, eps)) > 1e-3, "differs from the biased-variance norm");
    });
  }

  // 1d: LN + BN over [N, C].
  const x1 = randTensor([6, 5], "float64", 54, { offset: 0.3 });
  const dy1 = randTensor([6, 5], "float64", 55);
  it('1d, variance "paper": LN one-hot ≡ LayerNorm(C), BN one-hot ≡ BatchNorm1d', () => {
    for (const [j, make] of [[0, () => new LayerNorm({ normalizedShape: 5, eps, ...F64 })], [1, () => new BatchNorm1d({ numFeatures: 5, eps, ...F64 })]] as const) {
      const sn = new SwitchableNorm1d({ numFeatures: 5, variance: "paper", eps, ...F64 });
      setRandomParams(sn, 56);
      setParam(sn, "mean_weight", oneHot(j, 2));
      setParam(sn, "var_weight", oneHot(j, 2));
      const other: Module = make();
      setParam(other, "weight", sn.weight.value.data);
      setParam(other, "bias", sn.bias.value.data);
      assertClose(sn.forward(x1), other.forward(x1), 1e-12, `y (${j})`);
      assertClose(sn.backward(dy1), other.backward(dy1), 1e-11, `dx (${j})`);
      assertClose(sn.weight.grad.data, other.namedParameters()["weight"]!.grad.data, 1e-12, `dweight (${j})`);
      assertClose(sn.bias.grad.data, other.namedParameters()["bias"]!.grad.data, 1e-12, `dbias (${j})`);
    }
  });
  it('1d, variance "reference": unbiased variances, f = C/(C-1) (LN) and N/(N-1) (BN)', () => {
    for (const [j, f, make] of [
      [0, 5 / 4, (e: number) => new LayerNorm({ normalizedShape: 5, eps: e, ...F64 })],
      [1, 6 / 5, (e: number) => new BatchNorm1d({ numFeatures: 5, eps: e, ...F64 })],
    ] as const) {
      const sn = new SwitchableNorm1d({ numFeatures: 5, eps, ...F64 });
      setParam(sn, "mean_weight", oneHot(j, 2));
      setParam(sn, "var_weight", oneHot(j, 2));
      const other: Module = make(eps / f);
      assertClose(sn.forward(x1), other.forward(x1).data.map((v) => v / Math.sqrt(f)), 1e-12, `y (${j})`);
      assertClose(sn.backward(dy1), other.backward(dy1).data.map((v) => v / Math.sqrt(f)), 1e-11, `dx (${j})`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("channels-last ≡ channels-first", () => {
  const makers: [string, (cl: boolean) => Module, number[]][] = [
    ["BatchNorm rank 3", (cl) => new BatchNorm({ numFeatures: 3, channelsLast: cl, ...F64 }), [2, 3, 5]],
    ["BatchNorm rank 4", (cl) => new BatchNorm({ numFeatures: 3, channelsLast: cl, ...F64 }), [2, 3, 3, 4]],
    ["BatchNorm rank 5", (cl) => new BatchNorm({ numFeatures: 2, channelsLast: cl, ...F64 }), [2, 2, 2, 3, 2]],
    ["InstanceNorm2d (affine, running stats)", (cl) => new InstanceNorm2d({ numFeatures: 3, affine: true, trackRunningStats: true, channelsLast: cl, ...F64 }), [2, 3, 3, 4]],
    ["InstanceNorm3d (affine)", (cl) => new InstanceNorm3d({ numFeatures: 2, affine: true, channelsLast: cl, ...F64 }), [2, 2, 2, 3, 2]],
    ["GroupNorm rank 4", (cl) => new GroupNorm({ numGroups: 2, numChannels: 4, channelsLast: cl, ...F64 }), [2, 4, 3, 2]],
    ["GroupNorm rank 5", (cl) => new GroupNorm({ numGroups: 3, numChannels: 6, channelsLast: cl, ...F64 }), [2, 6, 2, 2, 2]],
    ["SwitchableNorm2d", (cl) => new SwitchableNorm2d({ numFeatures: 3, channelsLast: cl, ...F64 }), [3, 3, 2, 3]],
    ["SwitchableNorm3d", (cl) => new SwitchableNorm3d({ numFeatures: 2, channelsLast: cl, variance: "paper", ...F64 }), [2, 2, 2, 2, 3]],
  ];
  for (const [name, make, shape] of makers) {
    it(name, () => {
      const a = make(false), b = make(true);
      setRandomParams(a, 61);
      setRandomParams(b, 61);
      const x = randTensor(shape, "float64", 62, { offset: 0.5 });
      const dy = randTensor(shape, "float64", 63);
      const ya = a.forward(x), yb = b.forward(toChannelsLast(x));
      assert.deepEqual([...yb.shape], [...toChannelsLast(x).shape]);
      assertClose(fromChannelsLast(yb), ya, 1e-13, "y");
      assertClose(fromChannelsLast(b.backward(toChannelsLast(dy))), a.backward(dy), 1e-12, "dx");
      const ga = gradsOf(a), gb = gradsOf(b);
      for (const k of Object.keys(ga)) assertClose(gb[k]!, ga[k]!, 1e-12, `d${k}`);
      const sa = a.stateDict(), sb = b.stateDict();
      for (const k of Object.keys(sa)) assertClose(sb[k]!, sa[k]!, 1e-13, `state ${k}`);
      a.eval();
      b.eval();
      const x2 = randTensor(shape, "float64", 64);
      assertClose(fromChannelsLast(b.forward(toChannelsLast(x2))), a.forward(x2), 1e-13, "eval y");
    });
  }
});

// ---------------------------------------------------------------------------------------------

/** Per-channel batch mean and UNBIASED variance over (N, S), by hand. */
function channelStats(x: Tensor): { mean: number[]; uvar: number[]; bvar: number[] } {
  const [N, C] = ncs(x.shape);
  const mean: number[] = [], uvar: number[] = [], bvar: number[] = [];
  for (let c = 0; c < C; c++) {
    const v = Array.from({ length: N }, (_, n) => valuesOf(x, n, c)).flat();
    mean.push(meanOf(v));
    uvar.push(varOf(v, true));
    bvar.push(varOf(v));
  }
  return { mean, uvar, bvar };
}

describe("running statistics", () => {
  const shape = [4, 3, 2, 2];
  const xs = [0, 1, 2].map((i) => randTensor(shape, "float64", 70 + i, { offset: i - 1, scale: 1 + i / 2 }));

  it("BatchNorm momentum=null is the cumulative average over 3 steps; eval uses it", () => {
    const bn = new BatchNorm2d({ numFeatures: 3, momentum: null, ...F64 });
    setRandomParams(bn, 73);
    for (const x of xs) bn.forward(x);
    const st = xs.map(channelStats);
    const expMean = [0, 1, 2].map((c) => (st[0]!.mean[c]! + st[1]!.mean[c]! + st[2]!.mean[c]!) / 3);
    const expVar = [0, 1, 2].map((c) => (st[0]!.uvar[c]! + st[1]!.uvar[c]! + st[2]!.uvar[c]!) / 3);
    assertClose(bn.runningMean!.data, expMean, 1e-13, "running_mean");
    assertClose(bn.runningVar!.data, expVar, 1e-13, "running_var");
    assert.equal(bn.numBatchesTracked!.data[0], 3);
    bn.eval();
    const before = Float64Array.from(bn.runningMean!.data);
    const xe = randTensor(shape, "float64", 79);
    const expected = naiveChannelNorm(xe, BN_GROUP, 1e-5, bn.weight!.value.data, bn.bias!.value.data, (_n, c) => ({ m: expMean[c]!, v: expVar[c]! }));
    assertClose(bn.forward(xe), expected, 1e-13, "eval y uses the running statistics");
    assert.ok(maxRelDiff(expected, naiveChannelNorm(xe, BN_GROUP, 1e-5, bn.weight!.value.data, bn.bias!.value.data)) > 1e-2, "not the batch statistics");
    // eval does not update running stats
    assert.deepEqual(Float64Array.from(bn.runningMean!.data), before, "running_mean unchanged by eval");
    assert.equal(bn.numBatchesTracked!.data[0], 3);
  });

  it("BatchNorm momentum=0.1 (weights the NEW value) over 2 steps, from mean 0 / var 1", () => {
    const bn = new BatchNorm2d({ numFeatures: 3, ...F64 });
    bn.forward(xs[0]!);
    bn.forward(xs[1]!);
    const [s0, s1] = [channelStats(xs[0]!), channelStats(xs[1]!)];
    assertClose(bn.runningMean!.data, [0, 1, 2].map((c) => 0.9 * (0.1 * s0.mean[c]!) + 0.1 * s1.mean[c]!), 1e-13, "running_mean");
    assertClose(bn.runningVar!.data, [0, 1, 2].map((c) => 0.9 * (0.9 + 0.1 * s0.uvar[c]!) + 0.1 * s1.uvar[c]!), 1e-13, "running_var");
    assert.equal(bn.numBatchesTracked!.data[0], 2);
  });

  it("BatchNorm trackRunningStats=false: no buffers, eval uses batch statistics", () => {
    const bn = new BatchNorm2d({ numFeatures: 3, trackRunningStats: false, ...F64 });
    setRandomParams(bn, 74);
    assert.deepEqual(Object.keys(bn.stateDict()).sort(), ["bias", "weight"]);
    assert.deepEqual(bn.namedBuffers(), {});
    bn.forward(xs[0]!);
    bn.eval();
    const expected = naiveChannelNorm(xs[1]!, BN_GROUP, 1e-5, bn.weight!.value.data, bn.bias!.value.data);
    assertClose(bn.forward(xs[1]!), expected, 1e-13, "eval y");
    assert.deepEqual(Object.keys(bn.stateDict()).sort(), ["bias", "weight"]);
  });

  it("InstanceNorm trackRunningStats: batch-mean of per-instance stats (unbiased var); eval uses them; num_batches_tracked stays 0", () => {
    const inorm = new InstanceNorm2d({ numFeatures: 3, trackRunningStats: true, momentum: 0.1, ...F64 });
    assert.deepEqual(Object.keys(inorm.stateDict()).sort(), ["num_batches_tracked", "running_mean", "running_var"]);
    inorm.forward(xs[0]!);
    const [N, C] = ncs(shape);
    const m = Array.from({ length: C }, (_, c) => meanOf(Array.from({ length: N }, (_, n) => meanOf(valuesOf(xs[0]!, n, c)))));
    const v = Array.from({ length: C }, (_, c) => meanOf(Array.from({ length: N }, (_, n) => varOf(valuesOf(xs[0]!, n, c), true))));
    assertClose(inorm.runningMean!.data, m.map((t) => 0.1 * t), 1e-13, "running_mean");
    assertClose(inorm.runningVar!.data, v.map((t) => 0.9 + 0.1 * t), 1e-13, "running_var");
    assert.equal(inorm.numBatchesTracked!.data[0], 0, "PyTorch's InstanceNorm does not count batches");
    inorm.eval();
    const expected = naiveChannelNorm(xs[1]!, IN_GROUP, 1e-5, null, null, (_n, c) => ({ m: 0.1 * m[c]!, v: 0.9 + 0.1 * v[c]! }));
    assertClose(inorm.forward(xs[1]!), expected, 1e-13, "eval y");
  });

  it("InstanceNorm momentum=null leaves the running statistics alone (PyTorch passes momentum 0.0)", () => {
    const inorm = new InstanceNorm2d({ numFeatures: 3, trackRunningStats: true, momentum: null, ...F64 });
    inorm.forward(xs[0]!);
    inorm.forward(xs[1]!);
    assert.deepEqual(Array.from(inorm.runningMean!.data), [0, 0, 0]);
    assert.deepEqual(Array.from(inorm.runningVar!.data), [1, 1, 1]);
  });

  it("InstanceNorm without running stats: eval normalises per instance, as in training", () => {
    const inorm = new InstanceNorm2d({ numFeatures: 3, ...F64 });
    assert.deepEqual(inorm.stateDict(), {});
    inorm.eval();
    assertClose(inorm.forward(xs[2]!), naiveChannelNorm(xs[2]!, IN_GROUP, 1e-5), 1e-13, "eval y");
  });

  for (const variance of ["reference", "paper"] as const) {
    it(`SwitchableNorm2d (${variance}): moving average weights the OLD value; eval's BN branch uses it`, () => {
      const sn = new SwitchableNorm2d({ numFeatures: 3, momentum: 0.9, variance, ...F64 });
      setRandomParams(sn, 75);
      sn.forward(xs[0]!);
      sn.forward(xs[1]!);
      const bnStats = (x: Tensor) => {
        const [N, C] = ncs(x.shape);
        return Array.from({ length: C }, (_, c) => {
          const mus = Array.from({ length: N }, (_, n) => meanOf(valuesOf(x, n, c)));
          const vs = Array.from({ length: N }, (_, n) => varOf(valuesOf(x, n, c), variance === "reference"));
          const m = meanOf(mus);
          return { m, v: meanOf(vs.map((vv, n) => vv + mus[n]! ** 2)) - m * m };
        });
      };
      const [b0, b1] = [bnStats(xs[0]!), bnStats(xs[1]!)];
      const rm = [0, 1, 2].map((c) => 0.9 * (0.1 * b0[c]!.m) + 0.1 * b1[c]!.m);
      const rv = [0, 1, 2].map((c) => 0.9 * (0.1 * b0[c]!.v) + 0.1 * b1[c]!.v);
      assertClose(sn.runningMean!.data, rm, 1e-13, "running_mean");
      assertClose(sn.runningVar!.data, rv, 1e-13, "running_var");
      sn.eval();
      assertClose(sn.forward(xs[2]!), naiveSN(xs[2]!, { reference: variance === "reference", usingBN: true, eps: 1e-5, running: { mean: rm, var: rv } }, sn), 1e-12, "eval y");
    });
  }

  it("SwitchableNorm2d usingMovingAverage=false accumulates running_mean += μ_bn, running_var += μ_bn² + var_bn", () => {
    const sn = new SwitchableNorm2d({ numFeatures: 3, usingMovingAverage: false, variance: "paper", ...F64 });
    sn.forward(xs[0]!);
    sn.forward(xs[1]!);
    const [s0, s1] = [channelStats(xs[0]!), channelStats(xs[1]!)];
    assertClose(sn.runningMean!.data, [0, 1, 2].map((c) => s0.mean[c]! + s1.mean[c]!), 1e-13, "running_mean");
    assertClose(sn.runningVar!.data, [0, 1, 2].map((c) => s0.mean[c]! ** 2 + s0.bvar[c]! + s1.mean[c]! ** 2 + s1.bvar[c]!), 1e-13, "running_var");
  });
});

// ---------------------------------------------------------------------------------------------
// float32 ≡ float64 on x = 1000 + randn. Both paths see the same (float32-representable) values.

describe("float32 path ≡ float64 path on a large-offset input", () => {
  const makers: [string, (d: DType) => Module, number[]][] = [
    ["BatchNorm2d", (dtype) => new BatchNorm2d({ numFeatures: 3, dtype }), [4, 3, 5, 5]],
    ["InstanceNorm2d (running stats)", (dtype) => new InstanceNorm2d({ numFeatures: 3, affine: true, trackRunningStats: true, dtype }), [3, 3, 5, 5]],
    ["GroupNorm", (dtype) => new GroupNorm({ numGroups: 2, numChannels: 4, dtype }), [2, 4, 5, 5]],
    ["LayerNorm", (dtype) => new LayerNorm({ normalizedShape: [4, 25], dtype }), [3, 4, 25]],
    ["RMSNorm", (dtype) => new RMSNorm({ normalizedShape: 64, eps: 1e-6, dtype }), [3, 64]],
    ["SwitchableNorm2d reference", (dtype) => new SwitchableNorm2d({ numFeatures: 3, dtype }), [4, 3, 5, 5]],
    ["SwitchableNorm2d paper", (dtype) => new SwitchableNorm2d({ numFeatures: 3, variance: "paper", dtype }), [4, 3, 5, 5]],
    ["SwitchableNorm1d", (dtype) => new SwitchableNorm1d({ numFeatures: 16, dtype }), [32, 16]],
  ];
  for (const [name, make, shape] of makers) {
    it(name, () => {
      const l64 = make("float64"), l32 = make("float32");
      setRandomParams(l64, 81);
      l32.loadStateDict(l64.stateDict());
      l64.loadStateDict(l32.stateDict()); // both hold the same float32-representable values
      const x32 = randTensor(shape, "float32", 82, { offset: 1000 });
      const dy32 = randTensor(shape, "float32", 83);
      const y32 = l32.forward(x32), y64 = l64.forward(x32.clone("float64"));
      assert.ok(y32.data instanceof Float32Array && y64.data instanceof Float64Array);
      assertClose(y32, y64, 1e-5, "y");
      assertClose(l32.backward(dy32), l64.backward(dy32.clone("float64")), 1e-5, "dx");
      const g32 = gradsOf(l32), g64 = gradsOf(l64);
      for (const k of Object.keys(g64)) assertClose(g32[k]!, g64[k]!, 1e-5, `d${k}`);
      const s32 = l32.stateDict(), s64 = l64.stateDict();
      for (const k of Object.keys(s64)) assertClose(s32[k]!, s64[k]!, 1e-5, `state ${k}`);
    });
  }
  it("(the input is discriminating: a one-pass float32 E[x²]-E[x]² variance is off by > 1e-3 relative)", () => {
    const x = randTensor([4, 1, 5, 5], "float32", 82, { offset: 1000 });
    const f = Math.fround;
    let s = 0, s2 = 0;
    for (const v of x.data) {
      s = f(s + v);
      s2 = f(s2 + f(v * v));
    }
    const m = f(s / x.size);
    const onePass = f(f(s2 / x.size) - f(m * m));
    const exact = varOf(Array.from(x.data));
    assert.ok(Math.abs(onePass - exact) / exact > 1e-3, `one-pass ${onePass} vs ${exact}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe("every option has a visible effect", () => {
  const x4 = randTensor([3, 4, 2, 3], "float64", 91, { offset: 0.5, scale: 0.8 });
  const x2 = randTensor([5, 6], "float64", 92, { offset: -0.2 });

  it("BatchNorm: eps and affine (vs a naive reference)", () => {
    for (const affine of [true, false]) for (const eps of [1e-5, 0.5]) {
      const bn = new BatchNorm2d({ numFeatures: 4, eps, affine, ...F64 });
      setRandomParams(bn, 93);
      assert.equal(bn.parameters().length, affine ? 2 : 0);
      assertClose(bn.forward(x4), naiveChannelNorm(x4, BN_GROUP, eps, bn.weight?.value.data, bn.bias?.value.data), 1e-13, `affine=${affine} eps=${eps}`);
    }
    const a = new BatchNorm2d({ numFeatures: 4, eps: 0.5, ...F64 }).forward(x4), b = new BatchNorm2d({ numFeatures: 4, ...F64 }).forward(x4);
    assert.ok(maxRelDiff(a, b) > 1e-2, "eps changes y");
  });

  it("BatchNorm momentum: 0.3 weights the new batch statistic", () => {
    const bn = new BatchNorm2d({ numFeatures: 4, momentum: 0.3, ...F64 });
    bn.forward(x4);
    const st = channelStats(x4);
    assertClose(bn.runningMean!.data, st.mean.map((m) => 0.3 * m), 1e-14, "running_mean");
    assertClose(bn.runningVar!.data, st.uvar.map((v) => 0.7 + 0.3 * v), 1e-14, "running_var");
  });

  it("InstanceNorm: eps, affine, momentum", () => {
    for (const affine of [true, false]) {
      const inorm = new InstanceNorm2d({ numFeatures: 4, eps: 0.3, affine, ...F64 });
      setRandomParams(inorm, 94);
      assert.equal(inorm.parameters().length, affine ? 2 : 0);
      assertClose(inorm.forward(x4), naiveChannelNorm(x4, IN_GROUP, 0.3, inorm.weight?.value.data, inorm.bias?.value.data), 1e-13, `affine=${affine}`);
    }
    const inorm = new InstanceNorm2d({ numFeatures: 4, momentum: 0.5, trackRunningStats: true, ...F64 });
    inorm.forward(x4);
    const [N] = ncs(x4.shape);
    const m = [0, 1, 2, 3].map((c) => meanOf(Array.from({ length: N }, (_, n) => meanOf(valuesOf(x4, n, c)))));
    assertClose(inorm.runningMean!.data, m.map((t) => 0.5 * t), 1e-14, "running_mean with momentum 0.5");
  });

  it("GroupNorm: numGroups, eps, affine", () => {
    const outs: Float64Array[] = [];
    for (const G of [1, 2, 4]) for (const affine of [true, false]) {
      const gn = new GroupNorm({ numGroups: G, numChannels: 4, eps: 0.2, affine, ...F64 });
      setRandomParams(gn, 95);
      const y = gn.forward(x4);
      assertClose(y, naiveChannelNorm(x4, gnGroup(4, G), 0.2, gn.weight?.value.data, gn.bias?.value.data), 1e-13, `G=${G} affine=${affine}`);
      if (!affine) outs.push(Float64Array.from(y.data));
    }
    assert.ok(maxRelDiff(outs[0]!, outs[1]!) > 1e-2 && maxRelDiff(outs[1]!, outs[2]!) > 1e-2, "numGroups changes y");
    // [N, C] input: groups of features
    const gn = new GroupNorm({ numGroups: 3, numChannels: 6, ...F64 });
    assertClose(gn.forward(x2), naiveChannelNorm(x2, gnGroup(6, 3), 1e-5), 1e-13, "rank 2");
  });

  it("LayerNorm: elementwiseAffine, bias, eps, multi-dim normalizedShape", () => {
    const x = randTensor([2, 3, 4, 5], "float64", 96, { offset: 1 });
    for (const [ea, bias, names] of [[true, true, ["bias", "weight"]], [true, false, ["weight"]], [false, true, []], [false, false, []]] as const) {
      const ln = new LayerNorm({ normalizedShape: [4, 5], elementwiseAffine: ea, bias, eps: 0.1, ...F64 });
      setRandomParams(ln, 97);
      assert.deepEqual(Object.keys(ln.namedParameters()).sort(), [...names]);
      if (ea) assert.deepEqual([...ln.weight!.value.shape], [4, 5]);
      assertClose(ln.forward(x), naiveRowNorm(x, 20, 0.1, true, ln.weight?.value.data ?? null, ln.bias?.value.data ?? null), 1e-13, `ea=${ea} bias=${bias}`);
    }
    const ln = new LayerNorm({ normalizedShape: [3, 4, 5], ...F64 });
    assertClose(ln.forward(x), naiveRowNorm(x, 60, 1e-5, true, null, null), 1e-13, "[3,4,5]");
  });

  it("RMSNorm: eps, elementwiseAffine; default eps is the dtype's machine epsilon", () => {
    const x = randTensor([3, 8], "float64", 98);
    for (const ea of [true, false]) {
      const r = new RMSNorm({ normalizedShape: 8, eps: 0.25, elementwiseAffine: ea, ...F64 });
      setRandomParams(r, 99);
      assert.equal(r.parameters().length, ea ? 1 : 0);
      assertClose(r.forward(x), naiveRowNorm(x, 8, 0.25, false, r.weight?.value.data ?? null, null), 1e-13, `ea=${ea}`);
    }
    assert.equal(new RMSNorm({ normalizedShape: 4, ...F64 }).eps, 2 ** -52);
    assert.equal(new RMSNorm({ normalizedShape: 4, dtype: "float32" }).eps, 2 ** -23);
    assert.equal(new RMSNorm({ normalizedShape: 4, eps: null, ...F64 }).eps, 2 ** -52);
    // visible: for tiny x, eps dominates mean(x^2) = 1e-18
    const tiny = Tensor.full([1, 4], 1e-9, "float64");
    const y64 = new RMSNorm({ normalizedShape: 4, ...F64 }).forward(tiny);
    assertClose(y64, [0, 0, 0, 0].map(() => 1e-9 / Math.sqrt(1e-18 + 2 ** -52)), 1e-14, "float64 default eps");
    const y32 = new RMSNorm({ normalizedShape: 4, dtype: "float32" }).forward(tiny.clone("float32"));
    assertClose(y32, [0, 0, 0, 0].map(() => Math.fround(1e-9) / Math.sqrt(Math.fround(1e-9) ** 2 + 2 ** -23)), 1e-6, "float32 default eps");
    assert.ok(Math.abs(y64.data[0]! - y32.data[0]!) > 1e-3, "the two defaults differ visibly");
  });

  it("dtype: storage of parameters, buffers and outputs; default float32", () => {
    const def = new BatchNorm2d({ numFeatures: 2 });
    assert.equal(def.dtype, "float32");
    for (const [dtype, Arr] of [["float32", Float32Array], ["float64", Float64Array]] as const) {
      const layers: Module[] = [
        new BatchNorm2d({ numFeatures: 2, dtype }), new InstanceNorm2d({ numFeatures: 2, affine: true, trackRunningStats: true, dtype }),
        new GroupNorm({ numGroups: 1, numChannels: 2, dtype }), new LayerNorm({ normalizedShape: 3, dtype }), new RMSNorm({ normalizedShape: 3, dtype }),
        new SwitchableNorm2d({ numFeatures: 2, dtype }), new SwitchableNorm1d({ numFeatures: 3, dtype }),
      ];
      for (const l of layers) {
        for (const p of l.parameters()) assert.ok(p.value.data instanceof Arr && p.grad.data instanceof Arr, `${l.constructor.name} ${dtype} params`);
        for (const [k, b] of Object.entries(l.namedBuffers())) if (k !== "num_batches_tracked") assert.ok(b.data instanceof Arr, `${l.constructor.name} ${k}`);
        const shape = l instanceof LayerNorm || l instanceof RMSNorm || l instanceof SwitchableNorm1d ? [2, 3] : [2, 2, 2, 2];
        const y = l.forward(randTensor(shape, dtype, 1));
        assert.ok(y.data instanceof Arr && l.backward(randTensor(shape, dtype, 2)).data instanceof Arr, `${l.constructor.name} ${dtype} y/dx`);
      }
    }
  });

  it("SwitchableNorm2d matches its definition for random mixing weights (usingBN on/off, reference/paper, train/eval)", () => {
    for (const usingBN of [true, false]) for (const variance of ["reference", "paper"] as const) {
      const sn = new SwitchableNorm2d({ numFeatures: 4, usingBN, variance, ...F64 });
      setRandomParams(sn, 100);
      assert.deepEqual([...sn.components], usingBN ? ["in", "ln", "bn"] : ["in", "ln"]);
      assert.equal(sn.meanWeight.value.size, usingBN ? 3 : 2);
      assert.deepEqual(Object.keys(sn.namedBuffers()).sort(), usingBN ? ["running_mean", "running_var"] : []);
      const o = { reference: variance === "reference", usingBN, eps: 1e-5 };
      assertClose(sn.forward(x4), naiveSN(x4, o, sn), 1e-12, `train usingBN=${usingBN} ${variance}`);
      sn.eval();
      const running = usingBN ? { mean: Array.from(sn.runningMean!.data), var: Array.from(sn.runningVar!.data) } : undefined;
      assertClose(sn.forward(x4), naiveSN(x4, { ...o, ...(running ? { running } : {}) }, sn), 1e-12, `eval usingBN=${usingBN} ${variance}`);
    }
    const ref = new SwitchableNorm2d({ numFeatures: 4, ...F64 }).forward(x4), pap = new SwitchableNorm2d({ numFeatures: 4, variance: "paper", ...F64 }).forward(x4);
    assert.ok(maxRelDiff(ref, pap) > 1e-3, "variance mode changes y");
  });

  it("SwitchableNorm1d matches its definition (reference and paper); eps visible", () => {
    for (const variance of ["reference", "paper"] as const) for (const eps of [1e-5, 0.5]) {
      const sn = new SwitchableNorm1d({ numFeatures: 6, variance, eps, ...F64 });
      setRandomParams(sn, 101);
      assert.deepEqual([...sn.components], ["ln", "bn"]);
      assertClose(sn.forward(x2), naiveSN(x2, { reference: variance === "reference", usingBN: true, eps }, sn), 1e-12, `${variance} eps=${eps}`);
    }
  });

  it("SwitchableNorm momentum and its 1d / 2d defaults", () => {
    assert.equal(new SwitchableNorm2d({ numFeatures: 2 }).momentum, 0.9);
    assert.equal(new SwitchableNorm1d({ numFeatures: 2 }).momentum, 0.997);
    const sn = new SwitchableNorm2d({ numFeatures: 4, momentum: 0.25, variance: "paper", ...F64 });
    sn.forward(x4);
    const st = channelStats(x4);
    assertClose(sn.runningMean!.data, st.mean.map((m) => 0.75 * m), 1e-14, "running_mean");
    assertClose(sn.runningVar!.data, st.bvar.map((v) => 0.75 * v), 1e-13, "running_var");
  });

  it("SwitchableNorm lastGamma: weight starts at 0, so y = bias and dx = 0 (but dweight flows)", () => {
    const sn = new SwitchableNorm2d({ numFeatures: 4, lastGamma: true, ...F64 });
    assert.ok(sn.weight.value.data.every((v) => v === 0));
    assert.ok(new SwitchableNorm2d({ numFeatures: 4, ...F64 }).weight.value.data.every((v) => v === 1));
    setParam(sn, "bias", [0.1, 0.2, 0.3, 0.4]);
    const y = sn.forward(x4);
    assertClose(y, naiveChannelNorm(x4, BN_GROUP, 1, [0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4]), 0, "y = bias");
    const dx = sn.backward(randTensor(x4.shape, "float64", 102));
    assert.ok(dx.data.every((v) => v === 0), "dx = 0");
    assert.ok(sn.weight.grad.data.some((v) => v !== 0), "dweight flows");
  });

  it("SwitchableNorm importance() is the softmax of the logits, by component", () => {
    const sn = new SwitchableNorm2d({ numFeatures: 2, ...F64 });
    setParam(sn, "mean_weight", [0.5, -1, 2]);
    setParam(sn, "var_weight", [1, 1, 1]);
    const imp = sn.importance();
    const a = softmaxNaive([0.5, -1, 2]);
    assertClose([imp.mean.in!, imp.mean.ln!, imp.mean.bn!], a, 1e-15, "mean importance");
    assertClose([imp.variance.in!, imp.variance.ln!, imp.variance.bn!], [1 / 3, 1 / 3, 1 / 3], 1e-15, "var importance");
  });

  it("channelsLast: the layer reads channels from the last dim", () => {
    const bn = new BatchNorm({ numFeatures: 3, channelsLast: true, ...F64 });
    const x = randTensor([2, 4, 5, 3], "float64", 103);
    assertClose(bn.forward(x), toChannelsLast(new Tensor(naiveChannelNorm(fromChannelsLast(x), BN_GROUP, 1e-5), [2, 3, 4, 5])), 1e-13, "y");
  });
});
