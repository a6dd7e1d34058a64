/**
 * float64 central-difference checks of dx and of every parameter gradient (weight, bias,
 * mean_weight, var_weight) for every normalization method and option combination, plus the
 * accumulation contract (a second backward adds the same gradients again).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Module, type Parameter } from "../../src/nn/module.js";
import {
  BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm, RMSNorm,
} from "../../src/nn/normalization.js";
import { SwitchableNorm1d, SwitchableNorm2d, SwitchableNorm3d } from "../../src/nn/switchable_norm.js";
import { Tensor } from "../../src/tensor.js";
import { finiteDiffCheck, gradsOf, randTensor, setRandomParams } from "./helpers.js";

interface Case {
  name: string;
  make: () => Module;
  shape: number[];
  mode: "train" | "eval";
}

const F64 = { dtype: "float64" as const };

/** Puts the layer in the requested mode; eval first runs 3 training steps so running statistics are non-trivial. */
function prepare(layer: Module, c: Case, seed: number): void {
  setRandomParams(layer, seed);
  if (c.mode === "eval") {
    layer.train();
    const shape = inputShape(layer, c.shape);
    for (let s = 0; s < 3; s++) layer.forward(randTensor(shape, "float64", seed + 100 + s, { offset: 0.5, scale: 1.5 }));
    layer.eval();
  }
}

const cases: Case[] = [];
function add(name: string, make: () => Module, shape: number[], modes: ("train" | "eval")[] = ["train"]): void {
  for (const mode of modes) cases.push({ name: `${name} [${mode}]`, make, shape, mode });
}

// BatchNorm: rank 2..5 × affine on/off × train/eval (running stats); momentum null; no running stats; channels-last.
const bnShapes: [string, number[], (o: object) => Module][] = [
  ["BatchNorm1d rank 2", [6, 3], (o) => new BatchNorm1d({ numFeatures: 3, ...F64, ...o })],
  ["BatchNorm1d rank 3", [3, 3, 4], (o) => new BatchNorm1d({ numFeatures: 3, ...F64, ...o })],
  ["BatchNorm2d rank 4", [2, 3, 3, 4], (o) => new BatchNorm2d({ numFeatures: 3, ...F64, ...o })],
  ["BatchNorm3d rank 5", [2, 2, 2, 3, 3], (o) => new BatchNorm3d({ numFeatures: 2, ...F64, ...o })],
];
for (const [name, shape, mk] of bnShapes) {
  for (const affine of [true, false]) add(`${name} affine=${affine}`, () => mk({ affine }), shape, ["train", "eval"]);
}
add("BatchNorm2d momentum=null", () => new BatchNorm2d({ numFeatures: 3, momentum: null, ...F64 }), [2, 3, 2, 3], ["train", "eval"]);
add("BatchNorm2d trackRunningStats=false", () => new BatchNorm2d({ numFeatures: 3, trackRunningStats: false, ...F64 }), [2, 3, 2, 3], ["train", "eval"]);
add("BatchNorm2d eps=0.5", () => new BatchNorm2d({ numFeatures: 2, eps: 0.5, ...F64 }), [3, 2, 2, 2], ["train", "eval"]);
add("BatchNorm channelsLast rank 4", () => new BatchNorm({ numFeatures: 3, channelsLast: true, ...F64 }), [2, 3, 2, 3], ["train", "eval"]);
add("BatchNorm channelsLast rank 5", () => new BatchNorm({ numFeatures: 2, channelsLast: true, ...F64 }), [2, 2, 3, 2, 2], ["train", "eval"]);
add("BatchNorm1d channelsLast rank 3", () => new BatchNorm1d({ numFeatures: 3, channelsLast: true, affine: false, ...F64 }), [2, 3, 4]);

// InstanceNorm 1d/2d/3d × affine; with running stats (eval uses them); channels-last.
for (const affine of [true, false]) {
  add(`InstanceNorm1d affine=${affine}`, () => new InstanceNorm1d({ numFeatures: 3, affine, ...F64 }), [2, 3, 5], ["train", "eval"]);
  add(`InstanceNorm2d affine=${affine}`, () => new InstanceNorm2d({ numFeatures: 2, affine, ...F64 }), [2, 2, 3, 3], ["train", "eval"]);
  add(`InstanceNorm3d affine=${affine}`, () => new InstanceNorm3d({ numFeatures: 2, affine, ...F64 }), [2, 2, 2, 2, 3], ["train", "eval"]);
}
add("InstanceNorm2d trackRunningStats", () => new InstanceNorm2d({ numFeatures: 3, affine: true, trackRunningStats: true, ...F64 }), [2, 3, 2, 3], ["train", "eval"]);
add("InstanceNorm2d channelsLast", () => new InstanceNorm2d({ numFeatures: 3, affine: true, channelsLast: true, ...F64 }), [2, 3, 2, 3]);
add("InstanceNorm3d channelsLast trackRunningStats", () => new InstanceNorm3d({ numFeatures: 2, affine: true, channelsLast: true, trackRunningStats: true, ...F64 }), [2, 2, 2, 2, 2], ["train", "eval"]);

