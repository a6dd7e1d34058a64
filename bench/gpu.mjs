#!/usr/bin/env node
/**
 * GPU benchmark: normkit's WebGPU kernels (Dawn for Node, the `webgpu` package) against PyTorch CUDA,
 * on the shapes of ../shared/anchors/PERFORMANCE.md's GPU table, forward (training) and forward +
 * backward, in the same run on the same card, with the ratios.
 *
 *   npm run build && node bench/gpu.mjs [--tiny] [--cases ln,bn,...] [--no-torch] [--python python3]
 *                                        [--min-ms 25] [--json out.json] [--no-verify]
 *
 * normkit timing: each call's dispatches are recorded once and re-encoded `reps` times in one
 * compute pass, timed with GPU timestamps (timestamp-query) at the pass's start and end, or by wall
 * clock around submit + onSubmittedWorkDone where the adapter has no timestamps; the median over
 * trials, per call. PyTorch timing: bench/gpu_torch.py, CUDA events around `reps` calls, median.
 * Before timing, each case's kernels are checked against the CPU layers (float64) on a slice of the
 * shape (the first samples: same kernel path, a CPU-sized problem): the "check" column.
 *
 * --tiny runs small shapes (a smoke test of the script on SwiftShader; its times mean nothing).
 * On an NVIDIA machine without Node, see bench/gpu_remote.sh (and bench/gpu_prepare.sh, run here).
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const nk = await import(join(ROOT, "dist/src/index.js"));
const gpuApi = await import(join(ROOT, "dist/src/webgpu.js"));
const { createNodeGpuContext } = await import(join(ROOT, "dist/src/kernels/webgpu/node_device.js"));

const { values: opt } = parseArgs({
  options: {
    tiny: { type: "boolean", default: false },
    cases: { type: "string" },
    "no-torch": { type: "boolean", default: false },
    python: { type: "string", default: process.env.PYTHON ?? "python3" },
    "min-ms": { type: "string", default: "25" },
    json: { type: "string" },
    "no-verify": { type: "boolean", default: false },
  },
});
const MIN_MS = Number(opt["min-ms"]);

/** The GPU table. `tiny` shapes for smoke tests; `slice` = samples kept for the CPU check. */
const CASES = [
  { id: "bn", name: "BatchNorm2d, training", op: "batch_norm", shape: [32, 64, 56, 56], tiny: [4, 8, 8, 8], slice: 8, make: (s) => new nk.BatchNorm({ numFeatures: s[1] }) },
  { id: "ln", name: "LayerNorm", op: "layer_norm", shape: [8192, 1024], tiny: [64, 256], slice: 256, make: (s) => new nk.LayerNorm({ normalizedShape: s.at(-1) }) },
  { id: "in", name: "InstanceNorm2d", op: "instance_norm", shape: [8, 64, 128, 128], tiny: [2, 4, 16, 16], slice: 2, make: (s) => new nk.InstanceNorm({ numFeatures: s[1] }) },
  { id: "gn", name: "GroupNorm 32", op: "group_norm", groups: 32, shape: [8, 256, 64, 64], tiny: [2, 64, 8, 8], slice: 2, make: (s) => new nk.GroupNorm({ numGroups: 32, numChannels: s[1] }) },
  { id: "gn_small", name: "GroupNorm 32 small", op: "group_norm", groups: 32, shape: [2, 64, 16, 16], tiny: [2, 64, 4, 4], slice: 2, make: (s) => new nk.GroupNorm({ numGroups: 32, numChannels: s[1] }) },
  { id: "ln_big", name: "LayerNorm", op: "layer_norm", shape: [65536, 4096], tiny: [8, 4096], slice: 256, make: (s) => new nk.LayerNorm({ normalizedShape: s.at(-1) }) },
  { id: "gn_big", name: "GroupNorm 32", op: "group_norm", groups: 32, shape: [16, 512, 128, 128], tiny: [1, 64, 32, 32], slice: 1, make: (s) => new nk.GroupNorm({ numGroups: 32, numChannels: s[1] }) },
  { id: "rms", name: "RMSNorm", op: "rms_norm", shape: [8192, 1024], tiny: [64, 256], slice: 256, make: (s) => new nk.RMSNorm({ normalizedShape: s.at(-1) }) },
  { id: "rms_big", name: "RMSNorm", op: "rms_norm", shape: [65536, 4096], tiny: [8, 4096], slice: 256, make: (s) => new nk.RMSNorm({ normalizedShape: s.at(-1) }) },
  { id: "sn", name: "Switchable Norm 2d", op: "switchable_norm", shape: [32, 64, 56, 56], tiny: [4, 8, 8, 8], slice: 8, make: (s) => new nk.SwitchableNorm2d({ numFeatures: s[1] }) },
  { id: "sn2", name: "Switchable Norm 2d", op: "switchable_norm", shape: [8, 256, 64, 64], tiny: [2, 16, 8, 8], slice: 2, make: (s) => new nk.SwitchableNorm2d({ numFeatures: s[1] }) },
  // the training stack (make(shape, dtype): the float64 twin is built the same way)
  { id: "linear", name: "Linear 1024→1024", op: "linear", shape: [8192, 1024], tiny: [64, 64], slice: 64, make: (s, dtype = "float32") => new nk.Linear({ inFeatures: s[1], outFeatures: s[1], dtype, rng: nk.mulberry32(1) }) },
  { id: "conv", name: "Conv2d 3x3 64→64", op: "conv2d", shape: [32, 64, 56, 56], tiny: [2, 4, 8, 8], slice: 1, make: (s, dtype = "float32") => new nk.Conv2d({ inChannels: s[1], outChannels: s[1], kernelSize: 3, padding: 1, dtype, rng: nk.mulberry32(2) }) },
  { id: "relu", name: "ReLU", op: "relu", shape: [32, 64, 56, 56], tiny: [2, 4, 8, 8], slice: 2, make: (s, dtype = "float32") => new nk.ReLU({ dtype }) },
  { id: "maxpool", name: "MaxPool2d 2", op: "maxpool", shape: [32, 64, 56, 56], tiny: [2, 4, 8, 8], slice: 2, make: (s, dtype = "float32") => new nk.MaxPool2d({ kernelSize: 2, dtype }) },
];
/** The ops whose layer changes the shape (dy has the output's) and builds its float64 twin with make(shape, dtype). */
const STACK = new Set(["linear", "conv2d", "relu", "maxpool"]);

