/**
 * Module.to(device) without a GPU: the host device is a no-op, and every refusal happens before
 * anything moves (a stub device that would fail any transfer proves that nothing was attempted).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BatchNorm2d, DeviceError, LayerNorm, Tensor, cpu } from "../../src/index.js";
import type { Device } from "../../src/index.js";
import { Sequential } from "../../src/nn/basic.js";
import { HostOnly } from "./helpers.js";

/** A WebGPU-typed device whose every transfer throws: to() must refuse before calling any. */
const stub: Device = {
  type: "webgpu",
  label: "stub-gpu",
  dtypes: ["float32"],
  kernels: cpu.kernels,
  ops: cpu.ops,
  holds: () => false,
  zeros: () => assert.fail("zeros called"),
  upload: () => assert.fail("upload called"),
  download: () => assert.fail("download called"),
  fill: () => assert.fail("fill called"),
};

describe("Module.to", () => {
  it("to(cpu) on a host module returns the same object and keeps the same tensors", async () => {
    const ln = new LayerNorm({ normalizedShape: 4 });
    const w = ln.weight!.value;
    assert.equal(await ln.to(cpu), ln);
    assert.equal(ln.device, cpu);
    assert.equal(ln.weight!.value, w);
  });

  for (const [what, make, msg] of [
    ["a module without kernels there", () => new Sequential([new LayerNorm({ normalizedShape: 3 }), new HostOnly()]), /HostOnly\.to: device: expected a device HostOnly supports, got stub-gpu \(HostOnly has no webgpu kernels yet\)/],
    ["a float64 layer on a float32 device", () => new BatchNorm2d({ numFeatures: 2, dtype: "float64" }), /BatchNorm2d\.to: dtype: expected one of float32 on stub-gpu, got float64/],
    ["channelsLast", () => new BatchNorm2d({ numFeatures: 2, channelsLast: true }), /channelsLast is not implemented by the webgpu kernels/],
  ] as const) {
    it(`refuses ${what} by name, before any transfer, and changes nothing`, async () => {
      const m = make();
      const before = m.stateDict();
      await assert.rejects(m.to(stub), (e: unknown) => e instanceof DeviceError && msg.test((e as Error).message));
      assert.ok(m.modules().every((x) => x.device === cpu));
      const after = m.stateDict();
      for (const k of Object.keys(before)) assert.deepEqual([...after[k]!.data], [...before[k]!.data], k);
    });
  }

  it("a transfer that fails part-way through a model leaves every module where it was", async () => {
    let uploads = 0;
    const flaky: Device = {
      ...cpu, type: "webgpu", label: "flaky", dtypes: ["float32"], holds: (t) => !t.isHost,
      upload: (t) => {
        if (++uploads === 5) throw new Error("out of device memory");
        return t.clone();
      },
    };
    const a = new BatchNorm2d({ numFeatures: 2 }), b = new LayerNorm({ normalizedShape: 2 });
    const model = new Sequential([a, b]);
    const tensors = [a.weight!.value, a.runningMean, b.weight!.value];
    await assert.rejects(model.to(flaky), /out of device memory/);
    assert.ok(uploads >= 5);
    assert.ok(model.modules().every((m) => m.device === cpu));
    assert.deepEqual([a.weight!.value, a.runningMean, b.weight!.value], tensors);
  });

  it("a layer refuses a tensor its device does not hold, naming both devices", () => {
    const ln = new LayerNorm({ normalizedShape: 2 });
    const foreign = Object.create(Tensor.zeros([1, 2]), { device: { value: "webgpu" }, isHost: { value: false } }) as Tensor;
    assert.throws(() => ln.forward(foreign), (e: unknown) => e instanceof DeviceError && /LayerNorm\.forward: x: expected a tensor on cpu \(the layer's device\), got a tensor on webgpu/.test((e as Error).message));
  });
});
