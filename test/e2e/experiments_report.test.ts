/**
 * Browser end-to-end test of the survey-claim experiments' report: a real `normkit lab --experiment all
 * --quick` run; its report.html opened in headless Chromium has a section per experiment (batch-size,
 * shuffle, learning-rate, rnn, devices), each with its charts drawn (bars or lines per method), no
 * console errors and no request but the file; and the explorer's "Lab results" view, given that
 * results.json, draws the same sections and charts in its shadow root.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Page } from "playwright-core";
import { ROOT, haveChromium, launchChromium } from "./chromium.js";
import { withExplorer } from "./explorer_harness.js";

const EXPERIMENTS = ["batch-size", "shuffle", "learning-rate", "rnn", "devices"];

interface Section {
  name: string;
  charts: { chart: string; marks: number }[];
}

/** Each section's charts and how many marks (bars, lines, points) each drew, from a document or shadow root. */
async function sections(page: Page, shadowHost: string | null): Promise<Section[]> {
  return page.evaluate((host) => {
    type El = { getAttribute(n: string): string | null; querySelectorAll(s: string): ArrayLike<El> };
    const g = globalThis as unknown as { document: El & { getElementById(id: string): { shadowRoot: El } } };
    const root: El = host ? g.document.getElementById(host).shadowRoot : g.document;
    return Array.from(root.querySelectorAll("section[data-experiment]")).map((s) => ({
      name: s.getAttribute("data-experiment")!,
      charts: Array.from(s.querySelectorAll("svg.chart")).map((c) => ({
        chart: c.getAttribute("data-chart") ?? "",
        marks: c.querySelectorAll("rect[data-variant], g.series *, g.component *").length,
      })),
    }));
  }, shadowHost);
}

function check(found: Section[], label: string): void {
  assert.deepEqual(found.map((s) => s.name), EXPERIMENTS, `${label}: one section per experiment, in order`);
  for (const s of found) {
    assert.ok(s.charts.length > 0, `${label}: ${s.name} draws charts`);
    for (const c of s.charts) assert.ok(c.marks > 0, `${label}: ${s.name} chart ${c.chart} draws something`);
  }
}

test("experiments report: every experiment's section drawn in Chromium, and in the explorer's lab-results view", { timeout: 300_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const tmp = mkdtempSync(join(tmpdir(), "normkit-exp-e2e-"));
  try {
    const dir = join(tmp, "out");
    const r = spawnSync(process.execPath, [join(ROOT, "bin/normkit.js"), "lab", "--experiment", "all", "--quick", "--out", dir], { cwd: ROOT, encoding: "utf8", timeout: 240_000 });
    assert.equal(r.status, 0, `normkit lab --experiment all --quick failed:\n${r.stdout}\n${r.stderr}`);
    const text = readFileSync(join(dir, "results.json"), "utf8");
    const reportUrl = pathToFileURL(join(dir, "report.html")).href;

    const browser = await launchChromium({ webgpu: false });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [], requests: string[] = [];
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("request", (q) => requests.push(q.url()));
      await page.goto(reportUrl, { waitUntil: "load" });
      check(await sections(page, null), "report.html");
      assert.deepEqual(errors, [], "console errors");
      assert.deepEqual([...new Set(requests)], [reportUrl], "no request but the report");
    } finally {
      await browser.close();
    }

    await withExplorer(async ({ page, consoleErrors, open }) => {
      await open("report");
      await page.setInputFiles("#report-file", { name: "experiments.json", mimeType: "application/json", buffer: Buffer.from(text) });
      await page.waitForSelector('#view-report[data-source="experiments.json"]');
      check(await sections(page, "report-host"), "explorer");
      assert.deepEqual(consoleErrors, [], "explorer console errors");
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
