// The core must run in browsers: no Node-only API outside the command line, the lab (which reads
// files) and Node-specific backend modules (named *node*.ts).
import { it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const src = join(root, "src");
const nodeOnly = [/^cli\//, /^lab\//, /node[^/]*\.ts$/];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") ? [p] : [];
  });
}

it("core sources use no Node-only API", () => {
  const offenders: string[] = [];
  for (const file of walk(src)) {
    const rel = relative(src, file).split("\\").join("/");
    if (nodeOnly.some((re) => re.test(rel))) continue;
    const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    for (const [what, re] of [
      ["a node: import", /from\s+["']node:|import\(\s*["']node:/],
      ["a bare Node builtin import", /from\s+["'](fs|path|os|url|child_process|worker_threads|zlib)["']/],
      ["process", /\bprocess\./],
      ["Buffer", /\bBuffer\./],
      ["require", /\brequire\(/],
    ] as const) {
      if (re.test(text)) offenders.push(`${rel}: ${what}`);
    }
  }
  assert.deepEqual(offenders, []);
});

it("the compiled core bundles for the browser as it is (no Node module reached; #threads is the stub)", async () => {
  const { build } = await import("esbuild");
  for (const entry of ["index", "webgpu"]) {
    const r = await build({
      entryPoints: [join(root, `dist/src/${entry}.js`)], bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent", metafile: true,
    });
    assert.deepEqual(r.warnings, [], entry);
    const inputs = Object.keys(r.metafile.inputs);
    if (entry === "index") assert.ok(inputs.some((f) => f.endsWith("kernels/wasm/threads_none.js")), "the stub is not in the bundle");
    assert.deepEqual(inputs.filter((f) => /threads_node|worker_node|node_device|io\/node|^node:/.test(f)), [], entry);
  }
});
