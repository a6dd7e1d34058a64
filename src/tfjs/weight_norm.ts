/**
 * WeightNormalization (Salimans & Kingma 2016) as a tf.layer wrapping a Dense or Conv2D, as
 * tensorflow_addons' `WeightNormalization` (without its data-dependent init): the wrapped layer's
 * kernel is re-parametrised as W = g · v / ‖v‖, the norm over every axis but the last (the output
 * units / filters of a TensorFlow.js kernel: [in, units], [kh, kw, in, filters]), one g per output.
 * Learnable: `v` (initialised by the wrapped layer's kernel initialiser), `g` (initialised to ‖v‖, so
 * the wrapper starts as the plain layer, as PyTorch's weight_norm and tfa without data_init) and the
 * wrapped layer's `bias`. The wrapped layer is the configuration only: its own weights are never built.
 *
 *   forward:  n = ‖v‖ per output, v̂ = v / n, W = g · v̂
 *   backward: dg = Σ dW · v̂,  dv = (g / n) · (dW − v̂ · Σ dW · v̂)   (normkit's weightNormBackward)
 */
import { ConfigError } from "../errors.js";
import { ConfigDict, GradFn, Kwargs, LayerArgs, Shape, baseArgs, customOp, oneShape, oneTensor, tf } from "./common.js";

type LayerVariable = ReturnType<tf.layers.Layer["addWeight"]>;

/** The kernel from (v, g): the tf-ops form of normkit's weightNorm with one group per output (the last axis). */
export function weightNormKernel(): (v: tf.Tensor, g: tf.Tensor) => tf.Tensor {
  const op = customOp((inputs, save) => {
    const [v, g] = inputs as [tf.Tensor, tf.Tensor];
    const axes = [...Array(v.rank - 1).keys()];
    const n = tf.sqrt(tf.sum(tf.square(v), axes, true));
    const vhat = tf.div(v, n);
    save([vhat, n, g]);
    const gradFunc: GradFn = (dW, saved) => {
      const [vh, nn, gg] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const s = tf.sum(tf.mul(dW, vh), axes, true);
      return [tf.mul(tf.div(gg, nn), tf.sub(dW, tf.mul(vh, s))), tf.reshape(s, gg.shape)];
    };
    return { value: tf.mul(vhat, g), gradFunc };
  });
  return (v, g) => op(v, g);
}

export interface WeightNormalizationArgs extends LayerArgs {
  /** The wrapped layer: a tf.layers.dense or tf.layers.conv2d (not yet built). */
  layer: tf.layers.Layer;
  /** tfa's data-dependent initialisation: not implemented (false only). Default false. */
  dataInit?: boolean;
}

interface InnerDense {
  units: number;
  useBias: boolean;
  kernelInitializer: unknown;
  biasInitializer: unknown;
  activation: { apply(x: tf.Tensor): tf.Tensor };
}
interface InnerConv extends InnerDense {
  filters: number;
  kernelSize: number[];
  strides: number[];
  padding: "valid" | "same";
  dataFormat: "channelsLast" | "channelsFirst";
  dilationRate: number[];
}

export class WeightNormalization extends tf.layers.Layer {
  static className = "WeightNormalization";
  readonly layer: tf.layers.Layer;
  private readonly kind: "Dense" | "Conv2D";
  private v: LayerVariable | null = null;
  private g: LayerVariable | null = null;
  private bias: LayerVariable | null = null;

  constructor(args: WeightNormalizationArgs) {
    const { layer, dataInit, ...rest } = args;
    super(baseArgs(rest));
    const who = "WeightNormalization";
    if (!layer || !(layer instanceof tf.layers.Layer)) throw new ConfigError("layer", "a tf.layers.Layer (Dense or Conv2D)", String(layer), who);
    const kind = layer.getClassName();
    if (kind !== "Dense" && kind !== "Conv2D") throw new ConfigError("layer", "a Dense or Conv2D layer", kind, who);
    if (dataInit) throw new ConfigError("dataInit", "false (the data-dependent initialisation is not implemented)", "true", who);
    this.layer = layer;
    this.kind = kind;
  }

  private get inner(): InnerConv {
    return this.layer as unknown as InnerConv;
  }

  override build(inputShape: Shape | Shape[]): void {
    const s = oneShape(inputShape);
    const L = this.inner;
    let kernelShape: number[], out: number;
    if (this.kind === "Dense") {
      out = L.units;
      kernelShape = [s[s.length - 1]!, out];
    } else {
      if (s.length !== 4) throw new ConfigError("input", "rank 4 for Conv2D", `rank ${s.length}`, "WeightNormalization");
      out = L.filters;
      const inC = L.dataFormat === "channelsFirst" ? s[1]! : s[3]!;
      kernelShape = [L.kernelSize[0]!, L.kernelSize[1]!, inC, out];
    }
    this.v = this.addWeight("v", kernelShape, "float32", L.kernelInitializer as never, undefined, true);
    this.g = this.addWeight("g", [out], "float32", tf.initializers.ones() as never, undefined, true);
    // g = ‖v‖: the wrapper starts as the plain layer
    this.g.write(tf.tidy(() => tf.reshape(tf.sqrt(tf.sum(tf.square(this.v!.read()), [...Array(kernelShape.length - 1).keys()])), [out])));
    this.bias = L.useBias ? this.addWeight("bias", [out], "float32", L.biasInitializer as never, undefined, true) : null;
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return this.layer.computeOutputShape(inputShape);
  }

  /** The effective kernel g · v / ‖v‖ (a new tensor). */
  kernel(): tf.Tensor {
    return tf.tidy(() => weightNormKernel()(this.v!.read(), this.g!.read()));
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs);
      const L = this.inner;
      const W = weightNormKernel()(this.v!.read(), this.g!.read());
      let y: tf.Tensor;
      if (this.kind === "Dense") {
        const inF = x.shape[x.rank - 1]!;
        y = tf.reshape(tf.matMul(tf.reshape(x, [-1, inF]), W), [...x.shape.slice(0, -1), L.units]);
        if (this.bias) y = tf.add(y, this.bias.read());
      } else {
        const nchw = L.dataFormat === "channelsFirst";
        const dil = L.dilationRate.length === 1 ? [L.dilationRate[0]!, L.dilationRate[0]!] : L.dilationRate;
        y = tf.conv2d(x as tf.Tensor4D, W as tf.Tensor4D, L.strides as [number, number], L.padding, nchw ? "NCHW" : "NHWC", dil as [number, number]);
        if (this.bias) y = tf.add(y, nchw ? tf.reshape(this.bias.read(), [1, L.filters, 1, 1]) : this.bias.read());
      }
      return L.activation.apply(y);
    });
  }

  override getConfig(): ConfigDict {
    return { layer: { className: this.layer.getClassName(), config: this.layer.getConfig() }, dataInit: false, ...super.getConfig() };
  }

  /** Rebuilds the wrapped layer from its `{className, config}` through TensorFlow.js' registry. */
  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict): T {
    const spec = config["layer"] as { className: string; config: ConfigDict };
    const entry = tf.serialization.SerializationMap.getMap().classNameMap[spec.className];
    if (!entry) throw new ConfigError("layer", "a registered layer class", spec.className, "WeightNormalization.fromConfig");
    const [innerCls, innerFrom] = entry;
    const layer = innerFrom(innerCls, spec.config);
    const { layer: _l, ...rest } = config;
    return new cls({ ...rest, layer } as never);
  }
}
tf.serialization.registerClass(WeightNormalization);
