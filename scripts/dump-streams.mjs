#!/usr/bin/env node
// Writes, one JSON line per run, what normkit's random streams give a run of the survey experiments: its
// initial state dict and its first two epochs' batch orderings (the sample indices, batch after batch,
// flattened), for scripts/check_normkit_streams.py to compare bit for bit with docs/normkit_streams.py's port
// (the PyTorch twins' --dump-streams).
//   npm run build && node scripts/dump-streams.mjs [--seeds 0,1] [--digest] > normkit-streams.jsonl
// Runs: shuffle (every arch × method of the twin, orderings shuffled and two_class, batch 16), learning-rate
// (batch 64, shuffled; the rate draws nothing), rnn (the three LSTMs at batch 8 and 64), devices (its grid).
// Each line: the record's cell fields, "state" {key: [dtype, shape, base64 of the little-endian data]} under
// the twin's key names (models.ts's referenceStateDict; rnn: the LSTM's keys, the classifier's under "fc."),
// "orders" [epoch 0, epoch 1] as base64 of int32. Models and orderings are built by the very functions the
// runs use: buildModel (models.ts, devices.ts), buildRnn (rnn.ts), shuffledOrder / twoClassOrder
// (orderings.ts) from train.ts's shuffling stream mulberry32(seed + 0x9e3779b9).
// --digest: instead of each line, {"key", "sha256"} of the line (the run's key as check_normkit_streams.py
// forms it): test/unit/normkit_streams.test.ts compares them with the digests that check wrote after the
// port matched (test/data/normkit-streams-digests.json).
import { createHash } from "node:crypto";
import { loadMnistPackage } from "../dist/src/lab/data.js";
import { buildModel, methodApplies, referenceStateDict } from "../dist/src/lab/models.js";
import { buildRnn, RNN_METHODS } from "../dist/src/lab/experiments/rnn.js";
import { DEVICES_BATCH, devicesGrid } from "../dist/src/lab/experiments/devices.js";
import { shuffledOrder, twoClassOrder } from "../dist/src/lab/orderings.js";
import { mulberry32 } from "../dist/src/rng.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const seeds = opt("--seeds", "0,1").split(",").map(Number);
const data = loadMnistPackage();
const n = data.train.count;
const METHODS = ["none", "batch_norm", "group_norm", "layer_norm", "instance_norm", "switchable_norm"];

const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
const stateOf = (entries) => Object.fromEntries(entries.map(([k, t]) => [k, [t.dtype, [...t.shape], b64(t.data)]]));
const shuffleStream = (seed) => mulberry32((seed + 0x9e3779b9) >>> 0); // train.ts's
/** Two epochs of `ordering` from the run's shuffling stream: the indices of the epoch's batches. */
function orders(seed, bs, ordering) {
  const rng = shuffleStream(seed);
  const out = [];
  for (let e = 0; e < 2; e++) {
    const order = new Int32Array(n);
    const batches = ordering === "two_class" ? twoClassOrder(data.train.y, n, bs / 2, rng, order) : shuffledOrder(n, bs, rng, order);
    out.push(b64(order.subarray(0, batches * bs)));
  }
  return out;
}
const digest = args.includes("--digest");
/** check_normkit_streams.py's key of a run. */
const keyOf = (o) => [o.experiment, o.arch, o.method, o.batch_size, o.seed, ...["ordering", "workers", "per_worker_batch"].filter((f) => f in o).map((f) => `${f}=${o[f]}`)].join("|");
const emit = (o) => {
  const line = JSON.stringify(o);
  process.stdout.write((digest ? JSON.stringify({ key: keyOf(o), sha256: createHash("sha256").update(line).digest("hex") }) : line) + "\n");
};

for (const arch of ["cnn", "mlp"]) {
  for (const method of METHODS) {
    if (!methodApplies(arch, method)) continue;
    for (const seed of seeds) {
      const state = stateOf(Object.entries(referenceStateDict(buildModel(arch, method, seed))));
      for (const ordering of ["shuffled", "two_class"]) {
        emit({ experiment: "shuffle", arch, method, batch_size: 16, seed, ordering, state, orders: orders(seed, 16, ordering) });
      }
      emit({ experiment: "learning-rate", arch, method, batch_size: 64, seed, state, orders: orders(seed, 64, "shuffled") });
    }
  }
}
for (const method of RNN_METHODS) {
  for (const batchSize of [8, 64]) {
    for (const seed of seeds) {
      const { lstm, fc } = buildRnn(method, seed);
      const state = stateOf([...Object.entries(lstm.stateDict()), ...Object.entries(fc.stateDict()).map(([k, t]) => [`fc.${k}`, t])]);
      emit({ experiment: "rnn", arch: "lstm", method, batch_size: batchSize, seed, state, orders: orders(seed, batchSize, "shuffled") });
    }
  }
}
for (const s of devicesGrid({ seeds })) {
  // devices.ts: buildModel(arch, batch_norm for sync_batch_norm, seed), then the norms split or synced
  const base = s.method === "sync_batch_norm" ? "batch_norm" : s.method;
  const state = stateOf(Object.entries(referenceStateDict(buildModel(s.arch, base, s.seed))));
  emit({ experiment: "devices", arch: s.arch, method: s.method, batch_size: DEVICES_BATCH, seed: s.seed, workers: s.workers, per_worker_batch: s.perWorkerBatch, state, orders: orders(s.seed, DEVICES_BATCH, "shuffled") });
}
