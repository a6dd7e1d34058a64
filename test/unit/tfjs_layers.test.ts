// normkit/tfjs on the cpu backend in Node: every layer's output and gradients (tf.customGrad) against
// normkit's own layer (NCHW, float64) within 1e-5 of scale, with tf ops and with normkit's kernels
// (useNormkitKernels); the layers leak no tensors. The same cases run on webgl in headless Chromium
// (test/e2e/tfjs_browser.test.ts).
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { runTfjsCases } from "./tfjs_cases.js";
import { ConfigError } from "../../src/errors.js";
import * as F from "../../src/functional.js";
import { Tensor } from "../../src/tensor.js";
import { GroupNormalization, InstanceNormalization, RMSNormalization, SwitchableNormalization, useNormkitKernels } from "../../src/tfjs/index.js";

const TOL = 1e-5;

describe("normkit/tfjs layers on the cpu backend match normkit's layers", () => {
  before(async () => {
    await tf.setBackend("cpu");
    await tf.ready();
  });
  for (const normkit of [false, true]) {
    it(normkit ? "useNormkitKernels: true (normkit's kernels under tf.customGrad)" : "tf ops under tf.customGrad", () => {
      const before = tf.memory().numTensors;
      const results = runTfjsCases(normkit);
      assert.ok(results.length >= 14, `${results.length} cases`);
      const bad: string[] = [];
      let worst = 0;
      for (const r of results) {
        assert.ok(Object.keys(r.errs).length >= 3, `${r.name}: ${JSON.stringify(r.errs)}`);
        for (const [k, e] of Object.entries(r.errs)) {
          worst = Math.max(worst, e);
          if (!(e <= TOL)) bad.push(`${r.name}: ${k} ${e}`);
        }
      }
      console.log(`# ${results.length} cases, worst error ${worst.toExponential(2)}`);
      assert.deepEqual(bad, []);
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
    });
  }
});

