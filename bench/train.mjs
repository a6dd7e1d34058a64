#!/usr/bin/env node
// `npm run bench:train`: training throughput (samples/s) of the lab's default CNN — conv 1→8 3×3 pad 1,
// norm, ReLU, maxpool 2; conv 8→16, norm, ReLU, maxpool 2; linear 784→10; SGD momentum 0.9, weight
// decay 1e-4 — for each method at batch 64, 8 and 4, at 1 and 2 threads (one run with that many
// intra-op threads, for every implementation), for:
//   normkit   bench/normkit_worker.mjs (src/lab/models.ts + the training step of src/lab/train.ts)
//   pytorch   bench/torch_worker.py through Debian's /usr/bin/python3 (python3-torch), when importable
//   tfjs-cpu  bench/tfjs_worker.mjs, TensorFlow.js's plain-JS cpu backend (~200x slower: a few steps at
//             batch 64, none and batch_norm only, 1 thread)
// Each implementation runs in its own process; the orchestrator interleaves them round-robin (one timed
// window each, per configuration, per round) and reports the median window. Inputs are fixed synthetic
// N(0,1) batches with random labels (throughput does not depend on the values).
// The peers (@tensorflow/tfjs) live in bench/package.json and are installed on first use, so the main
// package's `npm ci` never touches them.
//
// usage: node bench/train.mjs [--json FILE] [--methods a,b,…] [--batches 64,8,4] [--threads 1,2]
//                             [--rounds 5] [--window 0.5] [--tfjs-windows 3] [--no-pytorch] [--no-tfjs]
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const PYTHON = process.env.PYTHON ?? "/usr/bin/python3";
// "lstm": the rnn experiment's LSTM network (src/lab/experiments/rnn.ts; PyTorch: nn.LSTM), Adam with clipping
const ALL_METHODS = ["none", "batch_norm", "group_norm", "layer_norm", "instance_norm", "switchable_norm", "lstm"];

function fail(msg) {
  console.error(`bench:train: ${msg}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    json: null, methods: ALL_METHODS, batches: [64, 8, 4], threads: [1, 2], rounds: 5, window: 0.5,
    tfjsWindows: 3, tfjsMethods: ["none", "batch_norm", "group_norm", "layer_norm", "instance_norm"], pytorch: true, tfjs: true,
  };
  const list = (v, f) => v.split(",").map((s) => s.trim()).filter(Boolean).map(f);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    const int = (s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) fail(`${a}: expected a positive integer, got "${s}"`);
      return n;
    };
    switch (a) {
      case "--json": o.json = val(); break;
      case "--methods": o.methods = list(val(), (m) => (ALL_METHODS.includes(m) ? m : fail(`unknown method "${m}" (one of ${ALL_METHODS.join(", ")})`))); break;
      case "--batches": o.batches = list(val(), int); break;
      case "--threads": o.threads = list(val(), int); break;
      case "--rounds": o.rounds = int(val()); break;
      case "--window": o.window = Number(val()); if (!(o.window > 0)) fail("--window: expected seconds > 0"); break;
      case "--tfjs-windows": o.tfjsWindows = int(val()); break;
      case "--tfjs-methods": o.tfjsMethods = list(val(), (m) => (ALL_METHODS.includes(m) ? m : fail(`unknown method "${m}"`))); break;
      case "--no-pytorch": o.pytorch = false; break;
      case "--no-tfjs": o.tfjs = false; break;
      case "-h": case "--help":
        console.log("usage: npm run bench:train -- [--json FILE] [--methods a,b] [--batches 64,8,4] [--threads 1,2] [--rounds 5] [--window 0.5] [--tfjs-windows 3] [--tfjs-methods none,batch_norm,group_norm,layer_norm,instance_norm] [--no-pytorch] [--no-tfjs]");
        process.exit(0);
      default: fail(`unknown option "${a}"`);
    }
  }
  return o;
}

/** A worker process speaking one JSON line per command. */
class Worker {
  constructor(name, cmd, args, cwd) {
    this.name = name;
    this.proc = spawn(cmd, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
    this.stderr = "";
    this.proc.stderr.on("data", (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.waiters = [];
    this.lines = [];
    this.exited = false;
    createInterface({ input: this.proc.stdout }).on("line", (l) => {
      if (!l.startsWith("{")) return; // library chatter
      const w = this.waiters.shift();
      if (w) w.resolve(JSON.parse(l));
      else this.lines.push(JSON.parse(l));
    });
    this.proc.on("exit", (code) => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${name} worker exited (${code}): ${this.stderr.trim().split("\n").slice(-3).join(" | ")}`));
    });
    this.proc.on("error", (e) => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) w.reject(e);
    });
  }
  next() {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    if (this.exited) return Promise.reject(new Error(`${this.name} worker is not running: ${this.stderr.trim().split("\n").slice(-3).join(" | ")}`));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
  async ready() {
    const r = await this.next();
    if (!r.ready) throw new Error(`${this.name} worker: unexpected first line ${JSON.stringify(r)}`);
    return r;
  }
  async run(cmd) {
    this.proc.stdin.write(JSON.stringify({ cmd: "run", ...cmd }) + "\n");
    const r = await this.next();
    if (r.error) throw new Error(`${this.name}: ${r.error}`);
    return r;
  }
  close() {
    if (!this.exited) {
      this.proc.stdin.write(JSON.stringify({ cmd: "exit" }) + "\n");
      this.proc.stdin.end();
    }
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function ensureTfjs() {
  if (existsSync(join(HERE, "node_modules/@tensorflow/tfjs/package.json"))) return true;
  console.log("bench:train: installing the benchmark-only peers into bench/node_modules (first use; bench/package.json) …");
  // bench/package.json is shared with bench/norm.mjs, whose onnxruntime-node install needs its CUDA download skipped.
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", HERE], {
    cwd: HERE,
    stdio: "inherit",
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL_CUDA: "skip" },
  });
  if (r.status !== 0) {
    console.log("bench:train: could not install the peers in bench/: TensorFlow.js is left out of this run.");
    return false;
  }
  return true;
}

