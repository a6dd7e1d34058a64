/**
 * The statistics APIs the explorer draws from: Normalization.statisticsPlan (which values share a
 * statistic) and SwitchableNorm.lastStatistics (mixed and component statistics), each checked against
 * brute-force sums over the index sets they describe.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, ShapeError, SwitchableNorm2d, Tensor } from "../../src/index.js";
import type { Normalization } from "../../src/nn/normalization.js";
import { randTensor } from "./helpers.js";

const [N, C, H, W] = [3, 6, 2, 5];
const S = H * W;
const at = (x: Tensor, n: number, c: number, s: number) => x.data[(n * C + c) * S + s]!;

/** Brute force: mean and biased variance of the values whose (n, c) satisfy `member`. */
function bruteStats(x: Tensor, member: (n: number, c: number) => boolean): { mean: number; variance: number; count: number } {
  let sum = 0, count = 0;
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) if (member(n, c)) for (let s = 0; s < S; s++) (sum += at(x, n, c, s)), count++;
  const mean = sum / count;
  let q = 0;
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) if (member(n, c)) for (let s = 0; s < S; s++) q += (at(x, n, c, s) - mean) ** 2;
  return { mean, variance: q / count, count };
}

/** Statistic of flat NCHW element i under a plan (channels-first views): the documented formula. */
function statOf(i: number, p: { shape: { N: number; C: number; S: number }; cfg: { perSample: boolean; groupSize: number } }): number {
  const { C: Cv, S: Sv } = p.shape;
  const n = Math.floor(i / (Cv * Sv)), c = Math.floor((i % (Cv * Sv)) / Sv), g = Math.floor(c / p.cfg.groupSize);
  return p.cfg.perSample ? n * (Cv / p.cfg.groupSize) + g : g;
}

// [name, layer, the number of statistics, how many values share one]
const layers: [string, () => Normalization, number, number][] = [
  ["BatchNorm2d", () => new BatchNorm2d({ numFeatures: C, dtype: "float64" }), C, N * S],
  ["InstanceNorm2d", () => new InstanceNorm2d({ numFeatures: C, dtype: "float64" }), N * C, S],
  ["GroupNorm(3)", () => new GroupNorm({ numGroups: 3, numChannels: C, dtype: "float64" }), N * 3, 2 * S],
  ["GroupNorm(1)", () => new GroupNorm({ numGroups: 1, numChannels: C, dtype: "float64" }), N, C * S],
  ["LayerNorm([C,H,W])", () => new LayerNorm({ normalizedShape: [C, H, W], dtype: "float64" }), N, C * S],
];

for (const [name, make, stats, shared] of layers) {
  test(`${name}.statisticsPlan names the sets lastStatistics() describes`, () => {
    const layer = make();
    const x = randTensor([N, C, H, W], "float64", 11);
    const plan = layer.statisticsPlan(x);
    assert.equal(plan.shape.N * plan.shape.C * plan.shape.S, x.size);
    layer.forward(x);
    const st = layer.lastStatistics()!;
    assert.equal(st.mean.length, stats);
    const members: number[][] = Array.from({ length: stats }, () => []);
    for (let i = 0; i < x.size; i++) members[statOf(i, plan)]!.push(x.data[i]!);
    for (let k = 0; k < stats; k++) {
      const v = members[k]!;
      assert.equal(v.length, shared, `${name}: values sharing statistic ${k}`);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
      assert.ok(Math.abs(st.mean[k]! - mean) < 1e-12, `${name} mean of statistic ${k}`);
      assert.ok(Math.abs(1 / st.rstd[k]! ** 2 - 1e-5 - variance) < 1e-12, `${name} variance of statistic ${k}`);
    }
  });
}

test("statisticsPlan validates x like forward and changes nothing", () => {
  const bn = new BatchNorm2d({ numFeatures: C, dtype: "float64" });
  const before = JSON.stringify(bn.stateDict());
  assert.throws(() => bn.statisticsPlan(randTensor([N, C + 1, H, W], "float64", 1)), ShapeError);
  assert.throws(() => bn.statisticsPlan(randTensor([N, C], "float64", 1)), ShapeError);
  assert.equal(JSON.stringify(bn.stateDict()), before);
  assert.equal(bn.lastStatistics(), null);
});

