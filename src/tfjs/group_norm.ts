/**
 * GroupNormalization, InstanceNormalization and RMSNormalization as tf.layers: one statistics op,
 * as in normkit's engine — x viewed as [A, M, G, Cg] (A the rows that never share a statistic, G the
 * groups, M·Cg the values of one group), each (a, g) normalised over M and Cg, the affine per
 * (g, cg). GroupNorm is the view [N, spatial, G, C/G]; InstanceNorm is G = C; RMSNorm is
 * [rows, 1, 1, K] without centring. Forward and backward are written in tf ops under
 * tf.customGrad (every backend), or computed by normkit's kernels on the cpu backend when
 * `useNormkitKernels` is set.
 *
 *   forward:  mu = mean(x), var = mean((x − mu)²), rstd = 1/√(var + eps), x̂ = (x − mu)·rstd,
 *             y = x̂·γ + β                              (RMS: mu = 0)
 *   backward: g = dy·γ;  dx = rstd·(g − mean(g) − x̂·mean(g·x̂))   (RMS: without mean(g))
 *             dγ = Σ dy·x̂, dβ = Σ dy   (over A and M)
 */
import { ConfigError, ShapeError } from "../errors.js";
import * as F from "../functional.js";
import {
  ConfigDict, GradFn, Identifier, Kwargs, LayerArgs, Shape, WeightOptions, baseArgs, checkFinite, customOp, fromNk, getInitializer, normkitKernelsHere,
  oneShape, oneTensor, positiveAxis, tf, toNk, weightArgs, weightConfig, weightOptions, withAxesAtEnd,
} from "./common.js";

type LayerVariable = ReturnType<tf.layers.Layer["addWeight"]>;

/** The statistics op in tf ops: x4 [A, M, G, Cg]; gamma, beta of G·Cg values or absent. */
function statsOpTf(center: boolean, hasGamma: boolean, hasBeta: boolean, eps: number): (...inputs: tf.Tensor[]) => tf.Tensor {
  return customOp((inputs, save) => {
    const x = inputs[0]!;
    const [, , G, Cg] = x.shape as [number, number, number, number];
    const gamma = hasGamma ? inputs[1]! : null;
    const beta = hasBeta ? inputs[hasGamma ? 2 : 1]! : null;
    const aff = (t: tf.Tensor) => tf.reshape(t, [1, 1, G, Cg]);
    const xc = center ? tf.sub(x, tf.mean(x, [1, 3], true)) : x;
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), [1, 3], true), eps));
    const xhat = tf.mul(xc, rstd);
    let y = gamma ? tf.mul(xhat, aff(gamma)) : xhat;
    if (beta) y = tf.add(y, aff(beta));
    save(gamma ? [xhat, rstd, gamma] : [xhat, rstd]);
    const gradFunc: GradFn = (dy, saved) => {
      const [xh, r, gm] = saved as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
      const g = gm ? tf.mul(dy, aff(gm)) : dy;
      let inner = tf.sub(g, tf.mul(xh, tf.mean(tf.mul(g, xh), [1, 3], true)));
      if (center) inner = tf.sub(inner, tf.mean(g, [1, 3], true));
      const grads = [tf.mul(r, inner)];
      if (hasGamma) grads.push(tf.reshape(tf.sum(tf.mul(dy, xh), [0, 1]), [G * Cg]));
      if (hasBeta) grads.push(tf.reshape(tf.sum(dy, [0, 1]), [G * Cg]));
      return grads;
    };
    return { value: y, gradFunc };
  });
}

/**
 * The same op computed by normkit (host arrays read with dataSync; the cpu backend only): GroupNorm
 * channels-last on [A, M, C] (F.groupNorm), or RMSNorm over the last axis of [A, K] (F.rmsNorm).
 */
