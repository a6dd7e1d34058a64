/**
 * The WebGPU kernels in a browser: headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core; WebGPU on SwiftShader with --enable-unsafe-webgpu) loads normkit's compiled ES
 * modules from a tiny static server on 127.0.0.1 (no bundler; an import map gives the package's
 * `#threads` import its browser target, as a bundler reads it from package.json), runs every fixture case through the
 * GPU path with `navigator.gpu`, and checks each output against the CPU backend (same page, same
 * case, float32) and against the fixture, at FORMAT.md's GPU tolerances; plus a few larger shapes
 * (fused, split and 1-D BatchNorm paths) against the CPU in float64.
 *
 * Without Chromium or WebGPU the test is skipped locally but FAILS under CI=true.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { ROOT, haveChromium, launchChromium, skipOrFail } from "./chromium.js";

const MIME: Record<string, string> = { ".js": "text/javascript", ".json": "application/json", ".html": "text/html", ".map": "application/json" };

/** The page: imports the compiled modules, runs the cases on navigator.gpu and on the CPU, reports. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>normkit webgpu</title>
<script type="importmap">{ "imports": { "#threads": "/dist/src/kernels/wasm/threads_none.js" } }</script>
<script type="module">
import { requestGpuContext, computeCaseWebGpu, gpuTolerance, WebGpuDevice } from "/dist/src/webgpu.js";
import { CASE_RUNNERS, checkOutputs } from "/dist/src/conformance/runner.js";
import { validateFixture as vf } from "/dist/src/conformance/fixture.js";
import { Tensor, LayerNorm, BatchNorm, GroupNorm } from "/dist/src/index.js";
import { buildModel } from "/dist/src/lab/models.js";
import { crossEntropyLoss, softmaxCrossEntropy } from "/dist/src/nn/loss.js";
import { SGD } from "/dist/src/nn/optim.js";
const rel = (got, want) => {
  let scale = 1, worst = 0;
  for (let i = 0; i < want.size; i++) scale = Math.max(scale, Math.abs(want.data[i]));
  for (let i = 0; i < want.size; i++) { const e = Math.abs(got.data[i] - want.data[i]); worst = Number.isNaN(e) ? Infinity : Math.max(worst, e); }
  return worst / scale;
};
let seed = 7;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return Math.fround(seed / 2147483648 * 4 - 2); };
async function run() {
  const ctx = await requestGpuContext(navigator.gpu);
  const out = { adapter: ctx.reduceMode, cases: [], shapes: [] };
  const file = vf(await (await fetch("/test/data/pytorch-fixtures.json")).json());
  for (const c of file.cases) {
    const gpu = await computeCaseWebGpu(ctx, c);
    const cpu = await CASE_RUNNERS[c.op](c, "float32");
    const tol = gpuTolerance(c.name);
    const vsCpu = {};
    for (const k of Object.keys(c.outputs)) vsCpu[k] = gpu[k] && cpu[k] ? rel(gpu[k], cpu[k]) : Infinity;
    const vsFixture = checkOutputs(c, gpu, tol);
    out.cases.push({ name: c.name, tol, vsCpu, fixturePass: vsFixture.pass, worst: vsFixture.worst.relError });
  }
  const dev = new WebGpuDevice(ctx);
  for (const [name, make, shape] of [
    ["LayerNorm [32,1024]", (dtype) => new LayerNorm({ normalizedShape: 1024, dtype }), [32, 1024]],
    ["BatchNorm [16,4,32,32]", (dtype) => new BatchNorm({ numFeatures: 4, dtype }), [16, 4, 32, 32]],
    ["BatchNorm [64,20]", (dtype) => new BatchNorm({ numFeatures: 20, dtype }), [64, 20]],
    ["GroupNorm [2,8,48,48]", (dtype) => new GroupNorm({ numGroups: 2, numChannels: 8, dtype }), [2, 8, 48, 48]],
  ]) {
    const cpu = make("float64");
    for (const p of Object.values(cpu.namedParameters())) for (let i = 0; i < p.value.size; i++) p.value.data[i] = rnd();
    const g = make("float32");
    g.loadStateDict(cpu.stateDict());
    await g.to(dev);
    const n = shape.reduce((a, b) => a * b, 1);
    const x = Tensor.from(Array.from({ length: n }, rnd), shape, "float64"), dy = Tensor.from(Array.from({ length: n }, rnd), shape, "float64");
    const errs = {};
    errs.y = rel(await dev.download(g.forward(dev.upload(x))), cpu.forward(x));
    errs.dx = rel(await dev.download(g.backward(dev.upload(dy))), cpu.backward(dy));
    const gp = g.namedParameters();
    for (const [k, p] of Object.entries(cpu.namedParameters())) errs["d" + k] = rel(await dev.download(gp[k].grad), p.grad);
    out.shapes.push({ name, errs });
  }
  // the lab's CNN with BatchNorm: 3 SGD steps on the GPU and on the CPU from the same initialisation
  const host = buildModel("cnn", "batch_norm", 5).net, moved = buildModel("cnn", "batch_norm", 5).net;
  await moved.to(dev);
  const sgd = { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 };
  const optH = new SGD(host.parameters(), sgd), optG = new SGD(moved.parameters(), sgd);
  const losses = [];
  for (let s = 0; s < 3; s++) {
    const x = Tensor.from(Array.from({ length: 4 * 784 }, rnd), [4, 1, 28, 28]);
    const y = [s, s + 1, s + 2, s + 3];
    optH.zeroGrad();
    const h = softmaxCrossEntropy(host.forward(x), y);
    host.backwardParams(h.dlogits);
    optH.step();
    optG.zeroGrad();
    const g = crossEntropyLoss(moved.forward(dev.upload(x)), y);
    moved.backwardParams(g.dlogits);
    optG.step();
    losses.push([h.loss, (await dev.download(g.loss)).data[0]]);
  }
  const trained = {};
  const mp = moved.namedParameters();
  for (const [k, p] of Object.entries(host.namedParameters())) trained[k] = rel(await dev.download(mp[k].value), p.value);
  out.training = { trained, losses };
  return out;
}
run().then((r) => { window.__result = r; }, (e) => { window.__result = { error: String(e && e.stack || e) }; });
</script>`;

test("WebGPU kernels in headless Chromium match the CPU backend and the fixtures, and train the lab CNN", { timeout: 300_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const missing: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
      return;
    }
    const path = normalize(join(ROOT, decodeURIComponent(url.pathname)));
    const allowed = [join(ROOT, "dist") + "/", join(ROOT, "test/data") + "/"].some((d) => path.startsWith(d));
    if (!allowed || !existsSync(path) || !statSync(path).isFile()) {
      missing.push(url.pathname);
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": MIME[extname(path)] ?? "application/octet-stream" }).end(readFileSync(path));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const browser = await launchChromium({ webgpu: true });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    const hasGpu = await page.evaluate(async () => {
      const gpu = (globalThis as unknown as { navigator: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator.gpu;
      return !!gpu && (await gpu.requestAdapter()) !== null;
    });
    if (!hasGpu) return skipOrFail(t, "Chromium exposes no WebGPU adapter (navigator.gpu / requestAdapter)");
    // the result, or the first page error (a module that fails to load never sets a result)
    for (let waited = 0; ; waited += 250) {
      if (errors.length > 0) assert.fail(`page error: ${errors.join("\n")} ${missing.length ? `(not found: ${missing.join(", ")})` : ""}`);
      if (await page.evaluate(() => (globalThis as unknown as { __result?: unknown }).__result !== undefined)) break;
      if (waited > 240_000) assert.fail("the page produced no result in 240 s");
      await new Promise((r) => setTimeout(r, 250));
    }
    const result = (await page.evaluate(() => (globalThis as unknown as { __result: unknown }).__result)) as {
      error?: string;
      adapter: string;
      cases: { name: string; tol: number; vsCpu: Record<string, number>; fixturePass: boolean; worst: number }[];
      shapes: { name: string; errs: Record<string, number> }[];
      training: { trained: Record<string, number>; losses: [number, number][] };
    };
    assert.equal(result.error, undefined, result.error);
    console.log(`# browser webgpu: reduction "${result.adapter}", ${result.cases.length} cases, ${result.shapes.length} shapes`);
    assert.ok(result.cases.length > 0);
    const bad = result.cases.flatMap((c) => [
      ...(c.fixturePass ? [] : [`${c.name}: vs fixture ${c.worst}`]),
      ...Object.entries(c.vsCpu).filter(([, e]) => !(e <= c.tol)).map(([k, e]) => `${c.name}.${k}: vs CPU ${e}`),
    ]);
    for (const s of result.shapes) for (const [k, e] of Object.entries(s.errs)) if (!(e <= 1e-4)) bad.push(`${s.name}.${k}: vs CPU ${e}`);
    // training the lab CNN on the page's GPU: the parameters after 3 steps, and every step's loss
    assert.ok(Object.keys(result.training.trained).length >= 6);
    for (const [k, e] of Object.entries(result.training.trained)) if (!(e <= 1e-4)) bad.push(`cnn after 3 SGD steps, ${k}: vs CPU ${e}`);
    for (const [i, [h, g]] of result.training.losses.entries()) if (!(Math.abs(g - h) <= 1e-4 * Math.max(1, Math.abs(h)))) bad.push(`step ${i} loss ${g} vs ${h}`);
    assert.deepEqual(bad, []);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.close();
  }
});
