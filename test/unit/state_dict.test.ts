// Nested state dicts with PyTorch's key names: every container and wrapper, namedModules, every
// entry validated before anything is copied, all missing and unexpected keys in one error (strict)
// or returned (non-strict), and a JSON round trip.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StateDictError } from "../../src/errors.js";
import { buildModel } from "../../src/lab/models.js";
import { Conv2d } from "../../src/nn/conv2d.js";
import { Linear } from "../../src/nn/linear.js";
import { Module } from "../../src/nn/module.js";
import { BatchNorm2d, GroupNorm } from "../../src/nn/normalization.js";
import { Flatten, ReLU, ReuseOutputs, Sequential } from "../../src/nn/basic.js";
import { WeightNorm } from "../../src/nn/weight_norm.js";
import { mulberry32 } from "../../src/rng.js";
import { Tensor } from "../../src/tensor.js";

const f64 = "float64" as const;

/** Every value of every key, as plain arrays (bit-exact comparison of a whole model). */
function values(m: Module): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(m.stateDict())) out[k] = Array.from(t.data);
  return out;
}

/** A model whose state dict has every kind of key: Sequential in Sequential, ReuseOutputs, WeightNorm, BatchNorm buffers. */
function nested(seed: number): Sequential {
  const rng = mulberry32(seed);
  const features = new Sequential([
    new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3, padding: 1, rng, dtype: f64 }),
    new ReuseOutputs(new BatchNorm2d({ numFeatures: 2, dtype: f64 })),
    new ReLU({ dtype: f64 }),
  ]);
  const head = new Sequential([new Flatten({ dtype: f64 }), new WeightNorm(new Linear({ inFeatures: 2 * 4 * 4, outFeatures: 3, rng, dtype: f64 }))]);
  const m = new Sequential([features, head]);
  // distinct values everywhere (running statistics and the counter too)
  const sd = m.stateDict();
  for (const [k, t] of Object.entries(sd)) {
    if (k.endsWith("num_batches_tracked")) t.data[0] = 5;
    else for (let i = 0; i < t.size; i++) t.data[i] = k.endsWith("running_var") ? 0.5 + rng() : rng() - 0.5;
  }
  m.loadStateDict(sd);
  return m;
}

const NESTED_KEYS = [
  "0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias", "1.1.parametrizations.weight.original0", "1.1.parametrizations.weight.original1", "1.1.bias",
  "0.1.running_mean", "0.1.running_var", "0.1.num_batches_tracked",
];

