/**
 * A synthetic results.json for report tests that must not train (unit tests of the renderer).
 * The browser e2e test uses a real `normkit lab --quick` run instead.
 */
import type { ImportanceEntry, LabResults, LabRun } from "../../src/lab/report.js";
import { mulberry32 } from "../../src/rng.js";

export interface FixtureOptions {
  archs?: string[];
  batchSizes?: number[];
  seeds?: number[];
  curveLength?: number;
}

export function fakeLabResults(opts: FixtureOptions = {}): LabResults {
  const archs = opts.archs ?? ["cnn", "mlp"];
  const batchSizes = opts.batchSizes ?? [2, 8, 64];
  const seeds = opts.seeds ?? [0];
  const curveLength = opts.curveLength ?? 50;
  const rng = mulberry32(42);
  const runs: LabRun[] = [];
  for (const arch of archs) {
    const methods = ["none", "batch_norm", "group_norm", "layer_norm", ...(arch === "cnn" ? ["instance_norm"] : []), "switchable_norm"];
    for (const method of methods)
      for (const b of batchSizes)
        for (const seed of seeds) {
          const bnPenalty = method === "batch_norm" && arch === "mlp" ? 60 / b : 0;
          const acc = Math.max(0.1, 0.95 - bnPenalty / 100 - 0.01 * rng());
          const curve = Array.from({ length: curveLength }, (_, i) => 2.3 * Math.exp(-i / 8) + 0.15 + 0.05 * rng());
          const run: LabRun = { arch, method, batch_size: b, seed, test_accuracy: acc, train_loss_curve: curve, seconds: 1 + rng() };
          if (method === "switchable_norm") {
            const layers = arch === "cnn" ? ["norm1", "norm2"] : ["norm1", "norm2"];
            run.importance = layers.map((layer): ImportanceEntry => {
              const bn = 0.2 + 0.5 * rng();
              const rest = 1 - bn;
              return arch === "cnn"
                ? { layer, mean: { in: rest * 0.6, ln: rest * 0.4, bn }, variance: { in: rest * 0.3, ln: rest * 0.7, bn } }
                : { layer, mean: { ln: rest, bn }, variance: { ln: 1 - bn / 2, bn: bn / 2 } };
            });
          }
          runs.push(run);
        }
  }
  return {
    runs,
    config: { epochs: 2, batch_sizes: batchSizes, seeds, note: "<fixture & test>" },
    versions: { normkit: "0.1.0", node: process.version },
    machine: { cpus: 2, platform: process.platform },
  };
}
