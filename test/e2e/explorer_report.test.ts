/**
 * Browser test of the explorer's "Lab results" view (explorer/src/report_view.ts): a results.json opened
 * with the file input, dropped, or the example loaded from the keyboard is drawn in an open shadow root
 * with the lab report's own charts — the same charts, with one series per method as results.json says, as
 * renderReportBody gives in Node; a malformed file shows an error (role=alert) and leaves the charts as
 * they were; the page's own styles are untouched; no console error; same-origin requests only.
 * With NORMKIT_SCREENSHOT_DIR=DIR it writes DIR/explorer-report.png.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ConsoleMessage, Page } from "playwright-core";
import { renderReportBody, type LabResults } from "../../src/lab/report.js";
import { fakeLabResults } from "../helpers/lab_fixture.js";
import { buildOnce, haveChromium, withExplorer } from "./explorer_harness.js";

interface Chart {
  chart: string;
  kind: string;
  arch: string;
  batch: string | null;
  series: string[];
  components: string[];
}

/** The charts in renderReportBody's HTML, as Node renders them. */
function nodeCharts(results: LabResults): Chart[] {
  const html = renderReportBody(results);
  return [...html.matchAll(/<svg class="chart"([^>]*)>([\s\S]*?)<\/svg>/g)].map((m) => {
    const a: Record<string, string> = {};
    for (const x of m[1]!.matchAll(/([\w-]+)="([^"]*)"/g)) a[x[1]!] = x[2]!;
    return {
      chart: a["data-chart"]!, kind: a["data-kind"]!, arch: a["data-arch"]!, batch: a["data-batch-size"] ?? null,
      series: [...m[2]!.matchAll(/<g class="series" data-series="([^"]*)"/g)].map((x) => x[1]!),
      components: [...m[2]!.matchAll(/<g class="component" data-component="([^"]*)"/g)].map((x) => x[1]!),
    };
  });
}

/** The charts in the view's shadow root, as the browser parsed them. */
async function pageCharts(page: Page): Promise<Chart[]> {
  return page.evaluate(() => {
    const d = (globalThis as unknown as { document: { getElementById(id: string): { shadowRoot: { querySelectorAll(s: string): ArrayLike<unknown> } | null } } }).document;
    type El = { getAttribute(n: string): string | null; querySelectorAll(s: string): ArrayLike<El> };
    const root = d.getElementById("report-host")!.shadowRoot!;
    return Array.from(root.querySelectorAll("svg.chart") as ArrayLike<El>).map((svg) => ({
      chart: svg.getAttribute("data-chart")!, kind: svg.getAttribute("data-kind")!, arch: svg.getAttribute("data-arch")!,
      batch: svg.getAttribute("data-batch-size"),
      series: Array.from(svg.querySelectorAll("g.series[data-series]")).map((g) => g.getAttribute("data-series")!),
      components: Array.from(svg.querySelectorAll("g.component[data-component]")).map((g) => g.getAttribute("data-component")!),
    }));
  });
}

/** One series per method that results.json holds for the chart's architecture (and batch size). */
function checkSeries(charts: Chart[], results: LabResults, label: string): void {
  assert.ok(charts.some((c) => c.kind === "methods"), `${label}: method charts drawn`);
  for (const c of charts) {
    if (c.kind !== "methods") continue;
    const runs = results.runs.filter((r) => r.arch === c.arch && (c.batch === null || String(r.batch_size) === c.batch));
    assert.deepEqual([...c.series].sort(), [...new Set(runs.map((r) => r.method))].sort(), `${label}: ${c.chart}`);
  }
}

async function shadowHtml(page: Page): Promise<string> {
  return page.$eval("#report-host", (e) => (e as unknown as { shadowRoot: { innerHTML: string } }).shadowRoot.innerHTML);
}

async function upload(page: Page, name: string, text: string): Promise<void> {
  await page.setInputFiles("#report-file", { name, mimeType: "application/json", buffer: Buffer.from(text) });
}

