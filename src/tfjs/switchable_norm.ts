/**
 * SwitchableNormalization as a tf.layer (Luo et al., 2019), channels-last ([N, H, W, C] or
 * [N, D, H, W, C]): learned softmax weights blend instance, layer and (with usingBn) batch
 * statistics, all derived from the per-instance ones by the law of total variance on centred terms
 * — normkit's SwitchableNorm (src/nn/switchable_norm.ts) with Keras' names and defaults:
 *
 *   mu_in, var_in per (n, c) over the spatial positions (var_in × S/(S−1) with variance "reference")
 *   mu_ln = mean_c mu_in, var_ln = mean_c(var_in + (mu_in − mu_ln)²); BN the same over n
 *   mu = Σ_k softmax(mean_weight)_k mu_k, var = Σ_k softmax(var_weight)_k var_k
 *   y = (x − mu) / √(var + epsilon) · γ + β
 *
 * Training (kwargs.training) uses the batch's BN statistics and updates moving_mean /
 * moving_variance with `momentum` the weight of the OLD value (Keras' and the official code's
 * convention); inference uses the moving statistics in the BN branch. The backward is normkit's
 * (src/kernels/ts/switchable.ts) in tf ops under tf.customGrad; on the cpu backend
 * `useNormkitKernels` runs normkit's SwitchableNorm2d / 3d itself.
 */
import { ConfigError, ShapeError } from "../errors.js";
import { SwitchableNorm2d, SwitchableNorm3d } from "../nn/switchable_norm.js";
import type { NormkitOption } from "./group_norm.js";
import {
  ConfigDict, GradFn, Identifier, Kwargs, LayerArgs, Serializable, Shape, WeightOptions, baseArgs, checkFinite, customOp, fromNk, getInitializer,
  normkitKernelsHere, oneShape, oneTensor, tf, toNk, weightArgs, weightConfig, weightOptions,
} from "./common.js";

type LayerVariable = ReturnType<tf.layers.Layer["addWeight"]>;

export interface SwitchableNormalizationArgs extends LayerArgs, NormkitOption {
  /** Added to the mixed variance. Default 1e-3 (Keras). */
  epsilon?: number;
  /** Weight of the OLD value in the moving averages. Default 0.99 (Keras' BatchNormalization). */
  momentum?: number;
  /** Exponential moving averages (true) or the official code's accumulation (false). Default true. */
  usingMovingAverage?: boolean;
  /** Include the batch-statistics branch. Default true. */
  usingBn?: boolean;
  /** "reference" (the official code: unbiased instance variance) or "paper" (biased). Default "reference". */
  variance?: "reference" | "paper";
  gammaInitializer?: Identifier;
  betaInitializer?: Identifier;
  /** Initialiser of the softmax logits mean_weight and var_weight. Default "ones" (equal weights). */
  weightsInitializer?: Identifier;
  movingMeanInitializer?: Identifier;
  /** Default "zeros" (as the official code's running_var). */
  movingVarianceInitializer?: Identifier;
  gammaRegularizer?: Identifier;
  betaRegularizer?: Identifier;
  gammaConstraint?: Identifier;
  betaConstraint?: Identifier;
}

interface Blend {
  fIn: number;
  eps: number;
  hasBn: boolean;
  bnFromBatch: boolean;
}

/** The moments the blend starts from, per (n, c) [N,1,C], per n [N,1,1], per c [1,1,C]. */
function components(x: tf.Tensor, fIn: number) {
  const muIn = tf.mean(x, 1, true);
  const vIn = tf.mul(tf.mean(tf.square(tf.sub(x, muIn)), 1, true), fIn);
  const muLn = tf.mean(muIn, 2, true);
  const vLn = tf.mean(tf.add(vIn, tf.square(tf.sub(muIn, muLn))), 2, true);
  const muBn = tf.mean(muIn, 0, true);
  const vBn = tf.mean(tf.add(vIn, tf.square(tf.sub(muIn, muBn))), 0, true);
  return { muIn, vIn, muLn, vLn, muBn, vBn };
}

/**
 * The op on x3 [N, S, C] (inputs x3, γ, β, mean_weight, var_weight; the moving statistics, when the BN
 * branch uses them, are constants of the closure).
 */
