/**
 * What the normkit/tfjs layers share: the TensorFlow.js import (a peer dependency of this entry
 * point only), Keras' config vocabulary (initializers, regularizers and constraints parsed by
 * TensorFlow.js' own code, Keras 3's DTypePolicy objects, axes) and the bridge to normkit's own
 * kernels on the cpu backend (`useNormkitKernels`).
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError, ShapeError } from "../errors.js";
import { Tensor as NkTensor } from "../tensor.js";

export { tf };

/** tf.layers.Layer's constructor argument (TensorFlow.js does not export the type by name). */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
export type Shape = (number | null)[];
export type Kwargs = Record<string, unknown>;
export type ConfigDict = tf.serialization.ConfigDict;

/** A Keras initializer, regularizer or constraint as TensorFlow.js holds it. */
export interface Serializable {
  getClassName(): string;
  getConfig(): ConfigDict;
}
/** An identifier ("zeros", "l2", …), a `{className, config}` dict, or an instance. */
export type Identifier = string | ConfigDict | Serializable | null | undefined;

interface ParsedSlots {
  betaInitializer: Serializable;
  betaRegularizer: Serializable | undefined;
  betaConstraint: Serializable | undefined;
}

/**
 * Keras identifiers parsed exactly as TensorFlow.js' own layers parse them: through a
 * BatchNormalization's constructor (given a name, so no layer-name counter moves; nothing is built).
 */
function parseSlots(init: Identifier, reg: Identifier, con: Identifier): ParsedSlots {
  const args = { name: "normkit_config_parser", betaInitializer: init ?? "zeros", betaRegularizer: reg ?? undefined, betaConstraint: con ?? undefined };
  return tf.layers.batchNormalization(args as unknown as Parameters<typeof tf.layers.batchNormalization>[0]) as unknown as ParsedSlots;
}
export function getInitializer(id: Identifier, fallback: string): Serializable {
  return parseSlots(id ?? fallback, null, null).betaInitializer;
}
export function getRegularizer(id: Identifier): Serializable | null {
  return id == null ? null : (parseSlots(null, id, null).betaRegularizer ?? null);
}
export function getConstraint(id: Identifier): Serializable | null {
  return id == null ? null : (parseSlots(null, null, id).betaConstraint ?? null);
}
/** `{className, config}` (TensorFlow.js' serializeKerasObject), null for none. */
export function serialize(obj: Serializable | null): ConfigDict | null {
  return obj == null ? null : { className: obj.getClassName(), config: obj.getConfig() };
}

/** A Keras weight's three options (`<name>Initializer`, `<name>Regularizer`, `<name>Constraint`), parsed. */
export interface WeightOptions {
  initializer: Serializable;
  regularizer: Serializable | null;
  constraint: Serializable | null;
}
export function weightOptions(init: Identifier, reg: Identifier, con: Identifier, fallbackInit: string): WeightOptions {
  return { initializer: getInitializer(init, fallbackInit), regularizer: getRegularizer(reg), constraint: getConstraint(con) };
}
/** addWeight's initializer, regularizer, trainable (true) and constraint arguments. */
export function weightArgs(o: WeightOptions): [never, never, true, never] {
  return [o.initializer as never, o.regularizer as never, true, o.constraint as never];
}
/**
 * The config entries of named weights' options, serialised in Keras' order: every `<name>Initializer`,
 * then every `<name>Regularizer`, then every `<name>Constraint`; an option a weight does not take is left out.
 */
export function weightConfig(weights: Record<string, Partial<WeightOptions>>): ConfigDict {
  const out: ConfigDict = {};
  for (const [part, suffix] of [["initializer", "Initializer"], ["regularizer", "Regularizer"], ["constraint", "Constraint"]] as const) {
    for (const [name, o] of Object.entries(weights)) {
      const v = o[part];
      if (v !== undefined) out[`${name}${suffix}`] = serialize(v);
    }
  }
  return out;
}

/**
 * A layer's base arguments with Keras 3's dtype policy (`{className: "DTypePolicy", config: {name}}`)
 * turned into the dtype name TensorFlow.js expects.
 */
export function baseArgs<T extends LayerArgs>(args: T | undefined): T {
  const a = { ...(args ?? {}) } as T & { dtype?: unknown };
  const d = a.dtype as { config?: { name?: unknown } } | string | undefined;
  if (d != null && typeof d === "object") {
    const name = d.config?.name;
    if (name !== "float32") throw new ConfigError("dtype", 'float32 (a DTypePolicy named "float32")', JSON.stringify(d), "normkit/tfjs");
    a.dtype = "float32";
  }
  return a;
}

/** A positive axis for rank `rank` (Keras: negative counts from the end). */
export function positiveAxis(axis: number, rank: number, who: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 1 || a >= rank) {
    throw new ConfigError("axis", `an axis of a rank-${rank} input other than the batch axis 0`, String(axis), who);
  }
  return a;
}

/** The permutation moving `axes` (positive, sorted) to the end, the others keeping their order. */
export function toEndPerm(rank: number, axes: readonly number[]): number[] | null {
  const rest = [...Array(rank).keys()].filter((i) => !axes.includes(i));
  const perm = [...rest, ...axes];
  return perm.every((p, i) => p === i) ? null : perm;
}
export function inversePerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}
/** f of x with `axes` (positive, sorted) moved to the end, its result moved back. */
export function withAxesAtEnd(x: tf.Tensor, axes: readonly number[], f: (xt: tf.Tensor) => tf.Tensor): tf.Tensor {
  const perm = toEndPerm(x.rank, axes);
  return perm ? tf.transpose(f(tf.transpose(x, perm)), inversePerm(perm)) : f(x);
}

export function checkFinite(v: unknown, name: string, who: string, min = 0): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) throw new ConfigError(name, `a finite number ≥ ${min}`, String(v), who);
  return v;
}

/** Whether this call runs normkit's own kernels: asked for, and the cpu backend is the one computing. */
export function normkitKernelsHere(asked: boolean): boolean {
  return asked && tf.getBackend() === "cpu";
}
/** A tf tensor's values as a normkit float32 tensor of `shape` (a copy: dataSync). */
export function toNk(t: tf.Tensor, shape: readonly number[] = t.shape): NkTensor {
  return new NkTensor(Float32Array.from(t.dataSync() as Float32Array), shape);
}
/** A normkit tensor as a float32 tf tensor of `shape`. */
export function fromNk(t: NkTensor, shape: readonly number[] = t.shape): tf.Tensor {
  return tf.tensor(t.data instanceof Float32Array ? t.data : Float32Array.from(t.data), [...shape], "float32");
}

/** The single input tensor of a call. */
export function oneTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) throw new ShapeError("inputs", "one input tensor", `${inputs.length} tensors`, "normkit/tfjs");
    return inputs[0]!;
  }
  return inputs;
}
/** The single input shape of computeOutputShape / build. */
export function oneShape(s: Shape | Shape[]): Shape {
  return Array.isArray(s[0]) ? (s as Shape[])[0]! : (s as Shape);
}

/** tf.customGrad with the loose types its overloads need here. */
export type GradFn = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
export function customOp(f: (inputs: tf.Tensor[], save: (ts: tf.Tensor[]) => void) => { value: tf.Tensor; gradFunc: GradFn }): (...inputs: tf.Tensor[]) => tf.Tensor {
  const g = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as (ts: tf.Tensor[]) => void;
    return f(args.slice(0, -1) as tf.Tensor[], save);
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return g as unknown as (...inputs: tf.Tensor[]) => tf.Tensor;
}
