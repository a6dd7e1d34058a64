/**
 * The lab's survey-claim experiments (src/lab/experiments/, lab-protocol.md "Experiments"): the
 * batch orderings' properties, the registry, `normkit lab --experiment` end to end (--quick of each
 * experiment, bad values), and the committed normkit runs against the committed PyTorch twin, cell by
 * cell (docs/lab-experiments.json vs docs/pytorch-experiments.jsonl), PyTorch against itself (the twins
 * re-run with a null perturbation, docs/pytorch-*-perturbed.jsonl) and the many-seed comparison of the
 * cells where that moves PyTorch's own runs (docs/lab-many-seeds.jsonl vs docs/pytorch-many-seeds.jsonl).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadMnistPackage } from "../../src/lab/data.js";
import { SeedMismatchError, cellKey, compareDistributions, compareRecords, reproducibility, runKey } from "../../src/lab/experiments/compare.js";
import { EXPERIMENTS, EXPERIMENT_NAMES, availableExperiments } from "../../src/lab/experiments/registry.js";
import type { ExperimentRecord } from "../../src/lab/experiments/types.js";
import { fisherYates, shuffledOrder, twoClassBatches, twoClassOrder } from "../../src/lab/orderings.js";
import { mulberry32 } from "../../src/rng.js";
import { trainRun } from "../../src/lab/train.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const BIN = join(ROOT, "bin", "normkit.js");
const tmp = mkdtempSync(join(tmpdir(), "normkit-lab-exp-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const data = loadMnistPackage();

describe("orderings", () => {
  it("shuffled: the lab's Fisher–Yates of 0..n−1 from the stream, as the batch-size lab always drew it", () => {
    const n = 1000, rngA = mulberry32(7), rngB = mulberry32(7);
    const out = new Int32Array(n);
    assert.equal(shuffledOrder(n, 16, rngA, out), 62);
    // the loop train.ts had inline before orderings.ts
    const ref = new Int32Array(n).map((_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rngB() * (i + 1));
      const t = ref[i]!;
      ref[i] = ref[j]!;
      ref[j] = t;
    }
    assert.deepEqual(out, ref);
  });

  it("two_class: every batch 8 of one class + 8 of another; every digit once per epoch minus the dropped ones", () => {
    const y = data.train.y, n = data.train.count;
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < n; i++) counts[y[i]!]!++;
    const groups = counts.reduce((s, k) => s + Math.floor(k / 8), 0);
    const batches = twoClassBatches(y, n, 8);
    assert.equal(batches, Math.floor(groups / 2));
    const rng = mulberry32(0x9e3779b9);
    const epochs: Int32Array[] = [];
    for (let e = 0; e < 2; e++) {
      const out = new Int32Array(n).fill(-1);
      assert.equal(twoClassOrder(y, n, 8, rng, out), batches);
      const used = out.subarray(0, batches * 16);
      // each digit at most once, and exactly the digits of the kept groups: per class all but n_c mod 8,
      // minus one whole group of 8 when the number of groups is odd
      assert.equal(new Set(used).size, used.length);
      assert.ok(used.every((i) => i >= 0 && i < n));
      const seen = new Array<number>(10).fill(0);
      for (const i of used) seen[y[i]!]!++;
      const dropped = counts.map((k, c) => k - seen[c]!);
      dropped.forEach((d, c) => assert.ok(d === counts[c]! % 8 || d === (counts[c]! % 8) + 8, `class ${c}: ${d} dropped`));
      assert.equal(dropped.reduce((a, b) => a + b, 0), counts.reduce((s, k) => s + (k % 8), 0) + (groups % 2) * 8);
      let same = 0;
      for (let b = 0; b < batches; b++) {
        const first = used.subarray(b * 16, b * 16 + 8), second = used.subarray(b * 16 + 8, b * 16 + 16);
        const c1 = y[first[0]!]!, c2 = y[second[0]!]!;
        assert.ok(first.every((i) => y[i] === c1) && second.every((i) => y[i] === c2), `batch ${b}`);
        if (c1 === c2) same++;
      }
      assert.ok(same > 0 && same < batches / 5, `${same} same-class batches of ${batches}`); // ~1/10 by chance
      epochs.push(Int32Array.from(used));
    }
    assert.notDeepEqual(epochs[0], epochs[1]); // a fresh ordering each epoch
    // deterministic from the seed
    const again = new Int32Array(n);
    twoClassOrder(y, n, 8, mulberry32(0x9e3779b9), again);
    assert.deepEqual(again.subarray(0, batches * 16), epochs[0]);
  });

  it("two_class draws its permutations in the documented order: classes 0..9, then the groups", () => {
    const y = Uint8Array.from([0, 1, 0, 1, 2, 2, 0, 1, 2, 0, 1, 2]); // 4 of each class
    const out = new Int32Array(12);
    const k = twoClassOrder(y, 12, 2, mulberry32(3), out);
    const rng = mulberry32(3), groups: number[][] = [];
    for (let c = 0; c < 3; c++) {
      const idx = [...y.keys()].filter((i) => y[i] === c);
      fisherYates(idx, rng);
      for (let g = 0; g + 2 <= idx.length; g += 2) groups.push(idx.slice(g, g + 2));
    }
    const p = [...groups.keys()];
    fisherYates(p, rng);
    assert.equal(k, 3);
    assert.deepEqual([...out], p.flatMap((g) => groups[g]!));
  });

  it("trainRun with two_class: ordering in the spec, fewer steps than shuffled; stopOnDivergence counts 10%", async () => {
    const r = await trainRun({ arch: "mlp", method: "none", batchSize: 16, seed: 0, epochs: 1, trainLimit: 400, ordering: "two_class" }, data);
    assert.equal(r.steps, twoClassBatches(data.train.y, 400, 8));
    const d = await trainRun({ arch: "mlp", method: "none", batchSize: 64, seed: 0, epochs: 1, trainLimit: 640, lr: 1e6, stopOnDivergence: true }, data);
    assert.equal(d.diverged, true);
    assert.equal(d.test_accuracy, 0.1);
    assert.ok(d.steps < 10, `stopped after ${d.steps} steps`);
  });
});

describe("the experiments registry", () => {
  it("lists every --experiment value, each available", () => {
    assert.deepEqual([...EXPERIMENT_NAMES], ["batch-size", "shuffle", "learning-rate", "rnn", "devices"]);
    for (const e of availableExperiments()) assert.equal(EXPERIMENTS[e.name], e);
    assert.deepEqual(availableExperiments().map((e) => e.name), ["shuffle", "learning-rate", "rnn", "devices"]);
  });
});

type Results = { experiments: string[]; runs: ExperimentRecord[]; config: { experiments: Record<string, unknown>; quick: boolean } };

describe("normkit lab --experiment (CLI)", () => {
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, "lab", ...args], { encoding: "utf8", cwd: tmp, timeout: 120_000 });
  const methods = { cnn: ["none", "batch_norm", "group_norm", "layer_norm", "instance_norm", "switchable_norm"], mlp: ["none", "batch_norm", "group_norm", "layer_norm", "switchable_norm"] };

  const check = (name: string, field: string, values: (string | number)[], batch: number) => {
    const out = join(tmp, name);
    const t0 = performance.now();
    const r = run(["--experiment", name, "--quick", "--out", out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.ok(performance.now() - t0 < 60_000, "--quick takes under a minute");
    const res = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as Results;
    assert.deepEqual(res.experiments, [name]);
    assert.ok(res.config.quick && res.config.experiments[name]);
    for (const [arch, ms] of Object.entries(methods)) {
      for (const m of ms) {
        for (const v of values) {
          const x = res.runs.find((q) => q.arch === arch && q.method === m && q[field] === v);
          assert.ok(x, `${name}: ${arch} ${m} ${field}=${v}`);
          assert.equal(x.experiment, name);
          assert.equal(x.batch_size, batch);
          assert.equal(x.seed, 0);
          assert.equal(typeof x.diverged, "boolean");
          assert.ok(x.test_accuracy >= 0 && x.test_accuracy <= 1);
          if (x.diverged) assert.equal(x.test_accuracy, 0.1);
        }
      }
    }
    assert.equal(res.runs.length, 11 * values.length);
    const html = readFileSync(join(out, "report.html"), "utf8");
    assert.match(html, new RegExp(`<section data-experiment="${name}">`));
    for (const arch of ["cnn", "mlp"]) assert.match(html, new RegExp(`data-chart="${name}-${arch}"`));
    assert.match(html, /What this shows, and what it cannot/);
    assert.match(html, /What it cannot show/);
    assert.doesNotMatch(html, /<script/);
    assert.deepEqual(readdirSync(out).filter((f) => f.endsWith(".tmp")), []);
    return { res, html, stdout: r.stdout };
  };

  it("--experiment rnn --quick: the three LSTMs at batch 8 and 64, a report section with its chart", () => {
    const out = join(tmp, "rnn");
    const r = run(["--experiment", "rnn", "--quick", "--out", out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const res = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as Results;
    assert.deepEqual(res.experiments, ["rnn"]);
    for (const m of ["none", "layer_norm", "batch_norm"]) {
      for (const b of [8, 64]) {
        const x = res.runs.find((q) => q.arch === "lstm" && q.method === m && q.batch_size === b);
        assert.ok(x, `lstm ${m} batch ${b}`);
        assert.equal(x.experiment, "rnn");
        assert.ok(x.test_accuracy >= 0 && x.test_accuracy <= 1 && typeof x.diverged === "boolean");
      }
    }
    assert.equal(res.runs.length, 6);
    const html = readFileSync(join(out, "report.html"), "utf8");
    assert.match(html, /<section data-experiment="rnn">/);
    assert.match(html, /data-chart="rnn-lstm"/);
    assert.match(html, /What it cannot show/);
    assert.match(r.stdout, /rnn, lstm: test accuracy/);
  });

  it("--experiment devices --quick: every (W, b) split per method, SyncBatchNorm among them, a chart per arch", () => {
    const out = join(tmp, "devices");
    const r = run(["--experiment", "devices", "--quick", "--out", out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const res = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as Results;
    assert.deepEqual(res.experiments, ["devices"]);
    for (const arch of ["cnn", "mlp"]) {
      for (const [w, b] of [[1, 16], [4, 4], [8, 2]] as const) {
        for (const m of ["batch_norm", "sync_batch_norm", "group_norm", "switchable_norm"]) {
          const x = res.runs.find((q) => q.arch === arch && q.method === m && q.workers === w && q.per_worker_batch === b);
          assert.ok(x, `${arch} ${m} ${w}x${b}`);
          assert.equal(x.batch_size, 16);
        }
      }
      assert.ok(res.runs.find((q) => q.arch === arch && q.method === "none" && q.workers === 1));
    }
    assert.equal(res.runs.length, 26);
    const html = readFileSync(join(out, "report.html"), "utf8");
    assert.match(html, /<section data-experiment="devices">/);
    for (const arch of ["cnn", "mlp"]) assert.match(html, new RegExp(`data-chart="devices-${arch}"`));
  });

  it("--experiment shuffle --quick: both orderings for every method, paired-bar charts", () => {
    const { html, stdout } = check("shuffle", "ordering", ["shuffled", "two_class"], 16);
    assert.match(html, /data-kind="paired-bars"/);
    assert.match(stdout, /shuffle, cnn \(batch 16\)/);
  });

  it("--experiment learning-rate --quick: lr 0.1 and 3 for every method, a log-axis chart with diverged runs marked", () => {
    const { res, html } = check("learning-rate", "lr", [0.1, 3], 64);
    assert.match(html, /data-kind="log-lines"/);
    const diverged = res.runs.filter((r) => r.diverged).length;
    assert.equal((html.match(/class="diverged"/g) ?? []).length > 0, diverged > 0);
  });

  it("bad --experiment values: one line, exit 2, nothing written", () => {
    const cases: [string[], RegExp][] = [
      [["--experiment", "dropout"], /--experiment: unknown experiment "dropout" \(expected batch-size, shuffle, learning-rate, rnn, devices or all\)/],
      [["--experiment", "shuffle", "--batch-sizes", "8"], /--batch-sizes: applies to --experiment batch-size only/],
      [["--experiment", "learning-rate", "--arch", "mlp", "--methods", "instance_norm"], /instance_norm|no runs/],
    ];
    for (const [args, re] of cases) {
      if (EXPERIMENTS[args[1]!] && /not available/.test(re.source)) continue; // plugged in since
      const out = join(tmp, "bad-out");
      const r = run([...args, "--out", out]);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, re);
      assert.ok(!existsSync(out));
    }
  });
});

describe("compare.ts: reproducibility and compareDistributions", () => {
  const rec = (method: string, seed: number, acc: number): ExperimentRecord =>
    ({ experiment: "learning-rate", arch: "mlp", method, batch_size: 64, seed, lr: 1, test_accuracy: acc, diverged: false }) as ExperimentRecord;
  it("reproducibility: the largest difference of a seed's two runs per cell; over 1 point is chaotic; seeds on both sides only", () => {
    const a = [rec("x", 0, 0.9), rec("x", 1, 0.8), rec("x", 2, 0.1), rec("y", 0, 0.5), rec("y", 1, 0.5), rec("z", 0, 0.7)];
    const b = [rec("x", 0, 0.905), rec("x", 1, 0.78), rec("x", 2, 0.9), rec("y", 0, 0.5), rec("y", 1, 0.509)];
    const cells = reproducibility(a, b, ["lr"]);
    const byKey = new Map(cells.map((c) => [c.fields.method, c]));
    assert.equal(cells.length, 3);
    const x = byKey.get("x")!, y = byKey.get("y")!, z = byKey.get("z")!;
    assert.equal(x.key, "learning-rate|mlp|x|64|lr=1");
    assert.deepEqual(x.seeds, [0, 1]); // seed 2 is not among the default seeds 0, 1
    assert.ok(Math.abs(x.maxRunDiff - 0.02) < 1e-12 && x.chaotic);
    assert.ok(Math.abs(y.maxRunDiff - 0.009) < 1e-12 && !y.chaotic);
    assert.deepEqual(z.seeds, []);
    assert.ok(Number.isNaN(z.maxRunDiff) && !z.chaotic);
    assert.ok(reproducibility(a, b, ["lr"], [0, 1, 2]).find((c) => c.fields.method === "x")!.maxRunDiff > 0.79);
    assert.equal(reproducibility(a, b, ["lr"], [0, 1], 0.05).filter((c) => c.chaotic).length, 0);
  });
  it("compareDistributions: paired by seed, the mean difference within max(2 points, 3 paired standard errors)", () => {
    // differences −0.1, +0.1: mean 0, sd √0.02, SE √0.02 / √2 = 0.1, tolerance 0.3
    const c = compareDistributions([rec("x", 0, 0.1), rec("x", 1, 0.3)], [rec("x", 0, 0.2), rec("x", 1, 0.2)], ["lr"]);
    assert.equal(c.length, 1);
    const x = c[0]!;
    assert.deepEqual([x.seeds, x.ours.n, x.twin.n], [[0, 1], 2, 2]);
    assert.ok(Math.abs(x.ours.sd - Math.sqrt(0.02)) < 1e-12 && x.twin.sd === 0 && Math.abs(x.ours.mean - 0.2) < 1e-12);
    assert.ok(Math.abs(x.standardError - 0.1) < 1e-12 && Math.abs(x.tolerance - 0.3) < 1e-12 && Math.abs(x.diff) < 1e-12 && x.ok);
    // a steady gap of 3 points over seeds whose accuracies spread widely: paired, it is detected
    const steady = compareDistributions([0.1, 0.5, 0.9].map((v, i) => rec("x", i, v)), [0.13, 0.53, 0.93].map((v, i) => rec("x", i, v)), ["lr"])[0]!;
    assert.ok(steady.standardError < 1e-12 && steady.tolerance === 0.02 && Math.abs(steady.diff + 0.03) < 1e-12 && !steady.ok);
    assert.ok(compareDistributions([rec("x", 0, 0.5), rec("x", 1, 0.51)], [rec("x", 0, 0.5), rec("x", 1, 0.5)], ["lr"])[0]!.ok);
    // a cell on one side only is left out; `seeds` picks the runs
    assert.deepEqual(compareDistributions([rec("x", 0, 0.5), rec("x", 1, 0.5)], [rec("y", 0, 0.5), rec("y", 1, 0.5)], ["lr"]), []);
    assert.equal(compareDistributions([0, 1, 2].map((i) => rec("x", i, 0.5)), [0, 1, 2].map((i) => rec("x", i, 0.5)), ["lr"], [0, 2])[0]!.ours.n, 2);
    // other seeds on the two sides, a seed twice, or a single seed: a typed error naming the cell
    for (const [o, t] of [
      [[rec("x", 0, 0.5), rec("x", 1, 0.5)], [rec("x", 0, 0.5), rec("x", 2, 0.5)]],
      [[rec("x", 0, 0.5), rec("x", 0, 0.6)], [rec("x", 0, 0.5), rec("x", 1, 0.5)]],
      [[rec("x", 0, 0.5)], [rec("x", 0, 0.5)]],
    ] as const) {
      assert.throws(() => compareDistributions(o, t, ["lr"]), (e: Error) => e instanceof SeedMismatchError && /learning-rate\|mlp\|x\|64\|lr=1/.test(e.message));
    }
  });
});

/**
 * Cells outside the rule with seeds 0 and 1 (README "Fidelity", lab-protocol.md "What the experiments
 * found"). Both sides start every seed from the same weights and see the same batches of the same float32
 * inputs (normkit's streams, docs/normkit_streams.py; scripts/check_twin_inputs.py), so these differ only by the implementations' arithmetic, amplified where
 * training is chaotic — the edge of a rate's stability, the per-step
 * BatchNorm LSTM at batch 64 — and two seeds' spread underestimates the noise there. Both sides ran seeds
 * 2..7 for them (docs/*-extra-seeds.jsonl) and seeds 0..39 (docs/*-many-seeds.jsonl). The list must be
 * exactly the failing set: a cell that starts agreeing, or a new one that fails, fails the test; and each
 * must be a cell where PyTorch does not reproduce its own runs (PyTorch against itself, below).
 */
