/**
 * The normkit/tfjs layers against normkit's own layers: each case builds a tf.layer (channels-last),
 * gives its weights seeded values, and computes y and the gradients of Σ y·dy with respect to the
 * input and every trainable weight (tf.variableGrads: the layers' tf.customGrad backward); the
 * reference is normkit's layer in float64 on the same float32 values, NCHW (the tensors transposed
 * NHWC ↔ NCHW, kernels [kh, kw, in, out] ↔ [out, in, kh, kw]). Errors are
 * max |tfjs − normkit| / max(1, max |normkit|). Shared by the Node test (cpu backend) and the
 * browser test (webgl), which bundles this file into its page.
 */
import * as tf from "@tensorflow/tfjs";
import { GroupNorm, InstanceNorm2d, RMSNorm } from "../../src/nn/normalization.js";
import { SwitchableNorm2d } from "../../src/nn/switchable_norm.js";
import { Linear } from "../../src/nn/linear.js";
import { Conv2d } from "../../src/nn/conv2d.js";
import { WeightNorm } from "../../src/nn/weight_norm.js";
import { CosineConv2d, CosineLinear } from "../../src/nn/cosine_norm.js";
import type { Module } from "../../src/nn/module.js";
import { mulberry32 } from "../../src/rng.js";
import { Tensor } from "../../src/tensor.js";
import {
  CosineConv2D, CosineDense, GroupNormalization, InstanceNormalization, RMSNormalization, SwitchableNormalization, WeightNormalization,
} from "../../src/tfjs/index.js";

export interface CaseError {
  name: string;
  /** y, dx, d<weight>, and moving statistics after the call where the layer has them. */
  errs: Record<string, number>;
}

const TO_NCHW = [0, 3, 1, 2], TO_NHWC = [0, 2, 3, 1];
/** tfjs kernel [kh, kw, in, out] → normkit [out, in, kh, kw] and back; Dense [in, out] ↔ [out, in]. */
const K_TO_NK = [3, 2, 0, 1], K_FROM_NK = [2, 3, 1, 0];

function gauss(seed: number): () => number {
  const u = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}
