#!/usr/bin/env node
// `npm run bench`: normkit's normalization kernels against their peers, on this machine, in one
// process, interleaved round-robin (every implementation once per round, case by case), medians.
//
//   cases     batch_norm [32,64,56,56] (training), layer_norm [8192,1024], instance_norm [8,64,128,128]
//             (affine), group_norm 32 groups [8,256,64,64], group_norm_small 32 groups [2,64,16,16],
//             rms_norm [8192,1024], switchable_norm [32,64,56,56] (official code's 2d, training)
//   normkit   forward, backward, forward+backward at 1 and 2 threads, tensors in the WebAssembly
//             memory (WasmTensor, kernels in place, caller-provided outputs); plus forward with plain
//             Float32Arrays in and out (the copies into and out of the WebAssembly memory counted),
//             and the JS heap bytes one forward / backward call allocates
//   seed-port a straightforward TypeScript port of the survey's numpy code (mean, var, normalise: 3 passes)
//   onnxruntime  onnxruntime-node, 1 and 2 intra-op threads, the best graph per case (bench/onnx_graphs.mjs)
//   pytorch   Debian's python3-torch through bench/torch_norm.py (forward and forward+backward, 1 and 2
//             threads), when importable with /usr/bin/python3 (or $PYTHON)
//   tfjs-wasm @tensorflow/tfjs-backend-wasm (single-threaded in Node): moments + elementwise ops
//   bound     TypedArray.prototype.set copying the same number of float32 values (one read, one write)
//
// The peers live in bench/package.json and are installed on first use (onnxruntime-node with
// ONNXRUNTIME_NODE_INSTALL_CUDA=skip), so the package's own install never touches them.
//
// usage: node --expose-gc bench/norm.mjs [--json FILE] [--rounds N] [--cases a,b] [--no-pytorch]
//        [--no-onnxruntime] [--no-tfjs]
// JSON: an array of { case, impl, threads, pass, median_ms, min_ms } (impl "normkit" | "onnxruntime" |
// "pytorch" | "tfjs-wasm" | "seed-port" | "bound"; the bound as pass "forward").
import { spawn, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const PYTHON = process.env.PYTHON ?? "/usr/bin/python3";
const T0 = performance.now();

// ---- arguments
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const ROUNDS = Number(opt("--rounds", "15"));
const JSON_OUT = opt("--json", null);
const CASE_BUDGET_MS = 25000;
const NK_SAMPLES = 3;

// ---- the peers: install on first use
function peersInstalled() {
  return ["onnxruntime-node", "@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-wasm"].every((p) => existsSync(join(HERE, "node_modules", p, "package.json")));
}
if (!peersInstalled() && !(flag("--no-onnxruntime") && flag("--no-tfjs"))) {
  console.log("bench: installing the benchmark peers into bench/node_modules (first use) ...");
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--prefix", HERE], {
    cwd: HERE, stdio: "inherit", env: { ...process.env, ONNXRUNTIME_NODE_INSTALL_CUDA: "skip" },
  });
  if (r.status !== 0) console.log("bench: peer install failed; running without the peers that are missing");
}

const nk = await import(join(ROOT, "dist/src/index.js"));
const { WasmTensor, Tensor, backend } = nk;

let ort = null;
if (!flag("--no-onnxruntime")) {
  try {
    ort = (await import("onnxruntime-node")).default;
  } catch (e) {
    console.log(`bench: onnxruntime-node unavailable (${e.message.split("\n")[0]})`);
  }
}
const { onnxModel } = await import("./onnx_graphs.mjs");

let tf = null;
if (!flag("--no-tfjs")) {
  try {
    tf = await import("@tensorflow/tfjs-core");
    await import("@tensorflow/tfjs-backend-wasm");
    await tf.setBackend("wasm");
    await tf.ready();
  } catch (e) {
    console.log(`bench: tfjs-backend-wasm unavailable (${e.message.split("\n")[0]})`);
    tf = null;
  }
}

// ---- PyTorch subprocess
class TorchPeer {
  static start() {
    if (flag("--no-pytorch")) return null;
    const probe = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
    if (probe.status !== 0) {
      console.log(`bench: PyTorch is not importable with ${PYTHON} (apt-get install python3-torch): left out of this run`);
      return null;
    }
    return new TorchPeer(probe.stdout.trim());
  }
  constructor(version) {
    this.version = version;
    this.proc = spawn(PYTHON, [join(HERE, "torch_norm.py")], { stdio: ["pipe", "pipe", "inherit"] });
    this.lines = createInterface({ input: this.proc.stdout });
    this.waiting = [];
    this.lines.on("line", (l) => this.waiting.shift()?.(JSON.parse(l)));
  }
  ask(req) {
    return new Promise((res) => {
      this.waiting.push(res);
      this.proc.stdin.write(JSON.stringify(req) + "\n");
    });
  }
  close() {
    this.proc.stdin.end(JSON.stringify({ op: "quit" }) + "\n");
  }
}
const torch = TorchPeer.start();

