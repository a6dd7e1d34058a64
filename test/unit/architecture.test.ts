// The architecture, checked on what runs: madge reads the compiled JavaScript in dist/src (so a
// TypeScript `import type` — erased by tsc — is no dependency; a static or dynamic import is) and
//   (a) no import cycle anywhere in src/;
//   (b) dependencies point one way, nn → kernels (registry, contract) ← the kernel sets:
//       - nothing under kernels/ imports nn/, lab/, cli/ or conformance/;
//       - kernels/contract/ imports none of kernels/ts, kernels/wasm, kernels/webgpu, kernels/registry;
//       - nn/ imports none of lab/, cli/, conformance/;
//       - nothing outside tfjs/ imports tfjs/ (normkit/tfjs depends on the core, never the reverse);
//   and, on the TypeScript source, no file outside src/tfjs/ imports @tensorflow/* (a peer dependency
//   of the normkit/tfjs entry point only);
//   (c) the checker itself can fail: madge finds a planted two-file cycle, and the rule check finds a
//       planted wrong-way import (so neither check can pass vacuously).
// Run after `tsc -p tsconfig.json`; compiled files whose source is gone (stale dist/) are ignored.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

// madge (a devDependency) ships no types: the part of its API this test uses.
interface MadgeResult {
  obj(): Record<string, string[]>;
  circular(): string[][];
  warnings(): { skipped: string[] };
}
type Madge = (path: string | string[], config?: { baseDir?: string; fileExtensions?: string[] }) => Promise<MadgeResult>;

const root = fileURLToPath(new URL("../../..", import.meta.url));
const src = join(root, "src");
const distSrc = join(root, "dist", "src");

async function loadMadge(): Promise<Madge> {
  const specifier: string = "madge"; // a plain string, so tsc does not look for its (absent) types
  const mod = (await import(specifier)) as { default: Madge };
  return mod.default;
}

/** Paths relative to src/ (forward slashes, .js) of every module compiled from a current src/*.ts. */
function currentModules(): Set<string> {
  const out = new Set<string>();
  const walk = (dir: string): void => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith(".ts") && !f.endsWith(".d.ts"))
        out.add(relative(src, p).split("\\").join("/").replace(/\.ts$/, ".js"));
    }
  };
  walk(src);
  return out;
}

/** The runtime dependency graph of dist/src, keys and values relative to dist/src, current modules only. */
async function graph(): Promise<{ deps: Record<string, string[]>; cycles: string[][]; skipped: string[] }> {
  const madge = await loadMadge();
  const current = currentModules();
  const res = await madge(distSrc, { baseDir: distSrc, fileExtensions: ["js"] });
  const norm = (p: string): string => p.split("\\").join("/");
  const deps: Record<string, string[]> = {};
  for (const [from, tos] of Object.entries(res.obj())) {
    if (current.has(norm(from))) deps[norm(from)] = tos.map(norm).filter((t) => current.has(t));
  }
  const cycles = res.circular().map((c) => c.map(norm)).filter((c) => c.every((m) => current.has(m)));
  return { deps, cycles, skipped: res.warnings().skipped.map(norm) };
}

function formatCycle(cycle: string[]): string {
  return [...cycle, cycle[0]].join(" -> ");
}

interface Rule {
  what: string;
  from: (m: string) => boolean;
  to: (m: string) => boolean;
}
const under = (...dirs: string[]) => (m: string) => dirs.some((d) => m.startsWith(d + "/"));
const rules: Rule[] = [
  {
    what: "kernels/ must not import nn/, lab/, cli/ or conformance/",
    from: under("kernels"),
    to: under("nn", "lab", "cli", "conformance"),
  },
  {
    what: "kernels/contract/ must not import a kernel set (ts, wasm, webgpu) or the registry",
    from: under("kernels/contract"),
    to: (m) => under("kernels/ts", "kernels/wasm", "kernels/webgpu")(m) || m === "kernels/registry.js",
  },
  {
    what: "nn/ must not import lab/, cli/ or conformance/",
    from: under("nn"),
    to: under("lab", "cli", "conformance"),
  },
  {
    what: "only tfjs/ may import tfjs/ (the core never imports the normkit/tfjs entry point)",
    from: (m) => !under("tfjs")(m),
    to: under("tfjs"),
  },
];

/** Every import that breaks a rule, as "rule: from -> to". */
function violations(deps: Record<string, string[]>): string[] {
  const out: string[] = [];
  for (const [from, tos] of Object.entries(deps))
    for (const to of tos)
      for (const r of rules) if (r.from(from) && r.to(to)) out.push(`${r.what}: ${from} -> ${to}`);
  return out.sort();
}

describe("architecture (runtime imports of dist/src)", () => {
  it("dist/src is built and madge reads every module of src/", async () => {
    assert.ok(existsSync(join(distSrc, "index.js")), `${distSrc}/index.js is missing: run tsc -p tsconfig.json first`);
    const { deps, skipped } = await graph();
    assert.deepEqual(skipped, [], `madge could not parse: ${skipped.join(", ")}`);
    const missing = [...currentModules()].filter((m) => !(m in deps));
    assert.deepEqual(missing, [], `not compiled into dist/src (stale build?): ${missing.join(", ")}`);
    const edges = Object.values(deps).reduce((n, tos) => n + tos.length, 0);
    assert.ok(edges > Object.keys(deps).length / 2, `suspiciously few imports found: ${edges}`);
  });

  it("has no import cycle", async () => {
    const { cycles } = await graph();
    assert.equal(
      cycles.length,
      0,
      `${cycles.length} import cycle(s) in src/ (runtime imports):\n` + cycles.map((c) => "  " + formatCycle(c)).join("\n"),
    );
  });

  it("dependencies point one way: nn -> kernels (registry, contract) <- kernel sets", async () => {
    const { deps } = await graph();
    const bad = violations(deps);
    assert.equal(bad.length, 0, `${bad.length} import(s) in the wrong direction:\n` + bad.map((v) => "  " + v).join("\n"));
  });
});

