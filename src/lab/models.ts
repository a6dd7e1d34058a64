/**
 * The lab's two networks (PROTOCOL.md), built from normkit's layers with one normalisation method.
 *
 * cnn: Conv(1→8, 3×3, pad 1) → norm → ReLU → MaxPool 2 → Conv(8→16, 3×3, pad 1) → norm → ReLU →
 *      MaxPool 2 → Flatten → Linear(784→10)
 * mlp: Flatten → Linear(784→256) → norm → ReLU → Linear(256→256) → norm → ReLU → Linear(256→10)
 *
 * The norm of each method (C channels; "spatial" for the cnn):
 * | method          | cnn                                    | mlp                                |
 * |-----------------|----------------------------------------|------------------------------------|
 * | none            | identity                               | identity                           |
 * | batch_norm      | BatchNorm2d(C)                         | BatchNorm1d(C)                     |
 * | group_norm      | GroupNorm(4, C)                        | GroupNorm(16, C)                   |
 * | layer_norm      | GroupNorm(1, C) (per-channel affine)   | LayerNorm(C)                       |
 * | instance_norm   | InstanceNorm2d(C, affine)              | — (no spatial positions)           |
 * | switchable_norm | SwitchableNorm2d (IN+LN+BN, mom. 0.9)  | SwitchableNorm1d (LN+BN, 0.997)    |
 * | rms_norm        | RMSNorm([C, H, W]) (elementwise weight, as nn.RMSNorm([C,H,W]))    | RMSNorm(C) |
 * | weight_norm     | no norm layer; every Conv2d and Linear (the classifier too) wrapped in WeightNorm (dim 0) |
 * | cosine_norm     | no norm layer; the hidden Conv2d / Linear layers replaced by CosineConv2d / CosineLinear (no bias, eps 1e-12); the classifier stays a plain Linear, since cosine logits in [−1, 1] cannot express confident predictions |
 *
 * Initialisation is PyTorch's default with one seeded stream (mulberry32(seed)), drawn layer by layer
 * in network order: Conv/Linear weight then bias, U(−1/√fan_in, 1/√fan_in); norm weight 1, bias 0;
 * Switchable Norm's mixing logits 1. Norm layers draw nothing, so every method of one seed starts
 * from the same conv/linear weights (as PyTorch's reference, where norms consume no random numbers).
 */
import { ConfigError } from "../errors.js";
import { Conv2d } from "../nn/conv2d.js";
import type { Tensor } from "../tensor.js";
import { CosineConv2d, CosineLinear } from "../nn/cosine_norm.js";
import { Linear } from "../nn/linear.js";
import { Module } from "../nn/module.js";
import { BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, Normalization, RMSNorm } from "../nn/normalization.js";
import { SwitchableNorm, SwitchableNorm1d, SwitchableNorm2d } from "../nn/switchable_norm.js";
import { WeightNorm } from "../nn/weight_norm.js";
import { Flatten, MaxPool2d, ReLU, ReuseOutputs, Sequential } from "../nn/basic.js";
import { mulberry32 } from "../rng.js";
import type { DType } from "../tensor.js";

/** Storage type of the lab's networks (see buildModel). */
export const LAB_DTYPE: DType = "float32";

export const ARCHS = ["cnn", "mlp"] as const;
export type Arch = (typeof ARCHS)[number];

/** The methods of the default run, in the order results list them. */
export const DEFAULT_METHODS = ["none", "batch_norm", "group_norm", "layer_norm", "instance_norm", "switchable_norm"] as const;
/** Methods added only on request (--methods). */
export const EXTRA_METHODS = ["rms_norm", "weight_norm", "cosine_norm"] as const;
export const ALL_METHODS = [...DEFAULT_METHODS, ...EXTRA_METHODS] as const;
export type Method = (typeof ALL_METHODS)[number];

/** Whether a method applies to an architecture (instance_norm needs spatial positions). */
export function methodApplies(arch: Arch, method: Method): boolean {
  return !(arch === "mlp" && method === "instance_norm");
}

export function isArch(s: string): s is Arch {
  return (ARCHS as readonly string[]).includes(s);
}
export function isMethod(s: string): s is Method {
  return (ALL_METHODS as readonly string[]).includes(s);
}

/** The network input: one 28×28 grey image per sample. */
export const INPUT_SHAPE = [1, 28, 28] as const;

/** The norm after a conv (c channels, h×w positions) or a linear (c features, h = w = 0). */
function makeNorm(method: Method, c: number, spatial: boolean, hw: number, dtype: DType): Module | null {
  switch (method) {
    case "none":
    case "weight_norm":
    case "cosine_norm":
      return null;
    case "batch_norm":
      return spatial ? new BatchNorm2d({ numFeatures: c, dtype }) : new BatchNorm1d({ numFeatures: c, dtype });
    case "group_norm":
      return new GroupNorm({ numGroups: spatial ? 4 : 16, numChannels: c, dtype });
    case "layer_norm":
      return spatial ? new GroupNorm({ numGroups: 1, numChannels: c, dtype }) : new LayerNorm({ normalizedShape: c, dtype });
    case "instance_norm":
      if (!spatial) throw new ConfigError("method", "a method that applies to the mlp (instance_norm needs spatial positions)", method, "model");
      return new InstanceNorm2d({ numFeatures: c, affine: true, dtype });
    case "switchable_norm":
      return spatial ? new SwitchableNorm2d({ numFeatures: c, dtype }) : new SwitchableNorm1d({ numFeatures: c, dtype });
    case "rms_norm":
      return new RMSNorm({ normalizedShape: spatial ? [c, hw, hw] : c, dtype });
  }
}

