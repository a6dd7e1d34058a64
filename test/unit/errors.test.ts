/**
 * Bad input gets a typed error that names the offending parameter, and changes nothing: after the
 * error the layer's parameters, gradients, running statistics (incl. num_batches_tracked) are
 * bit-identical to before, and the cached forward still gives the same backward.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, NormkitError, ShapeError, StateDictError, StateError } from "../../src/errors.js";
import type { Module } from "../../src/nn/module.js";
import {
  BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm, RMSNorm,
} from "../../src/nn/normalization.js";
import { SwitchableNorm1d, SwitchableNorm2d, SwitchableNorm3d } from "../../src/nn/switchable_norm.js";
import { Tensor } from "../../src/tensor.js";
import { randTensor, setRandomParams } from "./helpers.js";

type ErrorClass = typeof ShapeError | typeof ConfigError | typeof StateDictError | typeof StateError;

interface Snapshot {
  state: Record<string, number[]>;
  grads: Record<string, number[]>;
  training: boolean;
}
function snapshot(layer: Module): Snapshot {
  const state: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(layer.stateDict())) state[k] = Array.from(t.data);
  const grads: Record<string, number[]> = {};
  for (const [k, p] of Object.entries(layer.namedParameters())) grads[k] = Array.from(p.grad.data);
  return { state, grads, training: layer.training };
}
/** deepStrictEqual compares numbers with Object.is: bit-identical up to NaN payloads, and -0 ≠ 0. */
function assertUnchanged(layer: Module, before: Snapshot, what: string): void {
  assert.deepStrictEqual(snapshot(layer), before, `${what}: layer state changed`);
}