const wanted = opt.cases ? new Set(opt.cases.split(",")) : null;
const cases = CASES.filter((c) => !wanted || wanted.has(c.id)).map((c) => ({ ...c, shape: opt.tiny ? c.tiny : c.shape }));
const size = (s) => s.reduce((a, b) => a * b, 1);

// deterministic float32-exact random values without allocating per element twice
function fill(arr, seed) {
  let a = seed >>> 0;
  for (let i = 0; i < arr.length; i += 2) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u1 = (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
    a = (a + 0x6d2b79f5) >>> 0;
    t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u2 = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    arr[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < arr.length) arr[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return arr;
}

const ctx = await createNodeGpuContext({ swiftshaderFallback: true, checkErrors: true, powerPreference: "high-performance" });
const dev = new gpuApi.WebGpuDevice(ctx);
const info = ctx.device.adapterInfo ?? {};
const deviceName = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ") || "unknown adapter";
console.log(`normkit WebGPU: ${deviceName}; reduction ${ctx.reduceMode}; timestamps ${ctx.hasTimestamps ? "yes" : "no (wall clock)"}`);

/** Per-call GPU ms of a recorded run: `reps` copies in one pass, median of trials. */
async function timeRun(run) {
  const dev = ctx.device;
  const qs = ctx.hasTimestamps ? dev.createQuerySet({ type: "timestamp", count: 2 }) : null;
  const resolve = qs ? dev.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
  const read = qs ? dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : null;
  const once = async (reps) => {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : undefined);
    for (let r = 0; r < reps; r++) {
      for (const d of run) {
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1]);
      }
    }
    pass.end();
    if (qs) {
      enc.resolveQuerySet(qs, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
    }
    const t0 = performance.now();
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
    const wall = performance.now() - t0;
    if (!qs) return wall / reps;
    await read.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    const ns = Number(ts[1] - ts[0]);
    return ns > 0 ? ns / 1e6 / reps : wall / reps;
  };
  await once(2);
  const one = Math.max(await once(3), 1e-4);
  const reps = Math.max(5, Math.min(5000, Math.ceil(MIN_MS / one)));
  const trials = [];
  for (let i = 0; i < 7; i++) trials.push(await once(reps));
  await ctx.flush(); // any GPU error during timing throws here
  trials.sort((a, b) => a - b);
  return trials[3];
}