function switchOpTf(o: Blend, running: [tf.Tensor, tf.Tensor] | null): (...inputs: tf.Tensor[]) => tf.Tensor {
  return customOp((inputs, save) => {
    const [x, gamma, beta, mw, vw] = inputs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const [N, S, C] = x.shape as [number, number, number];
    const c = components(x, o.fIn);
    const muBn = o.bnFromBatch || !running ? c.muBn : tf.reshape(running[0], [1, 1, C]);
    const vBn = o.bnFromBatch || !running ? c.vBn : tf.reshape(running[1], [1, 1, C]);
    const a = tf.softmax(mw), b = tf.softmax(vw);
    const [aIn, aLn, aBn] = tf.unstack(a), [bIn, bLn, bBn] = tf.unstack(b);
    let mean = tf.add(tf.mul(aIn!, c.muIn), tf.mul(aLn!, c.muLn));
    let v = tf.add(tf.mul(bIn!, c.vIn), tf.mul(bLn!, c.vLn));
    if (o.hasBn) {
      mean = tf.add(mean, tf.mul(aBn!, muBn));
      v = tf.add(v, tf.mul(bBn!, vBn));
    }
    const rstd = tf.rsqrt(tf.add(v, o.eps));
    const xhat = tf.mul(tf.sub(x, mean), rstd);
    const y = tf.add(tf.mul(xhat, gamma), beta);
    save([x, xhat, rstd, gamma, a, b, c.muIn, c.vIn, c.muLn, c.vLn, muBn, vBn]);
    const gradFunc: GradFn = (dy, saved) => {
      const [sx, sxhat, r, g0, sa, sb, muIn, vIn, muLn, vLn, mBn, vB] = saved as tf.Tensor[];
      const g = tf.mul(dy, g0!);
      // per (n, c): dL/dmu = −rstd Σ_s g, dL/dvar = −rstd²/2 Σ_s g x̂
      const gMu = tf.mul(tf.neg(r!), tf.sum(g, 1, true));
      const gV = tf.mul(tf.mul(-0.5, tf.square(r!)), tf.sum(tf.mul(g, sxhat!), 1, true));
      // the softmax logits: d z_j = p_j (dp_j − Σ_k p_k dp_k)
      const mus = [muIn!, muLn!, ...(o.hasBn ? [mBn!] : [])], vs = [vIn!, vLn!, ...(o.hasBn ? [vB!] : [])];
      const dA = tf.stack(mus.map((m) => tf.sum(tf.mul(gMu, m))));
      const dB = tf.stack(vs.map((m) => tf.sum(tf.mul(gV, m))));
      const dMw = tf.mul(sa!, tf.sub(dA, tf.sum(tf.mul(sa!, dA))));
      const dVw = tf.mul(sb!, tf.sub(dB, tf.sum(tf.mul(sb!, dB))));
      // back to mu_in, var_in through LN (over c) and, from the batch, BN (over n)
      const [pIn, pLn, pBn] = tf.unstack(sa!), [qIn, qLn, qBn] = tf.unstack(sb!);
      const useBn = o.hasBn && o.bnFromBatch;
      const gMuLn = tf.mul(pLn!, tf.sum(gMu, 2, true)), gVLn = tf.mul(qLn!, tf.sum(gV, 2, true));
      let dMuIn = tf.add(tf.mul(pIn!, gMu), tf.div(tf.add(gMuLn, tf.mul(tf.mul(gVLn, 2), tf.sub(muIn!, muLn!))), C));
      let dVIn = tf.add(tf.mul(qIn!, gV), tf.div(gVLn, C));
      if (useBn) {
        const gMuBn = tf.mul(pBn!, tf.sum(gMu, 0, true)), gVBn = tf.mul(qBn!, tf.sum(gV, 0, true));
        dMuIn = tf.add(dMuIn, tf.div(tf.add(gMuBn, tf.mul(tf.mul(gVBn, 2), tf.sub(muIn!, mBn!))), N));
        dVIn = tf.add(dVIn, tf.div(gVBn, N));
      }
      dVIn = tf.mul(dVIn, o.fIn);
      // dx = rstd g + dmu_in / S + 2 dvar_in (x − mu_in) / S
      const dx = tf.add(tf.mul(r!, g), tf.div(tf.add(dMuIn, tf.mul(tf.mul(dVIn, 2), tf.sub(sx!, muIn!))), S));
      return [dx, tf.sum(tf.mul(dy, sxhat!), [0, 1]), tf.sum(dy, [0, 1]), dMw, dVw];
    };
    return { value: y, gradFunc };
  });
}