function statsOpNormkit(center: boolean, hasGamma: boolean, hasBeta: boolean, eps: number): (...inputs: tf.Tensor[]) => tf.Tensor {
  return customOp((inputs) => {
    const x = inputs[0]!;
    const [A, M, G, Cg] = x.shape as [number, number, number, number];
    const C = G * Cg;
    const weight = hasGamma ? toNk(inputs[1]!) : null;
    const bias = hasBeta ? toNk(inputs[hasGamma ? 2 : 1]!) : null;
    let res: F.NormResult;
    if (center) {
      res = F.groupNorm(toNk(x, [A, M, C]), G, { weight, bias, eps, channelsLast: true });
    } else {
      if (M !== 1 || G !== 1 || hasBeta) throw new Error("normkit/tfjs: the uncentred op is RMSNorm's view [rows, 1, 1, K]");
      res = F.rmsNorm(toNk(x, [A, C]), [C], { weight, eps });
    }
    const y = fromNk(res.y, x.shape);
    const gradFunc: GradFn = (dy) => {
      const g = res.backward(toNk(dy, center ? [A, M, C] : [A, C]));
      const grads = [fromNk(g.dx, x.shape)];
      if (hasGamma) grads.push(fromNk(g.dweight!, [C]));
      if (hasBeta) grads.push(fromNk(g.dbias!, [C]));
      return grads;
    };
    return { value: y, gradFunc };
  });
}

/** The op for this call: normkit's kernels where asked for and the backend is cpu, else tf ops. */
export function statsOp(useNormkit: boolean, center: boolean, hasGamma: boolean, hasBeta: boolean, eps: number) {
  return (normkitKernelsHere(useNormkit) ? statsOpNormkit : statsOpTf)(center, hasGamma, hasBeta, eps);
}

/** Options every normkit/tfjs layer takes besides Keras' own. */
export interface NormkitOption {
  /**
   * On the cpu backend, compute forward and backward with normkit's own kernels (values read with
   * dataSync) instead of tf ops. Ignored on other backends. Not serialised (an execution choice, like
   * a backend): set the `useNormkitKernels` property of a loaded layer. Default false.
   */
  useNormkitKernels?: boolean;
}

export interface GroupNormalizationArgs extends LayerArgs, NormkitOption {
  /** Number of groups; -1 means one per channel (InstanceNorm). Must divide the channels. Default 32. */
  groups?: number;
  /** The channel axis. Default -1 (channels-last). */
  axis?: number;
  /** Added to the variance. Default 1e-3 (Keras). */
  epsilon?: number;
  /** Add β. Default true. */
  center?: boolean;
  /** Multiply by γ. Default true. */
  scale?: boolean;
  betaInitializer?: Identifier;
  gammaInitializer?: Identifier;
  betaRegularizer?: Identifier;
  gammaRegularizer?: Identifier;
  betaConstraint?: Identifier;
  gammaConstraint?: Identifier;
}

/**
 * Keras 3's `keras.layers.GroupNormalization` (the same class name and config keys): statistics per
 * sample over C/groups channels and every other non-batch axis; γ, β per channel.
 */
export class GroupNormalization extends tf.layers.Layer {
  static className = "GroupNormalization";
  groups: number;
  readonly axis: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  /** See {@link NormkitOption.useNormkitKernels}. */
  useNormkitKernels: boolean;
  protected readonly betaOptions: WeightOptions;
  protected readonly gammaOptions: WeightOptions;
  protected gamma: LayerVariable | null = null;
  protected beta: LayerVariable | null = null;
  /** The channel axis, positive, once built. */
  protected channelAxis = -1;