describe("normkit/tfjs layers: options, configs, errors", () => {
  before(async () => {
    await tf.setBackend("cpu");
    await tf.ready();
  });

  it("useNormkitKernels runs normkit's kernels: the output is F.groupNorm's, bit for bit", () => {
    const x = tf.tensor(Float32Array.from({ length: 2 * 3 * 3 * 8 }, (_, i) => Math.cos(i * 0.41) * 3 + 1), [2, 3, 3, 8]);
    const on = new GroupNormalization({ groups: 2, useNormkitKernels: true }), off = new GroupNormalization({ groups: 2 });
    const yOn = (on.apply(x) as tf.Tensor).dataSync(), yOff = (off.apply(x) as tf.Tensor).dataSync();
    const want = F.groupNorm(new Tensor(Float32Array.from(x.dataSync()), [2, 9, 8]), 2, { weight: Tensor.full([8], 1), bias: Tensor.zeros([8]), eps: 1e-3, channelsLast: true }).y.data;
    assert.deepEqual(Array.from(yOn), Array.from(want));
    assert.ok(Array.from(yOff).some((v, i) => v !== want[i]), "tf ops and normkit's kernels round differently somewhere (else this test proves nothing)");
    // useNormkitKernels(model) sets the flag on a model's normkit/tfjs layers (a loaded model's, say)
    const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [3, 3, 8] }), off] });
    assert.equal(useNormkitKernels(model), 1);
    assert.equal(off.useNormkitKernels, true);
  });

  it("configs use Keras' keys and round-trip (initializers, regularizers, constraints included)", () => {
    const gn = new GroupNormalization({ groups: 4, epsilon: 1e-4, center: false, gammaInitializer: tf.initializers.constant({ value: 2 }), gammaRegularizer: tf.regularizers.l2({ l2: 0.01 }), gammaConstraint: tf.constraints.nonNeg() });
    const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [4, 4, 8] }), gn, new RMSNormalization({ axis: [-1] }), new InstanceNormalization({ axis: null }), new SwitchableNormalization({ momentum: 0.9 })] });
    const json = model.toJSON(null, false) as unknown as { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
    const layers = json.config.layers.slice(1);
    assert.deepEqual(layers.map((l) => l.class_name), ["GroupNormalization", "RMSNormalization", "InstanceNormalization", "SwitchableNormalization"]);
    const g = layers[0]!.config;
    for (const k of ["groups", "axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"]) assert.ok(k in g, k);
    assert.equal(g["groups"], 4);
    assert.equal(g["epsilon"], 1e-4);
    assert.equal((g["gamma_initializer"] as { class_name: string }).class_name, "Constant");
    assert.equal((g["gamma_regularizer"] as { class_name: string }).class_name, "L1L2");
    assert.equal((g["gamma_constraint"] as { class_name: string }).class_name, "NonNeg");
    assert.ok(!("use_normkit_kernels" in g), "an execution option, not in the config");
    assert.deepEqual(layers[1]!.config["axis"], [-1]);
    assert.equal(layers[1]!.config["epsilon"], 1e-6);
    assert.equal(layers[2]!.config["axis"], null);
    assert.equal(layers[3]!.config["momentum"], 0.9);
    assert.equal(layers[3]!.config["using_bn"], true);
    // γ starts at the initializer's 2; the regulariser is a loss of the model
    assert.ok((gn.getWeights()[0]!.dataSync() as Float32Array).every((v) => v === 2));
    assert.equal(gn.losses.length, 1);
    assert.equal(model.weights.filter((w) => /group_normalization/.test(w.name)).length, 1, "center=false: no beta");
  });

  it("defaults are Keras': GroupNormalization groups 32, epsilon 1e-3; RMSNormalization epsilon 1e-6; SwitchableNormalization epsilon 1e-3, momentum 0.99", () => {
    const gn = new GroupNormalization(), rms = new RMSNormalization(), sn = new SwitchableNormalization(), inn = new InstanceNormalization();
    assert.deepEqual([gn.groups, gn.axis, gn.epsilon, gn.center, gn.scale], [32, -1, 1e-3, true, true]);
    assert.deepEqual([rms.axis, rms.epsilon], [-1, 1e-6]);
    assert.deepEqual([sn.epsilon, sn.momentum, sn.usingMovingAverage, sn.usingBn, sn.variance], [1e-3, 0.99, true, true, "reference"]);
    assert.deepEqual([inn.instanceAxis, inn.epsilon], [-1, 1e-3]);
  });

  it("bad configs and inputs are typed errors naming the option", () => {
    assert.throws(() => new GroupNormalization({ groups: 0 }), (e: unknown) => e instanceof ConfigError && e.param === "groups");
    assert.throws(() => new GroupNormalization({ epsilon: -1 }), (e: unknown) => e instanceof ConfigError && e.param === "epsilon");
    assert.throws(() => new GroupNormalization({ groups: 3 }).apply(tf.zeros([2, 4, 4, 8])), (e: unknown) => e instanceof ConfigError && /divisor/.test((e as Error).message));
    assert.throws(() => new RMSNormalization({ axis: 0 }).apply(tf.zeros([2, 4])), (e: unknown) => e instanceof ConfigError && e.param === "axis");
    assert.throws(() => new SwitchableNormalization({ variance: "x" as "paper" }), (e: unknown) => e instanceof ConfigError && e.param === "variance");
    assert.throws(() => new GroupNormalization({ dtype: { className: "DTypePolicy", config: { name: "mixed_float16" } } as never }), (e: unknown) => e instanceof ConfigError && e.param === "dtype");
  });
});

describe("normkit/tfjs as a package entry point", () => {
  it("resolves as normkit/tfjs; importing the core loads no TensorFlow.js, importing normkit/tfjs does", () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const script = `
      const nk = await import("normkit");
      console.log("core", typeof globalThis._tfengine, typeof nk.GroupNorm);
      const t = await import("normkit/tfjs");
      console.log("tfjs", typeof globalThis._tfengine, t.REGISTERED_CLASS_NAMES.join(","));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^core undefined function$/m);
    assert.match(r.stdout, /^tfjs object GroupNormalization,Addons>GroupNormalization,InstanceNormalization,Addons>InstanceNormalization,RMSNormalization,SwitchableNormalization,WeightNormalization,CosineDense,CosineConv2D,InputLayer$/m);
  });
});
