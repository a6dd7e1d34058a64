// The devices experiment's run function (src/lab/experiments/devices.ts): quick runs (320 digits, 1 epoch)
// of every method, the record's fields, and the simulation's pieces — PerWorker's per-worker statistics with
// worker 0's running statistics, and sync_batch_norm = batch_norm at (1, 16).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadMnistPackage } from "../../src/lab/data.js";
import { DEVICES_CONFIGS, PerWorker, devicesGrid, runDevices } from "../../src/lab/experiments/devices.js";
import { BatchNorm2d } from "../../src/nn/normalization.js";
import { SwitchableNorm2d } from "../../src/nn/switchable_norm.js";
import { ConfigError } from "../../src/errors.js";
import { Tensor } from "../../src/tensor.js";
import { assertClose, randTensor, setRandomParams } from "./helpers.js";

function rows(t: Tensor, n0: number, n1: number): Tensor {
  const per = t.size / t.shape[0]!;
  return Tensor.from(t.data.subarray(n0 * per, n1 * per), [n1 - n0, ...t.shape.slice(1)], t.dtype);
}

describe("PerWorker: each worker's statistics, worker 0's running statistics, shared parameters", () => {
  for (const make of [() => new BatchNorm2d({ numFeatures: 3, dtype: "float64" }), () => new SwitchableNorm2d({ numFeatures: 3, dtype: "float64" })]) {
    it(make().constructor.name, () => {
      const W = 4, b = 2;
      const x = randTensor([W * b, 3, 4, 4], "float64", 1, { offset: 1 }), dy = randTensor([W * b, 3, 4, 4], "float64", 2);
      const layer = make();
      setRandomParams(layer, 7);
      const pw = new PerWorker(layer, W);
      const y = pw.forward(x), dx = pw.backward(dy);
      const grads = Object.fromEntries(Object.entries(layer.namedParameters()).map(([k, p]) => [k, Array.from(p.grad.data)]));
      const buffers = Object.fromEntries(Object.entries(layer.namedBuffers()).map(([k, t]) => [k, Array.from(t.data)]));
      // reference: one fresh layer per worker slice with the same parameters
      const sum: Record<string, number[]> = {};
      for (let k = 0; k < W; k++) {
        const ref = make();
        setRandomParams(ref, 7);
        const yk = ref.forward(rows(x, k * b, (k + 1) * b)), dxk = ref.backward(rows(dy, k * b, (k + 1) * b));
        assertClose(rows(y, k * b, (k + 1) * b), yk, 1e-12, `y of worker ${k}`, 1);
        assertClose(rows(dx, k * b, (k + 1) * b), dxk, 1e-12, `dx of worker ${k}`, 1);
        for (const [n, p] of Object.entries(ref.namedParameters())) sum[n] = (sum[n] ?? new Array(p.grad.size).fill(0)).map((v, i) => v + p.grad.data[i]!);
        if (k === 0) for (const [n, t] of Object.entries(ref.namedBuffers())) assert.deepEqual(buffers[n], Array.from(t.data), `${n} is worker 0's`);
      }
      for (const n of Object.keys(sum)) assertClose(grads[n]!, sum[n]!, 1e-12, `grad ${n} summed over workers`, 1);
      assert.deepEqual(Object.keys(pw.namedParameters()), Object.keys(layer.namedParameters()));
    });
  }
});

describe("runDevices", () => {
  const data = loadMnistPackage();
  const quick = { epochs: 1, trainLimit: 320 };

  it("the grid: every (W, b) with the methods that apply, seeds 0 and 1", () => {
    const g = devicesGrid();
    assert.equal(g.length, 2 * (1 + 4 * DEVICES_CONFIGS.length) * 2);
    assert.ok(g.every((s) => s.workers * s.perWorkerBatch === 16));
    assert.ok(g.filter((s) => s.method === "none").every((s) => s.workers === 1));
  });

  it("records the fields of EXPERIMENTS.md for a quick run of each method; deterministic", async () => {
    for (const arch of ["cnn", "mlp"] as const) {
      for (const method of ["none", "batch_norm", "sync_batch_norm", "group_norm", "switchable_norm"] as const) {
        const [workers, perWorkerBatch] = method === "none" ? [1, 16] : [4, 4];
        const r = await runDevices({ arch, method, workers, perWorkerBatch, seed: 0, ...quick }, data);
        assert.equal(r.experiment, "devices");
        assert.equal(r.arch, arch);
        assert.equal(r.method, method);
        assert.equal(r.batch_size, 16);
        assert.equal(r.workers, workers);
        assert.equal(r.per_worker_batch, perWorkerBatch);
        assert.equal(r.seed, 0);
        assert.equal(r.diverged, false);
        assert.equal(r.steps, 20);
        assert.equal(r.lr, 0.0125);
        assert.ok(r.test_accuracy > 0.3 && r.test_accuracy <= 1, `${arch} ${method}: accuracy ${r.test_accuracy}`);
        assert.ok(r.train_loss_curve.length >= 1 && r.train_loss_curve.every(Number.isFinite));
        assert.ok(r.seconds > 0);
      }
    }
    const a = await runDevices({ arch: "mlp", method: "batch_norm", workers: 8, perWorkerBatch: 2, seed: 1, ...quick }, data);
    const b = await runDevices({ arch: "mlp", method: "batch_norm", workers: 8, perWorkerBatch: 2, seed: 1, ...quick }, data);
    assert.deepEqual(a.train_loss_curve, b.train_loss_curve);
    assert.equal(a.test_accuracy, b.test_accuracy);
  });

  it("sync_batch_norm is batch_norm at (1, 16), and independent of W; batch_norm depends on W", async () => {
    const run = (method: "batch_norm" | "sync_batch_norm", workers: number) =>
      runDevices({ arch: "mlp", method, workers, perWorkerBatch: 16 / workers, seed: 0, ...quick }, data);
    const bn1 = await run("batch_norm", 1), sync1 = await run("sync_batch_norm", 1), sync8 = await run("sync_batch_norm", 8), bn8 = await run("batch_norm", 8);
    // float32 networks: the same statistics summed in another order
    assertClose(sync1.train_loss_curve, bn1.train_loss_curve, 1e-4, "sync (1, 16) vs batch_norm (1, 16)");
    assertClose(sync8.train_loss_curve, sync1.train_loss_curve, 1e-4, "sync (8, 2) vs sync (1, 16)");
    assert.ok(Math.abs(bn8.train_loss_curve[0]! - bn1.train_loss_curve[0]!) > 1e-3, "per-worker statistics change training");
  });

  it("bad specs are ConfigErrors", async () => {
    const ok = { arch: "cnn", method: "batch_norm", workers: 4, perWorkerBatch: 4, seed: 0, epochs: 1 } as const;
    for (const bad of [{ workers: 3 }, { perWorkerBatch: 8 }, { method: "none" }, { method: "layer_norm" }, { arch: "lstm" }, { epochs: 0 }, { trainLimit: 8 }]) {
      await assert.rejects(runDevices({ ...ok, ...bad } as never, data), ConfigError, JSON.stringify(bad));
    }
  });
});


