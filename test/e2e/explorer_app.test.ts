/**
 * The explorer as a whole: the build (files, and the 300 KB gzipped budget without the digit
 * sample), loading from a plain static server (no special headers) with nothing requested outside
 * the page's origin, the backend it says it computes on (WebGPU where navigator.gpu gives an adapter,
 * else normkit's CPU path: the WebAssembly SIMD kernels, on a shared memory when the server makes the
 * page cross-origin isolated, on an unshared one otherwise), the tabs by keyboard, no console errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { buildOnce, haveChromium, withExplorer } from "./explorer_harness.js";

test("explorer build: static files, bundle within 300 KB gzipped without the digit sample", async () => {
  const { dir, sizes } = await buildOnce();
  for (const f of ["index.html", "style.css", "app.js", "digits.bin"]) assert.ok(existsSync(join(dir, f)), `${f} built`);
  const page = Object.entries(sizes).filter(([f]) => f !== "digits.bin").reduce((n, [, s]) => n + s.gzip, 0);
  assert.ok(page > 10_000, `the page is built (${page} bytes gzipped)`);
  assert.ok(page <= 300 * 1024, `page without the digit sample: ${page} bytes gzipped, budget 300 KB`);
  assert.ok(sizes["digits.bin"]!.bytes > 28 * 28 * 16, "a real digit sample");
});

test("explorer on a plain static server: WebGPU where available, the CPU path by choice, tabs by keyboard, same origin only", { timeout: 180_000 }, async (t) => {
  if (!haveChromium(t)) return;
  await withExplorer(async ({ page, origin, consoleErrors, requests, open }) => {
    await open("block");
    assert.equal(await page.evaluate(() => (globalThis as unknown as { crossOriginIsolated: boolean }).crossOriginIsolated), false);
    const status = async () => (await page.textContent("#compute-status"))!;
    // SwiftShader gives headless Chromium a WebGPU adapter (CI installs it): the page must use it.
    const hasAdapter = await page.evaluate(async () => {
      const gpu = (globalThis as unknown as { navigator: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator.gpu;
      return !!gpu && !!(await gpu.requestAdapter());
    });
    if (process.env["CI"] === "true") assert.ok(hasAdapter, "WebGPU adapter in headless Chromium (SwiftShader)");
    if (hasAdapter) {
      assert.match(await status(), /^using WebGPU: /);
      assert.equal(await page.getAttribute("#compute-status", "data-compute"), "webgpu");
      await page.focus("#compute-select"); // by keyboard: the options are CPU, WebGPU
      await page.keyboard.press("ArrowUp");
      assert.equal(await page.inputValue("#compute-select"), "cpu");
    }
    assert.match(await status(), /^using CPU: WebAssembly SIMD kernels \(unshared memory/);
    assert.equal(await page.getAttribute("#compute-status", "data-compute"), "cpu");

    // tabs: arrows move between them (WAI-ARIA), each view mounts once shown
    await page.focus("#tab-block");
    for (const v of ["live", "scale", "report"]) {
      await page.keyboard.press("ArrowRight");
      assert.equal(await page.getAttribute(`#tab-${v}`, "aria-selected"), "true");
      assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement?.id), `tab-${v}`);
      await page.waitForSelector(`#view-${v}[data-ready=true]`, { timeout: 60_000 });
      assert.equal(await page.isVisible(`#view-${v}`), true);
      assert.equal(await page.isVisible("#view-block"), false);
    }
    await page.keyboard.press("ArrowRight"); // wraps around
    assert.equal(await page.getAttribute("#tab-block", "aria-selected"), "true");
    await page.keyboard.press("End");
    assert.equal(await page.getAttribute("#tab-report", "aria-selected"), "true");
    assert.match(page.url(), /#report$/);

    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(requests.filter((u) => new URL(u).origin !== origin), []);
    assert.ok(requests.some((u) => u.endsWith("/digits.bin")), "the digit sample is loaded from the page's origin");
  });
});

test("explorer cross-origin isolated (COOP/COEP): normkit's WebAssembly SIMD kernels on a shared memory", { timeout: 120_000 }, async (t) => {
  if (!haveChromium(t)) return;
  await withExplorer(
    async ({ page, consoleErrors, open }) => {
      await open("block");
      assert.equal(await page.evaluate(() => (globalThis as unknown as { crossOriginIsolated: boolean }).crossOriginIsolated), true);
      assert.match((await page.textContent("#compute-status"))!, /^using CPU: WebAssembly SIMD kernels \(shared memory\)/);
      assert.equal(await page.isDisabled("#compute-select"), true, "no WebGPU choice without an adapter");
      assert.deepEqual(consoleErrors, []);
    },
    { isolate: true, webgpu: false },
  );
});