// GroupNorm: several G, ranks 2..5, affine off, channels-last.
add("GroupNorm G=1 rank 4", () => new GroupNorm({ numGroups: 1, numChannels: 4, ...F64 }), [2, 4, 2, 3]);
add("GroupNorm G=2 rank 4", () => new GroupNorm({ numGroups: 2, numChannels: 4, ...F64 }), [2, 4, 2, 3]);
add("GroupNorm G=C rank 4", () => new GroupNorm({ numGroups: 4, numChannels: 4, ...F64 }), [2, 4, 2, 3]);
add("GroupNorm G=3 rank 2", () => new GroupNorm({ numGroups: 3, numChannels: 6, ...F64 }), [4, 6]);
add("GroupNorm G=2 rank 3", () => new GroupNorm({ numGroups: 2, numChannels: 6, ...F64 }), [2, 6, 4]);
add("GroupNorm G=2 rank 5", () => new GroupNorm({ numGroups: 2, numChannels: 4, ...F64 }), [2, 4, 2, 2, 3]);
add("GroupNorm G=2 affine=false", () => new GroupNorm({ numGroups: 2, numChannels: 4, affine: false, ...F64 }), [2, 4, 3, 2]);
add("GroupNorm G=2 channelsLast rank 4", () => new GroupNorm({ numGroups: 2, numChannels: 6, channelsLast: true, ...F64 }), [2, 6, 2, 2]);
add("GroupNorm G=2 channelsLast rank 5", () => new GroupNorm({ numGroups: 2, numChannels: 4, channelsLast: true, ...F64 }), [2, 4, 2, 2, 2]);
add("GroupNorm eval (no running stats)", () => new GroupNorm({ numGroups: 3, numChannels: 6, ...F64 }), [2, 6, 3], ["eval"]);

// LayerNorm: one and several trailing dims, elementwiseAffine off, bias off.
add("LayerNorm [5]", () => new LayerNorm({ normalizedShape: 5, ...F64 }), [4, 5], ["train", "eval"]);
add("LayerNorm [3,4]", () => new LayerNorm({ normalizedShape: [3, 4], ...F64 }), [2, 3, 4]);
add("LayerNorm [2,3,4] on rank 4", () => new LayerNorm({ normalizedShape: [2, 3, 4], ...F64 }), [2, 2, 3, 4]);
add("LayerNorm elementwiseAffine=false", () => new LayerNorm({ normalizedShape: [3, 4], elementwiseAffine: false, ...F64 }), [3, 3, 4]);
add("LayerNorm bias=false", () => new LayerNorm({ normalizedShape: [6], bias: false, ...F64 }), [2, 3, 6]);
add("LayerNorm no batch dims", () => new LayerNorm({ normalizedShape: [2, 5], ...F64 }), [2, 5]);

// RMSNorm
add("RMSNorm [6] default eps", () => new RMSNorm({ normalizedShape: 6, ...F64 }), [4, 6], ["train", "eval"]);
add("RMSNorm [3,4] eps=1e-3", () => new RMSNorm({ normalizedShape: [3, 4], eps: 1e-3, ...F64 }), [2, 3, 4]);
add("RMSNorm elementwiseAffine=false", () => new RMSNorm({ normalizedShape: [5], elementwiseAffine: false, ...F64 }), [3, 5]);

// Switchable Norm: usingBN × variance × train/eval; 1d, 3d; moving average off; channels-last.
for (const usingBN of [true, false]) {
  for (const variance of ["reference", "paper"] as const) {
    add(`SwitchableNorm2d usingBN=${usingBN} variance=${variance}`, () => new SwitchableNorm2d({ numFeatures: 3, usingBN, variance, ...F64 }), [3, 3, 2, 3], ["train", "eval"]);
  }
}
for (const variance of ["reference", "paper"] as const) {
  add(`SwitchableNorm1d variance=${variance}`, () => new SwitchableNorm1d({ numFeatures: 4, variance, ...F64 }), [5, 4], ["train", "eval"]);
  add(`SwitchableNorm3d variance=${variance}`, () => new SwitchableNorm3d({ numFeatures: 2, variance, ...F64 }), [2, 2, 2, 2, 3], ["train", "eval"]);
}
add("SwitchableNorm2d usingMovingAverage=false", () => new SwitchableNorm2d({ numFeatures: 2, usingMovingAverage: false, ...F64 }), [3, 2, 2, 2], ["train", "eval"]);
add("SwitchableNorm2d channelsLast", () => new SwitchableNorm2d({ numFeatures: 3, channelsLast: true, ...F64 }), [2, 3, 2, 3], ["train", "eval"]);
add("SwitchableNorm3d channelsLast usingBN=false paper", () => new SwitchableNorm3d({ numFeatures: 2, channelsLast: true, usingBN: false, variance: "paper", ...F64 }), [2, 2, 2, 2, 2]);