function randT(shape: number[], seed: number, f: (v: number) => number = (v) => v): tf.Tensor {
  const g = gauss(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => f(g())), shape, "float32");
}
/** A tf tensor (optionally transposed) as a float64 normkit tensor. */
function nk(t: tf.Tensor, perm?: number[]): Tensor {
  const s = perm ? tf.transpose(t, perm) : t;
  const out = new Tensor(Float64Array.from(s.dataSync()), s.shape);
  if (s !== t) s.dispose();
  return out;
}
/** A normkit tensor as a tf tensor (optionally transposed), of `shape` before the transposition. */
function tfOf(t: Tensor, perm?: number[], shape: readonly number[] = t.shape): tf.Tensor {
  const a = tf.tensor(Float32Array.from(t.data), [...shape]);
  if (!perm) return a;
  const b = tf.transpose(a, perm);
  a.dispose();
  return b;
}
function err(got: tf.Tensor, want: tf.Tensor): number {
  if (got.shape.join() !== want.shape.join()) return Infinity;
  const g = got.dataSync(), w = want.dataSync();
  let scale = 1, worst = 0;
  for (let i = 0; i < w.length; i++) scale = Math.max(scale, Math.abs(w[i]!));
  for (let i = 0; i < w.length; i++) {
    const e = Math.abs(g[i]! - w[i]!);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst / scale;
}

const short = (name: string) => name.slice(name.lastIndexOf("/") + 1);

interface Ref {
  y: tf.Tensor;
  dx: tf.Tensor;
  grads: Record<string, tf.Tensor>;
  after?: Record<string, tf.Tensor>;
}
interface Case {
  name: string;
  make: (useNormkitKernels: boolean) => tf.layers.Layer;
  x: number[];
  training?: boolean;
  /** Value of weight `name` (its short name) before the call; default: seeded gaussian. */
  init?: (name: string, shape: number[], seed: number) => tf.Tensor;
  ref: (w: Record<string, tf.Tensor>, x: tf.Tensor, dy: tf.Tensor) => Ref;
}

/** Runs a normkit module on NCHW (perm) tensors: y, dx and the grads named by `names` (tf name → normkit param grad, transformed). */
function runNk(m: Module, x: tf.Tensor, dy: tf.Tensor, perm: { in?: number[]; out?: number[] }, grads: Record<string, (m: Module) => tf.Tensor>): Ref {
  const mod = m as Module & { forward(x: Tensor): Tensor; backward(dy: Tensor): Tensor };
  const y = mod.forward(nk(x, perm.in));
  const dx = mod.backward(nk(dy, perm.in));
  const g: Record<string, tf.Tensor> = {};
  for (const [k, f] of Object.entries(grads)) g[k] = f(m);
  return { y: tfOf(y, perm.out), dx: tfOf(dx, perm.out), grads: g };
}
const set = (t: Tensor, v: tf.Tensor, perm?: number[]) => t.data.set(nk(v, perm).data);

const CASES: Case[] = [
  {
    name: "GroupNormalization groups=4 [2,5,4,8]",
    make: (u) => new GroupNormalization({ groups: 4, useNormkitKernels: u }),
    x: [2, 5, 4, 8],
    ref: (w, x, dy) => {
      const m = new GroupNorm({ numGroups: 4, numChannels: 8, eps: 1e-3, dtype: "float64" });
      set(m.weight!.value, w["gamma"]!);
      set(m.bias!.value, w["beta"]!);
      return runNk(m, x, dy, { in: TO_NCHW, out: TO_NHWC }, { gamma: () => tfOf(m.weight!.grad), beta: () => tfOf(m.bias!.grad) });
    },
  },
  {
    name: "GroupNormalization axis=1 (channels-first) center=false [2,6,3,5]",
    make: (u) => new GroupNormalization({ groups: 3, axis: 1, center: false, epsilon: 1e-5, useNormkitKernels: u }),
    x: [2, 6, 3, 5],
    ref: (w, x, dy) => {
      const m = new GroupNorm({ numGroups: 3, numChannels: 6, eps: 1e-5, dtype: "float64" });
      set(m.weight!.value, w["gamma"]!);
      return runNk(m, x, dy, {}, { gamma: () => tfOf(m.weight!.grad) });
    },
  },
  {
    name: "GroupNormalization groups=1 scale=false on [3,10] (LayerNorm over C)",
    make: (u) => new GroupNormalization({ groups: 1, scale: false, useNormkitKernels: u }),
    x: [3, 10],
    ref: (w, x, dy) => {
      const m = new GroupNorm({ numGroups: 1, numChannels: 10, eps: 1e-3, dtype: "float64" });
      set(m.bias!.value, w["beta"]!);
      return runNk(m, x, dy, {}, { beta: () => tfOf(m.bias!.grad) });
    },
  },
  {
    name: "InstanceNormalization [2,6,5,4]",
    make: (u) => new InstanceNormalization({ useNormkitKernels: u }),
    x: [2, 6, 5, 4],
    ref: (w, x, dy) => {
      const m = new InstanceNorm2d({ numFeatures: 4, eps: 1e-3, affine: true, dtype: "float64" });
      set(m.weight!.value, w["gamma"]!);
      set(m.bias!.value, w["beta"]!);
      return runNk(m, x, dy, { in: TO_NCHW, out: TO_NHWC }, { gamma: () => tfOf(m.weight!.grad), beta: () => tfOf(m.bias!.grad) });
    },
  },
  {
    name: "InstanceNormalization axis=null (keras-contrib) [2,3,3,4]",
    make: (u) => new InstanceNormalization({ axis: null, useNormkitKernels: u }),
    x: [2, 3, 3, 4],
    ref: (w, x, dy) => {
      // one statistic per sample, a scalar γ and β: GroupNorm(1) with every channel's weight = γ
      const m = new GroupNorm({ numGroups: 1, numChannels: 4, eps: 1e-3, dtype: "float64" });
      m.weight!.value.data.fill(w["gamma"]!.dataSync()[0]!);
      m.bias!.value.data.fill(w["beta"]!.dataSync()[0]!);
      const sum = (t: Tensor) => tf.tensor([Array.from(t.data).reduce((a, b) => a + b, 0)]);
      return runNk(m, x, dy, { in: TO_NCHW, out: TO_NHWC }, { gamma: () => sum(m.weight!.grad), beta: () => sum(m.bias!.grad) });
    },
  },
  {
    name: "RMSNormalization axis=-1 [3,7,16]",
    make: (u) => new RMSNormalization({ useNormkitKernels: u }),
    x: [3, 7, 16],
    ref: (w, x, dy) => {
      const m = new RMSNorm({ normalizedShape: [16], eps: 1e-6, dtype: "float64" });
      set(m.weight!.value, w["scale"]!);
      return runNk(m, x, dy, {}, { scale: () => tfOf(m.weight!.grad) });
    },
  },
  {
    name: "RMSNormalization axis=[1,2,3] [2,3,3,4]",
    make: (u) => new RMSNormalization({ axis: [1, 2, 3], epsilon: 1e-5, useNormkitKernels: u }),
    x: [2, 3, 3, 4],
    ref: (w, x, dy) => {
      const m = new RMSNorm({ normalizedShape: [3, 3, 4], eps: 1e-5, dtype: "float64" });
      set(m.weight!.value, w["scale"]!);
      return runNk(m, x, dy, {}, { scale: () => tfOf(m.weight!.grad, undefined, [3, 3, 4]) });
    },
  },
  ...[true, false].flatMap((training): Case[] => [
    {
      name: `SwitchableNormalization ${training ? "training" : "inference"} [4,5,5,6]`,
      make: (u) => new SwitchableNormalization({ useNormkitKernels: u }),
      x: [4, 5, 5, 6],
      training,
      init: (name, shape, seed) => (name === "moving_variance" ? randT(shape, seed, (v) => 0.5 + Math.abs(v)) : randT(shape, seed)),
      ref: (w, x, dy) => snRef(w, x, dy, training, {}),
    },
  ]),
  {
    name: "SwitchableNormalization usingBn=false variance=paper training [3,4,4,5]",
    make: (u) => new SwitchableNormalization({ usingBn: false, variance: "paper", epsilon: 1e-5, useNormkitKernels: u }),
    x: [3, 4, 4, 5],
    training: true,
    ref: (w, x, dy) => snRef(w, x, dy, true, { usingBN: false, variance: "paper", eps: 1e-5 }),
  },
  {
    name: "WeightNormalization(Dense units=4, relu) [5,7]",
    make: () => new WeightNormalization({ layer: tf.layers.dense({ units: 4, activation: "relu" }) }),
    x: [5, 7],
    ref: (w, x, dy) => {
      // relu after normkit's WeightNorm(Linear): y = relu(z), dz = dy · [z > 0]
      const m = new WeightNorm(new Linear({ inFeatures: 7, outFeatures: 4, dtype: "float64" }));
      set(m.v.value, w["v"]!, [1, 0]);
      set(m.g.value, w["g"]!);
      set(m.layer.bias!.value, w["bias"]!);
      const z = m.forward(nk(x));
      const zt = tfOf(z);
      const mask = tf.cast(tf.greater(zt, 0), "float32");
      const dx = m.backward(nk(tf.mul(dy, mask)));
      return {
        y: tf.relu(zt), dx: tfOf(dx),
        grads: { v: tfOf(m.v.grad, [1, 0]), g: tfOf(m.g.grad, undefined, [4]), bias: tfOf(m.layer.bias!.grad) },
      };
    },
  },
  {
    name: "WeightNormalization(Conv2D filters=3, 3x3, same) [2,6,6,2]",
    make: () => new WeightNormalization({ layer: tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: "same" }) }),
    x: [2, 6, 6, 2],
    ref: (w, x, dy) => {
      const m = new WeightNorm(new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, dtype: "float64" }));
      set(m.v.value, w["v"]!, K_TO_NK);
      set(m.g.value, w["g"]!);
      set(m.layer.bias!.value, w["bias"]!);
      return runNk(m, x, dy, { in: TO_NCHW, out: TO_NHWC }, {
        v: () => tfOf(m.v.grad, K_FROM_NK), g: () => tfOf(m.g.grad, undefined, [3]), bias: () => tfOf(m.layer.bias!.grad),
      });
    },
  },
  {
    name: "CosineDense units=5 [6,8]",
    make: () => new CosineDense({ units: 5 }),
    x: [6, 8],
    ref: (w, x, dy) => {
      const m = new CosineLinear({ inFeatures: 8, outFeatures: 5, eps: 1e-12, dtype: "float64" });
      set(m.weight.value, w["kernel"]!, [1, 0]);
      return runNk(m, x, dy, {}, { kernel: () => tfOf(m.weight.grad, [1, 0]) });
    },
  },
  ...([["same", 1, 1], ["valid", 2, 0]] as const).map(([padding, stride, pad]): Case => ({
    name: `CosineConv2D filters=4, 3x3, ${padding}, stride ${stride} [2,7,7,3]`,
    make: () => new CosineConv2D({ filters: 4, kernelSize: 3, padding, strides: stride }),
    x: [2, 7, 7, 3],
    ref: (w, x, dy) => {
      const m = new CosineConv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: pad, stride, eps: 1e-12, dtype: "float64" });
      set(m.weight.value, w["kernel"]!, K_TO_NK);
      return runNk(m, x, dy, { in: TO_NCHW, out: TO_NHWC }, { kernel: () => tfOf(m.weight.grad, K_FROM_NK) });
    },
  })),
];