/** Worst relative error of the GPU twin vs the CPU layer (float64), forward + backward, on a slice. */
async function verify(c) {
  const shape = [Math.min(c.shape[0], c.slice), ...c.shape.slice(1)];
  const n = size(shape);
  const cpu = c.make(shape);
  for (const p of Object.values(cpu.namedParameters())) fill(p.value.data, 3).forEach((v, i, a) => (a[i] = Math.fround(1 + 0.25 * v)));
  const cpu64 = STACK.has(c.op) ? c.make(shape, "float64") : new (cpu.constructor)({ ...cpuOptions(c, shape), dtype: "float64" });
  cpu64.loadStateDict(cpu.stateDict());
  const x = new nk.Tensor(Float64Array.from(fill(new Float32Array(n), 1)), shape);
  const g = c.make(shape);
  g.loadStateDict(cpu.stateDict());
  await g.to(dev);
  const yg = g.forward(dev.upload(x));
  const dy = new nk.Tensor(Float64Array.from(fill(new Float32Array(size(yg.shape)), 2)), yg.shape);
  const y = await dev.download(yg);
  const dx = await dev.download(g.backward(dev.upload(dy)));
  const rel = (got, want) => {
    let s = 1, w = 0;
    for (let i = 0; i < want.size; i++) s = Math.max(s, Math.abs(want.data[i]));
    for (let i = 0; i < want.size; i++) w = Math.max(w, Math.abs(got.data[i] - want.data[i]) || (Number.isNaN(got.data[i]) ? Infinity : 0));
    return w / s;
  };
  return Math.max(rel(y, cpu64.forward(x)), rel(dx, cpu64.backward(dy)));
}
function cpuOptions(c, s) {
  switch (c.op) {
    case "batch_norm": case "instance_norm": case "switchable_norm": return { numFeatures: s[1] };
    case "group_norm": return { numGroups: c.groups, numChannels: s[1] };
    default: return { normalizedShape: s.at(-1) };
  }
}

const results = [];
for (const c of cases) {
  const n = size(c.shape);
  const row = { id: c.id, name: c.name, shape: c.shape };
  try {
    row.check = opt["no-verify"] ? null : await verify(c);
    const g = await c.make(c.shape).to(dev);
    const x = gpuApi.GpuTensor.zerosOn(ctx, c.shape, "x");
    const yShape = STACK.has(c.op) ? g.forward(x).shape : c.shape;
    const dy = gpuApi.GpuTensor.zerosOn(ctx, yShape, "dy");
    const y = gpuApi.GpuTensor.zerosOn(ctx, yShape, "y"), dx = gpuApi.GpuTensor.zerosOn(ctx, c.shape, "dx");
    const h = new Float32Array(Math.min(n, 1 << 24));
    for (let off = 0, seed = 1; off < n; off += h.length, seed++) {
      fill(h, seed);
      ctx.device.queue.writeBuffer(x.buffer, off * 4, h.buffer, 0, Math.min(h.length, n - off) * 4);
      if (off < dy.size) ctx.device.queue.writeBuffer(dy.buffer, off * 4, h.buffer, 0, Math.min(h.length, dy.size - off) * 4);
    }
    // (the layers of the training stack allocate their outputs: at recording, once)
    const fwd = ctx.record(() => (STACK.has(c.op) ? g.forward(x) : g.forward(x, y)));
    const bwd = ctx.record(() => (STACK.has(c.op) ? g.backward(dy) : g.backward(dy, dx)));
    row.kernels = fwd.map((d) => d.name).join("+") + " | " + bwd.map((d) => d.name).join("+");
    row.fwd_ms = await timeRun(fwd);
    row.fwdbwd_ms = await timeRun([...fwd, ...bwd]);
    row.fwd_gbs = (8 * n) / (row.fwd_ms * 1e6);
    for (const t of [x, dy, y, dx]) t.destroy();
  } catch (e) {
    row.error = String(e?.message ?? e).split("\n")[0];
  }
  results.push(row);
  console.log(`  ${c.id.padEnd(9)} [${c.shape}]  fwd ${fmt(row.fwd_ms)} ms  fwd+bwd ${fmt(row.fwdbwd_ms)} ms  check ${row.check?.toExponential(1) ?? "-"}${row.error ? "  ERROR " + row.error : ""}`);
}

let torchInfo = null;
if (!opt["no-torch"]) {
  const spec = cases.map((c) => ({ id: c.id, op: c.op, shape: c.shape, groups: c.groups }));
  const r = spawnSync(opt.python, [join(ROOT, "bench/gpu_torch.py"), JSON.stringify(spec), "--min-ms", String(MIN_MS)], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0 && !r.stdout) {
    console.log(`PyTorch: unavailable (${(r.error?.message ?? r.stderr ?? "").trim().split("\n").at(-1)})`);
  } else {
    for (const line of r.stdout.trim().split("\n")) {
      let o;
      try {
        o = JSON.parse(line);
      } catch {
        continue;
      }
      if (o.torch) torchInfo = o;
      const row = results.find((x) => x.id === o.id);
      if (row) Object.assign(row, { torch_fwd_ms: o.fwd_ms, torch_fwdbwd_ms: o.fwdbwd_ms, torch_error: o.error });
    }
    if (r.status !== 0) console.log(`PyTorch worker exited ${r.status}: ${r.stderr.trim().split("\n").at(-1)}`);
  }
}