describe("architecture checker can fail", () => {
  it("madge reports a planted two-file cycle", async () => {
    const madge = await loadMadge();
    const dir = mkdtempSync(join(tmpdir(), "normkit-madge-"));
    try {
      writeFileSync(join(dir, "package.json"), '{"type":"module"}\n');
      writeFileSync(join(dir, "a.js"), 'import { b } from "./b.js";\nexport const a = () => b + 1;\n');
      writeFileSync(join(dir, "b.js"), 'import { a } from "./a.js";\nexport const b = 1;\nexport const c = () => a();\n');
      writeFileSync(join(dir, "c.js"), 'import { a } from "./a.js";\nexport const d = a;\n');
      const res = await madge(dir, { baseDir: dir, fileExtensions: ["js"] });
      const cycles = res.circular().map((c) => [...c].sort().join(","));
      assert.deepEqual(cycles, ["a.js,b.js"]);
      assert.deepEqual(res.obj()["c.js"], ["a.js"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the direction rules flag planted wrong-way imports and pass allowed ones", () => {
    const planted = {
      "kernels/ts/norm.js": ["nn/module.js", "kernels/contract/norm.js"],
      "kernels/contract/norm.js": ["kernels/registry.js", "kernels/wasm/wasm.js", "errors.js"],
      "nn/normalization.js": ["lab/train.js", "kernels/registry.js", "tensor.js"],
      "cli/lab.js": ["lab/train.js", "nn/module.js"],
      "tfjs/group_norm.js": ["functional.js", "nn/switchable_norm.js", "tfjs/common.js"],
      "index.js": ["tfjs/index.js", "nn/module.js"],
    };
    const flagged = violations(planted).map((v) => v.slice(v.indexOf(": ") + 2)).sort();
    assert.deepEqual(flagged, [
      "index.js -> tfjs/index.js",
      "kernels/contract/norm.js -> kernels/registry.js",
      "kernels/contract/norm.js -> kernels/wasm/wasm.js",
      "kernels/ts/norm.js -> nn/module.js",
      "nn/normalization.js -> lab/train.js",
    ]);
  });
});

/**
 * The layers of the statistics-based methods see the kernels only through the contract: no import
 * of a kernel set from their TypeScript source, type-only imports included (madge on dist/src sees
 * runtime imports only).
 */
const LAYER_FILES = ["src/nn/module.ts", "src/nn/normalization.ts", "src/nn/switchable_norm.ts"];
function kernelSetImports(source: string): string[] {
  return [...source.matchAll(/from\s+["']([^"']+)["']/g)].map((m) => m[1]!).filter((p) => /\/kernels\/(ts|wasm|webgpu)\//.test(p));
}

/** The @tensorflow/* packages a source imports (static, dynamic or type-only). */
function tensorflowImports(source: string): string[] {
  return [...source.matchAll(/(?:from\s+|import\(\s*)["'](@tensorflow\/[^"']+)["']/g)].map((m) => m[1]!);
}
function sourcesOf(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourcesOf(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("architecture (TensorFlow.js stays in normkit/tfjs)", () => {
  it("no source outside src/tfjs/ imports @tensorflow/*, and src/tfjs/ does", () => {
    const files = sourcesOf(src).map((p) => relative(src, p).split("\\").join("/"));
    const bad = files.filter((f) => !f.startsWith("tfjs/")).flatMap((f) => tensorflowImports(readFileSync(join(src, f), "utf8")).map((p) => `${f} -> ${p}`));
    assert.deepEqual(bad, []);
    assert.ok(files.some((f) => f.startsWith("tfjs/") && tensorflowImports(readFileSync(join(src, f), "utf8")).length > 0));
  });
  it("the scan finds planted imports of TensorFlow.js", () => {
    assert.deepEqual(tensorflowImports('import * as tf from "@tensorflow/tfjs";\nimport type { X } from "@tensorflow/tfjs-core";\nconst m = await import("@tensorflow/tfjs-layers");\n'), [
      "@tensorflow/tfjs", "@tensorflow/tfjs-core", "@tensorflow/tfjs-layers",
    ]);
  });
});

describe("architecture (the layers' TypeScript source)", () => {
  it("the normalisation layers import no kernel set, not even for types", () => {
    const bad = LAYER_FILES.flatMap((f) => kernelSetImports(readFileSync(join(root, f), "utf8")).map((p) => `${f} -> ${p}`));
    assert.deepEqual(bad, []);
  });
  it("the scan finds a planted import of a kernel set, type-only ones included", () => {
    const planted = 'import type { HostStats } from "../kernels/ts/host_set.js";\nimport { cpu } from "../kernels/cpu.js";\nimport { x } from "../kernels/webgpu/tensor.js";\n';
    assert.deepEqual(kernelSetImports(planted), ["../kernels/ts/host_set.js", "../kernels/webgpu/tensor.js"]);
  });
});
