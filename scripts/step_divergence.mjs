// Where a seed's normkit run and its PyTorch twin part: every training step's loss on both sides (normkit:
// scripts/run_cells.mjs --curve-every BATCH; the twin: docs/pytorch_experiments.py --step-losses), the
// relative difference |normkit − PyTorch| / |PyTorch| at steps 0, 1, 2, 5, 10, 20, 40, 80, …, the first
// step where it passes 1% and the largest over all steps. docs/step-losses/ holds the runs README quotes. Both files hold one run each (the same cell and seed).
//   node scripts/step_divergence.mjs NORMKIT.jsonl TWIN.jsonl
import { readFileSync } from "node:fs";

const [a, b] = process.argv.slice(2).map((f) => {
  const lines = readFileSync(f, "utf8").trim().split("\n");
  if (lines.length !== 1) throw new Error(`${f}: expected one run, found ${lines.length} lines`);
  return JSON.parse(lines[0]);
});
if (!a || !b) throw new Error("usage: node scripts/step_divergence.mjs NORMKIT.jsonl TWIN.jsonl");
const nk = a.train_loss_curve, pt = b.step_losses;
if (!Array.isArray(nk) || a.train_loss_curve_every !== a.batch_size) throw new Error("normkit's run: keep every step's loss (run_cells.mjs --curve-every BATCH)");
if (!Array.isArray(pt)) throw new Error("the twin's run: run it with --step-losses");
for (const f of ["experiment", "arch", "method", "batch_size", "seed", "lr"]) if (a[f] !== b[f]) throw new Error(`not the same run: ${f} ${a[f]} / ${b[f]}`);
if ((a.ordering ?? "shuffled") !== (b.ordering ?? "shuffled")) throw new Error(`not the same run: ordering ${a.ordering} / ${b.ordering}`);
const n = Math.min(nk.length, pt.length);
/** The relative difference at step i; Infinity where either loss is not finite (null in the twin's JSON). */
const rel = (i) => (Number.isFinite(nk[i]) && Number.isFinite(pt[i]) ? Math.abs(nk[i] - pt[i]) / Math.abs(pt[i]) : Infinity);
const num = (v) => (Number.isFinite(v) ? v.toFixed(6) : String(v));
console.log(`${a.experiment} ${a.arch} ${a.method} lr ${a.lr} seed ${a.seed}: ${n} steps; test accuracy ${(100 * a.test_accuracy).toFixed(2)} / ${(100 * b.test_accuracy).toFixed(2)} %`);
console.log("| step | normkit loss | PyTorch loss | relative difference |\n|---|---|---|---|");
for (const i of [0, 1, 2, 5, 10, 20, 40, 80, 160, n - 1].filter((i, k, all) => i < n && all.indexOf(i) === k)) {
  console.log(`| ${i} | ${num(nk[i])} | ${num(pt[i])} | ${rel(i).toExponential(1)} |`);
}
const steps = Array.from({ length: n }, (_, i) => i);
const first = steps.find((i) => rel(i) > 0.01);
const worst = steps.reduce((w, i) => (rel(i) > rel(w) ? i : w), 0);
console.log(first === undefined ? "never over 1%" : `first over 1%: step ${first}`);
console.log(`largest relative difference: ${rel(worst).toExponential(1)} at step ${worst}`);
