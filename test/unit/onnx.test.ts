// ONNX export (normkit/onnx): the lab's CNN and MLP for every method, with non-trivial parameters and
// running statistics, exported and run in onnxruntime-node (bench/node_modules, the benchmark's peer:
// `cd bench && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install`), against normkit's eval forward; the
// exported files through onnx.checker (scripts/check_onnx.py, when /usr/bin/python3 has Debian's
// python3-onnx); the typed errors. Without either tool the tests that need it skip, saying why
// (.ci/install-onnx.sh installs both).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, ShapeError } from "../../src/errors.js";
import { ALL_METHODS, ARCHS, buildModel, methodApplies, type Arch, type Method } from "../../src/lab/models.js";
import { Module, type Parameter } from "../../src/nn/module.js";
import { AvgPool2d, Flatten, GlobalAvgPool2d, ReLU, Sequential } from "../../src/nn/basic.js";
import { Conv2d } from "../../src/nn/conv2d.js";
import { CosineLinear } from "../../src/nn/cosine_norm.js";
import { Linear } from "../../src/nn/linear.js";
import { BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, Normalization, RMSNorm } from "../../src/nn/normalization.js";
import { SwitchableNorm, SwitchableNorm2d } from "../../src/nn/switchable_norm.js";
import { WeightNorm } from "../../src/nn/weight_norm.js";
import { mulberry32 } from "../../src/rng.js";
import { DType, Tensor } from "../../src/tensor.js";
import { UnsupportedModuleError, decodeModel, exportOnnx } from "../../src/onnx/index.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const TOL = 1e-5;

// ---- onnxruntime-node, from the benchmark's own node_modules
interface OrtTensor {
  data: Float32Array;
  dims: readonly number[];
}
interface Ort {
  Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(bytes: Uint8Array): Promise<{ run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>> }> };
}
const ortDir = join(root, "bench", "node_modules", "onnxruntime-node");
let ort: Ort | null = null;
let noOrt = "";
if (!existsSync(join(ortDir, "package.json"))) {
  noOrt = "onnxruntime-node is not installed in bench/node_modules (cd bench && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install)";
} else {
  try {
    ort = createRequire(join(root, "bench", "package.json"))("onnxruntime-node") as Ort;
  } catch (e) {
    noOrt = `onnxruntime-node failed to load: ${(e as Error).message.split("\n")[0]}`;
  }
}

// ---- onnx.checker through Debian's python3-onnx
const PY = "/usr/bin/python3";
const noChecker = !existsSync(PY)
  ? `${PY} not found`
  : spawnSync(PY, ["-c", "import onnx"], { stdio: "ignore" }).status === 0
    ? ""
    : `${PY} cannot import onnx (apt-get install -y python3-onnx)`;

/** Non-trivial values for every norm parameter and running statistic, and g ≠ ‖v‖ for Weight Norm. */
function perturb(net: Module, seed: number): void {
  const rng = mulberry32(seed);
  const u = (lo: number, hi: number) => lo + (hi - lo) * rng();
  const fill = (t: Tensor | null | undefined, lo: number, hi: number) => {
    if (t) for (let k = 0; k < t.size; k++) t.data[k] = u(lo, hi);
  };
  const param = (p: Parameter | null | undefined, lo: number, hi: number) => fill(p?.value, lo, hi);
  for (const m of net.modules()) {
    if (m instanceof Normalization) {
      param(m.weight, 0.5, 1.5);
      param(m.bias, -0.5, 0.5);
      fill(m.runningMean, -0.3, 0.3);
      fill(m.runningVar, 0.5, 2);
    } else if (m instanceof SwitchableNorm) {
      param(m.weight, 0.5, 1.5);
      param(m.bias, -0.5, 0.5);
      param(m.meanWeight, -1, 1);
      param(m.varWeight, -1, 1);
      fill(m.runningMean, -0.3, 0.3);
      fill(m.runningVar, 0.5, 2);
    } else if (m instanceof WeightNorm) {
      for (let k = 0; k < m.g.value.size; k++) m.g.value.data[k] *= u(0.5, 1.5);
    }
  }
}

function input(shape: number[], seed: number, dtype: DType = "float32"): Tensor {
  const rng = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(Array.from({ length: n }, () => rng() * 2 - 0.5), shape, dtype);
}

/** Runs the exported bytes on x in onnxruntime and returns the output. */
async function runOrt(bytes: Uint8Array, x: Tensor, names = { input: "input", output: "output" }): Promise<OrtTensor> {
  const session = await ort!.InferenceSession.create(bytes);
  const out = await session.run({ [names.input]: new ort!.Tensor("float32", Float32Array.from(x.data), x.shape) });
  return out[names.output]!;
}