function snRef(w: Record<string, tf.Tensor>, x: tf.Tensor, dy: tf.Tensor, training: boolean, o: { usingBN?: boolean; variance?: "paper"; eps?: number }): Ref {
  const C = x.shape[3]!;
  const m = new SwitchableNorm2d({ numFeatures: C, eps: o.eps ?? 1e-3, momentum: 0.99, usingBN: o.usingBN ?? true, variance: o.variance ?? "reference", dtype: "float64" });
  set(m.weight.value, w["gamma"]!);
  set(m.bias.value, w["beta"]!);
  set(m.meanWeight.value, w["mean_weight"]!);
  set(m.varWeight.value, w["var_weight"]!);
  if (m.runningMean) {
    set(m.runningMean, w["moving_mean"]!);
    set(m.runningVar!, w["moving_variance"]!);
  }
  m.train(training);
  const r = runNk(m, x, dy, { in: TO_NCHW, out: TO_NHWC }, {
    gamma: () => tfOf(m.weight.grad, undefined, [C]), beta: () => tfOf(m.bias.grad, undefined, [C]),
    mean_weight: () => tfOf(m.meanWeight.grad), var_weight: () => tfOf(m.varWeight.grad),
  });
  if (m.runningMean) r.after = { moving_mean: tfOf(m.runningMean, undefined, [C]), moving_variance: tfOf(m.runningVar!, undefined, [C]) };
  return r;
}