  constructor(args: GroupNormalizationArgs = {}) {
    super(baseArgs(args));
    const who = (this.constructor as typeof GroupNormalization).className;
    this.groups = args.groups ?? 32;
    if (!Number.isInteger(this.groups) || (this.groups < 1 && this.groups !== -1)) throw new ConfigError("groups", "a positive integer or -1", String(this.groups), who);
    this.axis = args.axis ?? -1;
    this.epsilon = checkFinite(args.epsilon ?? 1e-3, "epsilon", who);
    this.center = args.center ?? true;
    this.scale = args.scale ?? true;
    this.useNormkitKernels = args.useNormkitKernels ?? false;
    this.betaOptions = weightOptions(args.betaInitializer, args.betaRegularizer, args.betaConstraint, "zeros");
    this.gammaOptions = weightOptions(args.gammaInitializer, args.gammaRegularizer, args.gammaConstraint, "ones");
    this.supportsMasking = true;
  }

  /** The channel count and the checks of build (Keras' messages). */
  protected channels(inputShape: Shape): number {
    const who = this.getClassName();
    this.channelAxis = positiveAxis(this.axis, inputShape.length, who);
    const dim = inputShape[this.channelAxis];
    if (dim == null) throw new ShapeError("input", `a defined dimension at axis ${this.axis}`, `shape [${inputShape.join(", ")}]`, who);
    if (this.groups === -1) this.groups = dim;
    if (dim % this.groups !== 0) throw new ConfigError("groups", `a divisor of the number of channels (${dim})`, String(this.groups), who);
    return dim;
  }

  override build(inputShape: Shape | Shape[]): void {
    this.addAffine(this.channels(oneShape(inputShape)));
  }

  /** γ (with scale) and β (with center) of `dim` values; the layer is then built. */
  protected addAffine(dim: number): void {
    this.gamma = this.scale ? this.addWeight("gamma", [dim], "float32", ...weightArgs(this.gammaOptions)) : null;
    this.beta = this.center ? this.addWeight("beta", [dim], "float32", ...weightArgs(this.betaOptions)) : null;
    this.built = true;
  }

  /** The statistics op on x4 [A, M, G, Cg] with this layer's γ, β and epsilon. */
  protected normalize(x4: tf.Tensor): tf.Tensor {
    const op = statsOp(this.useNormkitKernels, true, !!this.gamma, !!this.beta, this.epsilon);
    const params = [this.gamma, this.beta].filter((v): v is LayerVariable => v !== null).map((v) => v.read());
    return op(x4, ...params);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      return withAxesAtEnd(oneTensor(inputs), [this.channelAxis], (xt) => {
        const C = xt.shape[xt.rank - 1]!;
        const N = xt.shape[0]!;
        const M = C === 0 || N === 0 ? 0 : xt.size / (N * C);
        return tf.reshape(this.normalize(tf.reshape(xt, [N, M, this.groups, C / this.groups])), xt.shape);
      });
    });
  }

  override getConfig(): ConfigDict {
    return {
      groups: this.groups,
      axis: this.axis,
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
      ...weightConfig({ beta: this.betaOptions, gamma: this.gammaOptions }),
      ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(GroupNormalization);

/** tensorflow_addons' registered name of the same layer (`Addons>GroupNormalization`). */
export class AddonsGroupNormalization extends GroupNormalization {
  static override className = "Addons>GroupNormalization";
}
tf.serialization.registerClass(AddonsGroupNormalization);

export interface InstanceNormalizationArgs extends Omit<GroupNormalizationArgs, "axis"> {
  /**
   * The channel axis: statistics per sample and channel over every other non-batch axis, γ and β per
   * channel. null (keras-contrib's `axis=None`): statistics per sample over every non-batch axis, one
   * scalar γ and β. Default -1.
   */
  axis?: number | null;
}

/**
 * InstanceNormalization as tensorflow_addons (`tfa.layers.InstanceNormalization`: GroupNormalization
 * with one group per channel, epsilon 1e-3) and keras-contrib (`axis=None` included) define it,
 * registered as `InstanceNormalization` (the name tfjs#626's keras-contrib models carry) and
 * `Addons>InstanceNormalization` (tfa's registered name, tfjs#4823). A `groups` in the config is
 * ignored (tfa writes -1 or the channel count).
 */
export class InstanceNormalization extends GroupNormalization {
  static override className = "InstanceNormalization";
  /** null: keras-contrib's axis=None. */
  readonly instanceAxis: number | null;

  constructor(args: InstanceNormalizationArgs = {}) {
    const { axis, ...rest } = args;
    super({ ...rest, groups: -1, axis: axis ?? -1 });
    this.instanceAxis = axis === undefined ? -1 : axis;
  }

  override build(inputShape: Shape | Shape[]): void {
    if (this.instanceAxis !== null) return super.build(inputShape);
    this.addAffine(1);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    if (this.instanceAxis !== null) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const x = oneTensor(inputs);
      const N = x.shape[0]!;
      return tf.reshape(this.normalize(tf.reshape(x, [N, N === 0 ? 0 : x.size / N, 1, 1])), x.shape);
    });
  }

  override getConfig(): ConfigDict {
    const { groups: _groups, ...rest } = super.getConfig();
    return { ...rest, axis: this.instanceAxis };
  }
}
tf.serialization.registerClass(InstanceNormalization);