function fmt(v, d = 3) {
  return v === undefined || v === null || !Number.isFinite(v) ? "-" : v < 0.01 ? v.toFixed(4) : v.toFixed(d);
}
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : "-");
console.log(`\nnormkit WebGPU (${deviceName}) vs ${torchInfo ? `PyTorch ${torchInfo.torch} on ${torchInfo.device}` : "PyTorch (not run)"}; median ms per call, float32${opt.tiny ? "; TINY SHAPES (smoke test)" : ""}`);
console.log("| case | shape | normkit fwd | torch fwd | ratio | normkit GB/s | normkit fwd+bwd | torch fwd+bwd | ratio | check |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.name} | [${r.shape.join(",")}] | ${fmt(r.fwd_ms)} | ${fmt(r.torch_fwd_ms)} | ${ratio(r.fwd_ms, r.torch_fwd_ms)} | ${fmt(r.fwd_gbs, 0)} | ${fmt(r.fwdbwd_ms)} | ${fmt(r.torch_fwdbwd_ms)} | ${ratio(r.fwdbwd_ms, r.torch_fwdbwd_ms)} | ${r.check === undefined || r.check === null ? "-" : r.check.toExponential(1)}${r.error ? " ERROR " + r.error : ""}${r.torch_error ? " torch: " + r.torch_error : ""} |`);
}
console.log("ratio = normkit time / PyTorch time (below 1.00x: normkit faster). check = max rel. error vs the CPU layers (float64) on a slice.");
// ---- a training step of the lab's CNN (conv → BN → ReLU → pool, twice, → linear; cross-entropy; SGD)
const { buildModel } = await import(join(ROOT, "dist/src/lab/models.js"));
const { crossEntropyLoss } = await import(join(ROOT, "dist/src/nn/loss.js"));
const { SGD } = await import(join(ROOT, "dist/src/nn/optim.js"));
const train = { batch: opt.tiny ? 8 : 256 };
if (!wanted || wanted.has("cnn_step")) {
  try {
    const net = await buildModel("cnn", "batch_norm", 0).net.to(dev);
    const sgd = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
    const B = train.batch;
    const x = dev.upload(nk.Tensor.from(fill(new Float32Array(B * 784), 4), [B, 1, 28, 28]));
    const labels = dev.upload(nk.Tensor.from(Array.from({ length: B }, (_, i) => i % 10), [B]));
    const dlogits = dev.zeros([B, 10]), loss = dev.zeros([]);
    const step = () => {
      const r = crossEntropyLoss(net.forward(x), labels, { dlogits, loss });
      net.backwardParams(r.dlogits);
      sgd.step();
    };
    step(); // the optimiser's state exists before recording
    const run = ctx.record(step);
    train.ms = await timeRun(run);
    train.samples_per_s = B / (train.ms / 1000);
    train.dispatches = run.length;
  } catch (e) {
    train.error = String(e?.message ?? e).split("\n")[0];
  }
  if (!opt["no-torch"]) {
    const r = spawnSync(opt.python, [join(ROOT, "bench/gpu_torch.py"), "[]", "--train-cnn", String(train.batch), "--min-ms", String(MIN_MS)], { encoding: "utf8", maxBuffer: 1 << 24 });
    for (const line of (r.stdout ?? "").trim().split("\n")) {
      try {
        const o = JSON.parse(line);
        if (o.id === "cnn_step") Object.assign(train, { torch_ms: o.step_ms, torch_error: o.error });
      } catch {}
    }
  }
  console.log(`\nlab CNN training step (batch ${train.batch}; forward, cross-entropy, backward, SGD with momentum): normkit ${fmt(train.ms)} ms (${train.samples_per_s ? Math.round(train.samples_per_s) : "-"} samples/s, ${train.dispatches ?? "-"} dispatches), PyTorch ${fmt(train.torch_ms)} ms, ratio ${ratio(train.ms, train.torch_ms)}${train.error ? " ERROR " + train.error : ""}${train.torch_error ? " torch: " + train.torch_error : ""}`);
}

if (opt.json) writeFileSync(opt.json, JSON.stringify({ device: deviceName, reduce: ctx.reduceMode, torch: torchInfo, tiny: opt.tiny, results, train }, null, 2));
const bad = results.filter((r) => r.error || (r.check !== null && !(r.check <= 1e-4)));
process.exit(bad.length || train.error ? 1 : 0);
