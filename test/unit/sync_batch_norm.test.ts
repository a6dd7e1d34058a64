// SyncBatchNorm (src/nn/sync_batch_norm.ts) and the all-reduce groups (src/nn/all_reduce.ts): W workers
// × b samples against BatchNorm on one worker with the W·b samples — outputs, dx, parameter gradients
// (summed over the workers) and running statistics within 1e-9 in float64 — on the in-process group and
// on real worker threads over a SharedArrayBuffer; convertSyncBatchNorm; the typed errors.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { BatchNorm, BatchNorm1d, BatchNorm2d } from "../../src/nn/normalization.js";
import { SyncBatchNorm, convertSyncBatchNorm } from "../../src/nn/sync_batch_norm.js";
import { InProcessGroup, SharedMemoryGroup, allReduceGradients, singleWorker, type SyncGroup } from "../../src/nn/all_reduce.js";
import { ReuseOutputs, Sequential } from "../../src/nn/basic.js";
import { buildModel } from "../../src/lab/models.js";
import { ConfigError, ShapeError } from "../../src/errors.js";
import { Tensor } from "../../src/tensor.js";
import { assertClose, randTensor, setRandomParams } from "./helpers.js";

const TOL = 1e-9;

/** Rows n0 … n1 − 1 of x (dim 0), a copy. */
function rows(t: Tensor, n0: number, n1: number): Tensor {
  const per = t.size / t.shape[0]!;
  return Tensor.from(t.data.subarray(n0 * per, n1 * per), [n1 - n0, ...t.shape.slice(1)], t.dtype);
}
function concat(parts: ArrayLike<number>[]): number[] {
  return parts.flatMap((p) => Array.from(p));
}

interface StepResult {
  y: number[];
  dx: number[];
  dw: number[];
  db: number[];
  rm: number[];
  rv: number[];
  nbt: number;
}

/** Two training steps of `layer` (x, dy per step), then one eval forward of x0: what each step gave. */
function steps(layer: BatchNorm, xs: Tensor[], dys: Tensor[], evalX: Tensor): { steps: StepResult[]; evalY: number[] } {
  const out: StepResult[] = [];
  layer.train();
  for (let s = 0; s < xs.length; s++) {
    layer.zeroGrad();
    const y = layer.forward(xs[s]!);
    const dx = layer.backward(dys[s]!);
    out.push({
      y: Array.from(y.data), dx: Array.from(dx.data), dw: Array.from(layer.weight!.grad.data), db: Array.from(layer.bias!.grad.data),
      rm: Array.from(layer.runningMean!.data), rv: Array.from(layer.runningVar!.data), nbt: layer.numBatchesTracked!.data[0]!,
    });
  }
  layer.eval();
  const evalY = Array.from(layer.forward(evalX).data);
  layer.train();
  return { steps: out, evalY };
}

function compare(got: StepResult, want: StepResult, what: string): void {
  assertClose(got.y, want.y, TOL, `${what}: y`, 1);
  assertClose(got.dx, want.dx, TOL, `${what}: dx`, 1);
  assertClose(got.dw, want.dw, TOL, `${what}: dweight`, 1);
  assertClose(got.db, want.db, TOL, `${what}: dbias`, 1);
  assertClose(got.rm, want.rm, TOL, `${what}: running_mean`, 1);
  assertClose(got.rv, want.rv, TOL, `${what}: running_var`, 1);
  assert.equal(got.nbt, want.nbt, `${what}: num_batches_tracked`);
}

const SHAPES: { name: string; make: (o: { numFeatures: number; dtype: "float64"; momentum?: number | null }) => BatchNorm; shape: (n: number) => number[] }[] = [
  { name: "BatchNorm1d [N, C]", make: (o) => new BatchNorm1d(o), shape: (n) => [n, 5] },
  { name: "BatchNorm1d [N, C, L]", make: (o) => new BatchNorm1d(o), shape: (n) => [n, 5, 7] },
  { name: "BatchNorm2d [N, C, H, W]", make: (o) => new BatchNorm2d(o), shape: (n) => [n, 5, 3, 4] },
];
const SPLITS: number[][] = [[8], [4, 4], [2, 2, 2, 2], [3, 0, 4, 1], [0, 5, 3]];