function pytorchAvailable() {
  const r = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
  if (r.status === 0) return r.stdout.trim();
  console.log(`bench:train: PyTorch is not importable with ${PYTHON} (apt-get install python3-torch): PyTorch is left out of this run.`);
  return null;
}

function fmt(v) {
  if (v === undefined || !Number.isFinite(v)) return "—";
  return v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1);
}
function ratio(a, b) {
  return a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(a / b >= 10 ? 0 : 2)}x` : "—";
}
function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(join(ROOT, "dist/src/lab/models.js"))) fail("dist/ is missing or stale: run `npm run build` first");
  const t0 = performance.now();

  const torchVersion = o.pytorch ? pytorchAvailable() : null;
  const tfjsOk = o.tfjs ? ensureTfjs() : false;

  const workers = {};
  // normkit at t threads = one training run with t intra-op threads (backend.configure({ threads: t })),
  // the same kind of parallelism as PyTorch's torch.set_num_threads(t)
  workers.normkit = new Worker("normkit", process.execPath, [join(HERE, "normkit_worker.mjs")], ROOT);
  await workers.normkit.ready();
  if (torchVersion) {
    workers.pytorch = new Worker("pytorch", PYTHON, [join(HERE, "torch_worker.py")], HERE);
    await workers.pytorch.ready();
  }
  let tfjsVersion = null;
  if (tfjsOk) {
    workers["tfjs-cpu"] = new Worker("tfjs-cpu", process.execPath, [join(HERE, "tfjs_worker.mjs")], HERE);
    tfjsVersion = (await workers["tfjs-cpu"].ready()).version;
  }

  // What runs: normkit at the thread counts it supports, PyTorch at all, tfjs at 1 thread.
  const configs = [];
  for (const method of o.methods)
    for (const batch of o.batches)
      for (const threads of o.threads) configs.push({ method, batch, threads });
  const tasks = []; // { impl, method, batch, threads, samples: [] }
  for (const c of configs) {
    tasks.push({ impl: "normkit", ...c, samples: [] });
    if (workers.pytorch) tasks.push({ impl: "pytorch", ...c, samples: [] });
  }
  const tfjsTasks = workers["tfjs-cpu"]
    ? o.tfjsMethods.filter((m) => o.methods.includes(m)).map((method) => ({ impl: "tfjs-cpu", method, batch: 64, threads: 1, samples: [] }))
    : [];

  console.log(
    `bench:train: ${configs.length} configurations × ${tasks.length / Math.max(1, configs.length) > 1 ? "normkit + pytorch" : Object.keys(workers).join(", ")}, ${o.rounds} rounds of ${o.window}s windows` +
      (tfjsTasks.length ? `; tfjs-cpu: ${tfjsTasks.map((t) => t.method).join(", ")} at batch 64, ${o.tfjsWindows} one-step windows` : ""),
  );

  // Warm-up: every (impl, config) once (JIT, buffers, caches).
  for (const t of tasks) await workers[t.impl].run({ method: t.method, batch: t.batch, threads: t.threads, seconds: o.window * 0.6, min_steps: 3 });
  for (const t of tfjsTasks) await workers["tfjs-cpu"].run({ method: t.method, batch: t.batch, threads: 1, seconds: 0, min_steps: 1 });

  // Timed rounds, interleaved: for each configuration, each implementation in turn (order alternating per round).
  for (let r = 0; r < o.rounds; r++) {
    for (const c of configs) {
      const group = tasks.filter((t) => t.method === c.method && t.batch === c.batch && t.threads === c.threads);
      if (r % 2) group.reverse();
      for (const t of group) {
        const res = await workers[t.impl].run({ method: t.method, batch: t.batch, threads: t.threads, seconds: o.window, min_steps: 2 });
        t.samples.push(res.samples_per_s);
      }
    }
    if (r < o.tfjsWindows)
      for (const t of tfjsTasks) {
        const res = await workers["tfjs-cpu"].run({ method: t.method, batch: t.batch, threads: 1, seconds: 0, min_steps: 1 });
        t.samples.push(res.samples_per_s);
      }
    process.stdout.write(`  round ${r + 1}/${o.rounds} done (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  for (const w of Object.values(workers)) w.close();

  // Results.
  const records = [];
  const get = (impl, method, batch, threads) => tasks.concat(tfjsTasks).find((t) => t.impl === impl && t.method === method && t.batch === batch && t.threads === threads);
  for (const t of tasks.concat(tfjsTasks)) {
    const r = { method: t.method, batch_size: t.batch, threads: t.threads, impl: t.impl, samples_per_s: Math.round(median(t.samples) * 10) / 10 };
    records.push(r);
  }
  const rec = (impl, method, batch, threads) => records.find((x) => x.impl === impl && x.method === method && x.batch_size === batch && x.threads === threads)?.samples_per_s;

  const head = ["method", "batch", "thr", "normkit", "pytorch", "tfjs-cpu", "normkit/pytorch", "normkit/tfjs"];
  const w = [16, 5, 3, 10, 9, 9, 15, 12];
  const line = (cells) => cells.map((s, i) => pad(s, w[i], i > 0)).join("  ");
  console.log("\nTraining throughput, samples/s (median of the timed windows), default CNN (method lstm: the rnn experiment's LSTM network), synthetic inputs");
  console.log(line(head));
  console.log(w.map((n) => "-".repeat(n)).join("  "));
  const failures = [];
  for (const c of configs) {
    const nk = rec("normkit", c.method, c.batch, c.threads);
    const pt = rec("pytorch", c.method, c.batch, c.threads);
    const tf = c.threads === 1 ? rec("tfjs-cpu", c.method, c.batch, 1) : undefined;
    console.log(line([c.method, c.batch, c.threads, fmt(nk), fmt(pt), fmt(tf), ratio(nk, pt), ratio(nk, tf)]));
    if ((c.batch === 64 || c.batch === 8) && nk !== undefined) {
      if (pt !== undefined && nk / pt < 1) failures.push(`${c.method} batch ${c.batch}, ${c.threads} thread(s): normkit/pytorch ${(nk / pt).toFixed(2)}x < 1.0x`);
      if (tf !== undefined && nk / tf < 20) failures.push(`${c.method} batch ${c.batch}: normkit/tfjs ${(nk / tf).toFixed(1)}x < 20x`);
    }
  }
  if (configs.some((c) => c.threads > 1)) console.log("threads: one training run with that many intra-op threads, for normkit (backend.configure) and PyTorch (torch.set_num_threads) alike.");
  if (tfjsTasks.length) console.log(`tfjs-cpu: @tensorflow/tfjs ${tfjsVersion} cpu backend (plain JS, single-threaded), batch 64 only, ${o.tfjsWindows} one-step windows; compared at 1 thread.`);
  console.log(
    `versions: node ${process.version}${torchVersion ? `, torch ${torchVersion}` : ""}${tfjsVersion ? `, tfjs ${tfjsVersion}` : ""}; ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), load ${loadavg().map((x) => x.toFixed(2)).join(" ")}; ${((performance.now() - t0) / 1000).toFixed(0)} s in all`,
  );
  if (o.batches.some((b) => b === 64 || b === 8)) {
    const goal = "batch 64 and 8: ≥ 1.0x PyTorch at every thread count, ≥ 20x tfjs";
    console.log(failures.length ? `targets (${goal}) missed:\n  ${failures.join("\n  ")}` : `targets (${goal}): met where measured`);
  }

  if (o.json) {
    const file = resolve(process.cwd(), o.json);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(records, null, 2) + "\n");
    console.log(`wrote ${records.length} records to ${o.json}`);
  }
}

main().catch((e) => {
  console.error(`bench:train: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
