// Where a seed's normkit run and its PyTorch twin part: every training step's loss on both sides (normkit:
// scripts/run_cells.mjs --curve-every BATCH; the twin: docs/pytorch_experiments.py --step-losses), the
// relative difference |normkit − PyTorch| / |PyTorch| at steps 0, 1, 2, 5, 10, 20, 40, 80, … and the
// first step where it passes 1%. Both files hold one run each (the same cell and seed).
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
for (const f of ["experiment", "arch", "method", "batch_size", "seed", "lr", "ordering"]) if (a[f] !== b[f] && (f in b)) throw new Error(`not the same run: ${f} ${a[f]} / ${b[f]}`);
const n = Math.min(nk.length, pt.length);
const rel = (i) => Math.abs(nk[i] - pt[i]) / Math.abs(pt[i]);
console.log(`${a.experiment} ${a.arch} ${a.method} lr ${a.lr} seed ${a.seed}: ${n} steps; test accuracy ${(100 * a.test_accuracy).toFixed(2)} / ${(100 * b.test_accuracy).toFixed(2)} %`);
console.log("| step | normkit loss | PyTorch loss | relative difference |\n|---|---|---|---|");
for (const i of [0, 1, 2, 5, 10, 20, 40, 80, 160, n - 1].filter((i, k, all) => i < n && all.indexOf(i) === k)) {
  console.log(`| ${i} | ${nk[i].toFixed(6)} | ${pt[i].toFixed(6)} | ${rel(i).toExponential(1)} |`);
}
const first = Array.from({ length: n }, (_, i) => i).find((i) => rel(i) > 0.01);
console.log(first === undefined ? "never over 1%" : `first over 1%: step ${first}`);