describe("SyncBatchNorm on the in-process group = BatchNorm on the concatenated batch", () => {
  for (const sh of SHAPES) {
    for (const counts of SPLITS) {
      for (const momentum of [0.1, null]) {
        it(`${sh.name}, workers ${JSON.stringify(counts)}, momentum ${momentum}`, () => {
          const N = counts.reduce((a, b) => a + b, 0);
          const xs = [randTensor(sh.shape(N), "float64", 11, { offset: 3, scale: 2 }), randTensor(sh.shape(N), "float64", 12, { offset: -1 })];
          const dys = [randTensor(sh.shape(N), "float64", 13), randTensor(sh.shape(N), "float64", 14)];
          const ref = sh.make({ numFeatures: 5, dtype: "float64", momentum });
          setRandomParams(ref, 5);
          const sync = convertSyncBatchNorm(sh.make({ numFeatures: 5, dtype: "float64", momentum }), new InProcessGroup({ counts })) as SyncBatchNorm;
          setRandomParams(sync, 5);
          const want = steps(ref, xs, dys, xs[0]!);
          const got = steps(sync, xs, dys, xs[0]!);
          got.steps.forEach((s, i) => compare(s, want.steps[i]!, `step ${i}`));
          assertClose(got.evalY, want.evalY, TOL, "eval y", 1);
        });
      }
    }
  }

  it("channels-last, and W equal parts from { workers }", () => {
    for (const group of [new InProcessGroup({ workers: 4 }), singleWorker] as SyncGroup[]) {
      const x = randTensor([8, 3, 4, 5], "float64", 21, { offset: 2 });
      const dy = randTensor([8, 3, 4, 5], "float64", 22);
      const ref = new BatchNorm({ numFeatures: 5, channelsLast: true, dtype: "float64" });
      const sync = new SyncBatchNorm({ numFeatures: 5, channelsLast: true, dtype: "float64", group });
      setRandomParams(ref, 3);
      setRandomParams(sync, 3);
      const want = steps(ref, [x], [dy], x), got = steps(sync, [x], [dy], x);
      compare(got.steps[0]!, want.steps[0]!, "channels-last");
    }
  });

  it("a large offset: the centred two-round variance keeps 1e-9 (E[x²] − mean² would lose ~1e-6 here)", () => {
    const x = randTensor([8, 4, 6], "float64", 31, { offset: 1e4, scale: 1e-1 });
    const dy = randTensor([8, 4, 6], "float64", 32);
    const ref = new BatchNorm1d({ numFeatures: 4, dtype: "float64" });
    const sync = new SyncBatchNorm({ numFeatures: 4, dtype: "float64", group: new InProcessGroup({ counts: [1, 3, 0, 4] }) });
    const want = steps(ref, [x], [dy], x), got = steps(sync, [x], [dy], x);
    compare(got.steps[0]!, want.steps[0]!, "offset 1e6");
  });
});

// ---------------------------------------------------------------------------------------------
// Real workers: worker_threads over a SharedArrayBuffer

const INDEX_URL = new URL("../../src/index.js", import.meta.url).href;

/** Each worker: a SyncBatchNorm of its rank on its rows, two steps, then an allReduceGradients. */
const WORKER_CODE = `
const { workerData, parentPort } = require("node:worker_threads");
import(workerData.url).then((nk) => {
  const { rank, init, C, shape, xs, dys, weight, bias, badChannels } = workerData;
  try {
    const group = nk.SharedMemoryGroup.join(init, rank, { timeoutMs: 20000 });
    const c = badChannels ? C + 1 : C;
    const layer = new nk.SyncBatchNorm({ numFeatures: c, dtype: "float64", group });
    layer.weight.value.data.set(weight.slice(0, c));
    layer.bias.value.data.set(bias.slice(0, c));
    const sh = [...shape]; sh[1] = c;
    const out = [];
    for (let s = 0; s < xs.length; s++) {
      layer.zeroGrad();
      const x = nk.Tensor.from(badChannels ? new Float64Array(xs[s].length / C * c) : xs[s], sh, "float64");
      const y = layer.forward(x);
      const dx = layer.backward(nk.Tensor.from(dys[s], sh, "float64"));
      out.push({ y: Array.from(y.data), dx: Array.from(dx.data), dw: Array.from(layer.weight.grad.data), db: Array.from(layer.bias.grad.data),
        rm: Array.from(layer.runningMean.data), rv: Array.from(layer.runningVar.data), nbt: layer.numBatchesTracked.data[0] });
    }
    nk.allReduceGradients(layer, group);
    parentPort.postMessage({ steps: out, avg: { dw: Array.from(layer.weight.grad.data), db: Array.from(layer.bias.grad.data) } });
  } catch (e) {
    parentPort.postMessage({ error: { name: e.name, message: e.message } });
  }
});
`;

type WorkerReply = { steps: StepResult[]; avg: { dw: number[]; db: number[] } } | { error: { name: string; message: string } };

