// normkit/tfjs on the cpu backend in Node: every layer's output and gradients (tf.customGrad) against
// normkit's own layer (NCHW, float64) within 1e-5 of scale, with tf ops and with normkit's kernels
// (useNormkitKernels); the layers leak no tensors. The same cases run on webgl in headless Chromium
// (test/e2e/tfjs_browser.test.ts).
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { runTfjsCases } from "./tfjs_cases.js";

const TOL = 1e-5;

describe("normkit/tfjs layers on the cpu backend match normkit's layers", () => {
  before(async () => {
    await tf.setBackend("cpu");
    await tf.ready();
  });
  for (const normkit of [false, true]) {
    it(normkit ? "useNormkitKernels: true (normkit's kernels under tf.customGrad)" : "tf ops under tf.customGrad", () => {
      const before = tf.memory().numTensors;
      const results = runTfjsCases(normkit);
      assert.ok(results.length >= 14, `${results.length} cases`);
      const bad: string[] = [];
      let worst = 0;
      for (const r of results) {
        assert.ok(Object.keys(r.errs).length >= 3, `${r.name}: ${JSON.stringify(r.errs)}`);
        for (const [k, e] of Object.entries(r.errs)) {
          worst = Math.max(worst, e);
          if (!(e <= TOL)) bad.push(`${r.name}: ${k} ${e}`);
        }
      }
      console.log(`# ${results.length} cases, worst error ${worst.toExponential(2)}`);
      assert.deepEqual(bad, []);
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
    });
  }
});
