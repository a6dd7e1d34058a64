/**
 * Whole models on the GPU: the lab's CNN and MLP, for every method (Cosine Norm included), moved to a
 * WebGPU device (Dawn for Node; SwiftShader without a GPU) take 5 SGD steps (momentum 0.9, weight
 * decay 1e-4, the lab's optimiser) and end with the parameters and running statistics of the same 5
 * steps on the host, within float32 tolerance (1e-4 of scale). Nothing is read back during the steps.
 *
 * Without a WebGPU adapter the suite is skipped locally and FAILS under CI=true.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Tensor, cpu } from "../../src/index.js";
import type { Device } from "../../src/index.js";
import { ALL_METHODS, ARCHS, buildModel, methodApplies } from "../../src/lab/models.js";
import type { Method } from "../../src/lab/models.js";
import { crossEntropyLoss, softmaxCrossEntropy } from "../../src/nn/loss.js";
import { Adam, SGD } from "../../src/nn/optim.js";
import { randn, relToScale } from "./helpers.js";
import { requireGpu } from "./gpu_helpers.js";

const device = requireGpu;

const BATCH = 4;
const batch = (step: number) => ({
  x: Tensor.from(randn(BATCH * 784, 100 + step).map((v) => Math.fround(v)), [BATCH, 1, 28, 28]),
  y: Uint8Array.from({ length: BATCH }, (_, i) => (i * 3 + step) % 10),
});

/** Parameters and buffers of a model, on the host. */
async function state(net: { namedParameters(): Record<string, { value: Tensor }>; namedBuffers(): Record<string, Tensor>; device: Device }) {
  const out: Record<string, Tensor> = {};
  for (const [k, p] of Object.entries(net.namedParameters())) out[k] = await net.device.download(p.value);
  for (const [k, b] of Object.entries(net.namedBuffers())) out[k] = b.isHost ? b : await net.device.download(b);
  return out;
}

const METHODS: readonly Method[] = ALL_METHODS;

describe("the lab's networks on WebGPU", () => {
  for (const arch of ARCHS) {
    for (const method of METHODS.filter((m) => methodApplies(arch, m))) {
      it(`${arch} ${method}: 5 SGD steps on the GPU end where the same 5 steps on the host do`, async (t) => {
        const dev = device(t);
        if (!dev) return;
        const host = buildModel(arch, method, 7).net, moved = buildModel(arch, method, 7).net;
        assert.equal(await moved.to(dev), moved);
        const opt = { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 };
        const optH = new SGD(host.parameters(), opt), optG = new SGD(moved.parameters(), opt);
        const dl = Tensor.zeros([BATCH, 10]);
        let hostLoss = 0;
        let gpuLoss: Tensor | null = null;
        host.train();
        moved.train();
        for (let s = 0; s < 5; s++) {
          const { x, y } = batch(s);
          optH.zeroGrad();
          hostLoss = softmaxCrossEntropy(host.forward(x), y, dl).loss;
          host.backwardParams(dl);
          optH.step();
          optG.zeroGrad();
          const r = crossEntropyLoss(moved.forward(dev.upload(x)), y);
          gpuLoss = r.loss;
          moved.backwardParams(r.dlogits);
          optG.step();
        }
        const want = await state(host), got = await state(moved);
        const bad = Object.keys(want).map((k) => [k, relToScale(got[k]!, want[k]!)] as const).filter(([, e]) => !(e <= 1e-4));
        assert.deepEqual(bad, []);
        const l = (await dev.download(gpuLoss!)).data[0]!;
        assert.ok(Math.abs(l - hostLoss) <= 1e-4 * Math.max(1, Math.abs(hostLoss)), `loss ${l} vs ${hostLoss}`);
        // eval mode on the GPU: the same logits
        host.eval();
        moved.eval();
        const { x } = batch(9);
        assert.ok(relToScale(await dev.download(moved.forward(dev.upload(x))), host.forward(x)) <= 1e-4);
      });
    }
  }

  it("Adam on the GPU takes the host's steps", async (t) => {
    const dev = device(t);
    if (!dev) return;
    const host = buildModel("mlp", "layer_norm", 3).net, moved = buildModel("mlp", "layer_norm", 3).net;
    await moved.to(dev);
    const optH = new Adam(host.parameters(), { lr: 1e-3, weightDecay: 1e-2 }), optG = new Adam(moved.parameters(), { lr: 1e-3, weightDecay: 1e-2 });
    for (let s = 0; s < 3; s++) {
      const { x, y } = batch(s);
      optH.zeroGrad();
      host.backwardParams(softmaxCrossEntropy(host.forward(x), y).dlogits);
      optH.step();
      optG.zeroGrad();
      moved.backwardParams(crossEntropyLoss(moved.forward(dev.upload(x)), y).dlogits);
      optG.step();
    }
    const want = await state(host), got = await state(moved);
    for (const k of Object.keys(want)) assert.ok(relToScale(got[k]!, want[k]!) <= 1e-4, k);
  });

  it("an optimiser refuses a parameter that moved after its first step; the loss checks its labels", async (t) => {
    const dev = device(t);
    if (!dev) return;
    const net = buildModel("mlp", "none", 1).net;
    const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
    const { x, y } = batch(0);
    opt.zeroGrad();
    net.backwardParams(softmaxCrossEntropy(net.forward(x), y).dlogits);
    opt.step();
    await net.to(dev);
    assert.throws(() => opt.step(), /SGD\.step: params: expected parameters on cpu, where this optimiser's state is, got a parameter moved to webgpu/);
    const logits = net.forward(dev.upload(x));
    assert.throws(() => crossEntropyLoss(logits, [0, 1, 2, 10]), /crossEntropyLoss: labels\[3\]: expected an integer in \[0, 10\), got 10/);
    assert.throws(() => crossEntropyLoss(logits, Tensor.from([0, 1, 2, 3], [4])), /labels: expected a tensor on webgpu .* got a tensor on cpu/);
    assert.equal(cpu.type, "cpu");
  });
});
