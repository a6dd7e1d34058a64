// Weights both ways between PyTorch and normkit through safetensors, on the lab's CNN:
//  - PyTorch → normkit: scripts/fixtures/gen_safetensors.py wrote test/data/safetensors/pytorch_cnn_*.safetensors
//    (its own writer) and pytorch_cnn.json (an input batch, PyTorch's eval outputs); normkit loads
//    each file into buildModel("cnn", method)'s network and gives PyTorch's outputs.
//  - normkit → PyTorch: this file's normkitModel() is saved with saveSafetensors; the committed
//    normkit_cnn_*.safetensors must be those bytes exactly (NORMKIT_WRITE_FIXTURES=1 rewrites them);
//    `gen_safetensors.py --check-normkit` loaded them into PyTorch (strict) and wrote its eval outputs
//    to normkit_cnn_pytorch.json, which normkit's own outputs must match.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { buildModel, type Method } from "../../src/lab/models.js";
import type { Module } from "../../src/nn/module.js";
import { mulberry32 } from "../../src/rng.js";
import { DType, Tensor } from "../../src/tensor.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const data = join(root, "test", "data", "safetensors");
const METHODS: Method[] = ["batch_norm", "group_norm", "weight_norm"];

interface Out {
  shape: number[];
  data: number[];
}
const pytorch = JSON.parse(readFileSync(join(data, "pytorch_cnn.json"), "utf8")) as {
  input: Out;
  methods: Record<string, { keys: string[]; output_float32: Out; output_float64: Out }>;
};
const checked = JSON.parse(readFileSync(join(data, "normkit_cnn_pytorch.json"), "utf8")) as {
  methods: Record<string, { metadata: Record<string, string>; dtypes: Record<string, string>; output_float32: Out; output_float64: Out }>;
};

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function evalOutput(net: Module, dtype: DType): Tensor {
  net.eval();
  return net.forward(Tensor.from(pytorch.input.data, pytorch.input.shape, dtype));
}

/** normkit's side: the lab's CNN of seed 7 with random affine parameters, running statistics, counters and g. */
function normkitModel(method: Method): Module {
  const net = buildModel("cnn", method, 7).net;
  const rng = mulberry32(2024);
  const sd = net.stateDict();
  for (const [k, t] of Object.entries(sd)) {
    const d = t.data;
    const isNorm = /^(1|5)\./.test(k) && method !== "weight_norm";
    if (k.endsWith("num_batches_tracked")) d[0] = 12;
    else if (k.endsWith("running_var")) for (let i = 0; i < d.length; i++) d[i] = 0.5 + 1.5 * rng();
    else if (k.endsWith("running_mean") || (isNorm && k.endsWith("bias"))) for (let i = 0; i < d.length; i++) d[i] = 0.6 * rng() - 0.3;
    else if ((isNorm && k.endsWith("weight")) || k.endsWith("original0")) for (let i = 0; i < d.length; i++) d[i] *= 0.5 + rng();
  }
  net.loadStateDict(sd);
  return net;
}
const METADATA = (method: Method) => ({ format: "pt", method, written_by: "normkit saveSafetensors" });

describe("PyTorch → normkit: the lab's CNN", () => {
  for (const method of METHODS) {
    const want = pytorch.methods[method]!;
    it(`${method}: the file's keys are the network's; float64 eval within 1e-6 of PyTorch's (double)`, () => {
      const file = parseSafetensors(readFileSync(join(data, `pytorch_cnn_${method}.safetensors`)));
      assert.deepEqual(file.metadata, { format: "pt", method });
      assert.deepEqual(Object.keys(file.tensors).sort(), [...want.keys].sort());
      if (method === "batch_norm") assert.equal(file.dtypes["1.num_batches_tracked"], "I64");
      const net = buildModel("cnn", method, 0, "float64").net;
      assert.deepEqual(net.loadStateDict(file.tensors), { missingKeys: [], unexpectedKeys: [] });
      if (method === "batch_norm") assert.equal(net.stateDict()["5.num_batches_tracked"]!.data[0], 37);
      const y = evalOutput(net, "float64");
      assert.deepEqual([...y.shape], want.output_float64.shape);
      const d = maxAbsDiff(y.data, want.output_float64.data);
      assert.ok(d < 1e-6, `max |normkit − PyTorch| = ${d}`);
    });
    it(`${method}: float32 (the lab's dtype) within 2e-6 of PyTorch's float32`, () => {
      const net = buildModel("cnn", method, 0).net;
      net.loadStateDict(parseSafetensors(readFileSync(join(data, `pytorch_cnn_${method}.safetensors`))).tensors);
      const d = maxAbsDiff(evalOutput(net, "float32").data, want.output_float32.data);
      assert.ok(d < 2e-6, `max |normkit − PyTorch| = ${d}`);
    });
  }
});

describe("normkit → PyTorch: the lab's CNN", () => {
  for (const method of METHODS) {
    it(`${method}: the committed file is saveSafetensors' bytes; PyTorch's outputs on it match normkit's`, () => {
      const net = normkitModel(method);
      const bytes = saveSafetensors(net.stateDict(), { metadata: METADATA(method) });
      const path = join(data, `normkit_cnn_${method}.safetensors`);
      if (process.env["NORMKIT_WRITE_FIXTURES"] === "1") writeFileSync(path, bytes);
      assert.ok(Buffer.from(bytes).equals(readFileSync(path)), `${path} is not what saveSafetensors writes now (NORMKIT_WRITE_FIXTURES=1 rewrites it; then rerun gen_safetensors.py --check-normkit)`);
      const py = checked.methods[method]!;
      assert.deepEqual(py.metadata, METADATA(method));
      for (const [k, d] of Object.entries(py.dtypes)) assert.equal(d, k.endsWith("num_batches_tracked") ? "I64" : "F32", k);
      const d32 = maxAbsDiff(evalOutput(net, "float32").data, py.output_float32.data);
      assert.ok(d32 < 2e-6, `float32: max |normkit − PyTorch| = ${d32}`);
      // the same weights in a float64 network against PyTorch's .double()
      const net64 = buildModel("cnn", method, 0, "float64").net;
      net64.loadStateDict(parseSafetensors(bytes).tensors);
      const d64 = maxAbsDiff(evalOutput(net64, "float64").data, py.output_float64.data);
      assert.ok(d64 < 1e-6, `float64: max |normkit − PyTorch| = ${d64}`);
    });
  }
});
