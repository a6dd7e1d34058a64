/**
 * normkit for TensorFlow.js (`normkit/tfjs`): the normalisation layers TensorFlow.js lacks, as
 * tf.layers.Layer subclasses registered with tf.serialization.registerClass, so that model.fit trains
 * them and model.save / tf.loadLayersModel round-trip them. Channels-last and Keras' names, defaults
 * and config keys; forward and backward in tf ops under tf.customGrad on every backend, or normkit's
 * own kernels on the cpu backend (`useNormkitKernels`). `@tensorflow/tfjs` is a peer dependency of
 * this entry point only; the core (`normkit`) imports none of it.
 */
import { tf } from "./common.js";
import { AddonsGroupNormalization, AddonsInstanceNormalization, GroupNormalization, InstanceNormalization, RMSNormalization } from "./group_norm.js";
import type { GroupNormalizationArgs, InstanceNormalizationArgs, RMSNormalizationArgs } from "./group_norm.js";
import { SwitchableNormalization } from "./switchable_norm.js";
import type { SwitchableNormalizationArgs } from "./switchable_norm.js";
import { WeightNormalization } from "./weight_norm.js";
import type { WeightNormalizationArgs } from "./weight_norm.js";
import { CosineConv2D, CosineDense } from "./cosine_norm.js";
import type { CosineConv2DArgs, CosineDenseArgs } from "./cosine_norm.js";
import { Keras3InputLayer } from "./keras3.js";

export {
  GroupNormalization, AddonsGroupNormalization, InstanceNormalization, AddonsInstanceNormalization, RMSNormalization, SwitchableNormalization,
  WeightNormalization, CosineDense, CosineConv2D, Keras3InputLayer,
};
export type {
  GroupNormalizationArgs, InstanceNormalizationArgs, RMSNormalizationArgs, SwitchableNormalizationArgs, WeightNormalizationArgs, CosineDenseArgs,
  CosineConv2DArgs,
};
export type { NormkitOption } from "./group_norm.js";
export { weightNormKernel } from "./weight_norm.js";
export { normalizeOp } from "./cosine_norm.js";

/** Factories in tf.layers' style: `layers.groupNormalization({ groups: 4 })`. */
export const layers = {
  groupNormalization: (args?: GroupNormalizationArgs) => new GroupNormalization(args),
  instanceNormalization: (args?: InstanceNormalizationArgs) => new InstanceNormalization(args),
  rmsNormalization: (args?: RMSNormalizationArgs) => new RMSNormalization(args),
  switchableNormalization: (args?: SwitchableNormalizationArgs) => new SwitchableNormalization(args),
  weightNormalization: (args: WeightNormalizationArgs) => new WeightNormalization(args),
  cosineDense: (args: CosineDenseArgs) => new CosineDense(args),
  cosineConv2d: (args: CosineConv2DArgs) => new CosineConv2D(args),
};

/** The class names this entry point registers with tf.serialization (what a model.json may name). */
export const REGISTERED_CLASS_NAMES: readonly string[] = Object.freeze([
  GroupNormalization, AddonsGroupNormalization, InstanceNormalization, AddonsInstanceNormalization, RMSNormalization, SwitchableNormalization,
  WeightNormalization, CosineDense, CosineConv2D, Keras3InputLayer,
].map((c) => c.className));

/** Sets `useNormkitKernels` on every normkit/tfjs layer of a model (e.g. one just loaded); returns how many. */
export function useNormkitKernels(model: { layers: tf.layers.Layer[] }, on = true): number {
  let n = 0;
  for (const l of model.layers) {
    if ("useNormkitKernels" in l) {
      (l as { useNormkitKernels: boolean }).useNormkitKernels = on;
      n++;
    }
  }
  return n;
}
