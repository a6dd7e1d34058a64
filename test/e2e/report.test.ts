/**
 * Browser end-to-end test of the lab report: a real `normkit lab --quick` run, its report.html opened in
 * headless Chromium (playwright-core driving Debian's /usr/bin/chromium; no browser download), checked for
 * one series per method in every chart (the expected sets derived from results.json), no console errors
 * and no request but the file itself. With NORMKIT_SCREENSHOT=FILE it also saves a screenshot of the
 * main charts there (docs/lab-report.png in the README was made that way).
 *
 * Without Chromium the test is skipped locally but FAILS under CI=true (.ci/install-browser.sh installs it).
 * NORMKIT_E2E_RESULTS=DIR checks an existing lab output folder instead of running `lab --quick` (use it to
 * refresh the README screenshot from the default run).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, haveChromium, launchChromium } from "./chromium.js";
import type { LabResults } from "../../src/lab/report.js";

interface ChartInfo {
  chart: string;
  kind: string;
  arch: string;
  batch: string | null;
  series: string[];
  components: string[];
  legends: number;
  legendItems: number;
}

test("lab report renders in Chromium with one series per method in every chart", { timeout: 300_000 }, async (t) => {
  if (!haveChromium(t)) return;

  let dir = process.env.NORMKIT_E2E_RESULTS;
  let tmp: string | undefined;
  if (!dir) {
    tmp = mkdtempSync(join(tmpdir(), "normkit-e2e-"));
    dir = join(tmp, "out");
    const r = spawnSync(process.execPath, [join(ROOT, "bin/normkit.js"), "lab", "--quick", "--out", dir], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 240_000,
      env: { ...process.env, CI: process.env.CI ?? "" },
    });
    assert.equal(r.status, 0, `normkit lab --quick failed (status ${r.status}, ${r.signal ?? ""}):\n${r.stdout}\n${r.stderr}`);
  }
  try {
    const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as LabResults;
    const reportPath = join(dir, "report.html");
    assert.ok(existsSync(reportPath), "lab wrote no report.html");
    assert.ok(results.runs.length > 0, "results.json holds no runs");
    const reportUrl = pathToFileURL(reportPath).href;

    const browser = await launchChromium({ webgpu: false });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const consoleErrors: string[] = [];
      const requests: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") consoleErrors.push(m.text());
      });
      page.on("pageerror", (e) => consoleErrors.push(String(e)));
      page.on("request", (r) => requests.push(r.url()));
      await page.goto(reportUrl, { waitUntil: "load" });

      const charts: ChartInfo[] = await page.$$eval("svg.chart", (els) =>
        els.map((el) => ({
          chart: el.getAttribute("data-chart") ?? "",
          kind: el.getAttribute("data-kind") ?? "",
          arch: el.getAttribute("data-arch") ?? "",
          batch: el.getAttribute("data-batch-size"),
          series: [...el.querySelectorAll("g.series")].map((g) => g.getAttribute("data-series") ?? ""),
          components: [...el.querySelectorAll("g.component")].map((g) => g.getAttribute("data-component") ?? ""),
          legends: el.querySelectorAll("g.legend").length,
          legendItems: el.querySelectorAll("g.legend g.legend-item").length,
        })),
      );

      // What results.json says must be there.
      const archs = [...new Set(results.runs.map((r) => r.arch))];
      const uniq = (xs: string[]) => [...new Set(xs)].sort();
      for (const arch of archs) {
        assert.ok(charts.some((c) => c.chart === `error-vs-batch-${arch}`), `no error-vs-batch chart for ${arch}`);
        for (const b of new Set(results.runs.filter((r) => r.arch === arch).map((r) => r.batch_size)))
          assert.ok(charts.some((c) => c.kind === "methods" && c.arch === arch && c.batch === String(b)), `no loss chart for ${arch} batch ${b}`);
      }
      assert.ok(charts.some((c) => c.kind === "reference"), "no ImageNet reference chart");
      const withImportance = results.runs.filter((r) => Array.isArray(r.importance) && r.importance.length > 0);
      for (const r of withImportance)
        assert.ok(charts.some((c) => c.kind === "importance" && c.arch === r.arch && c.batch === String(r.batch_size)), `no importance chart for ${r.arch} batch ${r.batch_size}`);

      for (const c of charts) {
        assert.ok(c.chart, "a chart without data-chart");
        assert.equal(c.legends, 1, `${c.chart}: expected one legend`);
        if (c.kind === "methods") {
          const expected = uniq(results.runs.filter((r) => r.arch === c.arch && (c.batch === null || String(r.batch_size) === c.batch)).map((r) => r.method));
          assert.ok(expected.length > 0, `${c.chart}: no runs match`);
          assert.deepEqual([...c.series].sort(), expected, `${c.chart}: one series per method`);
          assert.equal(c.legendItems, expected.length, `${c.chart}: legend entries`);
        } else if (c.kind === "reference") {
          assert.deepEqual([...c.series].sort(), ["batch_norm", "group_norm"]);
        } else {
          assert.equal(c.kind, "importance", `${c.chart}: unknown kind ${c.kind}`);
          const expected = uniq(
            results.runs
              .filter((r) => r.arch === c.arch && String(r.batch_size) === c.batch)
              .flatMap((r) => (r.importance ?? []).flatMap((l) => [...Object.keys(l.mean ?? {}), ...Object.keys(l.variance ?? {})])),
          );
          assert.deepEqual([...c.components].sort(), expected, `${c.chart}: one stack per statistic`);
        }
      }

      // The reference chart is labelled as such.
      const refCaption = await page.locator("figure.reference figcaption").innerText();
      assert.match(refCaption, /ImageNet, from the GN paper — not measured here/);

      assert.deepEqual(consoleErrors, [], "console errors");
      assert.deepEqual(uniq(requests), [reportUrl], "requests other than the report itself");

      const box = await page.locator("div.grid").first().boundingBox();
      assert.ok(box, "no chart grid");
      // Screenshot of the title and the main charts, for the README, only when asked for.
      const shot = process.env.NORMKIT_SCREENSHOT;
      if (shot) await page.screenshot({
        path: shot,
        clip: { x: 0, y: 0, width: 1280, height: Math.ceil(box.y + box.height + 24) },
        fullPage: true,
      });
    } finally {
      await browser.close();
    }
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
});