/** normkit's layer of one call, which the call's gradient function closes over. */
interface NkRun {
  layer: SwitchableNorm2d | SwitchableNorm3d;
}

export class SwitchableNormalization extends tf.layers.Layer {
  static className = "SwitchableNormalization";
  readonly epsilon: number;
  readonly momentum: number;
  readonly usingMovingAverage: boolean;
  readonly usingBn: boolean;
  readonly variance: "reference" | "paper";
  /** See {@link NormkitOption.useNormkitKernels}. */
  useNormkitKernels: boolean;
  /** γ's and β's Keras options. */
  private readonly affine: Record<"gamma" | "beta", WeightOptions>;
  /** The initialisers of the weights that take no regularizer or constraint. */
  private readonly inits: Record<"weights" | "movingMean" | "movingVariance", Serializable>;
  private gamma: LayerVariable | null = null;
  private beta: LayerVariable | null = null;
  private meanWeight: LayerVariable | null = null;
  private varWeight: LayerVariable | null = null;
  private movingMean: LayerVariable | null = null;
  private movingVariance: LayerVariable | null = null;

  constructor(args: SwitchableNormalizationArgs = {}) {
    super(baseArgs(args));
    const who = "SwitchableNormalization";
    this.epsilon = checkFinite(args.epsilon ?? 1e-3, "epsilon", who);
    this.momentum = checkFinite(args.momentum ?? 0.99, "momentum", who);
    if (this.momentum > 1) throw new ConfigError("momentum", "a number in [0, 1]", String(this.momentum), who);
    this.usingMovingAverage = args.usingMovingAverage ?? true;
    this.usingBn = args.usingBn ?? true;
    const v = args.variance ?? "reference";
    if (v !== "reference" && v !== "paper") throw new ConfigError("variance", '"reference" or "paper"', String(v), who);
    this.variance = v;
    this.useNormkitKernels = args.useNormkitKernels ?? false;
    this.affine = {
      gamma: weightOptions(args.gammaInitializer, args.gammaRegularizer, args.gammaConstraint, "ones"),
      beta: weightOptions(args.betaInitializer, args.betaRegularizer, args.betaConstraint, "zeros"),
    };
    this.inits = {
      weights: getInitializer(args.weightsInitializer, "ones"),
      movingMean: getInitializer(args.movingMeanInitializer, "zeros"),
      movingVariance: getInitializer(args.movingVarianceInitializer, "zeros"),
    };
  }