function expectError(fn: () => unknown, cls: ErrorClass, param: string, what: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `${what}: expected ${cls.name}, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.ok(err instanceof NormkitError);
    assert.equal(err.param, param, `${what}: err.param`);
    assert.ok(err.message.includes(param), `${what}: message names ${param}`);
    return true;
  }, what);
}

interface Subject {
  name: string;
  make: () => Module;
  /** A valid input shape. */
  shape: number[];
  /** Shapes of the wrong rank. */
  badRank: number[][];
  /** Shapes with the wrong channel count / trailing dims. */
  badChannels: number[][];
  /** Training inputs with too few values per statistic. */
  tooFew?: number[][];
}

const F64 = { dtype: "float64" as const };
const subjects: Subject[] = [
  { name: "BatchNorm", make: () => new BatchNorm({ numFeatures: 4, ...F64 }), shape: [3, 4, 2], badRank: [[4], [1, 4, 1, 1, 1, 2]], badChannels: [[3, 5, 2], [3, 3]], tooFew: [[1, 4], [1, 4, 1]] },
  { name: "BatchNorm1d", make: () => new BatchNorm1d({ numFeatures: 4, ...F64 }), shape: [5, 4], badRank: [[4], [2, 4, 2, 2]], badChannels: [[5, 3]], tooFew: [[1, 4]] },
  { name: "BatchNorm2d", make: () => new BatchNorm2d({ numFeatures: 4, ...F64 }), shape: [3, 4, 2, 2], badRank: [[3, 4, 2], [3, 4, 2, 2, 1]], badChannels: [[3, 2, 2, 2]], tooFew: [[1, 4, 1, 1]] },
  { name: "BatchNorm3d", make: () => new BatchNorm3d({ numFeatures: 2, ...F64 }), shape: [2, 2, 2, 2, 2], badRank: [[2, 2, 2, 2]], badChannels: [[2, 3, 2, 2, 2]], tooFew: [[1, 2, 1, 1, 1]] },
  { name: "BatchNorm channelsLast", make: () => new BatchNorm({ numFeatures: 4, channelsLast: true, ...F64 }), shape: [2, 3, 4], badRank: [[4]], badChannels: [[2, 4, 3]] },
  { name: "InstanceNorm1d", make: () => new InstanceNorm1d({ numFeatures: 4, affine: true, trackRunningStats: true, ...F64 }), shape: [2, 4, 3], badRank: [[4], [2, 4, 3, 3]], badChannels: [[2, 3, 3], [3, 3]], tooFew: [[2, 4, 1], [4, 1]] },
  { name: "InstanceNorm2d", make: () => new InstanceNorm2d({ numFeatures: 4, affine: true, trackRunningStats: true, ...F64 }), shape: [2, 4, 3, 3], badRank: [[4, 9], [2, 4, 3, 3, 1]], badChannels: [[2, 5, 3, 3], [5, 3, 3]], tooFew: [[2, 4, 1, 1], [4, 1, 1]] },
  { name: "InstanceNorm3d", make: () => new InstanceNorm3d({ numFeatures: 2, affine: true, ...F64 }), shape: [2, 2, 2, 2, 2], badRank: [[2, 2, 8]], badChannels: [[2, 4, 2, 2, 2], [4, 2, 2, 2]], tooFew: [[3, 2, 1, 1, 1]] },
  { name: "GroupNorm", make: () => new GroupNorm({ numGroups: 2, numChannels: 4, ...F64 }), shape: [2, 4, 3], badRank: [[4], [1, 4, 1, 1, 1, 2]], badChannels: [[2, 6, 3]] },
  { name: "LayerNorm", make: () => new LayerNorm({ normalizedShape: [3, 4], ...F64 }), shape: [2, 3, 4], badRank: [[12]], badChannels: [[2, 4, 3], [2, 3, 5]] },
  { name: "RMSNorm", make: () => new RMSNorm({ normalizedShape: 4, ...F64 }), shape: [3, 4], badRank: [[]], badChannels: [[3, 5]] },
  { name: "SwitchableNorm2d", make: () => new SwitchableNorm2d({ numFeatures: 4, ...F64 }), shape: [3, 4, 2, 2], badRank: [[3, 4, 4], [3, 4, 2, 2, 1]], badChannels: [[3, 5, 2, 2]], tooFew: [[1, 4, 1, 1], [3, 4, 1, 1]] },
  { name: "SwitchableNorm2d paper, no BN", make: () => new SwitchableNorm2d({ numFeatures: 4, usingBN: false, variance: "paper", ...F64 }), shape: [3, 4, 2, 2], badRank: [[3, 4]], badChannels: [[3, 3, 2, 2]] },
  { name: "SwitchableNorm1d", make: () => new SwitchableNorm1d({ numFeatures: 4, ...F64 }), shape: [5, 4], badRank: [[5, 4, 1]], badChannels: [[5, 3]], tooFew: [[1, 4]] },
  { name: "SwitchableNorm3d", make: () => new SwitchableNorm3d({ numFeatures: 2, ...F64 }), shape: [2, 2, 2, 2, 2], badRank: [[2, 2, 2, 2]], badChannels: [[2, 3, 2, 2, 2]], tooFew: [[2, 2, 1, 1, 1]] },
];

/** A layer with non-trivial parameters, gradients, running statistics and a cached forward; returns what backward gave. */
function primed(s: Subject): { layer: Module; x: Tensor; dy: Tensor; dx: number[] } {
  const layer = s.make();
  setRandomParams(layer, 3);
  layer.forward(randTensor(s.shape, "float64", 4, { offset: 0.5 }));
  const x = randTensor(s.shape, "float64", 5, { offset: -0.3 });
  const dy = randTensor(s.shape, "float64", 6);
  layer.forward(x);
  const dx = Array.from(layer.backward(dy).data);
  return { layer, x, dy, dx };
}

/** The error is thrown, typed, names `param`; the layer is unchanged; its cached forward still works. */
function rejects(s: Subject, fn: (layer: Module) => unknown, cls: ErrorClass, param: string, what: string): void {
  const p = primed(s);
  const before = snapshot(p.layer);
  expectError(() => fn(p.layer), cls, param, `${s.name}: ${what}`);
  assertUnchanged(p.layer, before, `${s.name}: ${what}`);
  p.layer.train(before.training);
  assert.deepStrictEqual(Array.from(p.layer.backward(p.dy).data), p.dx, `${s.name}: ${what}: cached forward intact`);
}

describe("bad input: typed error naming the parameter, layer unchanged", () => {
  for (const s of subjects) {
    describe(s.name, () => {
      it("wrong rank", () => {
        for (const shape of s.badRank) rejects(s, (l) => l.forward(randTensor(shape, "float64", 9)), ShapeError, "x", `rank ${shape.length}`);
      });
      it("channel-count / trailing-dims mismatch", () => {
        for (const shape of s.badChannels) rejects(s, (l) => l.forward(randTensor(shape, "float64", 9)), ShapeError, "x", JSON.stringify(shape));
      });
      if (s.tooFew) {
        it("training with too few values per statistic", () => {
          for (const shape of s.tooFew!) rejects(s, (l) => l.forward(randTensor(shape, "float64", 9)), ShapeError, "x", JSON.stringify(shape));
        });
      }
      if (s.name.startsWith("SwitchableNorm")) {
        // the reference code has no empty-batch semantics (its statistics would be 0/0)
        it("empty input", () => {
          const shape = [0, ...s.shape.slice(1)];
          rejects(s, (l) => l.forward(Tensor.zeros(shape, "float64")), ShapeError, "x", "N = 0");
        });
      } else {
        it("an empty batch (N = 0) gives empty outputs and changes no statistic, as in PyTorch", () => {
          const p = primed(s);
          const before = snapshot(p.layer);
          const shape = [0, ...s.shape.slice(1)];
          const y = p.layer.forward(Tensor.zeros(shape, "float64"));
          assert.deepEqual(y.shape, shape);
          const dx = p.layer.backward(Tensor.zeros(shape, "float64"));
          assert.deepEqual(dx.shape, shape);
          const after = snapshot(p.layer);
          // PyTorch counts the (empty) batch of a tracking BatchNorm in training: nothing else moves
          const nbt = before.state["num_batches_tracked"];
          if (nbt && s.name.startsWith("BatchNorm")) {
            assert.deepEqual(after.state["num_batches_tracked"], [nbt[0]! + 1], "num_batches_tracked counts the batch");
            before.state["num_batches_tracked"] = after.state["num_batches_tracked"]!;
          }
          assert.deepStrictEqual(after, before);
        });
      }
      it("input of the wrong dtype", () => {
        rejects(s, (l) => l.forward(randTensor(s.shape, "float32", 9)), ConfigError, "x.dtype", "float32 x");
      });
      it("dy of the wrong shape", () => {
        const bad = [...s.shape];
        bad[0] = bad[0]! + 1;
        rejects(s, (l) => l.backward(randTensor(bad, "float64", 9)), ShapeError, "dy", "dy with N+1");
        rejects(s, (l) => l.backward(randTensor([s.shape.reduce((a, b) => a * b, 1)], "float64", 9)), ShapeError, "dy", "flat dy");
      });
      it("dy of the wrong dtype", () => {
        rejects(s, (l) => l.backward(randTensor(s.shape, "float32", 9)), ConfigError, "dy.dtype", "float32 dy");
      });
      it("backward before forward", () => {
        const layer = s.make();
        setRandomParams(layer, 3);
        const before = snapshot(layer);
        expectError(() => layer.backward(randTensor(s.shape, "float64", 9)), StateError, "backward", `${s.name}: backward before forward`);
        assertUnchanged(layer, before, `${s.name}: backward before forward`);
        // a failed forward does not create a cache either
        expectError(() => layer.forward(randTensor(s.badChannels[0]!, "float64", 9)), ShapeError, "x", `${s.name}: bad forward`);
        expectError(() => layer.backward(randTensor(s.shape, "float64", 9)), StateError, "backward", `${s.name}: backward after a failed forward`);
      });
      it("loadStateDict: missing key, mis-shaped key, unexpected key (strict), NaN num_batches_tracked", () => {
        const other = s.make();
        setRandomParams(other, 77);
        other.forward(randTensor(s.shape, "float64", 78, { offset: 2 }));
        const good = other.stateDict();
        const keys = Object.keys(good);
        for (const k of keys) {
          const missing = { ...good };
          delete missing[k];
          rejects(s, (l) => l.loadStateDict(missing), StateDictError, k, `missing ${k}`);
          const t = good[k]!;
          const misShaped = { ...good, [k]: Tensor.zeros(t.size === 1 ? [2] : [t.size + 1], "float64") };
          rejects(s, (l) => l.loadStateDict(misShaped), StateDictError, k, `mis-shaped ${k}`);
          if (t.rank >= 2) {
            // same number of values, different shape (e.g. Switchable Norm's [1, C, 1] vs [1, C])
            const reshaped = { ...good, [k]: t.reshape([t.size]) };
            rejects(s, (l) => l.loadStateDict(reshaped), StateDictError, k, `reshaped ${k}`);
          }
        }
        rejects(s, (l) => l.loadStateDict({ ...good, "extra.weight": Tensor.zeros([1], "float64") }), StateDictError, "extra.weight", "unexpected key");
        if ("num_batches_tracked" in good) {
          rejects(s, (l) => l.loadStateDict({ ...good, num_batches_tracked: Tensor.full([], NaN, "float64") }), StateDictError, "num_batches_tracked", "NaN count");
        }
        // non-strict ignores the unexpected key and loads the rest (strict's effect is visible)
        const p = primed(s);
        p.layer.loadStateDict({ ...good, "extra.weight": Tensor.zeros([1], "float64") }, { strict: false });
        const now = p.layer.stateDict();
        for (const k of keys) assert.deepStrictEqual(Array.from(now[k]!.data), Array.from(good[k]!.data), `non-strict loaded ${k}`);
      });
    });
  }
});

describe("constructor options: typed errors naming the option", () => {
  const makers: [string, (o: Record<string, unknown>) => unknown, boolean][] = [
    ["BatchNorm2d", (o) => new BatchNorm2d({ numFeatures: 3, ...o }), true],
    ["InstanceNorm2d", (o) => new InstanceNorm2d({ numFeatures: 3, ...o }), true],
    ["GroupNorm", (o) => new GroupNorm({ numGroups: 1, numChannels: 3, ...o }), false],
    ["LayerNorm", (o) => new LayerNorm({ normalizedShape: 3, ...o }), false],
    ["RMSNorm", (o) => new RMSNorm({ normalizedShape: 3, ...o }), false],
    ["SwitchableNorm2d", (o) => new SwitchableNorm2d({ numFeatures: 3, ...o }), true],
    ["SwitchableNorm1d", (o) => new SwitchableNorm1d({ numFeatures: 3, ...o }), true],
  ];
  for (const [name, make, hasMomentum] of makers) {
    it(`${name}: eps must be finite and > 0`, () => {
      for (const eps of [0, -1e-5, NaN, Infinity, -Infinity]) expectError(() => make({ eps }), ConfigError, "eps", `${name} eps=${eps}`);
      make({ eps: 1e-300 }); // any positive finite eps is fine
    });
    it(`${name}: dtype must be float32 or float64`, () => {
      expectError(() => make({ dtype: "float16" }), ConfigError, "dtype", `${name} dtype`);
    });
    if (hasMomentum) {
      it(`${name}: momentum must be a number in [0, 1]`, () => {
        for (const momentum of [NaN, -0.1, 1.5, Infinity]) expectError(() => make({ momentum }), ConfigError, "momentum", `${name} momentum=${momentum}`);
        make({ momentum: 0 });
        make({ momentum: 1 });
      });
    }
  }
  it("GroupNorm: C not divisible by G", () => {
    expectError(() => new GroupNorm({ numGroups: 4, numChannels: 6 }), ConfigError, "numGroups", "6 % 4");
    expectError(() => new GroupNorm({ numGroups: 0, numChannels: 6 }), ConfigError, "numGroups", "G = 0");
    expectError(() => new GroupNorm({ numGroups: 2, numChannels: 0 }), ConfigError, "numChannels", "C = 0");
  });
  it("numFeatures and normalizedShape must be positive integers", () => {
    expectError(() => new BatchNorm2d({ numFeatures: 0 }), ConfigError, "numFeatures", "BN 0");
    expectError(() => new InstanceNorm1d({ numFeatures: 2.5 }), ConfigError, "numFeatures", "IN 2.5");
    expectError(() => new SwitchableNorm2d({ numFeatures: -1 }), ConfigError, "numFeatures", "SN -1");
    expectError(() => new LayerNorm({ normalizedShape: [] }), ConfigError, "normalizedShape", "LN []");
    expectError(() => new RMSNorm({ normalizedShape: [3, 0] }), ConfigError, "normalizedShape", "RMS [3, 0]");
  });
  it("boolean options must be booleans; Switchable Norm variance and usingBN", () => {
    expectError(() => new BatchNorm2d({ numFeatures: 2, affine: 1 as unknown as boolean }), ConfigError, "affine", "affine=1");
    expectError(() => new LayerNorm({ normalizedShape: 2, bias: "no" as unknown as boolean }), ConfigError, "bias", "bias='no'");
    expectError(() => new SwitchableNorm2d({ numFeatures: 2, variance: "biased" as "paper" }), ConfigError, "variance", "variance");
    expectError(() => new SwitchableNorm1d({ numFeatures: 2, usingBN: false }), ConfigError, "usingBN", "SN1d without BN");
  });
});

describe("BatchNorm forward(x, out) with a bad out buffer", () => {
  it("names out and changes nothing (not even num_batches_tracked)", () => {
    const s = subjects.find((t) => t.name === "BatchNorm2d")!;
    rejects(s, (l) => (l as BatchNorm2d).forward(randTensor(s.shape, "float64", 9), Tensor.zeros([3, 4, 2, 1], "float64")), ShapeError, "out", "out shape");
    rejects(s, (l) => (l as BatchNorm2d).forward(randTensor(s.shape, "float64", 9), Tensor.zeros(s.shape, "float32")), ShapeError, "out", "out dtype");
  });
});

describe("valid edge cases are accepted", () => {
  it("BatchNorm in eval mode with running statistics accepts one value per channel", () => {
    const bn = new BatchNorm1d({ numFeatures: 3, ...F64 }).eval();
    assert.equal(bn.forward(Tensor.from([1, 2, 3], [1, 3], "float64")).size, 3);
  });
  it("SwitchableNorm2d in eval mode (BN from running stats) accepts N = 1", () => {
    const sn = new SwitchableNorm2d({ numFeatures: 2, ...F64 });
    sn.forward(randTensor([2, 2, 2, 2], "float64", 1));
    sn.eval();
    assert.equal(sn.forward(randTensor([1, 2, 2, 2], "float64", 2)).size, 8);
  });
});
