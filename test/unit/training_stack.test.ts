/**
 * The rest of the public training stack: ModuleList / ModuleDict (PyTorch's key names, recursion of
 * train/eval, zeroGrad, parameters, state dicts), Dropout (PyTorch's scaling, eval identity, its
 * gradient), mseLoss (against the formula, and a central difference), summary(); bad input is a
 * typed error naming it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  BatchNorm1d, ConfigError, Conv2d, DeviceError, Dropout, Flatten, Linear, MaxPool2d, ModuleDict, ModuleList, ReLU, Sequential,
  ShapeError, StateError, Tensor, mseLoss, summary,
} from "../../src/index.js";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

describe("ModuleList and ModuleDict", () => {
  it("give PyTorch's keys, nested: list index and dict name prefixes", () => {
    const block = new ModuleDict({ proj: new Linear({ inFeatures: 3, outFeatures: 4, rng: lcg(1) }), norm: new BatchNorm1d({ numFeatures: 4 }) });
    const list = new ModuleList([new Linear({ inFeatures: 2, outFeatures: 3, rng: lcg(2) }), block]);
    assert.deepEqual(Object.keys(list.stateDict()), [
      "0.weight", "0.bias", "1.proj.weight", "1.proj.bias", "1.norm.weight", "1.norm.bias",
      "1.norm.running_mean", "1.norm.running_var", "1.norm.num_batches_tracked",
    ]);
    assert.deepEqual(list.namedModules().map(([n, m]) => `${n}:${m.constructor.name}`), [":ModuleList", "0:Linear", "1:ModuleDict", "1.proj:Linear", "1.norm:BatchNorm1d"]);
    assert.equal(list.parameters().length, 6);
    assert.equal(list.length, 2);
    assert.equal(list.at(-1), block);
    assert.deepEqual(block.keys(), ["proj", "norm"]);
  });

  it("train/eval, zeroGrad and loadStateDict reach every child; a model's forward uses them", () => {
    const layers = new ModuleList([new Linear({ inFeatures: 2, outFeatures: 2, rng: lcg(3) }), new Linear({ inFeatures: 2, outFeatures: 1, rng: lcg(4) })]);
    layers.eval();
    for (const m of layers) assert.equal(m.training, false);
    layers.train();
    for (const m of layers) assert.equal(m.training, true);
    const x = new Tensor(new Float32Array([1, 2]), [1, 2]);
    let h = x;
    for (const m of layers) h = m.forward(h);
    let g = new Tensor(new Float32Array([1]), [1, 1]);
    for (const m of [...layers].reverse()) g = m.backward(g);
    assert.ok(layers.parameters().some((p) => p.grad.data.some((v) => v !== 0)));
    layers.zeroGrad();
    assert.ok(layers.parameters().every((p) => p.grad.data.every((v) => v === 0)));
    const copy = new ModuleList([new Linear({ inFeatures: 2, outFeatures: 2, rng: lcg(9) }), new Linear({ inFeatures: 2, outFeatures: 1, rng: lcg(9) })]);
    copy.loadStateDict(layers.stateDict());
    assert.deepEqual(Array.from(copy.at(1).namedParameters().weight!.value.data), Array.from(layers.at(1).namedParameters().weight!.value.data));
  });

  it("bad input: typed errors naming it", () => {
    assert.throws(() => new ModuleList([{} as never]), (e: unknown) => e instanceof ConfigError && /modules\[0\]/.test(e.message));
    assert.throws(() => new ModuleList([]).at(0), (e: unknown) => e instanceof ConfigError && /index/.test(e.message));
    assert.throws(() => new ModuleDict({ "a.b": new ReLU() }), (e: unknown) => e instanceof ConfigError && /without dots/.test(e.message));
    assert.throws(() => new ModuleDict({ a: new ReLU() }).get("b"), (e: unknown) => e instanceof ConfigError && /one of a/.test(e.message));
    assert.throws(() => new ModuleList([new ReLU()]).forward(new Tensor(new Float32Array(1), [1])), StateError);
  });
});

describe("Dropout", () => {
  it("training: zeroes with probability p and scales the rest by 1/(1-p); the same mask in backward", () => {
    const d = new Dropout({ p: 0.25, rng: lcg(5) });
    const n = 20000;
    const x = new Tensor(Float32Array.from({ length: n }, (_, i) => 1 + (i % 7)), [n]);
    const y = d.forward(x);
    let zeros = 0;
    for (let i = 0; i < n; i++) {
      if (y.data[i] === 0) zeros++;
      else assert.ok(Math.abs(y.data[i]! - x.data[i]! / 0.75) < 1e-5);
    }
    assert.ok(Math.abs(zeros / n - 0.25) < 0.015, `dropped ${zeros / n}`);
    const dx = d.backward(new Tensor(new Float32Array(n).fill(1), [n]));
    for (let i = 0; i < n; i++) assert.equal(dx.data[i] === 0, y.data[i] === 0);
  });
  it("eval mode and p = 0 are the identity", () => {
    const x = new Tensor(new Float32Array([1, -2, 3]), [3]);
    const d = new Dropout({ p: 0.9 }).eval();
    assert.deepEqual(Array.from(d.forward(x).data), [1, -2, 3]);
    assert.deepEqual(Array.from(new Dropout({ p: 0 }).forward(x).data), [1, -2, 3]);
  });
  it("bad p is a ConfigError; a GPU device is refused by name", async () => {
    for (const p of [-0.1, 1, Number.NaN, "0.5"]) assert.throws(() => new Dropout({ p: p as number }), (e: unknown) => e instanceof ConfigError && /p/.test(e.message));
    const fake = { type: "webgpu", label: "webgpu (test)", dtypes: ["float32"] } as never;
    await assert.rejects(new Dropout().to(fake), (e: unknown) => e instanceof DeviceError && /Dropout/.test(e.message));
  });
});

describe("mseLoss", () => {
  it("mean of squared errors and 2(x − t)/n, against the formula and a central difference", () => {
    const xv = [0.5, -1, 2, 3.25], tv = [1, 1, 1, 1];
    const x = Tensor.from(xv, [2, 2], "float64");
    const { loss, dinput } = mseLoss(x, Tensor.from(tv, [2, 2], "float64"));
    assert.ok(Math.abs(loss - xv.reduce((a, v, i) => a + (v - tv[i]!) ** 2, 0) / 4) < 1e-15);
    for (let i = 0; i < 4; i++) {
      const h = 1e-6, up = [...xv], dn = [...xv];
      up[i]! += h;
      dn[i]! -= h;
      const num = (mseLoss(Tensor.from(up, [2, 2], "float64"), tv).loss - mseLoss(Tensor.from(dn, [2, 2], "float64"), tv).loss) / (2 * h);
      assert.ok(Math.abs(num - dinput.data[i]!) < 1e-8, `element ${i}`);
    }
  });
  it("mismatched shapes and empty input are ShapeErrors", () => {
    assert.throws(() => mseLoss(Tensor.from([1, 2], [2]), Tensor.from([1, 2, 3], [3])), (e: unknown) => e instanceof ShapeError && /target/.test(e.message));
    assert.throws(() => mseLoss(Tensor.from([], [0]), []), (e: unknown) => e instanceof ShapeError && /non-empty/.test(e.message));
  });
});

describe("summary", () => {
  it("one row per module with output shapes and parameter counts; the totals; training mode restored", () => {
    const net = new Sequential([
      new Conv2d({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1, rng: lcg(6) }), new ReLU(), new MaxPool2d({ kernelSize: 2 }),
      new Flatten(), new Linear({ inFeatures: 4 * 14 * 14, outFeatures: 10, rng: lcg(7) }),
    ]);
    const s = summary(net, [2, 1, 28, 28]);
    assert.deepEqual(s.rows.map((r) => [r.name, r.type, r.outputShape, r.params]), [
      ["", "Sequential", [2, 10], 0],
      ["0", "Conv2d", [2, 4, 28, 28], 40],
      ["1", "ReLU", [2, 4, 28, 28], 0],
      ["2", "MaxPool2d", [2, 4, 14, 14], 0],
      ["3", "Flatten", [2, 784], 0],
      ["4", "Linear", [2, 10], 7850],
    ]);
    assert.equal(s.totalParams, 7890);
    assert.equal(net.training, true);
    assert.match(s.text, /total parameters: 7,890/);
    assert.throws(() => summary(net, [2, -1] as number[]), ConfigError);
  });
});