const KNOWN_TWO_SEED_OUTLIERS = [
  "learning-rate|cnn|instance_norm|64|lr=0.3",
  "learning-rate|mlp|batch_norm|64|lr=3",
  "rnn|lstm|batch_norm|64",
];

describe("the committed normkit runs against the committed PyTorch twin", () => {
  const jsonl = (name: string) => readFileSync(join(ROOT, "docs", name), "utf8").trim().split("\n").map((l) => JSON.parse(l) as ExperimentRecord);
  const runsOf = (name: string) => (JSON.parse(readFileSync(join(ROOT, "docs", name), "utf8")) as { runs: ExperimentRecord[] }).runs;
  // shuffle and learning-rate (normkit lab --experiment …), rnn (scripts/run_rnn.mjs), devices (scripts/run_devices.mjs)
  const ours = [...runsOf("lab-experiments.json"), ...runsOf("lab-rnn.json"), ...runsOf("lab-devices.json")];
  const twin = [...jsonl("pytorch-experiments.jsonl"), ...jsonl("pytorch-rnn.jsonl"), ...jsonl("pytorch-devices.jsonl")];
  // the twins re-run with the float32 input rounding (--inputs float32), PyTorch against itself
  const perturbed = [...jsonl("pytorch-experiments-perturbed.jsonl"), ...jsonl("pytorch-rnn-perturbed.jsonl"), ...jsonl("pytorch-devices-perturbed.jsonl")];
  const oursMany = jsonl("lab-many-seeds.jsonl"), twinMany = jsonl("pytorch-many-seeds.jsonl");
  const oursExtra = [...jsonl("lab-experiments-extra-seeds.jsonl"), ...jsonl("lab-rnn-extra-seeds.jsonl")];
  const twinExtra = [...jsonl("pytorch-experiments-extra-seeds.jsonl"), ...jsonl("pytorch-rnn-extra-seeds.jsonl")];
  const fmt = (c: ReturnType<typeof compareRecords>[number]) =>
    `${c.key}: normkit ${(c.ours!.mean * 100).toFixed(1)}, PyTorch ${(c.twin!.mean * 100).toFixed(1)} ± ${(c.twin!.halfSpread * 100).toFixed(1)} (diff ${(c.diff * 100).toFixed(1)}, allowed ${(c.tolerance * 100).toFixed(1)})`;
  for (const e of availableExperiments()) {
    const o = ours.filter((r) => r.experiment === e.name), t = twin.filter((r) => r.experiment === e.name);
    it(`${e.name}: every cell's mean over seeds 0 and 1 within max(2 points, 3x the twin's seed spread), but the investigated outliers`, (tc) => {
      if (o.length === 0 && t.length === 0) return tc.skip(`no committed ${e.name} runs yet`);
      const cells = compareRecords(o, t, e.cellFields, [0, 1]);
      for (const c of cells) {
        assert.deepEqual(c.ours?.seeds.sort(), [0, 1], `${c.key}: normkit's seeds`);
        assert.deepEqual(c.twin?.seeds.sort(), [0, 1], `${c.key}: the twin's seeds`);
      }
      const known = KNOWN_TWO_SEED_OUTLIERS.filter((k) => k.startsWith(`${e.name}|`));
      const bad = cells.filter((c) => !c.ok && !known.includes(c.key)).map(fmt);
      assert.deepEqual(bad, [], `cells outside the rule:\n${bad.join("\n")}`);
      const nowOk = cells.filter((c) => c.ok && known.includes(c.key)).map((c) => c.key);
      assert.deepEqual(nowOk, [], "listed as outliers but within the rule: take them off KNOWN_TWO_SEED_OUTLIERS");
    });
  }

  it("the report draws the twin beside every cell of the committed (full-protocol) runs; a --quick run gets none", () => {
    for (const e of availableExperiments()) {
      const rs = ours.filter((r) => r.experiment === e.name && r.seed <= 1);
      const html = e.report(rs);
      const cells = new Set(rs.map((r) => [r.arch, r.method, r.batch_size, ...e.cellFields.map((f) => String(r[f]))].join("|")));
      const diamonds = (html.match(/<path class="twin"/g) ?? []).length;
      assert.equal(diamonds, cells.size, `${e.name}: one twin diamond per cell`);
      assert.match(html, /PyTorch twin/);
      const quick = rs.map((r) => ({ ...r, train_samples: 1000, epochs: 1 }));
      assert.equal((e.report(quick).match(/<path class="twin"/g) ?? []).length, 0, `${e.name}: no twin for a run off the protocol`);
    }
  });

  it("src/lab/experiments/twin_reference.ts is what scripts/gen-twin-reference.mjs writes from the committed twins", () => {
    const r = spawnSync(process.execPath, [join(ROOT, "scripts/gen-twin-reference.mjs"), "--check"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  });

  it("the two-seed outliers: over seeds 0..7 every one is within the same rule", () => {
    const seeds = [0, 1, 2, 3, 4, 5, 6, 7];
    for (const key of KNOWN_TWO_SEED_OUTLIERS) {
      const name = key.split("|")[0]!;
      const fields = EXPERIMENTS[name]!.cellFields;
      const c = compareRecords([...ours, ...oursExtra], [...twin, ...twinExtra], fields, seeds).find((x) => x.key === key);
      assert.ok(c && c.ours && c.twin, key);
      assert.deepEqual([c.ours.seeds.length, c.twin.seeds.length], [8, 8], key);
      assert.ok(c.ok, fmt(c));
    }
  });

  it("PyTorch against itself: the perturbed twins ran every run of the twins with the float32 inputs; the cells where they move a seed's run by over 1 point are README's count, and every cell of normkit's outside the rule is among them", () => {
    const key = (r: ExperimentRecord) => runKey(r, EXPERIMENTS[r.experiment]!.cellFields);
    assert.deepEqual(perturbed.map(key).sort(), twin.map(key).sort());
    const inputs = (r: ExperimentRecord) => (r as { inputs?: string }).inputs ?? "normkit"; // lines before the field drew normkit's
    for (const r of perturbed) assert.equal(inputs(r), "float32", key(r));
    for (const r of [...twin, ...twinMany]) assert.equal(inputs(r), "normkit", key(r));
    const chaotic = new Set<string>(), failing: string[] = [];
    for (const e of availableExperiments()) {
      const t = twin.filter((r) => r.experiment === e.name), p = perturbed.filter((r) => r.experiment === e.name);
      for (const c of reproducibility(t, p, e.cellFields)) {
        assert.deepEqual(c.seeds, [0, 1], c.key);
        assert.ok(Number.isFinite(c.maxRunDiff), c.key);
        if (c.chaotic) chaotic.add(c.key);
      }
      // (PyTorch against itself outside the rule is chaotic by construction: runs within 1 point give means within 1 < 2)
      failing.push(...compareRecords(ours.filter((r) => r.experiment === e.name), t, e.cellFields).filter((c) => !c.ok).map((c) => c.key));
    }
    assert.ok(readFileSync(join(ROOT, "README.md"), "utf8").includes(`In ${chaotic.size} of the 120 cells`), `README: "In ${chaotic.size} of the 120 cells"`);
    assert.deepEqual(failing.filter((k) => !chaotic.has(k)), [], "normkit's cells outside the rule that PyTorch reproduces within 1 point");
    for (const k of KNOWN_TWO_SEED_OUTLIERS) assert.ok(chaotic.has(k), `${k}: not rounding-chaotic`);
  });

  it("README's agreement tables are what scripts/twin_agreement.mjs prints from the committed runs", () => {
    const r = spawnSync(process.execPath, [join(ROOT, "scripts/twin_agreement.mjs")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const rows = r.stdout.split("\n").filter((l) => l.startsWith("| normkit against") || l.startsWith("| perturbed twin") || l.startsWith("| twin against") || / \| 0–39 \(40\) \| /.test(l));
    assert.equal(rows.length, 3 + KNOWN_TWO_SEED_OUTLIERS.length);
    for (const row of rows) assert.ok(readme.includes(row), `README lacks: ${row}`);
  });

  it("scripts/run_cells.mjs: a committed run again, the same accuracy; bad arguments exit 2 with a message and the usage, nothing on stdout", () => {
    const script = join(ROOT, "scripts/run_cells.mjs");
    const ok = spawnSync(process.execPath, [script, "learning-rate", "--cell", "mlp|batch_norm|64|lr=3", "--seeds", "1"], { encoding: "utf8" });
    assert.equal(ok.status, 0, ok.stderr);
    const lines = ok.stdout.trim().split("\n").map((l) => JSON.parse(l) as ExperimentRecord);
    assert.equal(lines.length, 1);
    const mine = oursMany.find((x) => x.seed === 1 && cellKey(x, ["lr"]) === "learning-rate|mlp|batch_norm|64|lr=3")!;
    assert.equal(lines[0]!.test_accuracy, mine.test_accuracy);
    assert.equal(lines[0]!.train_loss_curve, undefined);
    for (const [args, re] of [
      [["nope", "--cell", "x", "--seeds", "0"], /no experiment "nope"/],
      [["learning-rate", "--seeds", "0"], /at least one --cell/],
      [["learning-rate", "--cell", "mlp|batch_norm|64|lr=3"], /expected --seeds/],
      [["learning-rate", "--cell", "mlp|batch_norm|64|lr=4", "--seeds", "0"], /no such cell: mlp\|batch_norm\|64\|lr=4/],
      [["learning-rate", "--cell", "mlp|batch_norm|64|lr=3", "--seeds", "3-1"], /--seeds: "3-1"/],
      [["learning-rate", "--cell", "mlp|batch_norm|64|lr=3", "--seeds", "0", "--curve-every", "0"], /--curve-every/],
      [["learning-rate", "--cell", "mlp|batch_norm|64|lr=3", "--seeds", "0", "--bogus"], /bogus/],
    ] as const) {
      const bad = spawnSync(process.execPath, [script, ...args], { encoding: "utf8" });
      assert.equal(bad.status, 2, `${args.join(" ")}: ${bad.stderr}`);
      assert.match(bad.stderr, re);
      assert.equal(bad.stdout, "");
    }
  });

  it("scripts/step_divergence.mjs on docs/step-losses/: where README says the two runs of mlp batch_norm seed 0 part (lr 3) and do not (lr 0.1)", () => {
    const dir = join(ROOT, "docs", "step-losses");
    const run = (lr: string) => spawnSync(process.execPath, [join(ROOT, "scripts/step_divergence.mjs"), join(dir, `normkit-mlp-batch_norm-lr${lr}-seed0.jsonl`), join(dir, `pytorch-mlp-batch_norm-lr${lr}-seed0.jsonl`)], { encoding: "utf8" });
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const hot = run("3"), calm = run("0.1");
    assert.equal(hot.status, 0, hot.stderr);
    assert.equal(calm.status, 0, calm.stderr);
    const step = /first over 1%: step (\d+)/.exec(hot.stdout)?.[1];
    assert.ok(step && readme.includes(`passes 1% at step ${step} of 250`), `README: step ${step}`);
    assert.match(calm.stdout, /never over 1%/);
    const worst = /largest relative difference: (\S+) at step/.exec(calm.stdout)?.[1];
    assert.ok(worst && readme.includes(`within ${worst} over all 250 steps`), `README: ${worst}`);
    // the twin's file must hold step losses
    const bad = spawnSync(process.execPath, [join(ROOT, "scripts/step_divergence.mjs"), join(dir, "normkit-mlp-batch_norm-lr3-seed0.jsonl"), join(dir, "normkit-mlp-batch_norm-lr3-seed0.jsonl")], { encoding: "utf8" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--step-losses/);
  });

  it("the two-seed outliers over seeds 0..39: the paired mean difference within max(2 points, 3 standard errors); the runs of seeds 0..7 are the committed ones", () => {
    const seeds = Array.from({ length: 40 }, (_, i) => i);
    const inCell = (rs: readonly ExperimentRecord[], key: string, fields: readonly string[]) => rs.filter((r) => cellKey(r, fields) === key);
    const acc = (rs: readonly ExperimentRecord[], seed: number) => rs.filter((r) => r.seed === seed).map((r) => r.test_accuracy);
    for (const key of KNOWN_TWO_SEED_OUTLIERS) {
      const fields = EXPERIMENTS[key.split("|")[0]!]!.cellFields;
      for (const [many, committed, side] of [[oursMany, [...ours, ...oursExtra], "normkit"], [twinMany, [...twin, ...twinExtra], "PyTorch"]] as const) {
        const runs = inCell(many, key, fields), before = inCell(committed, key, fields);
        assert.deepEqual(runs.map((r) => r.seed).sort((a, b) => a - b), seeds, `${key}: ${side}'s seeds`);
        for (let s = 0; s < 8; s++) assert.deepEqual(acc(runs, s), acc(before, s), `${key} seed ${s}: ${side}'s many-seed run is not its committed run`);
      }
      const c = compareDistributions(oursMany, twinMany, fields).find((x) => x.key === key);
      assert.ok(c, key);
      assert.ok(c.ok, `${key}: normkit ${(c.ours.mean * 100).toFixed(1)} ± ${(c.ours.sd * 100).toFixed(1)}, PyTorch ${(c.twin.mean * 100).toFixed(1)} ± ${(c.twin.sd * 100).toFixed(1)} (diff ${(c.diff * 100).toFixed(1)}, allowed ${(c.tolerance * 100).toFixed(1)})`);
    }
  });
});
