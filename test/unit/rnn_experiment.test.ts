// The lab's rnn experiment (src/lab/experiments/rnn.ts): a quick run of each method on 500 digits,
// one epoch: it learns (above chance) and returns EXPERIMENTS.md's record fields.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadMnistPackage } from "../../src/lab/data.js";
import { buildRnn, runRnn } from "../../src/lab/experiments/rnn.js";
import type { LSTMNorm } from "../../src/nn/lstm.js";

describe("runRnn", () => {
  const data = loadMnistPackage();
  for (const method of ["none", "layer_norm", "batch_norm"] as LSTMNorm[]) {
    it(`${method}: trainLimit 500, 1 epoch, batch 8`, async () => {
      const r = await runRnn({ method, batchSize: 8, seed: 0, epochs: 1, trainLimit: 500 }, data);
      assert.equal(r.experiment, "rnn");
      assert.equal(r.arch, "lstm");
      assert.equal(r.method, method);
      assert.equal(r.batch_size, 8);
      assert.equal(r.seed, 0);
      assert.equal(r.diverged, false);
      assert.equal(r.steps, 62);
      assert.equal(r.test_samples, 2000);
      assert.ok(r.test_accuracy > 0.15 && r.test_accuracy <= 1, `accuracy ${r.test_accuracy}`);
      assert.ok(r.train_loss_curve.length === 1 && Number.isFinite(r.train_loss_curve[0]!));
      assert.ok(r.seconds > 0 && r.step_ms > 0);
    });
  }
  it("builds the network of EXPERIMENTS.md: one bias, H = 64, Linear(64 → 10)", () => {
    const { lstm, fc } = buildRnn("none", 0);
    assert.deepEqual(Object.keys(lstm.stateDict()), ["weight_ih_l0", "weight_hh_l0", "bias_l0"]);
    assert.deepEqual([...lstm.weightIh.value.shape], [256, 28]);
    assert.deepEqual([...fc.weight.value.shape], [10, 64]);
    assert.equal(Object.keys(buildRnn("batch_norm", 0).lstm.stateDict()).length, 3 + 28 * 3 * 5);
  });
});
