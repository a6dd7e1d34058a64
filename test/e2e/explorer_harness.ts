/**
 * Shared set-up of the explorer's browser tests: builds the explorer once per process with
 * scripts/build-explorer.mjs (exactly what `npm run explorer:build` writes) into a temporary folder,
 * serves it with a plain static server, and opens it in headless Chromium (Debian's /usr/bin/chromium
 * driven by playwright-core; WebGPU on SwiftShader). Every page records its console errors, page errors
 * and every request it makes, for the tests to check.
 *
 * Without Chromium the tests are skipped locally but FAIL under CI=true (./chromium.ts).
 */
import { mkdtempSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { ROOT, launchChromium } from "./chromium.js";

export { ROOT, haveChromium } from "./chromium.js";

export interface Built {
  dir: string;
  sizes: Record<string, { bytes: number; gzip: number }>;
}

let built: Promise<Built> | null = null;
/** The explorer built once per test process. */
export function buildOnce(): Promise<Built> {
  built ??= (async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "normkit-explorer-")), "explorer");
    const mod = (await import(pathToFileURL(join(ROOT, "scripts/build-explorer.mjs")).href)) as {
      buildExplorer(o: { out: string }): Promise<Built & { out: string }>;
    };
    const r = await mod.buildExplorer({ out: dir });
    return { dir: r.out, sizes: r.sizes };
  })();
  return built;
}

export interface ExplorerPage {
  page: Page;
  origin: string;
  consoleErrors: string[];
  requests: string[];
  /** Opens `#view` (block, live, scale, report) and waits until that view is mounted. */
  open(view: string): Promise<void>;
}

/**
 * Runs `fn` with a fresh page on a served build; closes everything after. `isolate` serves the
 * COOP/COEP headers (WebAssembly kernels) — the default is a plain static server without them.
 */
export async function withExplorer(
  fn: (p: ExplorerPage) => Promise<void>,
  o: { isolate?: boolean; viewport?: { width: number; height: number }; webgpu?: boolean } = {},
): Promise<void> {
  const { dir } = await buildOnce();
  const { serveStatic } = (await import(pathToFileURL(join(ROOT, "scripts/serve-explorer.mjs")).href)) as {
    serveStatic(d: string, o: { isolate: boolean }): Promise<{ server: Server; url: string }>;
  };
  const { server, url } = await serveStatic(dir, { isolate: o.isolate ?? false });
  let browser: Browser | null = null;
  try {
    browser = await launchChromium({ webgpu: o.webgpu ?? true });
    const page = await browser.newPage({ viewport: o.viewport ?? { width: 1280, height: 900 } });
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
    page.on("request", (r) => requests.push(r.url()));
    const origin = new URL(url).origin;
    const open = async (view: string) => {
      if (!page.url().startsWith(origin)) {
        await page.goto(`${url}#${view}`);
        await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
      } else {
        await page.click(`#tab-${view}`);
      }
      await page.waitForSelector(`#view-${view}[data-ready=true]`, { timeout: 60_000 });
    };
    await fn({ page, origin, consoleErrors, requests, open });
  } finally {
    await browser?.close();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}