describe("nested state dicts", () => {
  it("dotted PyTorch keys through Sequential, ReuseOutputs and WeightNorm", () => {
    assert.deepEqual(Object.keys(nested(1).stateDict()), NESTED_KEYS);
  });

  it("the lab's CNN has the keys of the lab's PyTorch nn.Sequential", () => {
    assert.deepEqual(Object.keys(buildModel("cnn", "batch_norm", 0).net.stateDict()), [
      "0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias", "5.weight", "5.bias", "9.weight", "9.bias",
      "1.running_mean", "1.running_var", "1.num_batches_tracked", "5.running_mean", "5.running_var", "5.num_batches_tracked",
    ]);
    assert.deepEqual(Object.keys(buildModel("cnn", "weight_norm", 0).net.stateDict()).sort(), [
      "0.bias", "0.parametrizations.weight.original0", "0.parametrizations.weight.original1", "3.bias", "3.parametrizations.weight.original0",
      "3.parametrizations.weight.original1", "7.bias", "7.parametrizations.weight.original0", "7.parametrizations.weight.original1",
    ]);
  });

  it("loads a whole nested model (buffers and counters included) and computes the same", () => {
    const a = nested(1), b = nested(2);
    assert.notDeepEqual(values(a), values(b));
    assert.deepEqual(b.loadStateDict(a.stateDict()), { missingKeys: [], unexpectedKeys: [] });
    assert.deepStrictEqual(values(b), values(a));
    const x = Tensor.from(Array.from({ length: 2 * 16 }, (_, i) => Math.sin(i)), [2, 1, 4, 4], f64);
    a.eval();
    b.eval();
    assert.deepEqual(b.forward(x).toArray(), a.forward(x).toArray());
  });

  it("namedModules: PyTorch's dotted names, wrappers sharing their layer's name", () => {
    const m = nested(1);
    const names = m.namedModules().map(([n, mod]) => `${n}:${mod.constructor.name}`);
    assert.deepEqual(names, [
      ":Sequential", "0:Sequential", "0.0:Conv2d", "0.1:ReuseOutputs", "0.1:BatchNorm2d", "0.2:ReLU", "1:Sequential", "1.0:Flatten",
      "1.1:WeightNorm", "1.1:Linear",
    ]);
    assert.deepEqual(m.namedModules("model").slice(0, 2).map(([n]) => n), ["model", "model.0"]);
    // each module once, as modules()
    assert.deepEqual(m.namedModules().map(([, mod]) => mod), m.modules());
  });

  it("JSON.stringify(stateDict()) round-trips through loadStateDict(JSON.parse(...))", () => {
    const a = nested(3), b = nested(4);
    const json = JSON.stringify(a.stateDict());
    const parsed = JSON.parse(json) as Record<string, { shape: number[]; dtype: string; data: number[] }>;
    assert.deepEqual(parsed["0.1.num_batches_tracked"], { shape: [], dtype: "float64", data: [5] });
    b.loadStateDict(parsed);
    assert.deepStrictEqual(values(b), values(a));
    // float32 too: the JSON numbers are the float32 values exactly
    const c32 = buildModel("cnn", "group_norm", 1).net, d32 = buildModel("cnn", "group_norm", 2).net;
    d32.loadStateDict(JSON.parse(JSON.stringify(c32.stateDict())));
    assert.deepStrictEqual(values(d32), values(c32));
  });
});

