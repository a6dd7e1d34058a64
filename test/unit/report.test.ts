/** The lab report renderer: structure, series per chart, escaping, self-containment, browser safety, atomic write. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderReport, renderReportBody, REPORT_CSS, escapeHtml } from "../../src/lab/report.js";
import { writeReport } from "../../src/lab/report_file.js";
import { fakeLabResults } from "../helpers/lab_fixture.js";

/** Every <svg class="chart"> with its attributes and the data-series of its series groups. */
function charts(html: string): { attrs: Record<string, string>; series: string[]; components: string[]; legend: number }[] {
  const out = [];
  for (const m of html.matchAll(/<svg class="chart"([^>]*)>([\s\S]*?)<\/svg>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([\w-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    const series = [...m[2]!.matchAll(/<g class="series" data-series="([^"]*)"/g)].map((x) => x[1]!);
    const components = [...m[2]!.matchAll(/<g class="component" data-component="([^"]*)"/g)].map((x) => x[1]!);
    const legend = (m[2]!.match(/<g class="legend"/g) ?? []).length;
    out.push({ attrs, series, components, legend });
  }
  return out;
}

test("each chart holds one series per method in results, and a legend", () => {
  const results = fakeLabResults({ seeds: [0, 1] });
  const html = renderReport(results);
  const cs = charts(html);
  const archs = [...new Set(results.runs.map((r) => r.arch))];
  const batches = [...new Set(results.runs.map((r) => r.batch_size))];
  // error-vs-batch per arch + reference + loss per (arch,batch) + importance per (arch,batch)
  assert.equal(cs.length, archs.length + 1 + 2 * archs.length * batches.length);
  for (const ch of cs) {
    assert.equal(ch.legend, 1, `legend in ${ch.attrs["data-chart"]}`);
    const kind = ch.attrs["data-kind"];
    if (kind === "methods") {
      const runs = results.runs.filter(
        (r) => r.arch === ch.attrs["data-arch"] && (ch.attrs["data-batch-size"] === undefined || String(r.batch_size) === ch.attrs["data-batch-size"]),
      );
      assert.deepEqual([...ch.series].sort(), [...new Set(runs.map((r) => r.method))].sort(), ch.attrs["data-chart"]);
    } else if (kind === "reference") {
      assert.deepEqual(ch.series.sort(), ["batch_norm", "group_norm"]);
    } else {
      assert.equal(kind, "importance");
      assert.equal(ch.series.length, 0);
      assert.deepEqual(ch.components.sort(), ch.attrs["data-arch"] === "cnn" ? ["bn", "in", "ln"] : ["bn", "ln"]);
    }
  }
  assert.match(html, /ImageNet, from the GN paper — not measured here/);
  assert.match(html, /MNIST is not ImageNet/);
  // several seeds → spread bars
  assert.match(html, /<g class="spread">/);
});

test("the page is self-contained: no script, no external URL", () => {
  const html = renderReport(fakeLabResults());
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /(src|href)\s*=\s*"(https?:)?\/\//i);
  assert.doesNotMatch(html, /@import|url\(/i);
  // the only http URL allowed is the SVG namespace
  const urls = [...html.matchAll(/https?:\/\/[^\s"'<>)]+/g)].map((m) => m[0]);
  assert.deepEqual([...new Set(urls)], ["http://www.w3.org/2000/svg"]);
});

test("text from results is escaped", () => {
  const r = fakeLabResults({ archs: ["cnn"], batchSizes: [8, 64] });
  r.runs[0]!.method = `<img src=x onerror="alert(1)">`;
  (r.config as Record<string, unknown>).evil = `</table><script>alert(1)</script>`;
  const html = renderReport(r);
  assert.doesNotMatch(html, /<img src=x/);
  assert.doesNotMatch(html, /<script>/);
  assert.match(html, /&lt;script&gt;/);
  assert.equal(escapeHtml(`a<b>&"'`), "a&lt;b&gt;&amp;&quot;&#39;");
});

test("empty or partial results still render", () => {
  assert.match(renderReport({ runs: [] }), /holds no runs/);
  const html = renderReport({ runs: [{ arch: "mlp", method: "none", batch_size: 8, seed: 0, test_accuracy: NaN }] });
  assert.match(html, /data-chart="error-vs-batch-mlp"/);
});

test("writeReport writes report.html atomically (no temporary file left)", () => {
  const dir = mkdtempSync(join(tmpdir(), "normkit-report-"));
  try {
    writeReport(fakeLabResults(), dir);
    assert.deepEqual(readdirSync(dir), ["report.html"]);
    assert.match(readFileSync(join(dir, "report.html"), "utf8"), /^<!doctype html>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the page is REPORT_CSS around renderReportBody: the same charts the explorer draws", () => {
  const results = fakeLabResults({ seeds: [0, 1] });
  const html = renderReport(results);
  const body = renderReportBody(results);
  assert.match(body, /^<main>[\s\S]*<\/main>$/);
  assert.ok(html.includes(`<body>${body}</body>`), "the page's body is renderReportBody");
  assert.ok(html.includes(`<style>${REPORT_CSS}</style>`), "the page's style is REPORT_CSS");
  assert.deepEqual(charts(body), charts(html));
  assert.ok(charts(body).length > 0);
  // usable inside a shadow root, where :root and body match nothing
  assert.match(REPORT_CSS, /:root,:host\{/);
  assert.match(REPORT_CSS, /body,:host\{/);
});

test("report.ts is browser-safe: no Node import, no process/Buffer (the explorer bundles it)", () => {
  const file = fileURLToPath(new URL("../../../src/lab/report.ts", import.meta.url));
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
  const imports = [...text.matchAll(/(?:from\s+|import\(\s*)["']([^"']+)["']/g)].map((m) => m[1]!);
  assert.deepEqual(imports.filter((m) => !m.startsWith(".")), [], "only relative imports");
  for (const m of imports) assert.doesNotMatch(m, /report_file/);
  assert.doesNotMatch(text, /\bprocess\.|\bBuffer\.|\brequire\(/);
});
