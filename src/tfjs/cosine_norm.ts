/**
 * Cosine normalisation (Luo et al. 2018) as tf.layers: the pre-activation is the cosine between the
 * weight vector and the input vector, in [−1, 1]; no bias (follow with tf.layers.activation for one).
 * Normalisation is F.normalize's: u = t / max(‖t‖, epsilon) — normkit's CosineLinear / CosineConv2d,
 * channels-last, with TensorFlow.js kernels ([in, units], [kh, kw, in, filters]).
 *
 *   normalize backward (normkit's normalizeBackward):
 *     ‖t‖ > eps: dt = (du − u · Σ du·u) / ‖t‖      else: dt = du / eps (the clamp passes no gradient)
 *
 * CosineDense: y = x̂ · Ŵ, x̂ the rows of x over the last axis, Ŵ the kernel's columns.
 * CosineConv2D: y = conv2d(x, Ŵ) / max(‖c_p‖, eps), ‖c_p‖ the norm of output position p's receptive
 * field (zero padding included) = √conv2d(x², ones) — normkit's WebGPU formulation, no im2col. Its
 * backward is TensorFlow.js' own gradient of those ops, with the clamp written as
 * √max(‖c_p‖², eps²) (the same value; below eps no gradient reaches the norm, as in normkit).
 */
import { ConfigError } from "../errors.js";
import { checkPositiveInt } from "../nn/validate.js";
import {
  ConfigDict, GradFn, Identifier, Kwargs, LayerArgs, Shape, WeightOptions, baseArgs, checkFinite, customOp, oneShape, oneTensor, tf, weightArgs,
  weightConfig, weightOptions,
} from "./common.js";

type LayerVariable = ReturnType<tf.layers.Layer["addWeight"]>;

/** u = t / max(‖t‖, eps) along `axis` (kept), with normkit's adjoint. */
export function normalizeOp(axis: number, eps: number): (t: tf.Tensor) => tf.Tensor {
  const op = customOp((inputs, save) => {
    const t = inputs[0]!;
    const n = tf.sqrt(tf.sum(tf.square(t), axis, true));
    const d = tf.maximum(n, eps);
    const u = tf.div(t, d);
    // mask = 1 where the norm is above eps (it then has a gradient), 0 where the clamp holds
    const mask = tf.cast(tf.greater(n, eps), "float32");
    save([u, d, mask]);
    const gradFunc: GradFn = (du, saved) => {
      const [su, sd, m] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      return [tf.div(tf.sub(du, tf.mul(tf.mul(su, tf.sum(tf.mul(du, su), axis, true)), m)), sd)];
    };
    return { value: u, gradFunc };
  });
  return (t) => op(t);
}

/** Ŵ: the kernel with each output's column (every axis but the last, flattened) of unit norm, u = t / max(‖t‖, eps). */
function unitColumns(kernel: tf.Tensor, eps: number): tf.Tensor {
  const out = kernel.shape[kernel.rank - 1]!;
  return tf.reshape(normalizeOp(0, eps)(tf.reshape(kernel, [kernel.size / out, out])), kernel.shape);
}

export interface CosineDenseArgs extends LayerArgs {
  /** Output units. Required. */
  units: number;
  /** F.normalize's eps for inputs and kernel columns. Default 1e-12 (PyTorch's). */
  epsilon?: number;
  /** Default "glorotUniform" (Keras' Dense). */
  kernelInitializer?: Identifier;
  kernelRegularizer?: Identifier;
  kernelConstraint?: Identifier;
}

/** y[…, o] = cos(x[…, :], kernel[:, o]). */
export class CosineDense extends tf.layers.Layer {
  static className = "CosineDense";
  readonly units: number;
  readonly epsilon: number;
  private readonly kernelOptions: WeightOptions;
  private kernel: LayerVariable | null = null;

  constructor(args: CosineDenseArgs) {
    super(baseArgs(args));
    const who = "CosineDense";
    this.units = checkPositiveInt(args?.units, "units", who);
    this.epsilon = checkFinite(args.epsilon ?? 1e-12, "epsilon", who);
    this.kernelOptions = weightOptions(args.kernelInitializer, args.kernelRegularizer, args.kernelConstraint, "glorotUniform");
  }

