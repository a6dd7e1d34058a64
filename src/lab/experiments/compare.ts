/**
 * Cell-by-cell comparison of two sets of experiment records (normkit's run and the PyTorch twin's),
 * the rule of EXPERIMENTS.md / lab-protocol.md: a cell is (experiment, arch, method, batch_size and
 * the experiment's own fields); its mean over seeds must lie within max(2 points, 3 × the twin's seed
 * spread) of the twin's, the spread being half the range, (max − min) / 2, of the twin's seeds (the
 * "±" of the protocol's tables). Pure functions, browser-safe.
 */
import type { ExperimentRecord } from "./types.js";

export interface CellStats {
  key: string;
  /** The cell's fields, e.g. { experiment, arch, method, batch_size, ordering }. */
  fields: Record<string, unknown>;
  seeds: number[];
  /** Mean test accuracy, 0..1. */
  mean: number;
  /** (max − min) / 2 over the seeds, 0..1. */
  halfSpread: number;
  diverged: number;
}

export interface CellComparison {
  key: string;
  fields: Record<string, unknown>;
  ours: CellStats | null;
  twin: CellStats | null;
  /** ours.mean − twin.mean, 0..1 (NaN when a side is missing). */
  diff: number;
  /** max(0.02, 3 · twin.halfSpread). */
  tolerance: number;
  ok: boolean;
}

/** The key of a record's cell: experiment|arch|method|batch_size|field=value… */
export function cellKey(r: ExperimentRecord, cellFields: readonly string[]): string {
  return [r.experiment, r.arch, r.method, r.batch_size, ...cellFields.map((f) => `${f}=${String(r[f])}`)].join("|");
}

/** Mean and half spread per cell, over the records' seeds (only `seeds` when given). */
export function cellStats(records: readonly ExperimentRecord[], cellFields: readonly string[], seeds?: readonly number[]): Map<string, CellStats> {
  const groups = new Map<string, ExperimentRecord[]>();
  for (const r of records) {
    if (seeds && !seeds.includes(r.seed)) continue;
    const k = cellKey(r, cellFields);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const out = new Map<string, CellStats>();
  for (const [key, g] of groups) {
    const acc = g.map((r) => r.test_accuracy);
    const r0 = g[0]!;
    const fields: Record<string, unknown> = { experiment: r0.experiment, arch: r0.arch, method: r0.method, batch_size: r0.batch_size };
    for (const f of cellFields) fields[f] = r0[f];
    out.set(key, {
      key, fields, seeds: g.map((r) => r.seed),
      mean: acc.reduce((a, b) => a + b, 0) / acc.length,
      halfSpread: (Math.max(...acc) - Math.min(...acc)) / 2,
      diverged: g.filter((r) => r.diverged).length,
    });
  }
  return out;
}

/** Every cell of either side, compared (a cell missing on one side is not ok). */
export function compareRecords(
  ours: readonly ExperimentRecord[], twin: readonly ExperimentRecord[], cellFields: readonly string[], seeds: readonly number[] = [0, 1],
): CellComparison[] {
  const a = cellStats(ours, cellFields, seeds), b = cellStats(twin, cellFields, seeds);
  const keys = [...new Set([...a.keys(), ...b.keys()])];
  return keys.map((key) => {
    const o = a.get(key) ?? null, t = b.get(key) ?? null;
    const tolerance = Math.max(0.02, 3 * (t?.halfSpread ?? 0));
    const diff = o && t ? o.mean - t.mean : NaN;
    return { key, fields: (o ?? t)!.fields, ours: o, twin: t, diff, tolerance, ok: Number.isFinite(diff) && Math.abs(diff) <= tolerance + 1e-9 };
  });
}

/**
 * A Markdown table per arch of one experiment: method × the experiment's field, each cell
 * "normkit / PyTorch ± spread" (%), a ✗ where the rule fails, ✕ where a seed diverged (README).
 */
export function comparisonMarkdown(ours: readonly ExperimentRecord[], twin: readonly ExperimentRecord[], experiment: string, field: string): string[] {
  const o = ours.filter((r) => r.experiment === experiment), t = twin.filter((r) => r.experiment === experiment);
  const cells = compareRecords(o, t, [field]);
  const values = [...new Set([...o, ...t].map((r) => r[field]))].sort((a, b) => (typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b))));
  const out: string[] = [];
  const pct = (v: number) => (v * 100).toFixed(1);
  for (const arch of [...new Set([...o, ...t].map((r) => r.arch))]) {
    out.push("", `**${arch}** — normkit / PyTorch ± half spread (test accuracy %, mean of seeds 0 and 1)`, "");
    out.push(`| method | ${values.map((v) => `${field} ${String(v)}`).join(" | ")} |`, `|---|${values.map(() => "---").join("|")}|`);
    for (const m of [...new Set([...o, ...t].filter((r) => r.arch === arch).map((r) => r.method))]) {
      const row = values.map((v) => {
        const c = cells.find((c) => c.fields.arch === arch && c.fields.method === m && c.fields[field] === v);
        if (!c || !c.ours || !c.twin) return "—";
        const div = (s: CellStats) => (s.diverged ? "✕" : "");
        return `${pct(c.ours.mean)}${div(c.ours)} / ${pct(c.twin.mean)}${div(c.twin)} ± ${pct(c.twin.halfSpread)}${c.ok ? "" : " ✗"}`;
      });
      out.push(`| ${m} | ${row.join(" | ")} |`);
    }
  }
  return out;
}
