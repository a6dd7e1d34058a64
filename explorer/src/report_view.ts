/**
 * View "Lab results": open a results.json written by `normkit lab` (file picker, drop, or the example
 * shipped with the page) and draw its report with the lab's own code — src/lab/report.ts's
 * renderReportBody and REPORT_CSS, the same charts as report.html — inside an open shadow root, so the
 * report's style sheet and the page's do not touch each other. Nothing is uploaded: the file is read here.
 */
import { renderReportBody, REPORT_CSS, type LabResults } from "../../src/lab/report.js";
import { renderExperimentsBody } from "../../src/lab/experiments/report.js";
import { h, type ExplorerContext } from "./app.js";

const EXAMPLE_URL = "example-results.json";
const MAX_BYTES = 64 * 1024 * 1024;

/** results.json text → LabResults, or an Error whose message names the problem (and the file). */
export function parseResults(text: string, name: string): LabResults {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name} is not JSON (${(e as Error).message}).`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new Error(`${name} is JSON but not an object: a results.json from normkit lab is an object with a "runs" array.`);
  }
  const runs = (v as Record<string, unknown>)["runs"];
  if (!Array.isArray(runs)) {
    throw new Error(`${name} has no "runs" array${runs === undefined ? "" : ` ("runs" is ${runs === null ? "null" : typeof runs})`}: is it a results.json from normkit lab?`);
  }
  return v as LabResults;
}

export function mountReport(root: HTMLElement, _ctx: ExplorerContext): void {
  const input = h("input", { type: "file", id: "report-file", accept: ".json,application/json" });
  const example = h("button", { type: "button", id: "report-example" }, "Load the example results");
  const drop = h(
    "div", { id: "report-drop", class: "drop", tabindex: 0, role: "button", "aria-describedby": "report-drop-help" },
    h("strong", {}, "Drop a results.json here"),
    h("span", { id: "report-drop-help", class: "muted" }, " — or press Enter here, or use the file picker, to choose one."),
  );
  const status = h("p", { id: "report-status", class: "note", role: "status", "aria-live": "polite" }, "No results loaded yet.");
  const error = h("p", { id: "report-error", class: "error", role: "alert" });
  const host = h("div", { id: "report-host", class: "report-host" });
  const shadow = host.attachShadow({ mode: "open" });

  root.replaceChildren(
    h("h2", {}, "Lab results"),
    h(
      "p", { class: "lead" },
      "Open a ", h("code", {}, "results.json"), " written by ", h("code", {}, "normkit lab"),
      " and see its report: the charts are drawn by the lab's own report code (the same as its report.html), in this page. The file is read here and sent nowhere.",
    ),
    h(
      "div", { class: "controls" },
      h("label", { for: "report-file" }, "results.json:", input),
      example,
      drop,
    ),
    error,
    status,
    host,
  );

  let loads = 0; // the latest load wins when several overlap
  const show = (results: LabResults, source: string) => {
    // a results.json of `normkit lab --experiment …` (its runs name their experiment): that page's body
    const experiments = results.runs.some((r) => typeof (r as { experiment?: unknown }).experiment === "string" && (r as { experiment?: string }).experiment !== "batch-size");
    shadow.innerHTML = `<style>${REPORT_CSS}</style>${experiments ? renderExperimentsBody(results) : renderReportBody(results)}`;
    error.textContent = "";
    const n = results.runs.length;
    status.textContent = `Showing ${source}: ${n} run${n === 1 ? "" : "s"}.`;
    root.dataset["source"] = source;
    root.dataset["runs"] = String(n);
    root.dataset["loads"] = String(Number(root.dataset["loads"] ?? 0) + 1);
  };
  const fail = (msg: string) => {
    // the previous report stays as it was
    error.textContent = root.dataset["source"] ? `${msg} Still showing ${root.dataset["source"]}.` : msg;
    root.dataset["errors"] = String(Number(root.dataset["errors"] ?? 0) + 1);
  };
  const load = async (name: string, read: () => Promise<string>) => {
    const me = ++loads;
    status.textContent = `Reading ${name}…`;
    try {
      const results = parseResults(await read(), name);
      if (me === loads) show(results, name);
    } catch (e) {
      if (me !== loads) return;
      fail(e instanceof Error ? e.message : String(e));
      status.textContent = root.dataset["source"] ? `Showing ${root.dataset["source"]}: ${root.dataset["runs"]} runs.` : "No results loaded yet.";
    }
  };
  const loadFile = (f: File) => {
    if (f.size > MAX_BYTES) {
      fail(`${f.name} is ${(f.size / 1048576).toFixed(0)} MB; a results.json is far smaller (limit ${MAX_BYTES / 1048576} MB).`);
      return;
    }
    void load(f.name, () => f.text());
  };

  input.addEventListener("change", () => {
    const f = input.files?.[0];
    if (f) loadFile(f);
    input.value = ""; // choosing the same file again loads it again
  });
  example.addEventListener("click", () => {
    void load(EXAMPLE_URL, async () => {
      const r = await fetch(EXAMPLE_URL);
      if (!r.ok) throw new Error(`${EXAMPLE_URL}: HTTP ${r.status}`);
      return r.text();
    });
  });
  drop.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      input.click();
    }
  });
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const f = ev.dataTransfer?.files[0];
    if (f) loadFile(f);
    else fail("Nothing to read: drop a results.json file.");
  });
}
