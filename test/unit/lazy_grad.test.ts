/**
 * zeroGrad marks a layer's gradients zero instead of writing them (LayerParameter), and the next
 * backward overwrites them (the `accumulate: false` of linearBackward / conv2dBackward) — PyTorch's
 * zero_grad(set_to_none=True) without the None. Every reader must see exactly what filling with 0 and
 * adding would have given: the same bits, on the host (float32 on the WebAssembly kernels, float64 on
 * the TypeScript ones) and on WebGPU; with one of a layer's gradients read (so filled) in between; over
 * two backwards; for an empty batch; through a move to another device; for a plain { value, grad }.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Conv2d, Linear, SGD, Tensor, WeightNorm, cpu } from "../../src/index.js";
import type { DType, Device, Module } from "../../src/index.js";
import { LayerParameter, zeroGradOf } from "../../src/nn/module.js";
import type { Parameter } from "../../src/nn/module.js";
import { randn } from "./helpers.js";
import { requireGpu } from "./gpu_helpers.js";

const bits = (t: Tensor) => Array.from(t.dtype === "float32" ? new Uint32Array(Float32Array.from(t.data).buffer) : t.data);

/** The layer's gradients, on the host. */
async function grads(m: Module): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, p] of Object.entries(m.namedParameters())) out[k] = bits(m.device.type === "cpu" ? p.grad : await m.device.download(p.grad));
  return out;
}

/** Fills every gradient with 0 the old way (no mark), so the next backward adds. */
function fillGrads(m: Module): void {
  for (const p of m.parameters()) m.device.fill(p.grad, 0);
}

type Make = (dtype: DType) => Module & { forward(x: Tensor): Tensor; backward(dy: Tensor): Tensor };
const LAYERS: [string, Make, (n: number) => number[]][] = [
  ["Linear", (dtype) => new Linear({ inFeatures: 7, outFeatures: 5, rng: seeded(1), dtype }), (n) => [n, 7]],
  ["Conv2d", (dtype) => new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, rng: seeded(2), dtype }), (n) => [n, 3, 6, 6]],
  ["WeightNorm(Linear)", (dtype) => new WeightNorm(new Linear({ inFeatures: 7, outFeatures: 5, rng: seeded(3), dtype })), (n) => [n, 7]],
];

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

/** Two copies of the layer on `device`: one zeroed by zeroGrad (marked), one by filling. Runs `steps` on both. */
async function twins(make: Make, dtype: DType, device: Device, shape: number[], steps: (m: Module & { forward(x: Tensor): Tensor; backward(dy: Tensor): Tensor }, lazy: boolean) => void) {
  const out: Record<string, number[]>[] = [];
  for (const lazy of [true, false]) {
    const m = make(dtype);
    if (device !== cpu) await m.to(device);
    steps(m, lazy);
    out.push(await grads(m));
  }
  return out;
}

function input(shape: number[], dtype: DType, seed: number, device: Device): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const t = Tensor.from(randn(n, seed), shape, dtype);
  return device === cpu ? t : device.upload(t, dtype);
}

/** `device(t)`: the device, or null after skipping the test (no GPU adapter, outside CI). */
function cases(device: (t: { skip(m: string): void }) => Device | null, dtypes: DType[]) {
  for (const [name, make, shapeOf] of LAYERS) {
    for (const dtype of dtypes) {
      it(`${name}, ${dtype}: zeroGrad then backward gives the bits of filling with 0 and adding`, async (t) => {
        const d = device(t);
        if (!d) return;
        const [lazy, filled] = await twins(make, dtype, d, shapeOf(3), (m, isLazy) => {
          // a first step, so that there is something to zero
          m.forward(input(shapeOf(3), dtype, 1, d));
          m.backward(input(m.forward(input(shapeOf(3), dtype, 1, d)).shape as number[], dtype, 2, d));
          if (isLazy) m.zeroGrad();
          else fillGrads(m);
          const y = m.forward(input(shapeOf(3), dtype, 3, d));
          m.backward(input(y.shape as number[], dtype, 4, d));
        });
        assert.deepEqual(lazy, filled);
        assert.ok(Object.values(lazy).some((g) => g.some((b) => b !== 0)), "the gradients are not all zero");
      });

      it(`${name}, ${dtype}: two backwards after zeroGrad add up, and a gradient read in between is right`, async (t) => {
        const d = device(t);
        if (!d) return;
        const [lazy, filled] = await twins(make, dtype, d, shapeOf(2), (m, isLazy) => {
          if (isLazy) m.zeroGrad();
          else fillGrads(m);
          if (isLazy) void m.parameters().at(-1)!.grad; // read (so filled) one of them: the rest are still marked
          for (const seed of [5, 6]) {
            const y = m.forward(input(shapeOf(2), dtype, seed, d));
            m.backward(input(y.shape as number[], dtype, seed + 10, d));
          }
        });
        assert.deepEqual(lazy, filled);
      });

      it(`${name}, ${dtype}: an empty batch after zeroGrad leaves zero gradients`, async (t) => {
        const d = device(t);
        if (!d) return;
        const m = make(dtype);
        if (d !== cpu) await m.to(d);
        const y0 = m.forward(input(shapeOf(2), dtype, 7, d));
        m.backward(input(y0.shape as number[], dtype, 8, d));
        m.zeroGrad();
        const y = m.forward(input(shapeOf(0), dtype, 9, d));
        m.backward(input(y.shape as number[], dtype, 9, d));
        for (const [k, g] of Object.entries(await grads(m))) assert.ok(g.every((b) => b === 0), `${k}: all zero`);
      });
    }
  }
}