  override build(inputShape: Shape | Shape[]): void {
    const s = oneShape(inputShape);
    const inF = s[s.length - 1];
    if (inF == null) throw new ConfigError("input", "a defined last axis", `shape [${s.join(", ")}]`, "CosineDense");
    this.kernel = this.addWeight("kernel", [inF, this.units], "float32", ...weightArgs(this.kernelOptions));
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const s = oneShape(inputShape);
    return [...s.slice(0, -1), this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs);
      const inF = x.shape[x.rank - 1]!;
      const xhat = normalizeOp(1, this.epsilon)(tf.reshape(x, [-1, inF]));
      const what = unitColumns(this.kernel!.read(), this.epsilon);
      return tf.reshape(tf.matMul(xhat, what), [...x.shape.slice(0, -1), this.units]);
    });
  }

  override getConfig(): ConfigDict {
    return {
      units: this.units,
      epsilon: this.epsilon,
      ...weightConfig({ kernel: this.kernelOptions }),
      ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(CosineDense);

export interface CosineConv2DArgs extends LayerArgs {
  filters: number;
  kernelSize: number | [number, number];
  /** Default 1. */
  strides?: number | [number, number];
  /** Keras' "valid" or "same" (zero padding). Default "valid". */
  padding?: "valid" | "same";
  /** F.normalize's eps for filters and receptive fields. Default 1e-12 (PyTorch's). */
  epsilon?: number;
  kernelInitializer?: Identifier;
  kernelRegularizer?: Identifier;
  kernelConstraint?: Identifier;
}

const pair = (v: number | number[], name: string): [number, number] => {
  const p = typeof v === "number" ? [v, v] : v;
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= 1)) throw new ConfigError(name, "a positive integer or a pair of them", JSON.stringify(v), "CosineConv2D");
  return [p[0]!, p[1]!];
};

/** y[n, p, o] = cos(filter o, receptive field p of x[n]), channels-last ([N, H, W, C]). */
export class CosineConv2D extends tf.layers.Layer {
  static className = "CosineConv2D";
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: "valid" | "same";
  readonly epsilon: number;
  private readonly kernelOptions: WeightOptions;
  private kernel: LayerVariable | null = null;

  constructor(args: CosineConv2DArgs) {
    super(baseArgs(args));
    const who = "CosineConv2D";
    this.filters = checkPositiveInt(args?.filters, "filters", who);
    this.kernelSize = pair(args.kernelSize, "kernelSize");
    this.strides = pair(args.strides ?? 1, "strides");
    const p = args.padding ?? "valid";
    if (p !== "valid" && p !== "same") throw new ConfigError("padding", '"valid" or "same"', String(p), who);
    this.padding = p;
    this.epsilon = checkFinite(args.epsilon ?? 1e-12, "epsilon", who);
    this.kernelOptions = weightOptions(args.kernelInitializer, args.kernelRegularizer, args.kernelConstraint, "glorotUniform");
  }

  override build(inputShape: Shape | Shape[]): void {
    const s = oneShape(inputShape);
    if (s.length !== 4 || s[3] == null) throw new ConfigError("input", "[N, H, W, C] with C defined", `shape [${s.join(", ")}]`, "CosineConv2D");
    this.kernel = this.addWeight("kernel", [...this.kernelSize, s[3], this.filters], "float32", ...weightArgs(this.kernelOptions));
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const s = oneShape(inputShape);
    const out = (d: number | null, i: 0 | 1) => {
      if (d == null) return null;
      return this.padding === "same" ? Math.ceil(d / this.strides[i]) : Math.floor((d - this.kernelSize[i]) / this.strides[i]) + 1;
    };
    return [s[0]!, out(s[1]!, 0), out(s[2]!, 1), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs) as tf.Tensor4D;
      const k = this.kernel!.read();
      const [kh, kw, inC] = k.shape as [number, number, number, number];
      const what = unitColumns(k, this.epsilon) as tf.Tensor4D;
      const z = tf.conv2d(x, what, this.strides, this.padding);
      const q = tf.conv2d(tf.square(x), tf.ones([kh, kw, inC, 1]) as tf.Tensor4D, this.strides, this.padding);
      return tf.div(z, tf.sqrt(tf.maximum(q, this.epsilon * this.epsilon)));
    });
  }

  override getConfig(): ConfigDict {
    return {
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      epsilon: this.epsilon,
      ...weightConfig({ kernel: this.kernelOptions }),
      ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(CosineConv2D);
