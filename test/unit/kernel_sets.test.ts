/**
 * One suite, every kernel set: each layer of every statistics-based method, and every fixture file,
 * runs on the TypeScript kernels, the WebAssembly SIMD kernels and the WebGPU kernels (Dawn for Node;
 * SwiftShader without a GPU) through the same code — the layer object moved to the set's device
 * with `await layer.to(device)` — and is checked against the TypeScript kernels in float64 and
 * against PyTorch's fixtures.
 *
 * Without a WebGPU adapter its part is skipped locally and FAILS under CI=true (.ci/install-webgpu.sh).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm, RMSNorm,
  SwitchableNorm1d, SwitchableNorm2d, SwitchableNorm3d, Tensor, backend, cpu, runCase, validateFixture,
} from "../../src/index.js";
import type { DType, Device, FixtureCase } from "../../src/index.js";
import type { Module } from "../../src/nn/module.js";
import { TOLERANCE, caseDType, statedTolerance } from "../../src/conformance/runner.js";
import type { CaseResult } from "../../src/conformance/runner.js";
import { WebGpuDevice, gpuTolerance, runCaseWebGpu } from "../../src/webgpu.js";
import { randn, relToScale } from "./helpers.js";
import { gpuDevice, requireGpu } from "./gpu_helpers.js";
import { AvgPool2d, GlobalAvgPool2d, MaxPool2d, ReLU } from "../../src/nn/basic.js";
import { Conv2d } from "../../src/nn/conv2d.js";
import { Linear } from "../../src/nn/linear.js";
import { WeightNorm } from "../../src/nn/weight_norm.js";
import { CosineConv2d, CosineLinear } from "../../src/nn/cosine_norm.js";
import { mulberry32 } from "../../src/rng.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const FIXTURES = ["pytorch-fixtures.json", "pytorch-module-tests.json", "switchable-offset.json"].map((f) => ({
  name: f,
  file: validateFixture(JSON.parse(readFileSync(join(root, "test/data", f), "utf8"))),
}));

const gpu = gpuDevice();

/** A kernel set: the device its layers move to, the host kernel mode it needs, its dtypes. */
interface KernelSet {
  name: "ts" | "wasm" | "webgpu";
  dtypes: readonly DType[];
  /** The device, or null (after skipping / failing under CI) where it cannot run here. */
  device(t: { skip(m: string): void }): Device | null;
  /** Runs one fixture case at tolerance `tol` (null: FORMAT.md's for this set). */
  runCase(c: FixtureCase, dtype: DType, tol: number | null): Promise<CaseResult>;
}

const SETS: KernelSet[] = [
  { name: "ts", dtypes: ["float64", "float32"], device: () => cpu, runCase: (c, d, tol) => runCase(c, d, tol ?? TOLERANCE[d]) },
  { name: "wasm", dtypes: ["float32"], device: () => cpu, runCase: (c, d, tol) => runCase(c, d, tol ?? TOLERANCE[d]) },
  {
    name: "webgpu",
    dtypes: ["float32"],
    device: requireGpu,
    runCase: (c, _d, tol) => runCaseWebGpu(gpu!.ctx, c, {}, tol ?? gpuTolerance(c.name)),
  },
];

