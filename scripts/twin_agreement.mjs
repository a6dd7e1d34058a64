// How well normkit's committed experiment runs agree with the PyTorch twins', beside how well the twins
// agree with themselves (lab-protocol.md, "PyTorch against itself"): the twins re-run with the float32
// input rounding (docs/pytorch-*-perturbed.jsonl) are a second PyTorch run of the same protocol. Prints
// for each pair (seeds 0 and 1, all four experiments): the cells within the two-seed rule, the runs with
// identical and within-1-point test accuracies, the median cell difference; then the rounding-chaotic
// cells (a seed's two PyTorch runs over 1 point apart) and the many-seed comparison of the cells outside
// the rule (docs/lab-many-seeds.jsonl, docs/pytorch-many-seeds.jsonl). Markdown.
//   npm run build && node scripts/twin_agreement.mjs
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { compareDistributions, compareRecords, reproducibility, runKey } from "../dist/src/lab/experiments/compare.js";
import { EXPERIMENTS } from "../dist/src/lab/experiments/registry.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const jsonl = (f) => readFileSync(join(ROOT, "docs", f), "utf8").trim().split("\n").map((l) => JSON.parse(l));
const runsOf = (f) => JSON.parse(readFileSync(join(ROOT, "docs", f), "utf8")).runs;
const normkit = [...runsOf("lab-experiments.json"), ...runsOf("lab-rnn.json"), ...runsOf("lab-devices.json")];
const twin = [...jsonl("pytorch-experiments.jsonl"), ...jsonl("pytorch-rnn.jsonl"), ...jsonl("pytorch-devices.jsonl")];
const perturbed = [...jsonl("pytorch-experiments-perturbed.jsonl"), ...jsonl("pytorch-rnn-perturbed.jsonl"), ...jsonl("pytorch-devices-perturbed.jsonl")];
const names = Object.keys(EXPERIMENTS);
const fieldsOf = (r) => EXPERIMENTS[r.experiment].cellFields;
const pct = (v) => (100 * v).toFixed(1);
/** A cell key for a Markdown table cell (its "|" would split the cell). */
const show = (key) => key.split("|").join(" ");

function agreement(a, b) {
  const cells = names.flatMap((e) => compareRecords(a.filter((r) => r.experiment === e), b.filter((r) => r.experiment === e), EXPERIMENTS[e].cellFields));
  const byRun = new Map(b.filter((r) => r.seed <= 1).map((r) => [runKey(r, fieldsOf(r)), r]));
  let runs = 0, same = 0, within1 = 0;
  for (const r of a) {
    const o = byRun.get(runKey(r, fieldsOf(r)));
    if (r.seed > 1 || !o) continue;
    runs++;
    if (o.test_accuracy === r.test_accuracy) same++;
    if (Math.abs(o.test_accuracy - r.test_accuracy) <= 0.01 + 1e-9) within1++;
  }
  const diffs = cells.map((c) => Math.abs(c.diff)).sort((x, y) => x - y);
  const median = diffs.length % 2 ? diffs[(diffs.length - 1) / 2] : (diffs[diffs.length / 2 - 1] + diffs[diffs.length / 2]) / 2;
  return { cells, ok: cells.filter((c) => c.ok).length, runs, same, within1, median };
}

console.log("| runs compared (seeds 0, 1) | cells within the rule | outside | runs identical | runs within 1 point | median cell difference (points) |");
console.log("|---|---|---|---|---|---|");
for (const [label, a, b] of [
  ["normkit against the twin", normkit, twin],
  ["perturbed twin against the twin", perturbed, twin],
  ["twin against the perturbed twin", twin, perturbed],
]) {
  const g = agreement(a, b);
  const out = g.cells.filter((c) => !c.ok).map((c) => `${show(c.key)} (${pct(c.ours.mean)} / ${pct(c.twin.mean)} ± ${pct(c.twin.halfSpread)})`);
  console.log(`| ${label} | ${g.ok} of ${g.cells.length} | ${out.join("; ") || "none"} | ${g.same} of ${g.runs} | ${g.within1} of ${g.runs} | ${(100 * g.median).toFixed(2)} |`);
}

const chaotic = names.flatMap((e) => reproducibility(twin.filter((r) => r.experiment === e), perturbed.filter((r) => r.experiment === e), EXPERIMENTS[e].cellFields))
  .filter((c) => c.chaotic).sort((x, y) => y.maxRunDiff - x.maxRunDiff);
console.log(`\nRounding-chaotic cells (a seed's twin and perturbed-twin runs over 1 point apart): ${chaotic.length}`);
console.log("\n| cell | largest difference of a seed's two PyTorch runs (points) |\n|---|---|");
for (const c of chaotic) console.log(`| ${show(c.key)} | ${pct(c.maxRunDiff)} |`);

const oursMany = jsonl("lab-many-seeds.jsonl"), twinMany = jsonl("pytorch-many-seeds.jsonl");
console.log("\nThe many-seed comparison (test accuracy %: mean ± the sample standard deviation of a side's runs; the difference is the mean of the seeds' paired differences):");
console.log("\n| cell | seeds | normkit | PyTorch | difference | allowed: max(2, 3 paired standard errors) | verdict |\n|---|---|---|---|---|---|---|");
for (const e of names) {
  for (const c of compareDistributions(oursMany.filter((r) => r.experiment === e), twinMany.filter((r) => r.experiment === e), EXPERIMENTS[e].cellFields)) {
    console.log(`| ${show(c.key)} | ${c.seeds[0]}–${c.seeds[c.seeds.length - 1]} (${c.seeds.length}) | ${pct(c.ours.mean)} ± ${pct(c.ours.sd)} | ${pct(c.twin.mean)} ± ${pct(c.twin.sd)} | ${(100 * c.diff).toFixed(1)} | ${pct(c.tolerance)} | ${c.ok ? "within" : "OUTSIDE"} |`);
  }
}