/** tensorflow_addons' registered name (`Addons>InstanceNormalization`, tfjs#4823). */
export class AddonsInstanceNormalization extends InstanceNormalization {
  static override className = "Addons>InstanceNormalization";
}
tf.serialization.registerClass(AddonsInstanceNormalization);

export interface RMSNormalizationArgs extends LayerArgs, NormkitOption {
  /** The axis or axes normalised over (none of them the batch axis). Default -1. */
  axis?: number | number[];
  /** Added to mean(x²). Default 1e-6 (Keras). */
  epsilon?: number;
}

/**
 * Keras 3's `keras.layers.RMSNormalization`: y = x · rsqrt(mean(x², axis) + epsilon) · scale, with a
 * learned `scale` of the shape of the normalised axes (initialised to ones). Config keys `axis`,
 * `epsilon` (Keras' own).
 */
export class RMSNormalization extends tf.layers.Layer {
  static className = "RMSNormalization";
  readonly axis: number | number[];
  readonly epsilon: number;
  /** See {@link NormkitOption.useNormkitKernels}. */
  useNormkitKernels: boolean;
  private scaleWeight: LayerVariable | null = null;
  private axes: number[] = [];

  constructor(args: RMSNormalizationArgs = {}) {
    super(baseArgs(args));
    this.axis = args.axis ?? -1;
    this.epsilon = checkFinite(args.epsilon ?? 1e-6, "epsilon", "RMSNormalization");
    this.useNormkitKernels = args.useNormkitKernels ?? false;
  }

  override build(inputShape: Shape | Shape[]): void {
    const s = oneShape(inputShape);
    const list = Array.isArray(this.axis) ? this.axis : [this.axis];
    this.axes = [...new Set(list.map((a) => positiveAxis(a, s.length, "RMSNormalization")))].sort((a, b) => a - b);
    const shape = this.axes.map((a) => {
      const d = s[a];
      if (d == null) throw new ShapeError("input", `a defined dimension at axis ${a}`, `shape [${s.join(", ")}]`, "RMSNormalization");
      return d;
    });
    this.scaleWeight = this.addWeight("scale", shape, "float32", getInitializer("ones", "ones") as never, undefined, true);
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs);
      const K = this.axes.reduce((k, a) => k * x.shape[a]!, 1);
      const R = K === 0 ? 0 : x.size / K;
      const op = statsOp(this.useNormkitKernels, false, true, false, this.epsilon);
      return withAxesAtEnd(x, this.axes, (xt) => tf.reshape(op(tf.reshape(xt, [R, 1, 1, K]), tf.reshape(this.scaleWeight!.read(), [K])), xt.shape));
    });
  }

  override getConfig(): ConfigDict {
    return { axis: this.axis, epsilon: this.epsilon, ...super.getConfig() };
  }
}
tf.serialization.registerClass(RMSNormalization);