/** The input shape the layer sees: channels-last layers get [N, *spatial, C]. */
function inputShape(layer: Module, shape: number[]): number[] {
  const cl = (layer as unknown as { channelsLast?: boolean }).channelsLast === true && shape.length > 2;
  return cl ? [shape[0]!, ...shape.slice(2), shape[1]!] : shape;
}

describe("finite-difference gradients (float64)", () => {
  cases.forEach((c, i) => {
    it(c.name, () => {
      const layer = c.make();
      prepare(layer, c, 1000 + 17 * i);
      const shape = inputShape(layer, c.shape);
      const x = randTensor(shape, "float64", 7 + i, { offset: 0.3, scale: 1.7 });
      const { grads } = finiteDiffCheck(layer, x, { seed: 31 + i, label: c.name });
      // every parameter got a gradient, and something non-zero flowed into it
      for (const [k, g] of Object.entries(grads)) {
        assert.ok(g.some((v) => v !== 0), `${c.name}: d${k} is all zero`);
      }
    });
  });
});

describe("gradient accumulation contract", () => {
  for (const c of cases) {
    it(`${c.name}: a second backward doubles the parameter grads and returns the same dx`, () => {
      const layer = c.make();
      prepare(layer, c, 77);
      const shape = inputShape(layer, c.shape);
      const x = randTensor(shape, "float64", 5);
      const dy = randTensor(shape, "float64", 6);
      layer.forward(x);
      layer.zeroGrad();
      const dx1 = Float64Array.from(layer.backward(dy).data);
      const g1 = gradsOf(layer);
      const dx2 = Float64Array.from(layer.backward(dy).data);
      const g2 = gradsOf(layer);
      assert.deepEqual(dx2, dx1, "dx of the second backward");
      for (const k of Object.keys(g1)) {
        assert.ok(g1[k]!.some((v) => v !== 0), `d${k} non-zero`);
        assert.deepEqual(g2[k], g1[k]!.map((v) => 2 * v), `d${k} after two backward calls`);
      }
      layer.zeroGrad();
      for (const p of layer.parameters()) assert.ok(p.grad.data.every((v) => v === 0), "zeroGrad clears");
    });
  }
});

/** A layer whose backward is wrong on purpose: shows finiteDiffCheck can fail. */
class Corrupted extends Module {
  constructor(private readonly inner: Module, private readonly where: "dx" | "weight") {
    super(inner.dtype);
  }
  forward(x: Tensor): Tensor {
    return this.inner.forward(x);
  }
  backward(dy: Tensor): Tensor {
    const dx = this.inner.backward(dy);
    if (this.where === "dx") dx.data[3] = dx.data[3]! * (1 + 1e-4);
    else this.inner.namedParameters()["weight"]!.grad.data[1]! += 1e-4;
    return dx;
  }
  override namedParameters(): Record<string, Parameter> {
    return this.inner.namedParameters();
  }
  override namedBuffers(): Record<string, Tensor> {
    return this.inner.namedBuffers();
  }
}

describe("finiteDiffCheck itself", () => {
  it("rejects a dx that is off by 1e-4 relative in one element", () => {
    const inner = new BatchNorm2d({ numFeatures: 2, ...F64 });
    setRandomParams(inner, 3);
    assert.throws(() => finiteDiffCheck(new Corrupted(inner, "dx"), randTensor([2, 2, 2, 2], "float64", 4)), assert.AssertionError);
  });
  it("rejects a weight gradient that is off by 1e-4 in one element", () => {
    const inner = new LayerNorm({ normalizedShape: 4, ...F64 });
    setRandomParams(inner, 3);
    assert.throws(() => finiteDiffCheck(new Corrupted(inner, "weight"), randTensor([3, 4], "float64", 4)), /dweight/);
  });
  it("accepts a correct layer (BatchNorm rank 3)", () => {
    const l = new BatchNorm({ numFeatures: 2, ...F64 });
    setRandomParams(l, 9);
    finiteDiffCheck(l, randTensor([3, 2, 2], "float64", 10));
  });
});
