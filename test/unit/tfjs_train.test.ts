// normkit/tfjs in real use, on the cpu backend in Node: for each layer family a small CNN trains one
// epoch with model.fit on the lab's MNIST split (loadMnistPackage: all 8,000 training digits, the
// 2,000 test digits; no shuffling, seeded initialisers), its loss falls and its test accuracy beats chance by far; it is saved
// (tf.io.withSaveHandler: the model.json topology through JSON text, and the weights), loaded
// with tf.loadLayersModel (tf.io.fromMemory) and predicts the same. The digits are average-pooled
// to 14×14 by the model's first layer.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { loadMnistPackage } from "../../src/lab/data.js";
import {
  CosineConv2D, CosineDense, GroupNormalization, InstanceNormalization, RMSNormalization, SwitchableNormalization, WeightNormalization,
  useNormkitKernels,
} from "../../src/tfjs/index.js";

// the lab's whole split: 8,000 training digits (one epoch: 125 steps of 64), 2,000 test digits
const TRAIN = 8000, TEST = 2000, BATCH = 64;

type Build = () => tf.layers.Layer[];
const conv = (filters = 8) => tf.layers.conv2d({ filters, kernelSize: 3, padding: "same", kernelInitializer: tf.initializers.heNormal({ seed: 1 }) });
const head = () => [tf.layers.maxPooling2d({ poolSize: 2 }), tf.layers.flatten(), tf.layers.dense({ units: 10, activation: "softmax", kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })];
const MODELS: [string, Build, string[]][] = [
  ["GroupNormalization", () => [conv(), new GroupNormalization({ groups: 4 }), tf.layers.reLU(), ...head()], ["GroupNormalization"]],
  ["InstanceNormalization", () => [conv(), new InstanceNormalization(), tf.layers.reLU(), ...head()], ["InstanceNormalization"]],
  ["RMSNormalization", () => [conv(), new RMSNormalization(), tf.layers.reLU(), ...head()], ["RMSNormalization"]],
  ["SwitchableNormalization", () => [conv(), new SwitchableNormalization(), tf.layers.reLU(), ...head()], ["SwitchableNormalization"]],
  ["WeightNormalization", () => [new WeightNormalization({ layer: conv(), name: "wn_conv" }), tf.layers.reLU(), tf.layers.maxPooling2d({ poolSize: 2 }), tf.layers.flatten(),
    new WeightNormalization({ layer: tf.layers.dense({ units: 10, activation: "softmax", kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }) })], ["WeightNormalization"]],
  ["CosineConv2D + CosineDense", () => [new CosineConv2D({ filters: 8, kernelSize: 3, padding: "same", kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }), tf.layers.reLU(),
    tf.layers.maxPooling2d({ poolSize: 2 }), tf.layers.flatten(), new CosineDense({ units: 32, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
    tf.layers.dense({ units: 10, activation: "softmax", kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) })], ["CosineConv2D", "CosineDense"]],
  ["GroupNormalization, normkit kernels", () => [conv(), new GroupNormalization({ groups: 4, useNormkitKernels: true }), tf.layers.reLU(), ...head()], ["GroupNormalization"]],
];

describe("normkit/tfjs: model.fit on the lab's MNIST, model.save, tf.loadLayersModel", () => {
  let xTrain: tf.Tensor4D, yTrain: tf.Tensor2D, xTest: tf.Tensor4D, yTest: tf.Tensor2D;
  before(async () => {
    await tf.setBackend("cpu");
    await tf.ready();
    const data = loadMnistPackage(); // [N, 1, 28, 28]: with one channel, the same bytes as NHWC [N, 28, 28, 1]
    xTrain = tf.tensor4d(data.train.x.subarray(0, TRAIN * 784), [TRAIN, 28, 28, 1]);
    yTrain = tf.oneHot(tf.tensor1d(Array.from(data.train.y.subarray(0, TRAIN)), "int32"), 10) as tf.Tensor2D;
    xTest = tf.tensor4d(data.test.x.subarray(0, TEST * 784), [TEST, 28, 28, 1]);
    yTest = tf.oneHot(tf.tensor1d(Array.from(data.test.y.subarray(0, TEST)), "int32"), 10) as tf.Tensor2D;
  });

  for (const [name, build, classes] of MODELS) {
    it(`${name}: one epoch (${TRAIN} digits), save, load, predict the same`, async () => {
      // 2×2 average pooling first (14×14 digits): a quarter of the work, so the seven models fit the time
      const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [28, 28, 1] }), tf.layers.averagePooling2d({ poolSize: 2 }), ...build()] });
      model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy", metrics: ["accuracy"] });
      const losses: number[] = [];
      const t0 = Date.now();
      await model.fit(xTrain, yTrain, {
        epochs: 1, batchSize: BATCH, shuffle: false, // (the split is already a random permutation; seeded initialisers: deterministic)
        callbacks: { onBatchEnd: async (_b, logs) => void losses.push(logs!["loss"] as number) },
      });
      const secs = (Date.now() - t0) / 1000;
      const [lossT, accT] = (model.evaluate(xTest, yTest) as tf.Scalar[]).map((t) => t.dataSync()[0]!);
      const first = losses.slice(0, 3).reduce((a, b) => a + b, 0) / 3, last = losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
      console.log(`# ${name}: ${losses.length} steps in ${secs.toFixed(1)} s, loss ${first.toFixed(3)} -> ${last.toFixed(3)}, test loss ${lossT!.toFixed(3)}, accuracy ${accT!.toFixed(3)} (${TEST} test digits)`);
      assert.equal(losses.length, TRAIN / BATCH);
      assert.ok(last < first, `the training loss did not fall: ${first} -> ${last}`);
      assert.ok(accT! > 0.4, `test accuracy ${accT} after one epoch (chance: 0.1)`);
      // training passed kwargs.training: Switchable Norm's moving statistics moved from their zeros
      for (const w of model.weights) if (/moving_mean/.test(w.name)) assert.ok(tf.max(tf.abs(w.read())).dataSync()[0]! > 1e-3, `${w.name} never updated`);

      // save: the topology through JSON text (as model.json), the weights as saved
      let saved: tf.io.ModelArtifacts | null = null;
      await model.save(tf.io.withSaveHandler(async (a) => {
        saved = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
      }));
      const art = saved! as tf.io.ModelArtifacts;
      const json = JSON.stringify(art.modelTopology);
      for (const c of classes) assert.ok(json.includes(`"class_name":"${c}"`), `model.json names ${c}`);
      const loaded = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: JSON.parse(json), weightSpecs: art.weightSpecs, weightData: art.weightData }));
      if (name.includes("normkit kernels")) assert.equal(useNormkitKernels(loaded), 1); // an execution choice, not in the config
      const sample = xTest.slice([0, 0, 0, 0], [64, 28, 28, 1]);
      const a = model.predict(sample) as tf.Tensor, b = loaded.predict(sample) as tf.Tensor;
      const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
      assert.ok(diff <= 1e-6, `loaded model predicts differently: max |Δ| = ${diff}`);
      assert.deepEqual(loaded.getWeights().map((w) => w.shape), model.getWeights().map((w) => w.shape));
      tf.dispose([a, b, sample]);
      model.dispose();
      loaded.dispose();
    });
  }
});
