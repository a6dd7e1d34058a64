/**
 * The block view's numbers, without the DOM: which values of an [N, C, H, W] input share one mean and
 * variance under each method, and those statistics — all from normkit (the layers' own plan of the
 * input, the statistics engine's moments, SwitchableNorm's own mixed statistics), in float64.
 */
import {
  BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, SwitchableNorm2d, Tensor, engine, mulberry32,
  type SwitchableStatistics,
} from "../../src/index.js";
import type { NormPlan } from "../../src/nn/normalization.js";

export type BlockMethod = "batch_norm" | "layer_norm" | "instance_norm" | "group_norm" | "switchable_norm";
export const BLOCK_METHODS: readonly BlockMethod[] = ["batch_norm", "layer_norm", "instance_norm", "group_norm", "switchable_norm"];
export const METHOD_LABEL: Record<BlockMethod, string> = {
  batch_norm: "BatchNorm", layer_norm: "LayerNorm", instance_norm: "InstanceNorm", group_norm: "GroupNorm", switchable_norm: "Switchable Norm",
};

export interface BlockShape {
  N: number;
  C: number;
  H: number;
  W: number;
}

/** Limits of the editable sizes (the picture stays readable; 8·16·6·6 = 4,608 cells at most). */
export const SIZE_LIMITS: Record<keyof BlockShape, [number, number]> = { N: [1, 8], C: [1, 16], H: [1, 6], W: [1, 6] };

export interface GroupStats {
  /** Index of the statistic in normkit's arrays. */
  index: number;
  label: string;
  /** How many values share it. */
  count: number;
  mean: number;
  /** The (biased) variance that normalizes; for Switchable Norm the mixture. */
  variance: number;
}

/** Switchable Norm's component weights (any non-negative numbers; normalized to sum 1). */
export interface SwitchWeights {
  mean: [number, number, number]; // in, ln, bn
  variance: [number, number, number];
}

export interface BlockResult {
  method: BlockMethod;
  shape: BlockShape;
  /** Statistic index of each (n, c) at n * C + c (all H·W values of one (n, c) share it). */
  statOfNC: Int32Array;
  groups: GroupStats[];
  /** The normalized output (weight 1, bias 0), [N, C, H, W]. */
  y: Float64Array;
  /** Switchable Norm only: the layer's own component and mixed statistics. */
  switchable: SwitchableStatistics | null;
}

export function divisors(n: number): number[] {
  const d: number[] = [];
  for (let k = 1; k <= n; k++) if (n % k === 0) d.push(k);
  return d;
}

/**
 * The demo input: x[n, c, h, w] = offset_c + scale_n * z with z standard normal, offsets in [-2, 2]
 * and scales in [0.5, 2] (so channels and samples visibly differ), rounded to 2 decimals, from a
 * seeded generator (normkit's mulberry32).
 */
export function demoInput(shape: BlockShape, seed: number): Tensor {
  const { N, C, H, W } = shape;
  const u = mulberry32(seed);
  const offset = Array.from({ length: C }, () => -2 + 4 * u());
  const scale = Array.from({ length: N }, () => 0.5 + 1.5 * u());
  const data = new Float64Array(N * C * H * W);
  let i = 0;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let s = 0; s < H * W; s++) {
        const z = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()); // Box-Muller
        data[i++] = Math.round((offset[c]! + scale[n]! * z) * 100) / 100;
      }
    }
  }
  return new Tensor(data, [N, C, H, W]);
}

/** Statistic k of flat element i under a channels-first plan: k = n·(C/groupSize) + g per sample, else g. */
export function statisticOf(i: number, plan: NormPlan): number {
  const { C, S } = plan.shape;
  const n = Math.floor(i / (C * S)), c = Math.floor((i % (C * S)) / S), g = Math.floor(c / plan.cfg.groupSize);
  return plan.cfg.perSample ? n * (C / plan.cfg.groupSize) + g : g;
}

