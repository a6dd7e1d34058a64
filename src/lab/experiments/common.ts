/**
 * Pieces the CNN/MLP experiments share (shuffle, learning-rate): the methods of EXPERIMENTS.md per
 * arch, the plan's filters, --quick's sizes, and a results table (HTML and text) of a method × one
 * field grid of mean ± half spread over seeds.
 */
import { escapeHtml as esc } from "../report.js";
import { cellKey, cellStats } from "./compare.js";
import { TWIN_ACCURACY } from "./twin_reference.js";
import type { BarValue } from "./charts.js";
import type { ExperimentConfig, ExperimentRecord } from "./types.js";

/** EXPERIMENTS.md's methods: instance_norm in the cnn only. */
export const CNN_MLP_METHODS: Readonly<Record<"cnn" | "mlp", readonly string[]>> = {
  cnn: ["none", "batch_norm", "group_norm", "layer_norm", "instance_norm", "switchable_norm"],
  mlp: ["none", "batch_norm", "group_norm", "layer_norm", "switchable_norm"],
};
export const EPOCHS = 2;
/** --quick: the first 1,000 training digits, 1 epoch (as the batch-size --quick). */
export const QUICK_TRAIN_LIMIT = 1000;
export const QUICK_EPOCHS = 1;

/** The (arch, method) pairs of a config: the experiment's methods, filtered by --arch and --methods. */
export function archMethods(methods: Readonly<Record<string, readonly string[]>>, cfg: ExperimentConfig): [string, string][] {
  const out: [string, string][] = [];
  for (const arch of Object.keys(methods)) {
    if (!cfg.archs.includes(arch)) continue;
    for (const m of methods[arch]!) if (cfg.methods === null || cfg.methods.includes(m)) out.push([arch, m]);
  }
  return out;
}

function pct(v: number): string {
  return (v * 100).toFixed(1);
}

/** Per arch, a table method × `field` value: mean ± half spread (%) over seeds, "(k diverged)" where any did. */
export function gridTableHtml(records: ExperimentRecord[], field: string, values: readonly (string | number)[], head: (v: string | number) => string): string {
  const stats = cellStats(records, [field]);
  let s = "";
  for (const arch of [...new Set(records.map((r) => r.arch))]) {
    const rs = records.filter((r) => r.arch === arch);
    const methods = [...new Set(rs.map((r) => r.method))];
    const bs = rs[0]!.batch_size;
    s += `<h4>${esc(arch)}</h4><table class="results" data-table="${esc(`${rs[0]!.experiment}-${arch}`)}"><thead><tr><th>method</th>${values.map((v) => `<th>${esc(head(v))}</th>`).join("")}</tr></thead><tbody>`;
    for (const m of methods) {
      s += `<tr><th>${esc(m)}</th>`;
      for (const v of values) {
        const c = [...stats.values()].find((c) => c.fields.arch === arch && c.fields.method === m && c.fields.batch_size === bs && c.fields[field] === v);
        s += c
          ? `<td>${pct(c.mean)}${c.seeds.length > 1 ? ` <span class="pm">± ${pct(c.halfSpread)}</span>` : ""}${c.diverged ? ` <span class="ref">(${c.diverged} of ${c.seeds.length} diverged)</span>` : ""}</td>`
          : `<td>—</td>`;
      }
      s += `</tr>`;
    }
    s += `</tbody></table>`;
  }
  return s;
}

/** The same grid as text lines for the terminal. */
export function gridTableText(records: ExperimentRecord[], field: string, values: readonly (string | number)[], head: (v: string | number) => string): string[] {
  const stats = [...cellStats(records, [field]).values()];
  const out: string[] = [];
  const multi = new Set(records.map((r) => r.seed)).size > 1;
  const w = multi ? 14 : 10;
  for (const arch of [...new Set(records.map((r) => r.arch))]) {
    const rs = records.filter((r) => r.arch === arch);
    out.push("", `${rs[0]!.experiment}, ${arch} (batch ${rs[0]!.batch_size}): test accuracy %${multi ? " (mean ± half the spread of the seeds; ✕ = a seed diverged)" : ""}`);
    const line = ["method".padEnd(16), ...values.map((v) => head(v).padStart(w))].join(" ");
    out.push(line, "-".repeat(line.length));
    for (const m of [...new Set(rs.map((r) => r.method))]) {
      out.push([m.padEnd(16), ...values.map((v) => {
        const c = stats.find((c) => c.fields.arch === arch && c.fields.method === m && c.fields[field] === v);
        if (!c) return "—".padStart(w);
        return `${c.diverged ? "✕" : ""}${multi ? `${pct(c.mean)} ± ${pct(c.halfSpread)}` : (c.mean * 100).toFixed(2)}`.padStart(w);
      })].join(" "));
    }
  }
  return out;
}

/** The mean accuracy of a cell (NaN when absent). */
export function meanOf(records: ExperimentRecord[], pred: (r: ExperimentRecord) => boolean): number {
  const v = records.filter(pred).map((r) => r.test_accuracy);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

/**
 * The PyTorch twin's mean accuracy (seeds 0 and 1) for the cell of `r` (twin_reference.ts), for the
 * report to draw beside normkit's: only when `r` ran the full protocol (2 epochs of the 8,000 training
 * digits), since the twin ran nothing else.
 */
export function twinMean(r: ExperimentRecord, cellFields: readonly string[]): number | undefined {
  if (r["epochs"] !== EPOCHS || r["train_samples"] !== 8000) return undefined;
  const v = TWIN_ACCURACY[cellKey(r, cellFields)];
  return v && v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
}

/** Where the report says what the diamonds are. */
export const TWIN_NOTE = "Hollow diamonds (◇): the PyTorch twin's mean over seeds 0 and 1 for the same cell (docs/pytorch_*.py, its runs in docs/pytorch-*.jsonl), drawn as a reference — not a measurement of normkit — and only for runs of the full protocol.";

/** A bar with the twin's value attached where there is one. */
export function withTwin(bar: BarValue, reference: number | undefined): BarValue {
  if (reference !== undefined) bar.reference = reference;
  return bar;
}

