// The rnn experiment, normkit (docs/lab-rnn.json, scripts/run_rnn.mjs) against its PyTorch twin
// (docs/pytorch-rnn.jsonl, docs/pytorch_rnn.py), cell by cell (method × batch size): the mean test
// accuracy over the seeds, the twin's seed spread (half the range, (max − min) / 2, over the seeds, as
// lab-protocol.md and src/lab/experiments/compare.ts take it), and the rule — normkit's mean within
// max(2 points, 3 × the twin's spread) of the twin's. Prints a markdown table.
//   node scripts/compare_rnn.mjs [LAB.json] [TWIN.jsonl]
import { readFileSync } from "node:fs";

const [labPath = "docs/lab-rnn.json", twinPath = "docs/pytorch-rnn.jsonl"] = process.argv.slice(2);
const lab = JSON.parse(readFileSync(labPath, "utf8")).runs;
const twin = readFileSync(twinPath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const cells = new Map();
for (const [side, runs] of [["lab", lab], ["twin", twin]]) {
  for (const r of runs) {
    const key = `${r.method}|${r.batch_size}`;
    if (!cells.has(key)) cells.set(key, { method: r.method, batch: r.batch_size, lab: [], twin: [] });
    cells.get(key)[side].push(r);
  }
}
const pct = (v) => (100 * v).toFixed(1);
const mean = (a) => a.reduce((s, r) => s + r.test_accuracy, 0) / a.length;
const spread = (a) => (Math.max(...a.map((r) => r.test_accuracy)) - Math.min(...a.map((r) => r.test_accuracy))) / 2;
console.log("| method | batch | normkit (seeds) | PyTorch (seeds) | difference | allowed | verdict |");
console.log("|---|---|---|---|---|---|---|");
for (const c of cells.values()) {
  if (!c.lab.length || !c.twin.length) {
    console.log(`| ${c.method} | ${c.batch} | ${c.lab.length ? pct(mean(c.lab)) : "—"} | ${c.twin.length ? pct(mean(c.twin)) : "—"} | | | missing |`);
    continue;
  }
  const d = mean(c.lab) - mean(c.twin);
  const allowed = Math.max(0.02, 3 * spread(c.twin));
  const seeds = (a) => a.map((r) => pct(r.test_accuracy) + (r.diverged ? " (diverged)" : "")).join(", ");
  console.log(`| ${c.method} | ${c.batch} | ${pct(mean(c.lab))} (${seeds(c.lab)}) | ${pct(mean(c.twin))} (${seeds(c.twin)}) | ${d >= 0 ? "+" : ""}${pct(d)} | ±${pct(allowed)} | ${Math.abs(d) <= allowed ? "within" : "OUTSIDE"} |`);
}
