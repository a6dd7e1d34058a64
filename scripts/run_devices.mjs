#!/usr/bin/env node
// Runs the lab's `devices` experiment grid (EXPERIMENTS.md "devices") with normkit, one run at a time in
// this process (one thread), and writes every record to docs/lab-devices.json (or --out). Each finished
// run is also appended to OUT.partial.jsonl, so an interrupted grid resumes where it stopped (the file
// is removed once the grid is complete).
//
//   npx tsc -p tsconfig.json && node scripts/run_devices.mjs [--arch cnn|mlp]... [--seeds 0,1] [--epochs 2]
//        [--train-limit N] [--out docs/lab-devices.json] [--compare docs/pytorch-devices.jsonl]
//
// With --compare it prints the per-cell table against the PyTorch twin's JSON lines (mean over seeds; the
// rule of PROTOCOL.md: within max(2 points, 3x the twin's seed spread)).
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadMnistPackage } from "../dist/src/lab/data.js";
import { devicesGrid, runDevices } from "../dist/src/lab/experiments/devices.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
const archs = args.flatMap((a, i) => (a === "--arch" ? [args[i + 1]] : []));
const seeds = opt("--seeds", "0,1").split(",").map(Number);
const epochs = Number(opt("--epochs", "2"));
const trainLimit = opt("--train-limit", undefined);
const out = opt("--out", `${root}docs/lab-devices.json`);
const compare = opt("--compare", undefined);
const partial = `${out}.partial.jsonl`;

const key = (r) => `${r.arch}|${r.method}|${r.workers}|${r.per_worker_batch ?? r.perWorkerBatch}|${r.seed}`;

if (!args.includes("--compare-only")) {
  const specs = devicesGrid({ archs: archs.length ? archs : undefined, seeds, epochs, trainLimit: trainLimit === undefined ? undefined : Number(trainLimit) });
  const done = new Map();
  if (existsSync(partial)) for (const line of readFileSync(partial, "utf8").split("\n")) if (line.trim()) done.set(key(JSON.parse(line)), JSON.parse(line));
  const data = loadMnistPackage();
  const t0 = performance.now();
  const runs = [];
  for (const [i, spec] of specs.entries()) {
    let r = done.get(key(spec));
    if (!r) {
      r = await runDevices(spec, data);
      appendFileSync(partial, JSON.stringify(r) + "\n");
    }
    runs.push(r);
    console.error(`[${i + 1}/${specs.length}] ${r.arch} ${r.method} ${r.workers}x${r.per_worker_batch} seed ${r.seed}: ${(100 * r.test_accuracy).toFixed(2)}% in ${r.seconds} s`);
  }
  writeFileSync(out, JSON.stringify({
    experiment: "devices",
    protocol: "EXPERIMENTS.md devices: global batch 16, lr 0.0125, (W, b) in {(1,16),(4,4),(8,2)}, workers simulated in lock-step (src/lab/experiments/devices.ts)",
    epochs, train_limit: trainLimit === undefined ? null : Number(trainLimit), node: process.version,
    total_seconds: Math.round(performance.now() - t0) / 1000, runs,
  }, null, 1) + "\n");
  rmSync(partial, { force: true }); // the grid is complete: the resume file goes
  console.error(`wrote ${out}`);
}

if (compare) {
  const lab = JSON.parse(readFileSync(out, "utf8")).runs;
  const twin = readFileSync(compare, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  const cells = new Map();
  const add = (r, side) => {
    const k = `${r.arch}|${r.method}|${r.workers}|${r.per_worker_batch}`;
    const c = cells.get(k) ?? { arch: r.arch, method: r.method, W: r.workers, b: r.per_worker_batch, lab: [], twin: [] };
    c[side].push(r.test_accuracy * 100);
    cells.set(k, c);
  };
  lab.forEach((r) => add(r, "lab"));
  twin.forEach((r) => add(r, "twin"));
  const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
  const spread = (a) => (a.length > 1 ? Math.max(...a) - Math.min(...a) : 0);
  console.log("| arch | method | W × b | normkit % (seeds) | PyTorch % (seeds) | diff | allowed | ok |");
  console.log("|---|---|---|---|---|---|---|---|");
  let pass = 0, total = 0;
  for (const c of cells.values()) {
    if (!c.lab.length || !c.twin.length) continue;
    const d = mean(c.lab) - mean(c.twin), allowed = Math.max(2, 3 * spread(c.twin)), ok = Math.abs(d) <= allowed;
    total++;
    if (ok) pass++;
    const f = (a) => `${mean(a).toFixed(2)} (${a.map((v) => v.toFixed(1)).join(", ")})`;
    console.log(`| ${c.arch} | ${c.method} | ${c.W} × ${c.b} | ${f(c.lab)} | ${f(c.twin)} | ${d >= 0 ? "+" : ""}${d.toFixed(2)} | ${allowed.toFixed(2)} | ${ok ? "yes" : "**no**"} |`);
  }
  console.log(`\n${pass} of ${total} cells within the rule`);
}
