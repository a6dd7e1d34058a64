// normkit/tfjs on TensorFlow.js' wasm backend in Node: the cases of tfjs_cases.ts (outputs and
// gradients against normkit's own layers) within 1e-5 of scale. The backend is the benchmark's peer
// (bench/package.json: @tensorflow/tfjs-backend-wasm, `cd bench && npm install`, as .ci/install-onnx.sh
// does); without it the test is skipped, saying why. TensorFlow.js' wasm backend (4.22) has no
// Conv2DBackpropFilter kernel, so nothing with a convolution trains there: the Conv2D cases (Weight
// Norm around Conv2D, CosineConv2D) are left out, and the test checks that this is still so.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { runTfjsCases } from "./tfjs_cases.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const wasmPkg = join(root, "bench", "node_modules", "@tensorflow", "tfjs-backend-wasm", "package.json");

describe("normkit/tfjs layers on the wasm backend match normkit's layers", () => {
  it("tf ops under tf.customGrad (useNormkitKernels ignored off the cpu backend); the Conv2D cases excepted", async (t) => {
    if (!existsSync(wasmPkg)) return t.skip("@tensorflow/tfjs-backend-wasm is not installed in bench/node_modules (cd bench && npm install)");
    // bench's copy of tfjs-core shares our engine and kernel registry (both live on globalThis);
    // its "already registered" warnings while it loads are silenced
    const warn = console.warn;
    console.warn = () => {};
    try {
      await import(pathToFileURL(createRequire(wasmPkg).resolve("@tensorflow/tfjs-backend-wasm")).href);
    } finally {
      console.warn = warn;
    }
    assert.ok(await tf.setBackend("wasm"), "tf.setBackend('wasm')");
    await tf.ready();
    assert.equal(tf.getBackend(), "wasm");
    const noConv = (name: string) => !/Conv2D/.test(name);
    const results = [...runTfjsCases(false, noConv), ...runTfjsCases(true, noConv)];
    assert.ok(results.length >= 22);
    // the backend's own gap (not normkit's): a convolution's filter gradient
    assert.throws(() => tf.grad((w: tf.Tensor) => tf.sum(tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, w as tf.Tensor4D, 1, "valid")))(tf.ones([3, 3, 1, 1])), /Conv2DBackpropFilter/);
    const bad: string[] = [];
    let worst = 0;
    for (const r of results) for (const [k, e] of Object.entries(r.errs)) {
      worst = Math.max(worst, e);
      if (!(e <= 1e-5)) bad.push(`${r.name}: ${k} ${e}`);
    }
    console.log(`# wasm: ${results.length} cases, worst error ${worst.toExponential(2)}`);
    assert.deepEqual(bad, []);
  });
});
