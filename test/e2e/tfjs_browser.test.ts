/**
 * normkit/tfjs on TensorFlow.js' WebGL backend in headless Chromium (Debian's /usr/bin/chromium via
 * playwright-core; WebGL 2 on SwiftShader): esbuild bundles test/e2e/tfjs_page.ts — the cases of
 * test/unit/tfjs_cases.ts, which compute normkit's own layers on the same page as the reference —
 * with @tensorflow/tfjs and normkit's compiled modules; a static server on 127.0.0.1 serves it. Every
 * output and gradient must be within 1e-5 of scale of normkit's, as on the cpu backend in Node.
 *
 * Without Chromium (or without WebGL there) the test is skipped locally but FAILS under CI=true.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { ROOT, haveChromium, launchChromium, skipOrFail } from "./chromium.js";

const TOL = 1e-5;

interface PageResult {
  error?: string;
  info: { backend: string; webglVersion: number; float32Render: boolean; float32Capable: boolean };
  cases: { name: string; errs: Record<string, number> }[];
  ms: number;
  leaked: number;
}

test("normkit/tfjs layers on the WebGL backend in headless Chromium match normkit's layers", { timeout: 300_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const esbuildName: string = "esbuild"; // a plain string: esbuild's types are not needed here
  const esbuild = (await import(esbuildName)) as { build(o: Record<string, unknown>): Promise<{ outputFiles: { text: string }[] }> };
  const bundle = await esbuild.build({
    entryPoints: [join(ROOT, "dist/test/e2e/tfjs_page.js")], bundle: true, format: "esm", platform: "browser", write: false, logLevel: "silent",
    // tfjs' Node-only branches (never taken in a browser)
    external: ["node:*", "worker_threads", "fs", "path", "os", "url", "module", "zlib", "child_process"],
  });
  const js = bundle.outputFiles[0]!.text;
  const html = `<!doctype html><meta charset="utf-8"><title>normkit/tfjs webgl</title><script type="module" src="/page.js"></script>`;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(html);
    if (path === "/page.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const browser = await launchChromium({ webgpu: false, webgl: true });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const hasWebgl = await page.evaluate(() => !!(globalThis as unknown as { document: { createElement(t: string): { getContext(k: string): unknown } } }).document.createElement("canvas").getContext("webgl2"));
    if (!hasWebgl) return skipOrFail(t, "Chromium gives no WebGL 2 context (SwiftShader)");
    for (let waited = 0; ; waited += 250) {
      if (errors.length) assert.fail(`page error: ${errors.join("\n")}`);
      if (await page.evaluate(() => (globalThis as unknown as { __result?: unknown }).__result !== undefined)) break;
      if (waited > 240_000) assert.fail("the page produced no result in 240 s");
      await new Promise((r) => setTimeout(r, 250));
    }
    const r = (await page.evaluate(() => (globalThis as unknown as { __result: unknown }).__result)) as PageResult;
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.info.backend, "webgl");
    let worst = 0;
    const bad: string[] = [];
    for (const c of r.cases) for (const [k, e] of Object.entries(c.errs)) {
      worst = Math.max(worst, e);
      if (!(e <= TOL)) bad.push(`${c.name}: ${k} ${e}`);
    }
    console.log(`# webgl ${r.info.webglVersion} (float32 render ${r.info.float32Render}): ${r.cases.length} cases in ${(r.ms / 1000).toFixed(1)} s, worst error ${worst.toExponential(2)}`);
    assert.ok(r.cases.length >= 28);
    assert.ok(r.info.float32Render, "WebGL renders float32 (else float16 textures: no 1e-5 comparison)");
    assert.deepEqual(bad, []);
  } finally {
    await browser.close();
    server.close();
  }
});