// ---- cases
const CASES = [
  { name: "batch_norm", shape: [32, 64, 56, 56], make: () => new nk.BatchNorm2d({ numFeatures: 64 }), seed: { perSample: false, groupSize: 1, center: true, affine: "channel" } },
  { name: "layer_norm", shape: [8192, 1024], make: () => new nk.LayerNorm({ normalizedShape: 1024 }), seed: { perSample: true, groupSize: 1, center: true, affine: "element", rows: true } },
  { name: "instance_norm", shape: [8, 64, 128, 128], make: () => new nk.InstanceNorm2d({ numFeatures: 64, affine: true }), seed: { perSample: true, groupSize: 1, center: true, affine: "channel" } },
  { name: "group_norm", shape: [8, 256, 64, 64], make: () => new nk.GroupNorm({ numGroups: 32, numChannels: 256 }), seed: { perSample: true, groupSize: 8, center: true, affine: "channel" } },
  { name: "group_norm_small", shape: [2, 64, 16, 16], make: () => new nk.GroupNorm({ numGroups: 32, numChannels: 64 }), seed: { perSample: true, groupSize: 2, center: true, affine: "channel" } },
  { name: "rms_norm", shape: [8192, 1024], make: () => new nk.RMSNorm({ normalizedShape: 1024 }), seed: { perSample: true, groupSize: 1, center: false, affine: "element", rows: true } },
  { name: "switchable_norm", shape: [32, 64, 56, 56], make: () => new nk.SwitchableNorm2d({ numFeatures: 64 }), seed: null },
];
const only = opt("--cases", null);
const cases = only ? CASES.filter((c) => only.split(",").includes(c.name)) : CASES;

// ---- the seed port: the survey's numpy code, line by line (mean; var = mean((x - mean)^2);
// (x - mean) / sqrt(var + eps) * gamma + beta), over an [N, C, S] view
function seedPort(y, x, shape, s, w, b, eps = 1e-5) {
  const N = shape[0];
  const C = s.rows ? 1 : shape[1];
  const S = x.length / (N * C);
  const G = C / s.groupSize;
  const K = s.perSample ? N * G : C;
  for (let k = 0; k < K; k++) {
    // the (sample, channel) runs of statistic k
    const runs = [];
    if (s.perSample) {
      const n = Math.floor(k / G), g = k % G;
      for (let c = g * s.groupSize; c < (g + 1) * s.groupSize; c++) runs.push([(n * C + c) * S, c]);
    } else for (let n = 0; n < N; n++) runs.push([(n * C + k) * S, k]);
    const M = runs.length * S;
    let mean = 0;
    if (s.center) {
      for (const [o] of runs) for (let i = 0; i < S; i++) mean += x[o + i];
      mean /= M;
    }
    let v = 0;
    for (const [o] of runs) for (let i = 0; i < S; i++) v += (x[o + i] - mean) ** 2;
    v /= M;
    const r = 1 / Math.sqrt(v + eps);
    for (const [o, c] of runs) {
      if (s.affine === "element") for (let i = 0; i < S; i++) y[o + i] = (x[o + i] - mean) * r * w[i] + (b ? b[i] : 0);
      else for (let i = 0; i < S; i++) y[o + i] = (x[o + i] - mean) * r * w[c] + b[c];
    }
  }
}

// ---- tfjs-wasm graphs (moments + elementwise, as a tfjs user writes them)
function tfjsForward(name, shape, x, w, b) {
  return tf.tidy(() => {
    const eps = 1e-5;
    const bc = (t) => tf.reshape(t, [1, shape[1], ...shape.slice(2).map(() => 1)]);
    const norm = (v, axes) => {
      const { mean, variance } = tf.moments(v, axes, true);
      return tf.mul(tf.sub(v, mean), tf.rsqrt(tf.add(variance, eps)));
    };
    switch (name) {
      case "batch_norm":
        return tf.add(tf.mul(norm(x, [0, 2, 3]), bc(w)), bc(b));
      case "instance_norm":
        return tf.add(tf.mul(norm(x, [2, 3]), bc(w)), bc(b));
      case "layer_norm":
        return tf.add(tf.mul(norm(x, [-1]), w), b);
      case "rms_norm":
        return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 2 ** -23))), w);
      case "group_norm":
      case "group_norm_small":
        return tf.add(tf.mul(tf.reshape(norm(tf.reshape(x, [shape[0], 32, -1]), [2]), shape), bc(w)), bc(b));
      default:
        return null;
    }
  });
}

