#!/usr/bin/env node
// `npm run bench:tfjs`: forward + backward of normkit/tfjs's GroupNormalization beside a hand-written
// tf.moments GroupNorm on the same TensorFlow.js backend (bench/tfjs_norm_lib.mjs says what runs):
//   cpu    @tensorflow/tfjs's plain-JS backend, in Node (plus normkit/tfjs with useNormkitKernels)
//   wasm   @tensorflow/tfjs-backend-wasm (bench/package.json's peer: `cd bench && npm install`), in Node
//   webgl  TensorFlow.js' WebGL backend in headless Chromium (Debian's /usr/bin/chromium; SwiftShader,
//          i.e. WebGL emulated on the CPU here), the page bundled by esbuild
// A backend that is not available is left out with a line saying why.
//
// usage: node bench/tfjs_norm.mjs [--rounds 15] [--backends cpu,wasm,webgl] [--json FILE] [--quick]
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const QUICK = argv.includes("--quick");
const ROUNDS = Number(opt("--rounds", QUICK ? "3" : "15"));
const BACKENDS = opt("--backends", "cpu,wasm,webgl").split(",");
const JSON_OUT = opt("--json", null);
const SHAPES = QUICK ? [[[2, 8, 8, 16], 4]] : [[[2, 16, 16, 32], 8], [[8, 32, 32, 64], 32]];

if (!existsSync(join(ROOT, "dist/src/tfjs/index.js"))) {
  console.error("bench:tfjs: dist/src/tfjs/index.js is missing: run `npm run build` first");
  process.exit(1);
}
// One TensorFlow.js: the package root's (the one dist/src/tfjs imports), whatever bench/node_modules holds.
const rootRequire = createRequire(join(ROOT, "package.json"));
const tf = await import(pathToFileURL(rootRequire.resolve("@tensorflow/tfjs")).href);
const { GroupNormalization } = await import(pathToFileURL(join(ROOT, "dist/src/tfjs/index.js")).href);
const { benchBackend } = await import(pathToFileURL(join(HERE, "tfjs_norm_lib.mjs")).href);

const rows = [];
const notes = [];

if (BACKENDS.includes("cpu")) {
  await tf.setBackend("cpu");
  await tf.ready();
  rows.push(...(await benchBackend(tf, GroupNormalization, { shapes: SHAPES, rounds: ROUNDS })));
}

if (BACKENDS.includes("wasm")) {
  const wasmPath = join(HERE, "node_modules/@tensorflow/tfjs-backend-wasm/package.json");
  if (!existsSync(wasmPath)) {
    notes.push("wasm: @tensorflow/tfjs-backend-wasm is not installed (cd bench && npm install): left out");
  } else {
    // its own copy of tfjs-core shares the engine and kernel registry of ours (both live on globalThis);
    // silence that copy's "already registered" warnings while it loads
    const warn = console.warn;
    console.warn = () => {};
    try {
      await import(pathToFileURL(createRequire(wasmPath).resolve("@tensorflow/tfjs-backend-wasm")).href);
    } finally {
      console.warn = warn;
    }
    if (await tf.setBackend("wasm")) {
      await tf.ready();
      rows.push(...(await benchBackend(tf, GroupNormalization, { shapes: SHAPES, rounds: ROUNDS })));
    } else notes.push("wasm: tf.setBackend('wasm') failed: left out");
  }
}

if (BACKENDS.includes("webgl")) {
  const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!existsSync(chromiumPath)) notes.push(`webgl: no Chromium at ${chromiumPath}: left out`);
  else rows.push(...(await webgl(chromiumPath)));
}

async function webgl(chromiumPath) {
  const esbuild = await import("esbuild");
  const { chromium } = await import("playwright-core");
  // the page's entry sits in dist/, so that it resolves the package root's @tensorflow/tfjs
  const entry = join(ROOT, "dist/bench-tfjs/page.mjs");
  mkdirSync(dirname(entry), { recursive: true });
  writeFileSync(entry, `import * as tf from "@tensorflow/tfjs";
import { GroupNormalization } from "../src/tfjs/index.js";
import { benchBackend } from ${JSON.stringify(join(HERE, "tfjs_norm_lib.mjs"))};
(async () => {
  if (!(await tf.setBackend("webgl"))) throw new Error("no webgl backend");
  await tf.ready();
  const info = { float32: tf.env().getBool("WEBGL_RENDER_FLOAT32_ENABLED"), renderer: (() => { const gl = document.createElement("canvas").getContext("webgl2"); const e = gl && gl.getExtension("WEBGL_debug_renderer_info"); return e ? gl.getParameter(e.UNMASKED_RENDERER_WEBGL) : "?"; })() };
  const rows = await benchBackend(tf, GroupNormalization, { shapes: ${JSON.stringify(SHAPES)}, rounds: ${ROUNDS} });
  return { info, rows };
})().then((r) => (window.__result = r), (e) => (window.__result = { error: String(e && e.stack || e) }));
`);
  const out = await esbuild.build({ entryPoints: [entry], bundle: true, format: "esm", platform: "browser", write: false, logLevel: "silent",
    external: ["node:*", "worker_threads", "fs", "path", "os", "url", "module", "zlib", "child_process"] });
  const js = out.outputFiles[0].text;
  const server = createServer((req, res) => {
    if (req.url === "/") return void res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><script type="module" src="/p.js"></script>');
    if (req.url === "/p.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--headless", "--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-background-networking", "--no-first-run"] });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 600_000, polling: 500 });
    const r = await page.evaluate(() => window.__result);
    if (r.error) {
      notes.push(`webgl: the page failed (${r.error.split("\n")[0]}): left out`);
      return [];
    }
    notes.push(`webgl: ${r.info.renderer}, float32 render ${r.info.float32}`);
    return r.rows;
  } finally {
    await browser.close();
    server.close();
  }
}

const f = (v) => (v === undefined ? "—" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const lines = [
  `bench:tfjs — GroupNorm forward + backward, median ms (${ROUNDS} rounds max), TensorFlow.js ${tf.version.tfjs}, ${cpus().length} cores, ${new Date().toISOString().slice(0, 10)}`,
  "",
  "| backend | shape [N,H,W,C] | groups | normkit/tfjs GroupNormalization | tf.moments GroupNorm | normkit/tfjs, useNormkitKernels | faster (tf ops) | max |Δdx| |",
  "|---|---|---|---|---|---|---|---|",
];
for (const r of rows) {
  const a = r.ms.normkit, b = r.ms.moments;
  const faster = a < b ? `normkit/tfjs, ${(b / a).toFixed(2)}x` : `tf.moments, ${(a / b).toFixed(2)}x`;
  lines.push(`| ${r.backend} | [${r.shape.join(",")}] | ${r.groups} | ${f(a)} | ${f(b)} | ${f(r.ms.kernels)} | ${faster} | ${r.maxDiff.toExponential(1)} |`);
}
for (const n of notes) lines.push("", n);
console.log(lines.join("\n"));
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ rows, notes }, null, 1));
