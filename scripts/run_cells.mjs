// Runs chosen cells of one of the lab's experiments for any seeds — the registry's own plan and run, as
// `normkit lab --experiment NAME` runs them (src/lab/experiments/registry.ts), one run at a time on one
// thread — and prints each run's record as a JSON line, its loss curve left out (lab-protocol.md,
// "Records"). For the many-seed comparison of the rounding-chaotic cells (lab-protocol.md, "PyTorch
// against itself"; docs/lab-many-seeds.jsonl):
//   npm run build && node scripts/run_cells.mjs EXPERIMENT --cell KEY [--cell KEY …] --seeds 0-39 > out.jsonl
// KEY: a cell as compare.ts's cellKey writes it without the experiment, e.g. "cnn|instance_norm|64|lr=0.3",
// "lstm|batch_norm|64" (rnn), "mlp|batch_norm|16|workers=8|per_worker_batch=2" (devices).
// --seeds: a list and/or ranges, e.g. 0,1 or 0-39 or 2-7,9. --curve-every N: keep each record's loss curve, a
// point per N training samples (N = the batch size: every step's loss, to set beside the twin's --step-losses).
import { parseArgs } from "node:util";
import { loadMnistPackage } from "../dist/src/lab/data.js";
import { cellKey } from "../dist/src/lab/experiments/compare.js";
import { EXPERIMENTS } from "../dist/src/lab/experiments/registry.js";
import { residentScope } from "../dist/src/kernels/wasm/wasm_tensor.js";

const usage = "usage: node scripts/run_cells.mjs EXPERIMENT --cell KEY [--cell KEY …] --seeds LIST [--curve-every N]";
const fail = (msg) => {
  console.error(`run_cells: ${msg}\n${usage}`);
  process.exit(2);
};
let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { cell: { type: "string", multiple: true }, seeds: { type: "string" }, "curve-every": { type: "string" } } });
} catch (e) {
  fail(e.message);
}
const { positionals, values } = parsed;
if (positionals.length !== 1) fail("expected one EXPERIMENT");
const name = positionals[0];
const experiment = EXPERIMENTS[name];
if (!experiment) fail(`no experiment "${name}" (the registry's: ${Object.keys(EXPERIMENTS).join(", ")})`);
if (!values.cell?.length) fail("expected at least one --cell");
if (!values.seeds) fail("expected --seeds");
const seeds = [];
for (const part of values.seeds.split(",")) {
  const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
  if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) fail(`--seeds: "${part}" is not a seed or a range a-b with a ≤ b`);
  for (let s = Number(m[1]); s <= Number(m[2] ?? m[1]); s++) if (!seeds.includes(s)) seeds.push(s); // each seed once
}

const curveEvery = values["curve-every"] === undefined ? undefined : Number(values["curve-every"]);
if (curveEvery !== undefined && !(Number.isInteger(curveEvery) && curveEvery > 0)) fail(`--curve-every: expected a whole number of samples > 0, got "${values["curve-every"]}"`);

/** The record fields of a spec (batchSize → batch_size, perWorkerBatch → per_worker_batch). */
const asRecord = (spec) => Object.fromEntries([["experiment", name], ...Object.entries(spec).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v])]);
const wanted = new Set(values.cell.map((c) => `${name}|${c}`));
const specs = experiment
  .plan({ archs: ["cnn", "mlp", "lstm"], methods: null, seeds, quick: false })
  .filter((s) => wanted.has(cellKey(asRecord(s), experiment.cellFields)));
const found = new Set(specs.map((s) => cellKey(asRecord(s), experiment.cellFields)));
const missing = [...wanted].filter((k) => !found.has(k));
if (missing.length) {
  const all = [...new Set(experiment.plan({ archs: ["cnn", "mlp", "lstm"], methods: null, seeds: [0], quick: false }).map((s) => cellKey(asRecord(s), experiment.cellFields).slice(name.length + 1)))];
  fail(`no such cell: ${missing.map((k) => k.slice(name.length + 1)).join(", ")}; ${name}'s cells: ${all.join(", ")}`);
}

const data = loadMnistPackage();
for (const spec of specs) {
  const r = await residentScope(() => experiment.run(curveEvery === undefined ? spec : { ...spec, curveEvery }, data));
  const { train_loss_curve: curve, importance: _importance, ...record } = r;
  if (curveEvery !== undefined && r.train_loss_curve_every !== curveEvery) fail(`--curve-every: ${name}'s runs keep a curve point per ${r.train_loss_curve_every} samples whatever it says`);
  console.log(JSON.stringify(curveEvery === undefined ? record : { ...record, train_loss_curve: curve }));
}
