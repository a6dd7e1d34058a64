#!/usr/bin/env node
/**
 * Builds the explorer into a folder of static files (default dist/explorer/):
 *   index.html, style.css   copied from explorer/
 *   app.js                  explorer/src/main.ts and normkit bundled by esbuild (ES2022, minified)
 *   digits.bin              the digit sample: the first DIGITS digits of the lab's MNIST test split
 *                           (needs the compiled library: run tsc first, as `npm run explorer:build` does)
 *   example-results.json    docs/lab-results.json, a real `normkit lab` run, for the "Lab results" view
 * and prints the sizes (app.js gzipped is what the 300 KB budget counts; the digit sample is apart).
 *
 *   node scripts/build-explorer.mjs [--out DIR] [--digits N]
 * Also importable: buildExplorer({ out, digits }) → { out, sizes }.
 */
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_DIGITS = 96;

async function digitSample(count) {
  const data = await import(pathToFileURL(join(ROOT, "dist/src/lab/data.js")).href).catch(() => {
    throw new Error("build-explorer: dist/src/lab/data.js not found — compile first (npx tsc -p tsconfig.json)");
  });
  const ds = data.loadMnistPackage();
  const { x, y: labels } = ds.test; // x normalised: (v - MNIST_MEAN) / MNIST_STD
  const size = data.IMAGE_SIZE;
  const n = Math.min(count, ds.test.count);
  const out = new Uint8Array(16 + n + n * size);
  out.set([0x4e, 0x4b, 0x44, 0x47]); // "NKDG", read by explorer/src/digits.ts
  const dv = new DataView(out.buffer);
  dv.setUint32(4, n, true);
  dv.setUint32(8, 28, true);
  dv.setUint32(12, 28, true);
  out.set(labels.subarray(0, n), 16);
  for (let i = 0; i < n * size; i++) out[16 + n + i] = Math.round(255 * Math.min(1, Math.max(0, x[i] * data.MNIST_STD + data.MNIST_MEAN)));
  return out;
}

export async function buildExplorer({ out = join(ROOT, "dist/explorer"), digits = DEFAULT_DIGITS } = {}) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(ROOT, "explorer/src/main.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    outfile: join(out, "app.js"),
    external: ["node:*"], // only behind Node-only branches (worker threads), never loaded in a browser
    logLevel: "warning",
  });
  copyFileSync(join(ROOT, "explorer/index.html"), join(out, "index.html"));
  copyFileSync(join(ROOT, "explorer/style.css"), join(out, "style.css"));
  copyFileSync(join(ROOT, "docs/lab-results.json"), join(out, "example-results.json"));
  writeFileSync(join(out, "digits.bin"), await digitSample(digits));
  const sizes = {};
  for (const f of ["index.html", "style.css", "app.js", "digits.bin", "example-results.json"]) {
    const b = readFileSync(join(out, f));
    sizes[f] = { bytes: b.length, gzip: gzipSync(b, { level: 9 }).length };
  }
  return { out, sizes };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const res = await buildExplorer({ out: opt("--out") ? resolve(opt("--out")) : undefined, digits: opt("--digits") ? Number(opt("--digits")) : undefined });
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`explorer built in ${res.out}`);
  for (const [f, s] of Object.entries(res.sizes)) console.log(`  ${f.padEnd(20)} ${kb(s.bytes).padStart(9)}  (${kb(s.gzip)} gzipped)`);
  const page = ["index.html", "style.css", "app.js"].reduce((n, f) => n + res.sizes[f].gzip, 0);
  console.log(`  page without the digit sample and example results: ${kb(page)} gzipped (budget 300 KB)`);
}