type Make = (dtype: DType) => Module & { forward(x: Tensor): Tensor; backward(dy: Tensor): Tensor };
/** Every layer class of the statistics-based methods, with an input shape it takes. */
const LAYERS: [string, Make, number[]][] = [
  ["BatchNorm1d [6,5]", (dtype) => new BatchNorm1d({ numFeatures: 5, dtype }), [6, 5]],
  ["BatchNorm1d [4,3,7] momentum null", (dtype) => new BatchNorm1d({ numFeatures: 3, momentum: null, dtype }), [4, 3, 7]],
  ["BatchNorm2d [3,4,5,5]", (dtype) => new BatchNorm2d({ numFeatures: 4, dtype }), [3, 4, 5, 5]],
  ["BatchNorm3d [2,3,2,3,4]", (dtype) => new BatchNorm3d({ numFeatures: 3, dtype }), [2, 3, 2, 3, 4]],
  ["InstanceNorm1d [3,4,9] affine, tracked", (dtype) => new InstanceNorm1d({ numFeatures: 4, affine: true, trackRunningStats: true, dtype }), [3, 4, 9]],
  ["InstanceNorm1d (C, L) unbatched", (dtype) => new InstanceNorm1d({ numFeatures: 4, affine: true, trackRunningStats: true, dtype }), [4, 9]],
  ["InstanceNorm2d [2,3,4,4]", (dtype) => new InstanceNorm2d({ numFeatures: 3, dtype }), [2, 3, 4, 4]],
  ["InstanceNorm2d (C, H, W) unbatched", (dtype) => new InstanceNorm2d({ numFeatures: 3, affine: true, dtype }), [3, 4, 5]],
  ["InstanceNorm3d (C, D, H, W) unbatched, tracked", (dtype) => new InstanceNorm3d({ numFeatures: 2, trackRunningStats: true, dtype }), [2, 3, 2, 4]],
  ["GroupNorm 2 of 6 [3,6,4,4]", (dtype) => new GroupNorm({ numGroups: 2, numChannels: 6, dtype }), [3, 6, 4, 4]],
  ["GroupNorm 1 of 4 [2,4,3] (= LayerNorm over C, L)", (dtype) => new GroupNorm({ numGroups: 1, numChannels: 4, dtype }), [2, 4, 3]],
  ["LayerNorm [3,5] on [2,3,3,5]", (dtype) => new LayerNorm({ normalizedShape: [3, 5], dtype }), [2, 3, 3, 5]],
  ["LayerNorm without bias [7] on [4,7]", (dtype) => new LayerNorm({ normalizedShape: 7, bias: false, dtype }), [4, 7]],
  ["RMSNorm [8] on [5,8]", (dtype) => new RMSNorm({ normalizedShape: 8, eps: 1e-6, dtype }), [5, 8]],
  ["SwitchableNorm1d [8,6]", (dtype) => new SwitchableNorm1d({ numFeatures: 6, dtype }), [8, 6]],
  ["SwitchableNorm2d [4,3,5,5]", (dtype) => new SwitchableNorm2d({ numFeatures: 3, dtype }), [4, 3, 5, 5]],
  ["SwitchableNorm2d paper, no BN [2,4,3,3]", (dtype) => new SwitchableNorm2d({ numFeatures: 4, usingBN: false, variance: "paper", dtype }), [2, 4, 3, 3]],
  ["SwitchableNorm3d [2,2,2,3,3]", (dtype) => new SwitchableNorm3d({ numFeatures: 2, dtype }), [2, 2, 2, 3, 3]],
  // the training stack (src/kernels/contract/ops.ts)
  ["Linear 7→5 on [3,2,7]", (dtype) => new Linear({ inFeatures: 7, outFeatures: 5, rng: mulberry32(1), dtype }), [3, 2, 7]],
  ["Linear without bias 20→3 on [17,20] (partial tiles)", (dtype) => new Linear({ inFeatures: 20, outFeatures: 3, bias: false, rng: mulberry32(2), dtype }), [17, 20]],
  ["Conv2d 3→4 3x3 padding 1 on [2,3,5,6]", (dtype) => new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, rng: mulberry32(3), dtype }), [2, 3, 5, 6]],
  ["Conv2d 2→3 [3,2] stride [2,1] padding [0,1], no bias", (dtype) => new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: [3, 2], stride: [2, 1], padding: [0, 1], bias: false, rng: mulberry32(4), dtype }), [2, 2, 7, 5]],
  ["ReLU on [4,6]", (dtype) => new ReLU({ dtype }), [4, 6]],
  ["MaxPool2d 2 on [2,3,6,4]", (dtype) => new MaxPool2d({ kernelSize: 2, dtype }), [2, 3, 6, 4]],
  ["MaxPool2d 3 stride 2 (overlapping) on [1,2,7,7]", (dtype) => new MaxPool2d({ kernelSize: 3, stride: 2, dtype }), [1, 2, 7, 7]],
  ["AvgPool2d [2,3] stride 1 on [2,2,5,5]", (dtype) => new AvgPool2d({ kernelSize: [2, 3], stride: 1, dtype }), [2, 2, 5, 5]],
  ["GlobalAvgPool2d on [3,4,3,5]", (dtype) => new GlobalAvgPool2d({ dtype }), [3, 4, 3, 5]],
  ["WeightNorm(Linear 6→4) on [5,6]", (dtype) => new WeightNorm(new Linear({ inFeatures: 6, outFeatures: 4, rng: mulberry32(5), dtype })), [5, 6]],
  ["WeightNorm(Conv2d 2→3 3x3 padding 1), dim null, on [2,2,4,4]", (dtype) => new WeightNorm(new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, rng: mulberry32(6), dtype }), { dim: null }), [2, 2, 4, 4]],
  ["CosineLinear 7→5 on [3,2,7]", (dtype) => new CosineLinear({ inFeatures: 7, outFeatures: 5, rng: mulberry32(7), dtype }), [3, 2, 7]],
  ["CosineLinear eps 1e-12 20→3 on [17,20]", (dtype) => new CosineLinear({ inFeatures: 20, outFeatures: 3, eps: 1e-12, rng: mulberry32(8), dtype }), [17, 20]],
  ["CosineConv2d 3→4 3x3 padding 1 on [2,3,5,6]", (dtype) => new CosineConv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, rng: mulberry32(9), dtype }), [2, 3, 5, 6]],
  ["CosineConv2d 2→3 [3,2] stride [2,1] padding [0,1]", (dtype) => new CosineConv2d({ inChannels: 2, outChannels: 3, kernelSize: [3, 2], stride: [2, 1], padding: [0, 1], rng: mulberry32(10), dtype }), [2, 2, 7, 5]],
  // the corner windows lie in the padding alone: all-zero receptive fields (y = 0 there, as PyTorch with eps 1e-12)
  ["CosineConv2d 2→3 2x2 stride 2 padding 2 (all-padding fields)", (dtype) => new CosineConv2d({ inChannels: 2, outChannels: 3, kernelSize: 2, stride: 2, padding: 2, rng: mulberry32(11), dtype }), [2, 2, 4, 5]],
];

