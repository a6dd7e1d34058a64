/**
 * The explorer's build and serve scripts, as a user runs them: the digit sample is the lab's own MNIST
 * test split, bad options are one-line errors with exit code 2 that change nothing (a folder that is
 * not a previous build is never replaced), and the static server serves the build, with or without
 * the cross-origin isolation headers, and nothing outside it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { IMAGE_SIZE, MNIST_MEAN, MNIST_STD, loadMnistPackage } from "../../src/lab/data.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const BUILD = join(root, "scripts/build-explorer.mjs");
const SERVE = join(root, "scripts/serve-explorer.mjs");

async function build(out: string, digits: number): Promise<void> {
  const mod = (await import(pathToFileURL(BUILD).href)) as { buildExplorer(o: { out: string; digits: number }): Promise<unknown> };
  await mod.buildExplorer({ out, digits });
}

test("build-explorer: the digit sample is the first digits of the lab's MNIST test split", { timeout: 120_000 }, async () => {
  const out = join(mkdtempSync(join(tmpdir(), "nk-explorer-build-")), "site");
  await build(out, 12);
  for (const f of ["index.html", "style.css", "app.js", "digits.bin", "example-results.json"]) assert.ok(existsSync(join(out, f)), f);
  const b = readFileSync(join(out, "digits.bin"));
  assert.equal(b.subarray(0, 4).toString("latin1"), "NKDG");
  const [count, rows, cols] = [b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12)];
  assert.deepEqual([count, rows, cols], [12, 28, 28]);
  assert.equal(b.length, 16 + count + count * IMAGE_SIZE);
  const test = loadMnistPackage().test;
  assert.deepEqual([...b.subarray(16, 16 + count)], [...test.y.subarray(0, count)], "labels");
  for (let i = 0; i < count * IMAGE_SIZE; i++) {
    const want = Math.round(255 * Math.min(1, Math.max(0, test.x[i]! * MNIST_STD + MNIST_MEAN)));
    if (b[16 + count + i] !== want) assert.fail(`pixel ${i}: ${b[16 + count + i]} vs ${want}`);
  }
});

test("build-explorer: bad options are one-line errors (exit 2) and replace nothing", () => {
  const dir = mkdtempSync(join(tmpdir(), "nk-explorer-bad-"));
  const precious = join(dir, "notes.txt");
  writeFileSync(precious, "keep me");
  const cases: [string[], RegExp][] = [
    [["--digits", "0"], /--digits: expected an integer from 1 to 10000, got 0/],
    [["--digits", "2.5"], /--digits: expected an integer/],
    [["--out"], /--out: a value is missing/],
    [["--bogus", "1"], /unknown option "--bogus"/],
    [["--out", dir], /holds files that are not the explorer's \(notes\.txt\); refusing to replace it/],
    [["--out", precious], /is a file, not a folder/],
  ];
  for (const [args, msg] of cases) {
    const r = spawnSync(process.execPath, [BUILD, ...args], { encoding: "utf8", cwd: root });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
  }
  assert.equal(readFileSync(precious, "utf8"), "keep me");
});

function get(url: string, path: string, method = "GET"): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((ok, fail) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => ok({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", fail);
    req.end(method === "POST" ? "x=1" : undefined);
  });
}

async function serve(args: string[], check: (url: string, alive: () => boolean) => Promise<void>): Promise<void> {
  const p = spawn(process.execPath, [SERVE, ...args], { cwd: root });
  let stderr = "";
  p.stderr.on("data", (c) => (stderr += String(c)));
  try {
    const url = await new Promise<string>((ok, fail) => {
      let out = "";
      p.stdout.on("data", (c) => {
        out += String(c);
        const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) ok(m[1]!);
      });
      p.on("exit", (code) => fail(new Error(`serve-explorer exited (${code})`)));
    });
    await check(url, () => p.exitCode === null && p.signalCode === null);
    assert.equal(stderr, "", "the server wrote to stderr");
  } finally {
    p.kill();
  }
}

test("serve-explorer: serves the build, isolation headers by default, nothing outside the folder", { timeout: 120_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), "nk-explorer-serve-"));
  const site = join(base, "site");
  await build(site, 4);
  writeFileSync(join(base, "secret.txt"), "outside");
  await serve(["--dir", site, "--port", "0"], async (url) => {
    const r = await get(url, "/");
    assert.equal(r.status, 200);
    assert.match(r.body, /<title>normkit explorer/);
    assert.equal(r.headers["cross-origin-opener-policy"], "same-origin");
    assert.equal(r.headers["cross-origin-embedder-policy"], "require-corp");
    assert.match(String(r.headers["content-type"]), /^text\/html/);
    assert.match(String((await get(url, "/app.js")).headers["content-type"]), /^text\/javascript/);
    assert.equal((await get(url, "/nope.js")).status, 404);
    const escape = await get(url, "/..%2fsecret.txt");
    assert.equal(escape.status, 403);
    assert.doesNotMatch(escape.body, /outside/);
  });
  await serve(["--dir", site, "--port", "0", "--no-isolation"], async (url) => {
    const r = await get(url, "/");
    assert.equal(r.status, 200);
    assert.equal(r.headers["cross-origin-opener-policy"], undefined);
  });
});

test("serve-explorer: malformed, hostile and non-GET requests get a status, and the server stays up", { timeout: 30_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), "nk-explorer-hostile-"));
  const site = join(base, "site");
  mkdirSync(site);
  writeFileSync(join(site, "index.html"), "<!doctype html><title>normkit explorer</title>");
  await serve(["--dir", site, "--port", "0"], async (url, alive) => {
    const cases: [string, string, number][] = [
      ["GET", "/%E0%A4%A", 400], // a %-escape that is not UTF-8: decodeURIComponent throws
      ["GET", "/%E0%A4%A/index.html", 400],
      ["GET", "/%ZZ", 400],
      ["GET", "/%00", 400],
      ["GET", "/../package.json", 404], // the URL parser resolves "..": /package.json, not in the folder
      ["GET", "/..%2f..%2fpackage.json", 403],
      ["GET", "/%2e%2e/%2e%2e/package.json", 404],
      ["GET", "/" + "a".repeat(8000), 404], // a long name (over NAME_MAX): not found, not a crash
      ["GET", "/" + "a/".repeat(2000), 404],
      ["GET", "/" + "a".repeat(20_000), 431], // past node:http's header limit: its own answer
      ["HEAD", "/", 200],
      ["POST", "/", 405],
      ["PUT", "/index.html", 405],
      ["DELETE", "/index.html", 405],
    ];
    for (const [method, path, status] of cases) {
      const r = await get(url, path, method);
      assert.equal(r.status, status, `${method} ${path.slice(0, 40)}: ${r.body.slice(0, 80)}`);
      assert.ok(alive(), `the server exited after ${method} ${path.slice(0, 40)}`);
      if (method === "HEAD") assert.equal(r.body, "");
      if (method === "POST") assert.equal(r.headers["allow"], "GET, HEAD");
    }
    const r = await get(url, "/");
    assert.equal(r.status, 200, "still serves / afterwards");
    assert.match(r.body, /<title>normkit explorer/);
  });
});

test("serve-explorer: bad options are one-line errors (exit 2)", () => {
  const empty = mkdtempSync(join(tmpdir(), "nk-explorer-empty-"));
  mkdirSync(join(empty, "x"));
  const cases: [string[], RegExp][] = [
    [["--port", "x"], /--port: expected an integer from 0 to 65535, got "x"/],
    [["--port", "70000"], /--port: expected an integer/],
    [["--dir", empty], /index\.html not found — run npm run explorer:build first/],
    [["--dir"], /--dir: a value is missing/],
    [["--verbose"], /unknown option "--verbose"/],
  ];
  for (const [args, msg] of cases) {
    const r = spawnSync(process.execPath, [SERVE, ...args], { encoding: "utf8", cwd: root, timeout: 10_000 });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
  }
});
