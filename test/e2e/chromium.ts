/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium (CHROMIUM_PATH to change)
 * driven by playwright-core, never a browser download; WebGPU on SwiftShader where asked for.
 * A test that cannot run here (no Chromium, no WebGPU) is skipped locally and FAILS under CI=true.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Skips the test with `msg` locally; fails it under CI=true. */
export function skipOrFail(t: TestContext, msg: string): void {
  if (process.env["CI"] === "true") assert.fail(msg);
  t.skip(msg);
}

/** Whether Chromium is installed; skips (locally) or fails (CI=true) the test when not. */
export function haveChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  skipOrFail(t, `Chromium not found at ${CHROMIUM} (run .ci/install-browser.sh)`);
  return false;
}

/**
 * Launches headless Chromium; `webgpu` adds --enable-unsafe-webgpu (SwiftShader here); `webgl` gives
 * WebGL 2 on SwiftShader through ANGLE (without --disable-gpu, which would turn WebGL off).
 */
export function launchChromium(o: { webgpu: boolean; webgl?: boolean }): Promise<Browser> {
  let args = o.webgpu ? [...ARGS, "--enable-unsafe-webgpu"] : ARGS;
  if (o.webgl) args = [...args.filter((a) => a !== "--disable-gpu"), "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"];
  return chromium.launch({ executablePath: CHROMIUM, args });
}