for (const variance of ["paper", "reference"] as const) {
  test(`SwitchableNorm2d.lastStatistics (${variance} variance): components and their mixture`, () => {
    const sn = new SwitchableNorm2d({ numFeatures: C, dtype: "float64", variance });
    assert.equal(sn.lastStatistics(), null, "null before the first forward");
    sn.meanWeight.value.data.set([0.3, -1.2, 0.8]);
    sn.varWeight.value.data.set([-0.5, 0.9, 0.1]);
    const x = randTensor([N, C, H, W], "float64", 5);
    sn.forward(x);
    const st = sn.lastStatistics()!;
    const fIn = variance === "reference" ? S / (S - 1) : 1;
    const sm = (v: ArrayLike<number>) => {
      const e = Array.from(v, Math.exp), z = e.reduce((a, b) => a + b, 0);
      return e.map((t) => t / z);
    };
    const a = sm(sn.meanWeight.value.data), b = sm(sn.varWeight.value.data);
    assert.deepEqual([st.weights.mean.in, st.weights.mean.ln, st.weights.mean.bn].map((v) => v.toFixed(12)), a.map((v) => v.toFixed(12)));
    assert.deepEqual([st.weights.variance.in, st.weights.variance.ln, st.weights.variance.bn].map((v) => v.toFixed(12)), b.map((v) => v.toFixed(12)));
    for (let n = 0; n < N; n++) {
      const ln = bruteStats(x, (m) => m === n);
      assert.ok(Math.abs(st.ln.mean[n]! - ln.mean) < 1e-12);
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        const inS = bruteStats(x, (m, d) => m === n && d === c);
        assert.ok(Math.abs(st.in!.mean[i]! - inS.mean) < 1e-12);
        assert.ok(Math.abs(st.in!.variance[i]! - fIn * inS.variance) < 1e-12);
        const mix = a[0]! * st.in!.mean[i]! + a[1]! * st.ln.mean[n]! + a[2]! * st.bn!.mean[c]!;
        const vmix = b[0]! * st.in!.variance[i]! + b[1]! * st.ln.variance[n]! + b[2]! * st.bn!.variance[c]!;
        assert.ok(Math.abs(st.mean[i]! - mix) < 1e-12, "mixed mean");
        assert.ok(Math.abs(st.variance[i]! - vmix) < 1e-12, "mixed variance");
        assert.ok(Math.abs(st.rstd[i]! - 1 / Math.sqrt(vmix + sn.eps)) < 1e-12, "rstd");
      }
    }
    for (let c = 0; c < C; c++) {
      const bn = bruteStats(x, (_m, d) => d === c);
      assert.ok(Math.abs(st.bn!.mean[c]! - bn.mean) < 1e-12);
      if (variance === "paper") assert.ok(Math.abs(st.bn!.variance[c]! - bn.variance) < 1e-12);
    }
    // copies: a later forward does not change what was handed out
    const kept = st.mean.slice();
    sn.forward(randTensor([N, C, H, W], "float64", 6));
    assert.deepEqual([...st.mean], [...kept]);
  });
}

test("SwitchableNorm2d.lastStatistics in eval: the BN component is the running statistics", () => {
  const sn = new SwitchableNorm2d({ numFeatures: C, dtype: "float64", variance: "paper" });
  sn.forward(randTensor([N, C, H, W], "float64", 2));
  sn.train(false);
  sn.forward(randTensor([N, C, H, W], "float64", 3));
  const st = sn.lastStatistics()!;
  assert.deepEqual([...st.bn!.mean], [...sn.runningMean!.data]);
  assert.deepEqual([...st.bn!.variance], [...sn.runningVar!.data]);
});

test("SwitchableNorm2d({ usingBN: false }).lastStatistics has no BN component", () => {
  const sn = new SwitchableNorm2d({ numFeatures: C, dtype: "float64", usingBN: false });
  sn.forward(randTensor([N, C, H, W], "float64", 2));
  const st = sn.lastStatistics()!;
  assert.equal(st.bn, null);
  assert.equal(st.weights.mean.bn, 0);
});