function assertClose(got: OrtTensor, want: Tensor, what: string): void {
  assert.deepEqual([...got.dims], [...want.shape], `${what}: output shape`);
  let worst = 0;
  for (let k = 0; k < want.size; k++) {
    const d = Math.abs(got.data[k]! - want.data[k]!) / Math.max(1, Math.abs(want.data[k]!));
    if (!(d <= worst)) worst = d; // NaN propagates
  }
  assert.ok(worst <= TOL, `${what}: max scaled difference ${worst} > ${TOL}`);
}

const LAB: [Arch, Method][] = ARCHS.flatMap((a) => ALL_METHODS.filter((m) => methodApplies(a, m)).map((m): [Arch, Method] => [a, m]));
const SHAPE = [4, 1, 28, 28];

function labNet(arch: Arch, method: Method, dtype: DType = "float32"): Module {
  const { net } = buildModel(arch, method, 11, dtype);
  perturb(net, 5);
  return net.eval();
}

describe("exportOnnx: the lab's networks in onnxruntime", () => {
  for (const [arch, method] of LAB) {
    it(`${arch} ${method}: eval outputs equal normkit's within ${TOL}`, { skip: noOrt || false }, async () => {
      const net = labNet(arch, method);
      const x = input(SHAPE, 3);
      const want = net.forward(x).clone();
      assertClose(await runOrt(exportOnnx(net, { inputShape: SHAPE }), x), want, `${arch} ${method}`);
    });
  }

  it("float64 models export as float32 graphs", { skip: noOrt || false }, async () => {
    for (const method of ["batch_norm", "switchable_norm"] as const) {
      const net = labNet("cnn", method, "float64");
      const x = input(SHAPE, 3, "float64");
      const want = net.forward(x).clone();
      const m = decodeModel(exportOnnx(net, { inputShape: SHAPE })) as { graph: { initializer: { data_type: number }[] } };
      assert.ok(m.graph.initializer.every((t) => t.data_type === 1 || t.data_type === 7), "float32 (and int64) initializers only");
      assertClose(await runOrt(exportOnnx(net, { inputShape: SHAPE }), x), want, `cnn ${method} float64`);
    }
  });

  it("dynamicBatch: one graph runs every batch size; the batch dim is symbolic", { skip: noOrt || false }, async () => {
    for (const [arch, method] of [["cnn", "switchable_norm"], ["mlp", "batch_norm"], ["cnn", "group_norm"]] as const) {
      const net = labNet(arch, method);
      const bytes = exportOnnx(net, { inputShape: [1, 1, 28, 28], dynamicBatch: true, inputName: "image", outputName: "logits" });
      const g = (decodeModel(bytes) as { graph: { input: { name: string; type: { tensor_type: { shape: { dim: object[] } } } }[] } }).graph;
      assert.equal(g.input[0]!.name, "image");
      assert.deepEqual(g.input[0]!.type.tensor_type.shape.dim[0], { dim_param: "batch" });
      for (const N of [1, 5]) {
        const x = input([N, 1, 28, 28], N);
        assertClose(await runOrt(bytes, x, { input: "image", output: "logits" }), net.forward(x).clone(), `${arch} ${method} batch ${N}`);
      }
    }
  });

  it("opsets 18 and 21 (ReduceMean's axes as an input)", { skip: noOrt || false }, async () => {
    for (const opset of [18, 21]) {
      for (const method of ["rms_norm", "switchable_norm", "cosine_norm"] as const) {
        const net = labNet("cnn", method);
        const x = input(SHAPE, 9);
        const bytes = exportOnnx(net, { inputShape: SHAPE, opset });
        assert.equal((decodeModel(bytes) as { opset_import: { version: number }[] }).opset_import[0]!.version, opset);
        assertClose(await runOrt(bytes, x), net.forward(x).clone(), `cnn ${method} opset ${opset}`);
      }
    }
  });

  it("the other layers and options: pooling, BN without running stats, tracking IN, LN and RMS without affine, rank-3 Linear, …", { skip: noOrt || false }, async () => {
    const rng = mulberry32(21);
    const zoo: [string, Module, number[]][] = [
      ["conv stride 2 + AvgPool2d + GlobalAvgPool2d", new Sequential([
        new Conv2d({ inChannels: 3, outChannels: 6, kernelSize: [3, 2], stride: 2, padding: [0, 1], rng }), new AvgPool2d({ kernelSize: 2, stride: 1 }),
        new BatchNorm2d({ numFeatures: 6, trackRunningStats: false }), new GlobalAvgPool2d(), new Linear({ inFeatures: 6, outFeatures: 4, bias: false, rng }),
      ]), [3, 3, 11, 9]],
      ["tracking InstanceNorm, LayerNorm over [C, H, W] without affine, RMSNorm without affine", new Sequential([
        new InstanceNorm2d({ numFeatures: 3, trackRunningStats: true, affine: true }), new LayerNorm({ normalizedShape: [3, 5, 5], elementwiseAffine: false }),
        new RMSNorm({ normalizedShape: [5], elementwiseAffine: false, eps: 1e-3 }), new ReLU(),
      ]), [2, 3, 5, 5]],
      ["unbatched InstanceNorm2d", new Sequential([new InstanceNorm2d({ numFeatures: 3, affine: true })]), [3, 4, 5]],
      ["rank-3 Linear, LayerNorm without bias, BatchNorm1d over [N, C, L]", new Sequential([
        new Linear({ inFeatures: 5, outFeatures: 4, rng }), new LayerNorm({ normalizedShape: 4, bias: false }), new BatchNorm1d({ numFeatures: 3 }),
      ]), [2, 3, 5]],
      ["Switchable Norm: paper variance, without BN; GroupNorm without affine", new Sequential([
        new SwitchableNorm2d({ numFeatures: 4, variance: "paper" }), new SwitchableNorm2d({ numFeatures: 4, usingBN: false }),
        new GroupNorm({ numGroups: 2, numChannels: 4, affine: false }), new Flatten(),
      ]), [2, 4, 3, 3]],
      ["WeightNorm dim null, CosineLinear with eps 0", new Sequential([
        new WeightNorm(new Linear({ inFeatures: 6, outFeatures: 5, rng }), { dim: null }), new CosineLinear({ inFeatures: 5, outFeatures: 3, rng }),
      ]), [4, 6]],
    ];
    for (const [what, net, shape] of zoo) {
      perturb(net, 8);
      net.eval();
      const x = input(shape, 2);
      assertClose(await runOrt(exportOnnx(net, { inputShape: shape }), x), net.forward(x).clone(), what);
    }
  });

  it("exports the eval forward whatever the training flag, and leaves the model as it was", { skip: noOrt || false }, async () => {
    const net = labNet("cnn", "batch_norm");
    const x = input(SHAPE, 4);
    const want = net.forward(x).clone();
    const before = JSON.stringify(net.stateDict());
    net.train();
    const bytes = exportOnnx(net, { inputShape: SHAPE });
    assert.equal(net.training, true);
    assert.equal(JSON.stringify(net.stateDict()), before);
    assertClose(await runOrt(bytes, x), want, "exported in training mode");
  });
});