// ---- measurement helpers
const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const timeIt = (fn) => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};
const gc = globalThis.gc ?? null;
/**
 * JS heap bytes per call (V8 heap + ArrayBuffer backing stores): the least of 3 batches of calls
 * between which nothing collects.
 */
function heapPerCall(fn, calls) {
  if (!gc) return NaN;
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  let best = Infinity;
  for (let i = 0; i < 30; i++) fn(); // let the JIT settle (optimised code is heap too)
  for (let rep = 0; rep < 3; rep++) {
    for (let i = 0; i < 5; i++) fn();
    gc();
    const h0 = used();
    for (let i = 0; i < calls; i++) fn();
    const h1 = used();
    best = Math.min(best, Math.max(0, (h1 - h0) / calls));
  }
  return best;
}
function rnd(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = (s + 0.5) / 4294967296;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = (s + 0.5) / 4294967296;
    a[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return a;
}

// ---- run
await backend.configure({ threads: 2 });
const THREADS = [1, 2];
const records = [];
const extra = {}; // case -> { plainFwd: {1,2}, heapFwd, heapBwd }
const rec = (c, impl, threads, pass, samples) => {
  if (!samples.length) return;
  records.push({ case: c, impl, threads, pass, median_ms: +median(samples).toFixed(4), min_ms: +Math.min(...samples).toFixed(4) });
};

console.log(`bench: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), load ${loadavg().map((l) => l.toFixed(2)).join(" ")}; ${ROUNDS} rounds; ` +
  `wasm kernels ${backend.info().wasm ? "on" : "OFF: " + backend.info().wasmReason}; onnxruntime ${ort ? "yes" : "no"}; pytorch ${torch ? torch.version : "no"}; tfjs-wasm ${tf ? "yes" : "no"}`);

for (const cs of cases) {
  const { name, shape } = cs;
  const n = shape.reduce((a, b) => a * b, 1);
  const small = n < 1 << 16;
  const calls = small ? 20 : 1; // calls per sample: small cases time a batch of calls
  const rounds = ROUNDS;
  const xd = rnd(n, 1), dyd = rnd(n, 2);
  // normkit: tensors in the WebAssembly memory
  const layer = cs.make();
  const x = WasmTensor.from(xd, shape), y = WasmTensor.zeros(shape), dy = WasmTensor.from(dyd, shape), dx = WasmTensor.zeros(shape);
  const xPlain = new Tensor(xd, shape), yPlain = Tensor.zeros(shape);
  // caller-provided outputs, tensors in the WebAssembly memory
  const fwd = () => layer.forward(x, y);
  const bwd = () => layer.backward(dy, dx);
  // seed port
  const P = cs.seed?.affine === "element" ? shape.at(-1) : shape[1];
  const sw = new Float32Array(P).fill(1), sb = new Float32Array(P);
  const ySeed = new Float32Array(n);
  // bound
  const bsrc = new Float32Array(xd), bdst = new Float32Array(n);
  bdst.set(bsrc); // first touch outside the timing
  // onnxruntime
  const sessions = {};
  if (ort && onnxModel(name, shape)) {
    for (const T of THREADS) {
      sessions[T] = await ort.InferenceSession.create(onnxModel(name, shape), {
        intraOpNumThreads: T, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all",
      });
    }
  }
  const ortX = ort ? new ort.Tensor("float32", xd, shape) : null;
  // tfjs
  let tfx = null, tfw = null, tfb = null;
  if (tf && name !== "switchable_norm") {
    tfx = tf.tensor(xd, shape);
    tfw = tf.ones([P]);
    tfb = tf.zeros([P]);
  }
  if (torch) await torch.ask({ op: "setup", case: name, shape });

  const S = {}; // key -> samples
  const add = (key, ms) => (S[key] ??= []).push(ms / calls);
  const loop = (fn) => () => {
    for (let i = 0; i < calls; i++) fn();
  };
  // warm up
  for (const T of THREADS) {
    await backend.configure({ threads: T });
    for (let i = 0; i < 3; i++) {
      fwd();
      bwd();
    }
  }
  const caseStart = performance.now();
  for (let r = 0; r < rounds; r++) {
    // keep the whole run under 5 minutes on a loaded machine: a case gets at most ~25 s of rounds
    if (r >= 5 && performance.now() - caseStart > CASE_BUDGET_MS) break;
    // normkit and the bound are cheap: NK_SAMPLES samples of each per round
    for (let q = 0; q < NK_SAMPLES; q++) add("bound", timeIt(loop(() => bdst.set(bsrc))));
    for (const T of THREADS) {
      await backend.configure({ threads: T });
      for (let q = 0; q < NK_SAMPLES; q++) {
        add(`nk fwd ${T}`, timeIt(loop(fwd)));
        add(`nk bwd ${T}`, timeIt(loop(bwd)));
        add(`nk fb ${T}`, timeIt(loop(() => (fwd(), bwd()))));
      }
      add(`nk plain ${T}`, timeIt(loop(() => layer.forward(xPlain, yPlain))));
    }
    if (cs.seed && (r % 3 === 0 || small)) add("seed", timeIt(loop(() => seedPort(ySeed, xd, shape, cs.seed, sw, sb))));
    for (const T of THREADS) {
      const sess = sessions[T];
      if (!sess) continue;
      const t = performance.now();
      for (let i = 0; i < calls; i++) await sess.run({ x: ortX });
      add(`ort ${T}`, performance.now() - t);
    }
    if (tfx && (r % 2 === 0 || small)) {
      add("tfjs", timeIt(loop(() => tfjsForward(name, shape, tfx, tfw, tfb).dispose())));
    }
    if (torch) {
      for (const T of THREADS) {
        for (const pass of ["forward", "forward+backward"]) {
          const { times } = await torch.ask({ op: "time", pass, threads: T, reps: small ? calls : 1 });
          const per = small ? times.reduce((a, b) => a + b, 0) / calls : times[0];
          (S[`pt ${pass} ${T}`] ??= []).push(per);
        }
      }
    }
  }
  // heap bytes per call (one thread, caller-provided outputs)
  await backend.configure({ threads: 1 });
  const heapF = heapPerCall(fwd, 50), heapB = heapPerCall(bwd, 50);
  extra[name] = { heapF, heapB, shape };

  rec(name, "bound", 1, "forward", S["bound"] ?? []);
  rec(name, "seed-port", 1, "forward", S["seed"] ?? []);
  rec(name, "tfjs-wasm", 1, "forward", S["tfjs"] ?? []);
  for (const T of THREADS) {
    rec(name, "normkit", T, "forward", S[`nk fwd ${T}`]);
    rec(name, "normkit", T, "backward", S[`nk bwd ${T}`]);
    rec(name, "normkit", T, "forward+backward", S[`nk fb ${T}`]);
    rec(name, "onnxruntime", T, "forward", S[`ort ${T}`] ?? []);
    rec(name, "pytorch", T, "forward", S[`pt forward ${T}`] ?? []);
    rec(name, "pytorch", T, "forward+backward", S[`pt forward+backward ${T}`] ?? []);
    extra[name][`plain${T}`] = S[`nk plain ${T}`] ? median(S[`nk plain ${T}`]) : NaN;
  }
  for (const T of THREADS) await sessions[T]?.release?.();
  tfx?.dispose();
  tfw?.dispose();
  tfb?.dispose();
  x.dispose();
  y.dispose();
  dy.dispose();
  dx.dispose();
  console.log(`bench: ${name} done (${((performance.now() - T0) / 1000).toFixed(0)} s)`);
}
torch?.close();

// ---- table
const get = (c, impl, T, pass) => records.find((r) => r.case === c && r.impl === impl && r.threads === T && r.pass === pass)?.median_ms;
const f = (v, d = 3) => (v === undefined || Number.isNaN(v) ? "—" : v < 0.1 ? v.toFixed(4) : v < 10 ? v.toFixed(d) : v.toFixed(1));
const ratio = (a, b) => (a === undefined || b === undefined || !b ? "—" : (a / b).toFixed(2) + "x");
const lines = [];
lines.push("Forward, float32, median ms (T = threads):");
lines.push("");
lines.push("| case | shape | bound | seed port | tfjs-wasm | onnxruntime T1 / T2 | PyTorch T1 / T2 | **normkit T1 / T2** | normkit plain arrays T1 / T2 | normkit ÷ best peer T1 / T2 | normkit T2 ÷ bound |");
lines.push("|---|---|---|---|---|---|---|---|---|---|---|");
for (const cs of cases) {
  const c = cs.name;
  const cells = [c, `[${cs.shape.join(",")}]`, f(get(c, "bound", 1, "forward")), f(get(c, "seed-port", 1, "forward")), f(get(c, "tfjs-wasm", 1, "forward"))];
  cells.push(`${f(get(c, "onnxruntime", 1, "forward"))} / ${f(get(c, "onnxruntime", 2, "forward"))}`);
  cells.push(`${f(get(c, "pytorch", 1, "forward"))} / ${f(get(c, "pytorch", 2, "forward"))}`);
  cells.push(`**${f(get(c, "normkit", 1, "forward"))} / ${f(get(c, "normkit", 2, "forward"))}**`);
  cells.push(`${f(extra[c]?.plain1)} / ${f(extra[c]?.plain2)}`);
  const best = (T) => {
    const v = [get(c, "onnxruntime", T, "forward"), get(c, "pytorch", T, "forward")].filter((q) => q !== undefined);
    return v.length ? Math.min(...v) : undefined;
  };
  cells.push(`${ratio(get(c, "normkit", 1, "forward"), best(1))} / ${ratio(get(c, "normkit", 2, "forward"), best(2))}`);
  cells.push(ratio(get(c, "normkit", 2, "forward"), get(c, "bound", 1, "forward")));
  lines.push(`| ${cells.join(" | ")} |`);
}
lines.push("");
lines.push("Backward and forward+backward, median ms; heap = JS heap bytes one call allocates (1 thread, outputs provided):");
lines.push("");
lines.push("| case | normkit backward T1 / T2 | **normkit fwd+bwd T1 / T2** | PyTorch fwd+bwd T1 / T2 | normkit ÷ PyTorch fwd+bwd T1 / T2 | heap B/call fwd / bwd |");
lines.push("|---|---|---|---|---|---|");
for (const cs of cases) {
  const c = cs.name;
  lines.push(`| ${c} | ${f(get(c, "normkit", 1, "backward"))} / ${f(get(c, "normkit", 2, "backward"))} | **${f(get(c, "normkit", 1, "forward+backward"))} / ${f(get(c, "normkit", 2, "forward+backward"))}** | ` +
    `${f(get(c, "pytorch", 1, "forward+backward"))} / ${f(get(c, "pytorch", 2, "forward+backward"))} | ` +
    `${ratio(get(c, "normkit", 1, "forward+backward"), get(c, "pytorch", 1, "forward+backward"))} / ${ratio(get(c, "normkit", 2, "forward+backward"), get(c, "pytorch", 2, "forward+backward"))} | ` +
    `${Number.isNaN(extra[c]?.heapF) ? "—" : Math.round(extra[c].heapF)} / ${Number.isNaN(extra[c]?.heapB) ? "—" : Math.round(extra[c].heapB)} |`);
}
console.log("\n" + lines.join("\n"));

// ---- targets (issue 4)
const CANON = ["batch_norm", "layer_norm", "instance_norm", "group_norm", "group_norm_small"];
const checks = [];
for (const c of CANON.filter((q) => cases.some((cs) => cs.name === q))) {
  for (const T of THREADS) {
    const nkF = get(c, "normkit", T, "forward");
    const peers = [get(c, "onnxruntime", T, "forward"), get(c, "pytorch", T, "forward")].filter((v) => v !== undefined);
    if (peers.length) {
      const lim = c === "group_norm_small" ? 1.0 : 0.7;
      const r = nkF / Math.min(...peers);
      checks.push(`${r <= lim ? "ok  " : "MISS"} ${c} T${T} forward ${r.toFixed(2)}x best peer (≤ ${lim}x)`);
    }
    const pt = get(c, "pytorch", T, "forward+backward");
    if (pt !== undefined) {
      const r = get(c, "normkit", T, "forward+backward") / pt;
      checks.push(`${r <= 0.8 ? "ok  " : "MISS"} ${c} T${T} forward+backward ${r.toFixed(2)}x PyTorch (≤ 0.8x)`);
    }
  }
  if (c !== "group_norm_small") {
    const r = get(c, "normkit", 2, "forward") / get(c, "bound", 1, "forward");
    checks.push(`${r <= 1.6 ? "ok  " : "MISS"} ${c} T2 forward ${r.toFixed(2)}x bound (≤ 1.6x)`);
  }
}
console.log("\nTargets (issue 4):\n" + checks.join("\n"));
console.log(`\nbench: ${((performance.now() - T0) / 1000).toFixed(0)} s`);
if (JSON_OUT) {
  writeFileSync(JSON_OUT, JSON.stringify(records, null, 1) + "\n");
  console.log(`bench: wrote ${records.length} records to ${JSON_OUT}`);
}
await backend.shutdown();