function groupLabel(method: BlockMethod, k: number, shape: BlockShape, G: number): string {
  const { C } = shape;
  switch (method) {
    case "batch_norm":
      return `channel ${k} (all samples)`;
    case "layer_norm":
      return `sample ${k} (all channels)`;
    case "instance_norm":
      return `sample ${Math.floor(k / C)}, channel ${k % C}`;
    case "group_norm": {
      const per = C / G, g = k % G;
      return `sample ${Math.floor(k / G)}, group ${g} (channels ${g * per}${per > 1 ? `–${g * per + per - 1}` : ""})`;
    }
    case "switchable_norm":
      return `sample ${Math.floor(k / C)}, channel ${k % C}`;
  }
}

/** Softmax logits whose softmax is w / Σw (weights ≤ 0 get a tiny share). */
function logits(w: readonly number[]): number[] {
  return w.map((v) => Math.log(Math.max(v, 1e-12)));
}

/**
 * Runs `method` on x with normkit (float64, training mode, weight 1 and bias 0): the output, the
 * statistics of every group and which group each (n, c) belongs to. Throws normkit's own errors
 * (e.g. BatchNorm with one value per channel) for the caller to show.
 */
export function computeBlock(
  x: Tensor,
  method: BlockMethod,
  o: { groups?: number; switchWeights?: SwitchWeights; switchVariance?: "paper" | "reference" } = {},
): BlockResult {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const shape = { N, C, H, W };
  const statOfNC = new Int32Array(N * C);
  if (method === "switchable_norm") {
    const sn = new SwitchableNorm2d({ numFeatures: C, dtype: "float64", variance: o.switchVariance ?? "paper" });
    const sw = o.switchWeights ?? { mean: [1, 1, 1], variance: [1, 1, 1] };
    sn.meanWeight.value.data.set(logits(sw.mean));
    sn.varWeight.value.data.set(logits(sw.variance));
    const y = sn.forward(x);
    const st = sn.lastStatistics()!;
    const groups: GroupStats[] = [];
    for (let i = 0; i < N * C; i++) {
      statOfNC[i] = i;
      groups.push({ index: i, label: groupLabel(method, i, shape, 0), count: H * W, mean: st.mean[i]!, variance: st.variance[i]! });
    }
    return { method, shape, statOfNC, groups, y: y.data as Float64Array, switchable: st };
  }
  const G = o.groups ?? 1;
  const layer =
    method === "batch_norm" ? new BatchNorm2d({ numFeatures: C, dtype: "float64", trackRunningStats: false })
    : method === "layer_norm" ? new LayerNorm({ normalizedShape: [C, H, W], dtype: "float64" })
    : method === "instance_norm" ? new InstanceNorm2d({ numFeatures: C, dtype: "float64" })
    : new GroupNorm({ numGroups: G, numChannels: C, dtype: "float64" });
  const plan = layer.statisticsPlan(x);
  const y = layer.forward(x);
  const K = engine.numStats(plan.shape, plan.cfg);
  const mean = new Float64Array(K), variance = new Float64Array(K);
  engine.momentsTS(x.data, plan.shape, plan.cfg, mean, variance);
  const count = engine.statCount(plan.shape, plan.cfg);
  for (let i = 0; i < N * C; i++) statOfNC[i] = statisticOf(i * H * W, plan);
  const groups: GroupStats[] = [];
  for (let k = 0; k < K; k++) groups.push({ index: k, label: groupLabel(method, k, shape, G), count, mean: mean[k]!, variance: variance[k]! });
  return { method, shape, statOfNC, groups, y: y.data as Float64Array, switchable: null };
}

/** Which (n, c) share the statistic of (n0, c0): for Switchable Norm, the IN, LN and BN sets it mixes. */
export function sharingSets(r: BlockResult, n0: number, c0: number): { shared: (n: number, c: number) => boolean; ln: (n: number, c: number) => boolean; bn: (n: number, c: number) => boolean } {
  const C = r.shape.C;
  const k = r.statOfNC[n0 * C + c0]!;
  const none = () => false;
  if (r.method !== "switchable_norm") return { shared: (n, c) => r.statOfNC[n * C + c] === k, ln: none, bn: none };
  return { shared: (n, c) => n === n0 && c === c0, ln: (n) => n === n0, bn: (_n, c) => c === c0 };
}
