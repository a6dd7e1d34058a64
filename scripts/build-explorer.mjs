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
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** A bad option or output folder: a one-line message, exit code 2 from the command line. */
export class BuildError extends Error {}
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

/** The build's files: a folder holding anything else is not replaced (it is not a previous build). */
const BUILT = new Set(["index.html", "style.css", "app.js", "digits.bin", "example-results.json"]);

export async function buildExplorer({ out = join(ROOT, "dist/explorer"), digits = DEFAULT_DIGITS } = {}) {
  if (!Number.isInteger(digits) || digits < 1 || digits > 10000) throw new BuildError(`--digits: expected an integer from 1 to 10000, got ${digits}`);
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new BuildError(`--out: ${out} is a file, not a folder`);
    const other = readdirSync(out).filter((f) => !BUILT.has(f));
    if (other.length) throw new BuildError(`--out: ${out} holds files that are not the explorer's (${other.slice(0, 3).join(", ")}${other.length > 3 ? ", …" : ""}); refusing to replace it`);
  }
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
    // no externals: the core has no Node import; its "#threads" resolves to the browser stub
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

/** `--name value` pairs; anything else is a BuildError. */
export function parseArgs(args, names) {
  const o = {};
  for (let i = 0; i < args.length; i += 2) {
    const [k, v] = [args[i], args[i + 1]];
    if (!names.includes(k)) throw new BuildError(`unknown option ${JSON.stringify(k)} (options: ${names.join(", ")})`);
    if (v === undefined || v.startsWith("--")) throw new BuildError(`${k}: a value is missing`);
    o[k] = v;
  }
  return o;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  let res;
  try {
    const o = parseArgs(process.argv.slice(2), ["--out", "--digits"]);
    res = await buildExplorer({ out: o["--out"] !== undefined ? resolve(o["--out"]) : undefined, digits: o["--digits"] !== undefined ? Number(o["--digits"]) : undefined });
  } catch (e) {
    if (!(e instanceof BuildError)) throw e;
    console.error(`build-explorer: ${e.message}`);
    process.exit(2);
  }
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`explorer built in ${res.out}`);
  for (const [f, s] of Object.entries(res.sizes)) console.log(`  ${f.padEnd(20)} ${kb(s.bytes).padStart(9)}  (${kb(s.gzip)} gzipped)`);
  const page = ["index.html", "style.css", "app.js"].reduce((n, f) => n + res.sizes[f].gzip, 0);
  console.log(`  page without the digit sample and example results: ${kb(page)} gzipped (budget 300 KB)`);
}