test("lab results view: results.json by file input, drop and the example button; errors keep the charts", { timeout: 240_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const { dir } = await buildOnce();
  const example = JSON.parse(readFileSync(join(dir, "example-results.json"), "utf8")) as LabResults;
  await withExplorer(async ({ page, origin, consoleErrors, requests, open }) => {
    const located: string[] = [];
    page.on("console", (m: ConsoleMessage) => {
      if (m.type() === "error") located.push(`${m.text()} @ ${m.location().url}`);
    });
    await open("report");
    const pageH2 = () => page.$eval("#view-report > h2", (e) => {
      const g = globalThis as unknown as { getComputedStyle(e: unknown): { fontSize: string; color: string } };
      const s = g.getComputedStyle(e);
      return `${s.fontSize} ${s.color}`;
    });
    const h2Before = await pageH2();
    assert.equal((await pageCharts(page)).length, 0, "nothing drawn before a file is chosen");

    // 1. a results.json through the file input (synthetic: two seeds, Switchable Norm importance)
    const fake = fakeLabResults({ seeds: [0, 1] });
    await upload(page, "results.json", JSON.stringify(fake));
    await page.waitForSelector('#view-report[data-source="results.json"]');
    let charts = await pageCharts(page);
    assert.deepEqual(charts, nodeCharts(fake), "the page draws the charts renderReportBody draws in Node");
    checkSeries(charts, fake, "file input");
    assert.ok(charts.some((c) => c.kind === "importance") && charts.some((c) => c.kind === "reference"));
    assert.equal(await page.getAttribute("#view-report", "data-runs"), String(fake.runs.length));
    // in the (open) shadow root, not in the page; the report's CSS applies there and not to the page
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<unknown> } }).document.querySelectorAll("svg.chart").length), 0);
    assert.equal(await pageH2(), h2Before, "the page's own h2 style is unchanged");
    const reportH2 = await page.$eval("#report-host", (e) => {
      const g = globalThis as unknown as { getComputedStyle(e: unknown): { fontSize: string; color: string } };
      const s = g.getComputedStyle((e as unknown as { shadowRoot: { querySelector(s: string): unknown } }).shadowRoot.querySelector("h2"));
      return `${s.fontSize} ${s.color}`;
    });
    assert.notEqual(reportH2, h2Before, "REPORT_CSS styles the report's h2");
    assert.equal(await page.textContent("#report-error"), "");

    // 2. the example, from the keyboard: focus the button, Enter
    await page.focus("#report-example");
    await page.keyboard.press("Enter");
    await page.waitForSelector('#view-report[data-source="example-results.json"]');
    charts = await pageCharts(page);
    assert.deepEqual(charts, nodeCharts(example));
    checkSeries(charts, example, "example");
    assert.equal(await page.getAttribute("#view-report", "data-runs"), String(example.runs.length));
    // the drop zone is next in the tab order; Enter there opens the file picker (a click on the file
    // input, counted in the page: the native chooser itself is the browser's)
    await page.evaluate(() => {
      const g = globalThis as unknown as { document: { getElementById(id: string): { addEventListener(t: string, f: () => void): void } }; fileClicks: number };
      g.fileClicks = 0;
      g.document.getElementById("report-file").addEventListener("click", () => void g.fileClicks++);
    });
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement?.id), "report-drop");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => (globalThis as unknown as { fileClicks: number }).fileClicks), 1, "Enter on the drop zone opens the file picker");
    await page.keyboard.press("Escape");
    assert.equal(await page.getAttribute("#view-report", "data-source"), "example-results.json");

    if (process.env["NORMKIT_SCREENSHOT_DIR"]) {
      await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
      await page.screenshot({ path: join(process.env["NORMKIT_SCREENSHOT_DIR"], "explorer-report.png") });
    }

    // 3. malformed files: an error naming the problem; the example's charts stay exactly as they were
    const before = await shadowHtml(page);
    const loads = await page.getAttribute("#view-report", "data-loads");
    const bad: [string, string, RegExp][] = [
      ["broken.json", "{ this is not json", /broken\.json is not JSON/],
      ["noruns.json", JSON.stringify({ config: {}, results: [] }), /noruns\.json has no "runs" array/],
      ["runsobject.json", JSON.stringify({ runs: { a: 1 } }), /runsobject\.json has no "runs" array \("runs" is object\)/],
      ["list.json", JSON.stringify([1, 2]), /list\.json is JSON but not an object/],
    ];
    for (const [i, [name, text, re]] of bad.entries()) {
      await upload(page, name, text);
      await page.waitForSelector(`#view-report[data-errors="${i + 1}"]`);
      const alert = page.locator('[role="alert"]#report-error');
      assert.match((await alert.textContent()) ?? "", re);
      assert.ok(await alert.isVisible());
      assert.equal(await shadowHtml(page), before, `${name}: the charts are unchanged`);
      assert.equal(await page.getAttribute("#view-report", "data-source"), "example-results.json");
      assert.equal(await page.getAttribute("#view-report", "data-loads"), loads);
    }

    // 4. a drop on the drop zone loads too, and clears the error
    const small = fakeLabResults({ archs: ["mlp"], batchSizes: [8, 64] });
    await page.evaluate((text) => {
      const g = globalThis as unknown as {
        DataTransfer: new () => { items: { add(f: unknown): void } };
        File: new (parts: string[], name: string, o: { type: string }) => unknown;
        DragEvent: new (type: string, o: { dataTransfer: unknown; bubbles: boolean; cancelable: boolean }) => unknown;
        document: { getElementById(id: string): { dispatchEvent(e: unknown): boolean } };
      };
      const dt = new g.DataTransfer();
      dt.items.add(new g.File([text], "dropped.json", { type: "application/json" }));
      const zone = g.document.getElementById("report-drop");
      zone.dispatchEvent(new g.DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new g.DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, JSON.stringify(small));
    await page.waitForSelector('#view-report[data-source="dropped.json"]');
    charts = await pageCharts(page);
    assert.deepEqual(charts, nodeCharts(small));
    checkSeries(charts, small, "drop");
    assert.equal(await page.textContent("#report-error"), "");

    assert.deepEqual(located, [], "no console errors");
    assert.deepEqual(consoleErrors, [], `console errors: ${located.join(" | ")}`);
    assert.ok(requests.some((u) => u.endsWith("/example-results.json")), "the example came from the page's origin");
    for (const u of requests) assert.equal(new URL(u).origin, origin, `request outside the origin: ${u}`);
  });
});
