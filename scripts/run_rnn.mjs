// Runs the lab's rnn experiment with normkit (src/lab/experiments/rnn.ts) for the protocol's cells and
// writes their records as JSON (the same fields as docs/pytorch_rnn.py's lines), one run at a time.
//   npx tsc -p tsconfig.json && node scripts/run_rnn.mjs [OUT.json] [--methods a,b] [--batches 8,64] [--seeds 0,1] [--epochs 2]
// Default OUT: docs/lab-rnn.json. The file is rewritten after every run (a partial result survives).
import { writeFileSync } from "node:fs";
import { loadMnistPackage } from "../dist/src/lab/data.js";
import { runRnn } from "../dist/src/lab/experiments/rnn.js";
import { residentScope } from "../dist/src/kernels/wasm/wasm_tensor.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const out = args[0] && !args[0].startsWith("--") ? args[0] : "docs/lab-rnn.json";
const methods = opt("--methods", "none,layer_norm,batch_norm").split(",");
const batches = opt("--batches", "8,64").split(",").map(Number);
const seeds = opt("--seeds", "0,1").split(",").map(Number);
const epochs = Number(opt("--epochs", "2"));
const data = loadMnistPackage();
const runs = [];
for (const method of methods) for (const batchSize of batches) for (const seed of seeds) {
  const r = await residentScope(() => runRnn({ method, batchSize, seed, epochs }, data));
  runs.push(r);
  console.log(JSON.stringify({ method, batch_size: batchSize, seed, test_accuracy: r.test_accuracy, diverged: r.diverged, seconds: r.seconds, step_ms: r.step_ms }));
  writeFileSync(out, JSON.stringify({ experiment: "rnn", source: data.source, split: data.split, runs }, null, 1) + "\n");
}