  override build(inputShape: Shape | Shape[]): void {
    const s = oneShape(inputShape);
    const who = "SwitchableNormalization";
    if (s.length !== 4 && s.length !== 5) throw new ShapeError("input", "rank 4 ([N, H, W, C]) or 5 ([N, D, H, W, C])", `shape [${s.join(", ")}]`, who);
    const C = s[s.length - 1];
    if (C == null) throw new ShapeError("input", "a defined channel dimension (the last axis)", `shape [${s.join(", ")}]`, who);
    const k = this.usingBn ? 3 : 2;
    this.gamma = this.addWeight("gamma", [C], "float32", ...weightArgs(this.affine.gamma));
    this.beta = this.addWeight("beta", [C], "float32", ...weightArgs(this.affine.beta));
    this.meanWeight = this.addWeight("mean_weight", [k], "float32", this.inits.weights as never, undefined, true);
    this.varWeight = this.addWeight("var_weight", [k], "float32", this.inits.weights as never, undefined, true);
    if (this.usingBn) {
      this.movingMean = this.addWeight("moving_mean", [C], "float32", this.inits.movingMean as never, undefined, false);
      this.movingVariance = this.addWeight("moving_variance", [C], "float32", this.inits.movingVariance as never, undefined, false);
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs);
      const training = kwargs["training"] === true;
      const [N, C] = [x.shape[0]!, x.shape[x.rank - 1]!];
      const S = N * C === 0 ? 0 : x.size / (N * C);
      const who = "SwitchableNormalization";
      if (this.variance === "reference" && S < 2) throw new ShapeError("input", "more than 1 spatial position (the reference variance is unbiased)", `shape [${x.shape.join(", ")}]`, who);
      if (training && this.usingBn && N * S < 2) throw new ShapeError("input", "more than 1 value per channel when training", `shape [${x.shape.join(", ")}]`, who);
      const params = [this.gamma!, this.beta!, this.meanWeight!, this.varWeight!].map((v) => v.read());
      const running = this.usingBn ? ([this.movingMean!.read(), this.movingVariance!.read()] as [tf.Tensor, tf.Tensor]) : null;
      const blend: Blend = { fIn: this.variance === "reference" ? S / (S - 1) : 1, eps: this.epsilon, hasBn: this.usingBn, bnFromBatch: this.usingBn && training };
      if (normkitKernelsHere(this.useNormkitKernels)) return this.callNormkit(x, params, running, training);
      const x3 = tf.reshape(x, [N, S, C]);
      const y = tf.reshape(switchOpTf(blend, running)(x3, ...params), x.shape);
      if (blend.bnFromBatch) {
        const { muBn, vBn } = components(x3, blend.fIn);
        this.updateMoving(tf.reshape(muBn, [C]), tf.reshape(vBn, [C]));
      }
      return y;
    });
  }

  /** Moving statistics after a training batch: m·old + (1 − m)·batch, or the official accumulation. */
  private updateMoving(mu: tf.Tensor, v: tf.Tensor): void {
    const rm = this.movingMean!, rv = this.movingVariance!;
    const m = this.momentum;
    if (this.usingMovingAverage) {
      rm.write(tf.add(tf.mul(rm.read(), m), tf.mul(mu, 1 - m)));
      rv.write(tf.add(tf.mul(rv.read(), m), tf.mul(v, 1 - m)));
    } else {
      rm.write(tf.add(rm.read(), mu));
      rv.write(tf.add(rv.read(), tf.add(tf.square(mu), v)));
    }
  }

  /** normkit's SwitchableNorm2d / 3d (channels-last) on the cpu backend: forward, backward and the running update. */
  private callNormkit(x: tf.Tensor, params: tf.Tensor[], running: [tf.Tensor, tf.Tensor] | null, training: boolean): tf.Tensor {
    const C = x.shape[x.rank - 1]!;
    const opts = {
      numFeatures: C, eps: this.epsilon, momentum: this.momentum, usingMovingAverage: this.usingMovingAverage, usingBN: this.usingBn,
      variance: this.variance, channelsLast: true,
    };
    const run: NkRun = { layer: x.rank === 4 ? new SwitchableNorm2d(opts) : new SwitchableNorm3d(opts) };
    const op = customOp((inputs) => {
      const [xi, gamma, beta, mw, vw] = inputs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const sn = run.layer;
      sn.weight.value.data.set(gamma.dataSync());
      sn.bias.value.data.set(beta.dataSync());
      sn.meanWeight.value.data.set(mw.dataSync());
      sn.varWeight.value.data.set(vw.dataSync());
      if (running) {
        sn.runningMean!.data.set(running[0].dataSync());
        sn.runningVar!.data.set(running[1].dataSync());
      }
      sn.train(training);
      const y = fromNk(sn.forward(toNk(xi)));
      const gradFunc: GradFn = (dy) => {
        sn.zeroGrad();
        const dx = sn.backward(toNk(dy));
        return [fromNk(dx), fromNk(sn.weight.grad, [C]), fromNk(sn.bias.grad, [C]), fromNk(sn.meanWeight.grad), fromNk(sn.varWeight.grad)];
      };
      return { value: y, gradFunc };
    });
    const y = op(x, ...params);
    if (training && this.usingBn) {
      this.movingMean!.write(fromNk(run.layer.runningMean!, [C]));
      this.movingVariance!.write(fromNk(run.layer.runningVar!, [C]));
    }
    return y;
  }

  override getConfig(): ConfigDict {
    return {
      epsilon: this.epsilon,
      momentum: this.momentum,
      usingMovingAverage: this.usingMovingAverage,
      usingBn: this.usingBn,
      variance: this.variance,
      ...weightConfig({
        gamma: this.affine.gamma,
        beta: this.affine.beta,
        weights: { initializer: this.inits.weights },
        movingMean: { initializer: this.inits.movingMean },
        movingVariance: { initializer: this.inits.movingVariance },
      }),
      ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(SwitchableNormalization);
