import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCase, validateFixture, FixtureError } from "../../src/index.js";
import type { FixtureFile } from "../../src/index.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const fixturePath = join(root, "test/data/pytorch-fixtures.json");
const raw = JSON.parse(readFileSync(fixturePath, "utf8"));
const bin = join(root, "bin/normkit.js");

function cli(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
}
function tmpFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "nk-fix-"));
  const p = join(dir, "f.json");
  writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
  return p;
}
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

describe("shared PyTorch fixtures", () => {
  const file: FixtureFile = validateFixture(raw);
  for (const dtype of ["float64", "float32"] as const) {
    it(`every case passes in ${dtype}`, async () => {
      assert.ok(file.cases.length > 0);
      const results = [];
      for (const c of file.cases) results.push(await runCase(c, dtype));
      const failed = results.filter((r) => !r.pass);
      assert.deepEqual(failed.map((r) => `${r.name}: ${r.worst.output} ${r.worst.relError}`), []);
    });
  }
});

describe("normkit conformance CLI", () => {
  it("prints one line per case and the closing count, exit 0", () => {
    const r = cli("conformance", fixturePath, "--dtype", "float32");
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, raw.cases.length + 1);
    assert.match(lines.at(-1)!, new RegExp(`^${raw.cases.length} passed, 0 failed$`));
    assert.match(lines[0]!, /^PASS {2}\S+ {2}worst rel err \d\.\d+e[-+]\d+ at \w+\[[\d,]*\]$/);
  });

  it("does not depend on case names, order or count", () => {
    const f = clone(raw);
    f.cases = f.cases.filter((_: unknown, i: number) => i % 3 === 0).reverse();
    f.cases.forEach((c: { name: string }, i: number) => (c.name = `renamed_${i}`));
    const r = cli("conformance", tmpFile(f));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`\\n${f.cases.length} passed, 0 failed\\n$`));
  });

  it("reports a wrong expected value as FAIL with where, and exits 1", () => {
    const f = clone(raw);
    f.cases = f.cases.slice(0, 2);
    f.cases[1].outputs.y.data[3] += 1e-3;
    const r = cli("conformance", tmpFile(f));
    assert.equal(r.status, 1);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[1]!, /^FAIL {2}.* at y\[/);
    assert.equal(lines.at(-1), "1 passed, 1 failed");
  });

  const malformed: [string, (f: any) => void, RegExp][] = [
    ["wrong data length", (f) => f.cases[0].inputs.x.data.pop(), /inputs\.x\.data: expected \d+ values/],
    ["no cases list", (f) => delete f.cases, /"cases" list/],
    ["non-numeric data", (f) => (f.cases[0].inputs.x.data[0] = "1.0"), /expected a number/],
  ];
  for (const [what, mutate, msg] of malformed) {
    it(`a malformed file (${what}) gets one clear line and exit 1`, () => {
      const f = clone(raw);
      mutate(f);
      const r = cli("conformance", tmpFile(f));
      assert.equal(r.status, 1);
      assert.equal(r.stdout, "");
      const err = r.stderr.trim();
      assert.equal(err.split("\n").length, 1, err);
      assert.match(err, msg);
    });
  }

  const rejected: [string, (f: any) => void, RegExp][] = [
    ["an unknown op", (f) => (f.cases[0].op = "frobnicate_norm"), /^FAIL {2}\S+: op: expected one of batch_norm, .* got "frobnicate_norm"$/],
    ["an impossible config", (f) => {
      const g = f.cases.findIndex((c: any) => c.op === "group_norm");
      f.cases[g].config.num_groups = 5;
      f.cases = [f.cases[g], ...f.cases.slice(0, 3)];
    }, /^FAIL {2}\S+: GroupNorm: numGroups: expected a divisor of numChannels \(\d+\), got 5$/],
    ["an input the layer refuses", (f) => {
      const g = f.cases.findIndex((c: any) => c.op === "layer_norm" && !c.inputs.weight);
      f.cases[g].config.normalized_shape = [999];
      f.cases = [f.cases[g], ...f.cases.slice(0, 3)];
    }, /^FAIL {2}\S+: LayerNorm\.forward: x: expected trailing dims \[999\]/],
    ["an unknown config.module", (f) => {
      f.cases[0].config.module = "BatchNorm9d";
    }, /^FAIL {2}\S+: config\.module: expected one of BatchNorm1d, .* got "BatchNorm9d"$/],
    ["a config.module of another op", (f) => {
      const g = f.cases.findIndex((c: any) => c.op === "layer_norm");
      f.cases[g].config.module = "GroupNorm";
      f.cases = [f.cases[g], ...f.cases.slice(0, 3)];
    }, /^FAIL {2}\S+: config\.module: expected a module of op layer_norm, got GroupNorm \(op group_norm\)$/],
  ];
  for (const [what, mutate, line] of rejected) {
    it(`a case the library rejects (${what}) is a FAIL line, and the run goes on to the summary`, () => {
      const f = clone(raw);
      mutate(f);
      const r = cli("conformance", tmpFile(f));
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, "");
      const lines = r.stdout.trim().split("\n");
      assert.equal(lines.length, f.cases.length + 1);
      assert.match(lines[0]!, line);
      assert.equal(lines.at(-1), `${f.cases.length - 1} passed, 1 failed`);
    });
  }

  it("--backend picks the kernel set: ts, wasm (float32, every case on WebAssembly) and bad values", () => {
    const ts = cli("conformance", fixturePath, "--backend", "ts");
    assert.equal(ts.status, 0, ts.stdout + ts.stderr);
    assert.equal(ts.stdout.trim().split("\n").at(-1), `${raw.cases.length} passed, 0 failed`);
    const wasm = cli("conformance", fixturePath, "--backend", "wasm");
    assert.equal(wasm.status, 0, wasm.stdout + wasm.stderr);
    const wl = wasm.stdout.trim().split("\n");
    assert.equal(wl.at(-1), `${raw.cases.length} passed, 0 failed`);
    // every statistics-based case ran on WebAssembly; the run names the cases that did not (Cosine Norm's
    // normalisations and products are TypeScript)
    const note = wl.find((l) => l.startsWith("note:")) ?? "";
    const onTs = note.replace(/^.*computed them\): /, "").split(", ").filter(Boolean);
    assert.ok(onTs.every((n) => raw.cases.find((c: any) => c.name === n)?.op === "cosine_norm"), note);
    for (const [args, msg] of [
      [["--backend", "cpu"], /--backend: expected auto, ts, wasm, webgpu, got "cpu"/],
      [["--backend", "wasm", "--dtype", "float64"], /--backend wasm runs float32 only/],
    ] as const) {
      const r = cli("conformance", fixturePath, ...args);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, "");
      assert.match(r.stderr.trim(), msg);
    }
  });

  it("a case meant for the other precision (config.dtype) is a SKIP line; meta.tolerance replaces FORMAT.md's", () => {
    const offset = join(root, "test/data/switchable-offset.json");
    const r = cli("conformance", offset);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.filter((l) => /^SKIP {2}\S+_float32_large_offset: meant for float32 runs \(config\.dtype\)$/.test(l)).length, 2);
    assert.equal(lines.at(-1), "2 passed, 0 failed, 2 skipped");
    // the float64 cases pass at the file's 1e-6, not at FORMAT.md's 1e-9 (rounding x at 1e8 costs ~1e-8)
    const f = JSON.parse(readFileSync(offset, "utf8"));
    delete f.meta.tolerance;
    const strict = cli("conformance", tmpFile(f));
    assert.equal(strict.status, 1);
    assert.equal(strict.stdout.trim().split("\n").at(-1), "0 passed, 2 failed, 2 skipped");
  });

  it("invalid JSON, a missing file and a bad --dtype are one-line errors", () => {
    for (const [args, msg] of [
      [[tmpFile("{not json")], /not valid JSON/],
      [["/nonexistent/fixtures.json"], /cannot read \/nonexistent\/fixtures\.json: ENOENT/],
      [[fixturePath, "--dtype", "float16"], /--dtype: expected float32 or float64, got "float16"/],
    ] as const) {
      const r = cli("conformance", ...args);
      assert.equal(r.status, 1);
      assert.match(r.stderr.trim(), msg);
    }
  });

  it("validateFixture throws FixtureError naming the case and field", () => {
    const f = clone(raw);
    f.cases[2].outputs.dx.shape = [1, 2, 3];
    assert.throws(() => validateFixture(f), (e: unknown) => e instanceof FixtureError && /outputs\.dx\.data: expected 6 values/.test((e as Error).message));
  });
});