describe("exportOnnx: the model file", () => {
  it("is a ModelProto of opset 17 (IR 8) with the weights as named initializers", () => {
    const net = labNet("cnn", "batch_norm");
    const m = decodeModel(exportOnnx(net, { inputShape: SHAPE })) as {
      ir_version: number; opset_import: { domain?: string; version: number }[]; producer_name: string;
      graph: { node: { op_type: string }[]; initializer: { name: string; dims: number[] }[]; output: { name: string }[] };
    };
    assert.equal(m.ir_version, 8);
    assert.equal(m.opset_import[0]!.version, 17);
    assert.equal(m.producer_name, "normkit");
    const names = m.graph.initializer.map((t) => t.name);
    for (const k of ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "9.weight"]) assert.ok(names.includes(k), k);
    assert.deepEqual(m.graph.initializer.find((t) => t.name === "0.weight")!.dims, [8, 1, 3, 3]);
    assert.deepEqual(m.graph.node.map((n) => n.op_type), ["Conv", "BatchNormalization", "Relu", "MaxPool", "Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm"]);
    assert.equal(m.graph.output[0]!.name, "output");
  });

  it("passes onnx.checker (full check) for every lab network", { skip: noChecker || false }, () => {
    const dir = mkdtempSync(join(tmpdir(), "normkit-onnx-"));
    try {
      const files: string[] = [];
      for (const [arch, method] of LAB) {
        const file = join(dir, `${arch}_${method}.onnx`);
        writeFileSync(file, exportOnnx(labNet(arch, method), { inputShape: SHAPE, dynamicBatch: arch === "mlp" }));
        files.push(file);
      }
      const out = execFileSync(PY, [join(root, "scripts", "check_onnx.py"), ...files], { encoding: "utf8" });
      assert.match(out, new RegExp(`${files.length} passed, 0 failed`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the package exports it from normkit/onnx, not from the core", async () => {
    const [coreName, onnxName] = ["normkit", "normkit/onnx"];
    const core = (await import(coreName)) as Record<string, unknown>;
    const onnx = (await import(onnxName)) as Record<string, unknown>;
    for (const f of ["exportOnnx", "UnsupportedModuleError", "decodeModel"]) {
      assert.equal(typeof onnx[f], "function", f);
      assert.equal(core[f], undefined, `${f} is not in the core`);
    }
  });
});

describe("exportOnnx: errors", () => {
  class Custom extends Module {
    constructor() {
      super("float32");
    }
    forward(x: Tensor): Tensor {
      return x;
    }
    backward(dy: Tensor): Tensor {
      return dy;
    }
    namedParameters(): Record<string, Parameter> {
      return {};
    }
  }

  it("an unsupported module: UnsupportedModuleError (a ConfigError) naming its class and path", () => {
    const net = new Sequential([new Flatten(), new Sequential([new ReLU(), new Custom()])]);
    assert.throws(() => exportOnnx(net, { inputShape: [2, 3] }), (e: unknown) => {
      assert.ok(e instanceof UnsupportedModuleError && e instanceof ConfigError);
      assert.equal(e.modulePath, "1.1");
      assert.equal(e.moduleClass, "Custom");
      assert.match(e.message, /model\.1\.1/);
      assert.match(e.message, /Custom/);
      return true;
    });
    assert.throws(() => exportOnnx(new Custom(), { inputShape: [1] }), (e: unknown) => e instanceof UnsupportedModuleError && e.modulePath === "");
  });

  it("bad options: ConfigError naming the option", () => {
    const net = labNet("mlp", "none");
    for (const inputShape of [undefined, [], [1, 0, 28, 28], [1, -1], [1.5, 784], "1,784"] as unknown[]) {
      assert.throws(() => exportOnnx(net, { inputShape } as never), (e: unknown) => e instanceof ConfigError && e.param === "inputShape", JSON.stringify(inputShape));
    }
    assert.throws(() => exportOnnx(net, { inputShape: [1, 784], opset: 13 }), (e: unknown) => e instanceof ConfigError && e.param === "opset");
    assert.throws(() => exportOnnx(net, { inputShape: [1, 784], inputName: "" }), (e: unknown) => e instanceof ConfigError && e.param === "inputName");
    assert.throws(() => exportOnnx(net, { inputShape: [1, 784], outputName: "input" }), (e: unknown) => e instanceof ConfigError && e.param === "outputName");
    assert.throws(() => exportOnnx(net, null as never), (e: unknown) => e instanceof ConfigError && e.param === "options");
    assert.throws(() => exportOnnx({} as Module, { inputShape: [1] }), (e: unknown) => e instanceof ConfigError && e.param === "model");
  });

  it("an input shape a layer rejects: ShapeError with the layer's path", () => {
    const cnn = labNet("cnn", "batch_norm");
    assert.throws(() => exportOnnx(cnn, { inputShape: [1, 3, 28, 28] }), (e: unknown) => e instanceof ShapeError && /model\.0 \(Conv2d\)/.test(e.message));
    assert.throws(() => exportOnnx(cnn, { inputShape: [1, 28, 28] }), (e: unknown) => e instanceof ShapeError && /model\.0/.test(e.message));
    assert.throws(() => exportOnnx(cnn, { inputShape: [1, 1, 20, 20] }), (e: unknown) => e instanceof ShapeError && /model\.9 \(Linear\)/.test(e.message));
    const mlp = labNet("mlp", "layer_norm");
    assert.throws(() => exportOnnx(mlp, { inputShape: [2, 1, 27, 28] }), (e: unknown) => e instanceof ShapeError && /model\.1/.test(e.message));
    const bn = new Sequential([new BatchNorm2d({ numFeatures: 3 })]);
    assert.throws(() => exportOnnx(bn, { inputShape: [2, 4, 5, 5] }), (e: unknown) => e instanceof ShapeError && /model\.0 \(BatchNorm2d\)/.test(e.message));
    const sn = new Sequential([new SwitchableNorm2d({ numFeatures: 2 })]);
    assert.throws(() => exportOnnx(sn, { inputShape: [2, 2, 1, 1] }), ShapeError);
  });

  it("channels-last layers are refused by name", () => {
    const net = new Sequential([new BatchNorm2d({ numFeatures: 3, channelsLast: true })]);
    assert.throws(() => exportOnnx(net, { inputShape: [2, 5, 5, 3] }), (e: unknown) => e instanceof ConfigError && e.param === "channelsLast" && /model\.0/.test(e.message));
  });
});