describe("zeroGrad marks, backward overwrites: on the host", () => {
  cases(() => cpu, ["float32", "float64"]);

  it("reading a marked gradient finds zeros (filled then); a plain { value, grad } is filled at once", () => {
    const lin = new Linear({ inFeatures: 3, outFeatures: 2, rng: seeded(4) });
    lin.forward(Tensor.from(randn(6, 1), [2, 3]));
    lin.backward(Tensor.from(randn(4, 2), [2, 2]));
    const w = lin.weight as LayerParameter;
    assert.ok(w instanceof LayerParameter);
    const before = Array.from(w.rawGrad.data);
    assert.ok(before.some((v) => v !== 0));
    lin.zeroGrad();
    assert.equal(w.zeroPending, true);
    assert.deepEqual(Array.from(w.rawGrad.data), before, "marking writes nothing");
    assert.deepEqual(Array.from(w.grad.data), [0, 0, 0, 0, 0, 0]);
    assert.equal(w.zeroPending, false);

    const plain: Parameter = { value: Tensor.from([1, 2], [2]), grad: Tensor.from([3, 4], [2]) };
    zeroGradOf(plain, "test");
    assert.deepEqual(Array.from(plain.grad.data), [0, 0]);
    const opt = new SGD([plain], { lr: 0.1 });
    plain.grad.data.set([5, 6]);
    opt.zeroGrad();
    assert.deepEqual(Array.from(plain.grad.data), [0, 0]);
  });

  it("an optimiser's zeroGrad marks too, and its step sees zeros for a gradient no backward wrote", () => {
    const lin = new Linear({ inFeatures: 3, outFeatures: 2, rng: seeded(5) });
    const opt = new SGD(lin.parameters(), { lr: 0.5, momentum: 0.9 });
    lin.forward(Tensor.from(randn(6, 2), [2, 3]));
    lin.backward(Tensor.from(randn(4, 3), [2, 2]));
    opt.step();
    const after1 = Array.from(lin.weight.value.data);
    opt.zeroGrad();
    assert.equal((lin.weight as LayerParameter).zeroPending, true);
    opt.step(); // zero gradient: only the momentum moves the weights, p -= lr·μ·b
    const twin = new Linear({ inFeatures: 3, outFeatures: 2, rng: seeded(5) });
    const topt = new SGD(twin.parameters(), { lr: 0.5, momentum: 0.9 });
    twin.forward(Tensor.from(randn(6, 2), [2, 3]));
    twin.backward(Tensor.from(randn(4, 3), [2, 2]));
    topt.step();
    assert.deepEqual(Array.from(twin.weight.value.data), after1);
    for (const p of twin.parameters()) p.grad.data.fill(0);
    topt.step();
    assert.deepEqual(Array.from(lin.weight.value.data), Array.from(twin.weight.value.data));
  });
});

describe("zeroGrad marks, backward overwrites: on WebGPU", () => {
  cases((t) => requireGpu(t), ["float32"]);

  it("a marked gradient moved to the GPU arrives as zeros", async (t) => {
    const d = requireGpu(t);
    if (!d) return;
    const lin = new Linear({ inFeatures: 3, outFeatures: 2, rng: seeded(6) });
    lin.forward(Tensor.from(randn(6, 3), [2, 3]));
    lin.backward(Tensor.from(randn(4, 4), [2, 2]));
    lin.zeroGrad();
    await lin.to(d);
    for (const p of lin.parameters()) assert.ok(Array.from((await d.download(p.grad)).data).every((v) => v === 0));
    await lin.to(cpu);
  });
});