async function runWorkers(counts: number[], shapeOf: (n: number) => number[], xs: Tensor[], dys: Tensor[], weight: number[], bias: number[], bad = -1): Promise<WorkerReply[]> {
  const init = SharedMemoryGroup.create(counts.length, { capacity: 7 }); // a small capacity: several rounds per sum
  const C = shapeOf(1)[1]!;
  let n0 = 0;
  const replies = counts.map((b, rank) => {
    const lo = n0;
    n0 += b;
    const workerData = {
      url: INDEX_URL, rank, init, C, shape: shapeOf(b), weight, bias, badChannels: rank === bad,
      xs: xs.map((x) => Array.from(rows(x, lo, lo + b).data)), dys: dys.map((d) => Array.from(rows(d, lo, lo + b).data)),
    };
    const w = new Worker(WORKER_CODE, { eval: true, workerData });
    return new Promise<WorkerReply>((resolve, reject) => {
      w.once("message", (m: WorkerReply) => {
        void w.terminate();
        resolve(m);
      });
      w.once("error", reject);
    });
  });
  return Promise.all(replies);
}

describe("SyncBatchNorm on worker threads (SharedMemoryGroup) = BatchNorm on the concatenated batch", () => {
  for (const [counts, sh] of [[[3, 5], SHAPES[2]!], [[4, 0, 3], SHAPES[1]!], [[2, 2, 2, 2], SHAPES[0]!]] as const) {
    it(`${sh.name}, workers ${JSON.stringify(counts)}`, async () => {
      const N = (counts as readonly number[]).reduce((a, b) => a + b, 0);
      const xs = [randTensor(sh.shape(N), "float64", 41, { offset: 3 }), randTensor(sh.shape(N), "float64", 42)];
      const dys = [randTensor(sh.shape(N), "float64", 43), randTensor(sh.shape(N), "float64", 44)];
      const ref = sh.make({ numFeatures: 5, dtype: "float64" });
      setRandomParams(ref, 9);
      const want = steps(ref, xs, dys, xs[0]!).steps;
      const replies = await runWorkers([...counts], sh.shape, xs, dys, Array.from(ref.weight!.value.data), Array.from(ref.bias!.value.data));
      const ok = replies.map((r) => {
        if ("error" in r) assert.fail(`a worker failed: ${r.error.name}: ${r.error.message}`);
        return r;
      });
      for (let s = 0; s < want.length; s++) {
        const sum = (k: "dw" | "db") => want[s]![k].map((_, c) => ok.reduce((a, r) => a + r.steps[s]![k][c]!, 0));
        const got: StepResult = {
          y: concat(ok.map((r) => r.steps[s]!.y)), dx: concat(ok.map((r) => r.steps[s]!.dx)), dw: sum("dw"), db: sum("db"),
          rm: ok[0]!.steps[s]!.rm, rv: ok[0]!.steps[s]!.rv, nbt: ok[0]!.steps[s]!.nbt,
        };
        compare(got, want[s]!, `step ${s}`);
        // every rank holds the same running statistics (they are the global batch's)
        for (const r of ok) assert.deepEqual(r.steps[s]!.rm, ok[0]!.steps[s]!.rm);
      }
      // allReduceGradients: every rank ends with the mean of the ranks' last gradients
      const last = want.length - 1;
      for (const k of ["dw", "db"] as const) {
        const mean = want[last]![k].map((_, c) => ok.reduce((a, r) => a + r.steps[last]![k][c]!, 0) / counts.length);
        for (const r of ok) assertClose(r.avg[k], mean, 1e-15, `averaged ${k}`, 1);
      }
    });
  }

  it("mismatched channel counts across workers: a ShapeError on every worker", async () => {
    const sh = SHAPES[0]!;
    const x = randTensor(sh.shape(6), "float64", 51), dy = randTensor(sh.shape(6), "float64", 52);
    const replies = await runWorkers([3, 3], sh.shape, [x], [dy], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], 1);
    for (const r of replies) {
      assert.ok("error" in r, "expected an error");
      assert.equal(r.error.name, "ShapeError", r.error.message);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("convertSyncBatchNorm", () => {
  it("replaces every BatchNorm of a lab model in place; state-dict keys and values stay", () => {
    for (const arch of ["cnn", "mlp"] as const) {
      const { net } = buildModel(arch, "batch_norm", 0, "float64");
      net.train();
      const x = randTensor(arch === "cnn" ? [4, 1, 28, 28] : [4, 1, 28, 28], "float64", 61);
      net.forward(x); // running statistics away from their initial values
      const before = net.stateDict();
      const group = new InProcessGroup({ workers: 2 });
      const same = convertSyncBatchNorm(net, group);
      assert.equal(same, net);
      const syncs = net.modules().filter((m) => m instanceof SyncBatchNorm) as SyncBatchNorm[];
      assert.equal(syncs.length, 2);
      assert.ok(syncs.every((s) => s.group === group));
      assert.equal(net.modules().filter((m) => m instanceof BatchNorm && !(m instanceof SyncBatchNorm)).length, 0);
      const after = net.stateDict();
      assert.deepEqual(Object.keys(after), Object.keys(before));
      for (const k of Object.keys(before)) assert.deepEqual(after[k]!.toArray(), before[k]!.toArray(), k);
      // eval is BatchNorm with the running statistics
      net.eval();
      const { net: ref } = buildModel(arch, "batch_norm", 0, "float64");
      ref.loadStateDict(before);
      ref.eval();
      assertClose(net.forward(x), ref.forward(x), 0, "eval forward");
    }
  });

  it("a BatchNorm itself becomes a new SyncBatchNorm with its options; a SyncBatchNorm stays", () => {
    const bn = new BatchNorm2d({ numFeatures: 3, eps: 1e-3, momentum: 0.3, dtype: "float64" });
    setRandomParams(bn, 1);
    bn.eval();
    const s = convertSyncBatchNorm(bn) as SyncBatchNorm;
    assert.ok(s instanceof SyncBatchNorm);
    assert.equal(s.eps, 1e-3);
    assert.equal(s.momentum, 0.3);
    assert.equal(s.training, false);
    assert.equal(s.group, singleWorker);
    assert.deepEqual(s.weight!.value.toArray(), bn.weight!.value.toArray());
    assert.equal(convertSyncBatchNorm(s), s);
    const seq = new Sequential([new ReuseOutputs(new BatchNorm1d({ numFeatures: 2, affine: false, trackRunningStats: false }))]);
    convertSyncBatchNorm(seq);
    const inner = (seq.layers[0] as ReuseOutputs).inner as SyncBatchNorm;
    assert.ok(inner instanceof SyncBatchNorm);
    assert.equal(inner.weight, null);
    assert.equal(inner.runningMean, null);
  });
});

describe("bad input: typed errors", () => {
  it("a wrong group is a ConfigError", () => {
    for (const g of [null, {}, { rank: 2, size: 2, sum() {} }, { rank: 0, size: 0, sum() {} }, 3]) {
      assert.throws(() => new SyncBatchNorm({ numFeatures: 2, group: g as unknown as SyncGroup }), ConfigError, JSON.stringify(g));
      assert.throws(() => convertSyncBatchNorm(new BatchNorm1d({ numFeatures: 2 }), g as unknown as SyncGroup), ConfigError);
      assert.throws(() => allReduceGradients(new BatchNorm1d({ numFeatures: 2 }), g as unknown as SyncGroup), ConfigError);
    }
    assert.throws(() => new InProcessGroup({ workers: 0 }), ConfigError);
    assert.throws(() => new InProcessGroup({ counts: [2, -1] }), ConfigError);
    assert.throws(() => SharedMemoryGroup.join(SharedMemoryGroup.create(2), 2), ConfigError);
    assert.throws(() => SharedMemoryGroup.create(0), ConfigError);
  });

  it("a batch the in-process group cannot split, a channel mismatch, one value in the global batch: ShapeErrors, nothing changed", () => {
    const layer = new SyncBatchNorm({ numFeatures: 3, dtype: "float64", group: new InProcessGroup({ counts: [2, 2] }) });
    assert.throws(() => layer.forward(Tensor.zeros([5, 3], "float64")), ShapeError);
    assert.throws(() => layer.forward(Tensor.zeros([4, 4], "float64")), ShapeError);
    layer.group = new InProcessGroup({ workers: 3 });
    assert.throws(() => layer.forward(Tensor.zeros([4, 3], "float64")), ShapeError);
    layer.group = new InProcessGroup({ counts: [0, 1] });
    assert.throws(() => layer.forward(Tensor.zeros([1, 3], "float64")), ShapeError);
    assert.deepEqual(layer.runningMean!.toArray(), [0, 0, 0]);
    assert.equal(layer.numBatchesTracked!.data[0], 0);
    // one sample per worker is fine when the global batch has more (BatchNorm1d [1, C] would refuse)
    layer.group = new InProcessGroup({ counts: [1, 1] });
    layer.forward(randTensor([2, 3], "float64", 3));
  });

  it("backward before a forward is a StateError; a dy of another shape a ShapeError", () => {
    const layer = new SyncBatchNorm({ numFeatures: 3, dtype: "float64" });
    assert.throws(() => layer.backward(Tensor.zeros([2, 3], "float64")), /StateError|forward/);
    layer.forward(randTensor([4, 3], "float64", 1));
    assert.throws(() => layer.backward(Tensor.zeros([2, 3], "float64")), ShapeError);
  });
});