const f32 = (n: number, seed: number, offset = 0, scale = 1) => randn(n, seed).map((v) => Math.fround(offset + scale * v));

const rel = relToScale;

/** The layer's host state and gradients (downloaded from its device). */
async function hostState(layer: Module): Promise<Record<string, Tensor>> {
  const out: Record<string, Tensor> = {};
  const d = layer.device;
  for (const [k, p] of Object.entries(layer.namedParameters())) {
    out[k] = await d.download(p.value, "float64");
    out["d" + k] = await d.download(p.grad, "float64");
  }
  for (const [k, b] of Object.entries(layer.namedBuffers())) out[k] = b.isHost ? b.clone("float64") : await d.download(b, "float64");
  return out;
}

/**
 * A training step (forward, backward, running update), then an eval forward and backward, on
 * `layer` (on `device`), from host inputs; returns every output on the host.
 */
async function step(layer: Module & { forward(x: Tensor): Tensor; backward(dy: Tensor): Tensor }, device: Device, x: Tensor, dyFor: (shape: readonly number[]) => Tensor, x2: Tensor) {
  const out: Record<string, Tensor> = {};
  const up = (t: Tensor) => device.upload(t, layer.dtype);
  layer.train();
  layer.zeroGrad();
  const y = layer.forward(up(x));
  out["y"] = await device.download(y, "float64");
  out["dx"] = await device.download(layer.backward(up(dyFor(y.shape))), "float64");
  Object.assign(out, await hostState(layer));
  layer.eval();
  const y2 = layer.forward(up(x2));
  out["y_eval"] = await device.download(y2, "float64");
  out["dx_eval"] = await device.download(layer.backward(up(dyFor(y2.shape))), "float64");
  return out;
}

