// Converted Keras models load after `import "normkit/tfjs"`: the hand-written Keras-3-format model of
// test/data/tfjs/keras3/ (GroupNormalization, Dense, RMSNormalization; README.md there gives the
// format) is served over HTTP on 127.0.0.1 and loaded with tf.loadLayersModel(url), and predicts
// normkit's core layers' output (expected.json) within 1e-5; without normkit/tfjs the same model does
// not load (a child process, TensorFlow.js alone). tensorflow_addons' `Addons>InstanceNormalization`
// / `Addons>GroupNormalization` and keras-contrib's `InstanceNormalization` configs load too.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { InstanceNorm2d, GroupNorm } from "../../src/nn/normalization.js";
import { Tensor } from "../../src/tensor.js";
import { REGISTERED_CLASS_NAMES } from "../../src/tfjs/index.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const DIR = join(root, "test/data/tfjs/keras3");

function maxErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let scale = 1, worst = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Number.isNaN(got[i]!) ? Infinity : Math.abs(got[i]! - want[i]!));
  return worst / scale;
}

describe("normkit/tfjs: converted Keras models load with tf.loadLayersModel", () => {
  let server: Server;
  let base = "";
  before(async () => {
    await tf.setBackend("cpu");
    await tf.ready();
    server = createServer((req, res) => {
      const name = new URL(req.url ?? "/", "http://127.0.0.1").pathname.slice(1);
      if (!["model.json", "group1-shard1of1.bin"].includes(name)) return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": name.endsWith(".json") ? "application/json" : "application/octet-stream" }).end(readFileSync(join(DIR, name)));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it("registers Keras' and the converters' class names", () => {
    for (const n of ["GroupNormalization", "RMSNormalization", "InstanceNormalization", "Addons>InstanceNormalization", "Addons>GroupNormalization", "InputLayer"]) {
      assert.ok(REGISTERED_CLASS_NAMES.includes(n), n);
      assert.ok(tf.serialization.SerializationMap.getMap().classNameMap[n], `${n} in tf.serialization`);
    }
  });

  it("a Keras-3-format model.json (GroupNormalization, Dense, RMSNormalization) loads over HTTP and predicts normkit's output", async () => {
    const model = await tf.loadLayersModel(`${base}/model.json`);
    assert.deepEqual(model.layers.map((l) => l.getClassName()), ["InputLayer", "GroupNormalization", "Dense", "RMSNormalization"]);
    const e = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8")) as { x: number[]; xShape: number[]; y: number[]; yShape: number[] };
    const y = model.predict(tf.tensor(e.x, e.xShape)) as tf.Tensor;
    assert.deepEqual(y.shape, e.yShape);
    const err = maxErr(y.dataSync(), e.y);
    console.log(`# keras 3 model: max error ${err.toExponential(2)} of scale`);
    assert.ok(err <= 1e-5, `error ${err}`);
    // the weights came from the manifest by name (not the initialisers): γ is not all ones
    const gamma = model.layers[1]!.getWeights()[0]!.dataSync();
    assert.ok(gamma.some((v) => Math.abs(v - 1) > 1e-3));
    model.dispose();
  });

  it("without normkit/tfjs, TensorFlow.js alone cannot load it (the issue this entry point fixes)", () => {
    const script = `
      import * as tf from "@tensorflow/tfjs";
      import { readFileSync } from "node:fs";
      const mj = JSON.parse(readFileSync(${JSON.stringify(join(DIR, "model.json"))}, "utf8"));
      const layers = mj.modelTopology.model_config.config.layers;
      const tryLoad = async (topology) => { try { await tf.loadLayersModel(tf.io.fromMemory(topology)); return "loaded"; } catch (e) { return String(e.message).split("\\n")[0]; } };
      // as it is (InputLayer's batch_shape), then with Keras 2's batch_input_shape
      console.log(await tryLoad(mj.modelTopology));
      layers[0].config = { batch_input_shape: layers[0].config.batch_shape, dtype: "float32", name: "input_layer" };
      console.log(await tryLoad(mj.modelTopology));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").filter((l) => !/====|Hi, looks like|tfjs-node/.test(l));
    assert.match(lines[0]!, /An InputLayer should be passed either a `batchInputShape` or an `inputShape`/);
    assert.match(lines[1]!, /Unknown layer: GroupNormalization/);
  });

  it("tensorflow_addons' and keras-contrib's InstanceNormalization / GroupNormalization configs load and compute theirs", async () => {
    const [N, H, W, C] = [2, 3, 3, 4];
    const x = Float32Array.from({ length: N * H * W * C }, (_, i) => Math.sin(i * 0.37) * 2 + 0.5);
    const gamma = Float32Array.from({ length: C }, (_, i) => 1 + 0.25 * i), beta = Float32Array.from({ length: C }, (_, i) => 0.1 * i - 0.2);
    const nhwcToNchw = (a: Float32Array) => Float64Array.from({ length: a.length }, (_, j) => {
      const n = Math.floor(j / (C * H * W)), c = Math.floor(j / (H * W)) % C, s = j % (H * W);
      return a[(n * H * W + s) * C + c]!;
    });
    const nchwToNhwc = (a: ArrayLike<number>) => Float64Array.from({ length: a.length }, (_, j) => {
      const n = Math.floor(j / (H * W * C)), s = Math.floor(j / C) % (H * W), c = j % C;
      return a[(n * C + c) * H * W + s]!;
    });
    const tfa = (cls: string, extra: Record<string, unknown>) => ({
      class_name: cls, config: { name: "norm", trainable: true, dtype: "float32", axis: -1, epsilon: 1e-3, center: true, scale: true,
        beta_initializer: { class_name: "Zeros", config: {} }, gamma_initializer: { class_name: "Ones", config: {} },
        beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null, ...extra },
    });
    const cases: [string, Record<string, unknown>, (g: Float32Array, b: Float32Array) => Float64Array, number][] = [
      ["Addons>InstanceNormalization", tfa("Addons>InstanceNormalization", { groups: -1 }), (g, b) => {
        const m = new InstanceNorm2d({ numFeatures: C, eps: 1e-3, affine: true, dtype: "float64" });
        m.weight!.value.data.set(g); m.bias!.value.data.set(b);
        return nchwToNhwc(m.forward(new Tensor(nhwcToNchw(x), [N, C, H, W])).data);
      }, C],
      ["Addons>GroupNormalization", tfa("Addons>GroupNormalization", { groups: 2 }), (g, b) => {
        const m = new GroupNorm({ numGroups: 2, numChannels: C, eps: 1e-3, dtype: "float64" });
        m.weight!.value.data.set(g); m.bias!.value.data.set(b);
        return nchwToNhwc(m.forward(new Tensor(nhwcToNchw(x), [N, C, H, W])).data);
      }, C],
      // keras-contrib (tfjs#626): axis=None, one statistic per sample, scalar gamma and beta
      ["InstanceNormalization (keras-contrib, axis=None)", tfa("InstanceNormalization", { axis: null }), (g, b) => {
        const m = new GroupNorm({ numGroups: 1, numChannels: C, eps: 1e-3, dtype: "float64" });
        m.weight!.value.data.fill(g[0]!); m.bias!.value.data.fill(b[0]!);
        return nchwToNhwc(m.forward(new Tensor(nhwcToNchw(x), [N, C, H, W])).data);
      }, 1],
    ];
    for (const [name, layer, want, size] of cases) {
      const modelTopology = { class_name: "Sequential", config: { name: "m", layers: [{ class_name: "InputLayer", config: { batch_input_shape: [null, H, W, C], dtype: "float32", name: "in" } }, layer] } };
      const g = gamma.slice(0, size), b = beta.slice(0, size);
      const data = new Uint8Array(8 * size);
      data.set(new Uint8Array(g.buffer), 0);
      data.set(new Uint8Array(b.buffer), 4 * size);
      const model = await tf.loadLayersModel(tf.io.fromMemory({
        modelTopology, weightSpecs: [{ name: "norm/gamma", shape: [size], dtype: "float32" }, { name: "norm/beta", shape: [size], dtype: "float32" }], weightData: data.buffer,
      }));
      const y = (model.predict(tf.tensor(x, [N, H, W, C])) as tf.Tensor).dataSync();
      const err = maxErr(y, want(g, b));
      assert.ok(err <= 1e-5, `${name}: error ${err}`);
      model.dispose();
    }
  });
});