export interface Model {
  readonly arch: Arch;
  readonly method: Method;
  readonly net: Sequential;
  /** Each layer's index in the PyTorch reference network (docs/pytorch_reference.py): see referenceStateDict. */
  readonly refIndex: readonly number[];
  /** The Switchable Norm layers in network order (empty for other methods). */
  readonly switchable: SwitchableNorm[];
}

/** Builds `arch` with `method`, initialised from `seed` (see the module comment). */
export function buildModel(arch: Arch, method: Method, seed: number, dtype: DType = LAB_DTYPE): Model {
  if (!isArch(arch)) throw new ConfigError("arch", `one of ${ARCHS.join(", ")}`, String(arch), "model");
  if (!isMethod(method)) throw new ConfigError("method", `one of ${ALL_METHODS.join(", ")}`, String(method), "model");
  if (!methodApplies(arch, method)) throw new ConfigError("method", `a method that applies to the ${arch}`, method, "model");
  const rng = mulberry32(seed);
  const layers: Module[] = [];
  const switchable: SwitchableNorm[] = [];
  // Conv2d and Linear take caller outputs: reuse them across steps, as the norm layers' below
  const wrap = (m: Conv2d | Linear): Module => (method === "weight_norm" ? new WeightNorm(m) : new ReuseOutputs(m));
  const conv = (cin: number, cout: number): Module =>
    method === "cosine_norm"
      ? new CosineConv2d({ inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1, rng, dtype })
      : wrap(new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1, rng, dtype }));
  const linear = (i: number, o: number, hidden: boolean): Module =>
    method === "cosine_norm" && hidden ? new CosineLinear({ inFeatures: i, outFeatures: o, eps: 1e-12, rng, dtype }) : wrap(new Linear({ inFeatures: i, outFeatures: o, rng, dtype }));
  const norm = (c: number, spatial: boolean, hw: number) => {
    const n = makeNorm(method, c, spatial, hw, dtype);
    if (n) {
      // Norm layers take caller outputs: reuse them across steps (no fresh activation per call).
      layers.push(n instanceof Normalization || n instanceof SwitchableNorm ? new ReuseOutputs(n) : n);
      if (n instanceof SwitchableNorm) switchable.push(n);
    }
  };
  if (arch === "cnn") {
    layers.push(conv(1, 8));
    norm(8, true, 28);
    layers.push(new ReLU({ dtype }), new MaxPool2d({ kernelSize: 2, dtype }));
    layers.push(conv(8, 16));
    norm(16, true, 14);
    layers.push(new ReLU({ dtype }), new MaxPool2d({ kernelSize: 2, dtype }), new Flatten({ dtype }));
    layers.push(linear(16 * 7 * 7, 10, false));
  } else {
    layers.push(new Flatten({ dtype }));
    layers.push(linear(784, 256, true));
    norm(256, false, 0);
    layers.push(new ReLU({ dtype }));
    layers.push(linear(256, 256, true));
    norm(256, false, 0);
    layers.push(new ReLU({ dtype }));
    layers.push(linear(256, 10, false));
  }
  return { arch, method, net: new Sequential(layers), switchable, refIndex: refIndexOf(arch, method) };
}

/**
 * Layer i of the network is layer refIndex[i] of the PyTorch reference, whose norm slots are always
 * there (nn.Identity for a method without a norm layer: none, weight_norm, cosine_norm).
 */
function refIndexOf(arch: Arch, method: Method): number[] {
  // the reference's layer list, "norm" marking the norm slots
  const ref = arch === "cnn"
    ? ["conv", "norm", "relu", "pool", "conv", "norm", "relu", "pool", "flatten", "linear"]
    : ["flatten", "linear", "norm", "relu", "linear", "norm", "relu", "linear"];
  const hasNorm = !(method === "none" || method === "weight_norm" || method === "cosine_norm");
  const out: number[] = [];
  ref.forEach((kind, i) => {
    if (kind !== "norm" || hasNorm) out.push(i);
  });
  return out;
}

/**
 * The model's state dict under the PyTorch reference network's key names (`4.weight` for the
 * second conv of the cnn whatever the method): what `normkit lab --save` writes, and what
 * docs/pytorch_reference.py --eval-saved loads.
 */
export function referenceStateDict(model: Model): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(model.net.stateDict())) {
    const dot = k.indexOf(".");
    const i = Number(k.slice(0, dot));
    out[`${model.refIndex[i]}${k.slice(dot)}`] = t;
  }
  return out;
}