for (const set of SETS) {
  describe(`kernel set ${set.name}`, () => {
    let mode: backend.KernelMode;
    before(async () => {
      mode = backend.info().kernels;
      if (set.name !== "webgpu") await backend.configure({ kernels: set.name });
    });
    after(async () => backend.configure({ kernels: mode }));

    for (const { name, file } of FIXTURES) {
      for (const dtype of set.dtypes) {
        it(`passes ${name} in ${dtype}`, async (t) => {
          if (!set.device(t)) return;
          const tol = statedTolerance(file.meta, dtype);
          const failed: string[] = [];
          let ran = 0;
          const calls = backend.info().wasmCalls;
          for (const c of file.cases) {
            const meant = caseDType(c);
            if (meant !== null && meant !== dtype) continue;
            const r = await set.runCase(c, dtype, tol);
            ran++;
            if (!r.pass) failed.push(`${r.name}: ${r.worst.output} ${r.worst.relError.toExponential(2)}`);
          }
          assert.ok(ran > 0, "ran no case");
          assert.deepEqual(failed, []);
          if (set.name === "wasm") assert.ok(backend.info().wasmCalls > calls + ran / 2, "the WebAssembly kernels ran");
          if (set.name === "ts") assert.equal(backend.info().wasmCalls, calls, "no WebAssembly kernel ran");
        });
      }
    }

    for (const [name, make, shape] of LAYERS) {
      it(`${name}: training and eval step as the TypeScript kernels in float64`, async (t) => {
        const device = set.device(t);
        if (!device) return;
        const n = shape.reduce((a, b) => a * b, 1);
        const ref = make("float64");
        // random float32-representable parameters and running statistics, copied into the layer under test
        let seed = 3;
        for (const p of Object.values(ref.namedParameters())) p.value.data.set(f32(p.value.size, seed++, 1, 0.5));
        for (const [k, b] of Object.entries(ref.namedBuffers())) if (k !== "num_batches_tracked") b.data.set(f32(b.size, seed++, 1.5, 0.25).map(Math.abs));
        const dtype = set.dtypes.includes("float32") ? "float32" : "float64";
        const layer = make(dtype);
        layer.loadStateDict(ref.stateDict());
        assert.equal(await layer.to(device), layer);
        const x = Tensor.from(f32(n, 1), shape, "float64"), x2 = Tensor.from(f32(n, 4, 0.5), shape, "float64");
        const dy = (s: readonly number[]) => Tensor.from(f32(s.reduce((a, b) => a * b, 1), 2), s, "float64");
        const calls = backend.info().wasmCalls;
        const got = await step(layer, device, x, dy, x2);
        // (ReLU, pooling and Cosine Norm, whose normalised values are float64, have TypeScript kernels only: the wasm
        // set's host ops are the TypeScript ones there)
        if (set.name === "wasm" && !/^(ReLU|MaxPool|AvgPool|GlobalAvgPool|Cosine)/.test(name)) assert.ok(backend.info().wasmCalls > calls, "the WebAssembly kernels ran");
        if (set.name === "ts") assert.equal(backend.info().wasmCalls, calls, "the TypeScript kernels ran");
        await backend.configure({ kernels: "ts" });
        const want = await step(ref, cpu, x, dy, x2);
        if (set.name !== "webgpu") await backend.configure({ kernels: set.name });
        const errs = Object.entries(want).map(([k, w]) => [k, rel(got[k]!, w)] as const).filter(([, e]) => !(e <= 1e-4));
        assert.deepEqual(errs, []);
        // and back on the host, the same object with the same values
        const onDevice = await hostState(layer);
        await layer.to(cpu);
        assert.equal(layer.device, cpu);
        const host = await hostState(layer);
        for (const [k, v] of Object.entries(host)) assert.ok(rel(v, onDevice[k]!) === 0, `${k} after to(cpu)`);
      });

      if (/Norm\d?d? |Norm |Norm\d/.test(name) && !name.startsWith("Switchable") && !name.includes("unbatched")) {
        it(`${name}: an empty batch gives empty outputs; only BatchNorm's batch count moves`, async (t) => {
          const device = set.device(t);
          if (!device) return;
          // N = 0, and (for a channel layer with positions) S = 0: PyTorch returns empty outputs for both
          const empties = [[0, ...shape.slice(1)]];
          if (shape.length >= 3 && !name.startsWith("LayerNorm") && !name.startsWith("RMSNorm")) empties.push([...shape.slice(0, -1), 0]);
          for (const empty of empties) {
            const layer = await make("float32").to(device);
            const before = await hostState(layer);
            const y: Tensor = layer.forward(device.upload(Tensor.zeros(empty), "float32"));
            const dx: Tensor = layer.backward(device.upload(Tensor.zeros(empty), "float32"));
            assert.deepEqual([y.shape, dx.shape, y.device, dx.device], [empty, empty, device.type, device.type]);
            const after = await hostState(layer);
            const nbt = before["num_batches_tracked"];
            if (nbt && name.startsWith("BatchNorm")) before["num_batches_tracked"] = Tensor.from([nbt.data[0]! + 1], [], "float64");
            for (const k of Object.keys(before)) assert.deepEqual([...after[k]!.data], [...before[k]!.data], `${k} (input ${JSON.stringify(empty)})`);
          }
        });
      }
    }

    it("an unbatched InstanceNorm input is the batch of one it stands for", async (t) => {
      const device = set.device(t);
      if (!device) return;
      for (const [make, shape] of [
        [() => new InstanceNorm1d({ numFeatures: 3, affine: true }), [3, 10]],
        [() => new InstanceNorm2d({ numFeatures: 2, affine: true }), [2, 4, 5]],
        [() => new InstanceNorm3d({ numFeatures: 2 }), [2, 3, 3, 3]],
      ] as const) {
        const a = await make().to(device), b = await make().to(device);
        const n = shape.reduce((p, q) => p * q, 1);
        const x = Tensor.from(f32(n, 9), shape), dy = Tensor.from(f32(n, 10), shape);
        const ya = await device.download(a.forward(device.upload(x)));
        const yb = await device.download(b.forward(device.upload(x.reshape([1, ...shape]))));
        const da = await device.download(a.backward(device.upload(dy)));
        const db = await device.download(b.backward(device.upload(dy.reshape([1, ...shape]))));
        assert.deepEqual(ya.shape, shape);
        assert.equal(rel(ya, yb.reshape(shape)), 0);
        assert.equal(rel(da, db.reshape(shape)), 0);
      }
    });

    it("Switchable Norm on inputs offset by 1e4 (float32, noise 0.01): finite, within 1e-4 of the exact computation", async (t) => {
      const device = set.device(t);
      if (!device) return;
      // the exact computation: the same layer in float64 on x - offset (y and dx are shift-invariant)
      for (const [make, shape] of [
        [(d: DType) => new SwitchableNorm2d({ numFeatures: 3, dtype: d }), [4, 3, 6, 6]],
        [(d: DType) => new SwitchableNorm1d({ numFeatures: 5, dtype: d }), [8, 5]],
      ] as const) {
        const n = shape.reduce((p, q) => p * q, 1);
        const noise = f32(n, 21, 0, 0.01);
        const x = Tensor.from(noise.map((v) => Math.fround(1e4 + v)), shape), dy = Tensor.from(f32(n, 22), shape);
        const layer = await make("float32").to(device);
        const y = await device.download(layer.forward(device.upload(x)), "float64");
        const dx = await device.download(layer.backward(device.upload(dy)), "float64");
        await backend.configure({ kernels: "ts" });
        const exact = make("float64");
        const shifted = Tensor.from(Array.from(x.data, (v) => v - 1e4), shape, "float64");
        const wy = exact.forward(shifted), wdx = exact.backward(dy.clone("float64"));
        if (set.name !== "webgpu") await backend.configure({ kernels: set.name });
        assert.ok(y.toArray().every(Number.isFinite) && dx.toArray().every(Number.isFinite));
        assert.ok(rel(y, wy) <= 1e-4, `y ${rel(y, wy)}`);
        assert.ok(rel(dx, wdx) <= 1e-4, `dx ${rel(dx, wdx)}`);
      }
    });
  });
}

describe("Switchable Norm on float64 inputs offset by 1e8 (the TypeScript kernels)", () => {
  it("no NaN, within 1e-6 of the computation on x - offset", () => {
    for (const [make, shape] of [
      [() => new SwitchableNorm2d({ numFeatures: 3, dtype: "float64" }), [4, 3, 6, 6]],
      [() => new SwitchableNorm1d({ numFeatures: 5, dtype: "float64" }), [8, 5]],
    ] as const) {
      const n = shape.reduce((p, q) => p * q, 1);
      const noise = randn(n, 31);
      const x = Tensor.from(noise.map((v) => 1e8 + v), shape, "float64"), dy = Tensor.from(randn(n, 32), shape, "float64");
      const a = make(), b = make();
      const y = a.forward(x), dx = a.backward(dy);
      const wy = b.forward(Tensor.from(Array.from(x.data, (v) => v - 1e8), shape, "float64")), wdx = b.backward(dy);
      assert.ok(y.toArray().every(Number.isFinite) && dx.toArray().every(Number.isFinite));
      assert.ok(rel(y, wy) <= 1e-6, `y ${rel(y, wy)}`);
      assert.ok(rel(dx, wdx) <= 1e-6, `dx ${rel(dx, wdx)}`);
    }
  });
});
