/**
 * Keras 3's InputLayer config for TensorFlow.js 4.22: Keras 3 writes the input shape as
 * `batch_shape` (Keras 2 wrote `batch_input_shape`), which TensorFlow.js' InputLayer does not read
 * ("An InputLayer should be passed either a `batchInputShape` or an `inputShape`", tfjs#8494), so no
 * Keras 3 model loads, whatever its layers. Importing normkit/tfjs registers, under the class name
 * "InputLayer", a subclass of TensorFlow.js' own InputLayer that reads `batch_shape` as
 * `batch_input_shape` and is otherwise the same class (a Keras 2 config loads as before; saving
 * writes `batch_input_shape`, as TensorFlow.js always has).
 */
import { tf } from "./common.js";

type InputLayerCtor = new (args: Record<string, unknown>) => tf.layers.Layer;

const TfInputLayer = tf.layers.inputLayer({ inputShape: [1], name: "normkit_input_layer_probe" }).constructor as unknown as InputLayerCtor & { className: string };

/** TensorFlow.js' InputLayer, reading Keras 3's `batch_shape` (camel-cased `batchShape` by the loader). */
export class Keras3InputLayer extends TfInputLayer {
  static override className = "InputLayer";
  constructor(args: Record<string, unknown>) {
    const { batchShape, ...rest } = args ?? {};
    super(batchShape != null && rest["batchInputShape"] == null && rest["inputShape"] == null ? { ...rest, batchInputShape: batchShape } : rest);
  }
}
tf.serialization.registerClass(Keras3InputLayer as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