describe("loadStateDict validates every entry and changes nothing on error", () => {
  const cases: [string, unknown, RegExp][] = [
    ["data a string (once loaded as NaN weights)", { shape: [2], data: "ab" }, /0\.1\.weight: expected data: an array of numbers or a typed array, got the string "ab"/],
    ["null (once an untyped TypeError)", null, /0\.1\.weight: expected a tensor or \{shape, data\} of shape \[2\], got null/],
    ["no data (once an untyped TypeError)", { shape: [2] }, /0\.1\.weight: expected data: an array of numbers or a typed array, got no data/],
    ["no shape", { data: [1, 2] }, /0\.1\.weight: expected a shape \(an array of non-negative integers\), \[2\], got no shape/],
    ["a shape that is not a list of counts", { shape: [2.5], data: [1, 2] }, /0\.1\.weight: expected a shape of non-negative integers, got shape \[2\.5\]/],
    ["a shape given as a string", { shape: "2", data: [1, 2] }, /0\.1\.weight: expected a shape .*got the string "2"/],
    ["a non-number in data", { shape: [2], data: [1, "2"] }, /0\.1\.weight: expected data of numbers, got data\[1\] = the string "2"/],
    ["null in data (a NaN through JSON)", { shape: [2], data: [1, null] }, /0\.1\.weight: expected data of numbers, got data\[1\] = null/],
    ["too few values", { shape: [2], data: [1] }, /0\.1\.weight: expected 2 values, got 1/],
    ["the wrong shape", { shape: [1, 2], data: [1, 2] }, /0\.1\.weight: expected shape \[2\], got shape \[1, 2\]/],
    ["a number", 3, /0\.1\.weight: expected a tensor .* got number 3/],
    ["an array", [1, 2], /0\.1\.weight: expected a tensor .* got an array of length 2/],
    ["a DataView", { shape: [2], data: new DataView(new ArrayBuffer(16)) }, /0\.1\.weight: expected data: an array of numbers or a typed array, got a DataView/],
  ];
  for (const [what, entry, message] of cases) {
    it(what, () => {
      const m = nested(1);
      const before = values(m);
      const sd: Record<string, unknown> = { ...m.stateDict(), "0.1.weight": entry };
      assert.throws(() => m.loadStateDict(sd as never), (e: unknown) => {
        assert.ok(e instanceof StateDictError, `${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
        assert.equal(e.param, "0.1.weight");
        assert.match(e.message, /^Sequential\.loadStateDict: /);
        assert.match(e.message, message);
        return true;
      });
      assert.deepStrictEqual(values(m), before, `${what}: nothing changed`);
    });
  }

  it("a nested num_batches_tracked must be a non-negative integer count", () => {
    const m = nested(1);
    const before = values(m);
    for (const bad of [NaN, -1, 2.5]) {
      assert.throws(() => m.loadStateDict({ ...m.stateDict(), "0.1.num_batches_tracked": Tensor.full([], bad, f64) }),
        (e: unknown) => e instanceof StateDictError && e.param === "0.1.num_batches_tracked" && /a non-negative integer count/.test(e.message));
    }
    assert.deepStrictEqual(values(m), before);
    // PyTorch's int64 scalar, as an Int32Array / BigInt64Array or [1]-shaped, loads
    m.loadStateDict({ ...m.stateDict(), "0.1.num_batches_tracked": { shape: [], data: new BigInt64Array([9n]) } });
    assert.equal(m.stateDict()["0.1.num_batches_tracked"]!.data[0], 9);
    m.loadStateDict({ ...m.stateDict(), "0.1.num_batches_tracked": { shape: [1], data: new Int32Array([10]) } });
    assert.equal(m.stateDict()["0.1.num_batches_tracked"]!.data[0], 10);
  });

  it("a state that is not an object is a StateDictError", () => {
    for (const bad of [null, 3, "x", [1]]) {
      assert.throws(() => nested(1).loadStateDict(bad as never), (e: unknown) => e instanceof StateDictError && e.param === "state");
    }
  });
});

describe("missing and unexpected keys", () => {
  it("strict: all of them in one error, PyTorch's wording; nothing changes", () => {
    const m = nested(1);
    const before = values(m);
    const sd: Record<string, Tensor> = { ...nested(2).stateDict() };
    delete sd["0.0.weight"];
    delete sd["0.1.running_var"];
    sd["0.9.weight"] = Tensor.zeros([1], f64);
    sd["extra"] = Tensor.zeros([1], f64);
    assert.throws(() => m.loadStateDict(sd), (e: unknown) => {
      assert.ok(e instanceof StateDictError);
      assert.deepEqual(e.missingKeys, ["0.0.weight", "0.1.running_var"]);
      assert.deepEqual(e.unexpectedKeys, ["0.9.weight", "extra"]);
      assert.equal(e.param, "0.0.weight, 0.1.running_var, 0.9.weight, extra");
      assert.match(e.message, /Missing key\(s\) in state_dict: "0\.0\.weight", "0\.1\.running_var"\. Unexpected key\(s\) in state_dict: "0\.9\.weight", "extra"\./);
      return true;
    });
    assert.deepStrictEqual(values(m), before);
  });

  it("strict false: loads the keys present, returns { missingKeys, unexpectedKeys } as PyTorch", () => {
    const m = nested(1), src = nested(2);
    const sd: Record<string, Tensor> = { ...src.stateDict(), extra: Tensor.zeros([1], f64) };
    delete sd["0.0.bias"];
    assert.deepEqual(m.loadStateDict(sd, { strict: false }), { missingKeys: ["0.0.bias"], unexpectedKeys: ["extra"] });
    const now = values(m), want = values(src), old = values(nested(1));
    for (const k of NESTED_KEYS) assert.deepStrictEqual(now[k], k === "0.0.bias" ? old[k] : want[k], k);
    // an invalid entry of a key present is still an error, before anything is copied
    const m2 = nested(1);
    const before = values(m2);
    assert.throws(() => m2.loadStateDict({ ...src.stateDict(), "1.1.bias": { shape: [3], data: "abc" } as never }, { strict: false }), StateDictError);
    assert.deepStrictEqual(values(m2), before);
  });
});
