/** Writing the lab's report to disk (Node only; the rendering itself, report.ts, is browser-safe). */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderReport, type LabResults } from "./report.js";

/**
 * Writes `dir/report.html` atomically: to a temporary name in the same folder, then renamed.
 * `render`: the page (default report.ts's; the experiments' page is experiments/report.ts's).
 */
export function writeReport(results: LabResults, dir: string, render: (r: LabResults) => string = renderReport): void {
  const html = render(results);
  mkdirSync(dir, { recursive: true });
  const final = join(dir, "report.html");
  const tmp = join(dir, `.report.html.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, html);
    renameSync(tmp, final);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