/**
 * Every case (those `only` keeps) on the current backend; `useNormkitKernels` asks the layers that
 * have it for normkit's kernels.
 */
export function runTfjsCases(useNormkitKernels = false, only: (name: string) => boolean = () => true): CaseError[] {
  const out: CaseError[] = [];
  CASES.forEach((c, ci) => {
    if (!only(c.name)) return;
    tf.tidy(() => {
      const layer = c.make(useNormkitKernels);
      const x = randT(c.x, 100 + ci);
      layer.build(c.x);
      (layer as unknown as { built: boolean }).built = true;
      const values: Record<string, tf.Tensor> = {};
      layer.weights.forEach((w, wi) => {
        const v = (c.init ?? ((_n, shape, seed) => randT(shape, seed)))(short(w.originalName), w.shape as number[], 1000 * ci + wi);
        w.write(v);
        values[short(w.originalName)] = v;
      });
      let y: tf.Tensor | null = null;
      const xv = tf.variable(x, true, `x_${ci}_${Math.random().toString(36).slice(2)}`);
      const trainable = layer.trainableWeights.map((w) => w.read());
      const yShape = layer.computeOutputShape(c.x) as number[];
      const dy = randT(yShape, 500 + ci);
      const { grads } = tf.variableGrads(() => {
        y = tf.keep(layer.apply(xv, { training: c.training ?? false }) as tf.Tensor);
        return tf.sum(tf.mul(y, dy)) as tf.Scalar;
      }, [xv, ...trainable] as tf.Variable[]);
      const ref = c.ref(values, x, dy);
      const errs: Record<string, number> = { y: err(y!, ref.y), dx: err(grads[xv.name]!, ref.dx) };
      layer.trainableWeights.forEach((w) => {
        const k = short(w.originalName);
        errs["d" + k] = ref.grads[k] ? err(grads[(w.read() as tf.Variable).name]!, ref.grads[k]!) : Infinity;
      });
      for (const [k, want] of Object.entries(ref.after ?? {})) {
        const wv = layer.weights.find((w) => short(w.originalName) === k)!;
        errs[k + " after"] = err(wv.read(), want);
      }
      xv.dispose();
      (y as tf.Tensor | null)?.dispose();
      for (const w of layer.weights) w.dispose();
      out.push({ name: c.name, errs });
    });
  });
  return out;
}
