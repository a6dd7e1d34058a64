/**
 * Cell-by-cell comparison of two sets of experiment records (normkit's run and the PyTorch twin's),
 * the rule of EXPERIMENTS.md / lab-protocol.md: a cell is (experiment, arch, method, batch_size and
 * the experiment's own fields); its mean over seeds must lie within max(2 points, 3 × the twin's seed
 * spread) of the twin's, the spread being half the range, (max − min) / 2, of the twin's seeds (the
 * "±" of the protocol's tables). Pure functions, browser-safe.
 */
import { NormkitError } from "../../errors.js";
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

/** The key of a record's run: its cell key and seed (cellKey#seed), the same run on both sides. */
export function runKey(r: ExperimentRecord, cellFields: readonly string[]): string {
  return `${cellKey(r, cellFields)}#${r.seed}`;
}

/** A record's cell fields, e.g. { experiment, arch, method, batch_size, ordering }. */
function fieldsOf(r: ExperimentRecord, cellFields: readonly string[]): Record<string, unknown> {
  const fields: Record<string, unknown> = { experiment: r.experiment, arch: r.arch, method: r.method, batch_size: r.batch_size };
  for (const f of cellFields) fields[f] = r[f];
  return fields;
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
    out.set(key, {
      key, fields: fieldsOf(g[0]!, cellFields), seeds: g.map((r) => r.seed),
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

/** One cell of {@link reproducibility}: how far PyTorch's runs of a seed move under a null perturbation. */
export interface ReproducibilityCell {
  key: string;
  fields: Record<string, unknown>;
  /** The seeds run on both sides. */
  seeds: number[];
  /** The largest |test accuracy difference| between a seed's two runs, 0..1. */
  maxRunDiff: number;
  /** maxRunDiff > the threshold: the cell's runs are decided by rounding (lab-protocol.md). */
  chaotic: boolean;
}

/**
 * PyTorch against itself (lab-protocol.md, "PyTorch against itself"): `a` and `b` are two runs of the
 * same twin that differ only by a null perturbation (the input normalisation rounded in float32 instead of
 * normkit's way: ≤ 2.4e-7 per pixel). Per cell, the largest difference of a seed's two runs; a cell whose
 * runs move by more than `threshold` (default 1 point) is rounding-chaotic — there a run's accuracy is
 * not a property of the method or of the implementation, and two seeds cannot pin the cell down. Only
 * seeds present on both sides count (`seeds` lists them); a cell with none, or with a NaN accuracy, has
 * maxRunDiff NaN and is not chaotic.
 */
export function reproducibility(
  a: readonly ExperimentRecord[], b: readonly ExperimentRecord[], cellFields: readonly string[], seeds: readonly number[] = [0, 1], threshold = 0.01,
): ReproducibilityCell[] {
  const inB = new Map(b.filter((r) => seeds.includes(r.seed)).map((r) => [runKey(r, cellFields), r]));
  const cells = new Map<string, ReproducibilityCell>();
  for (const r of a) {
    if (!seeds.includes(r.seed)) continue;
    const key = cellKey(r, cellFields);
    const c = cells.get(key) ?? { key, fields: fieldsOf(r, cellFields), seeds: [], maxRunDiff: NaN, chaotic: false };
    cells.set(key, c);
    const o = inB.get(runKey(r, cellFields));
    if (!o) continue;
    const d = Math.abs(r.test_accuracy - o.test_accuracy);
    c.maxRunDiff = c.seeds.length === 0 ? d : Math.max(c.maxRunDiff, d); // a NaN accuracy stays NaN: not chaotic, not excused
    c.seeds.push(r.seed);
    c.chaotic = c.maxRunDiff > threshold + 1e-9;
  }
  return [...cells.values()];
}

/** One side of a {@link compareDistributions} cell. */
export interface SampleStats {
  n: number;
  /** Mean test accuracy, 0..1. */
  mean: number;
  /** The sample standard deviation (n − 1), 0..1. */
  sd: number;
}

export interface DistributionComparison {
  key: string;
  fields: Record<string, unknown>;
  /** The seeds, the same on both sides. */
  seeds: number[];
  ours: SampleStats;
  twin: SampleStats;
  /** ours.mean − twin.mean: the mean of the seeds' differences. */
  diff: number;
  /** The paired standard error of diff: the sample standard deviation of the seeds' differences / √n. */
  standardError: number;
  /** max(0.02, 3 · standardError). */
  tolerance: number;
  ok: boolean;
}

const sampleStats = (v: readonly number[]): SampleStats => {
  const n = v.length, mean = v.reduce((x, y) => x + y, 0) / n;
  return { n, mean, sd: n > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : NaN };
};

/** Thrown by {@link compareDistributions} when a cell's two sides did not run the same seeds once each. */
export class SeedMismatchError extends NormkitError {}

/**
 * The many-seed comparison of rounding-chaotic cells (lab-protocol.md, "PyTorch against itself"): over
 * many seeds a run is a draw from the cell's distribution of outcomes. Both sides run the same seeds
 * (the same weights and batches), so the comparison is paired: the mean of the seeds' differences must
 * lie within max(2 points, 3 paired standard errors), the standard error being the sample standard
 * deviation of the differences / √n. Cells present on both sides only, restricted to `seeds` when given;
 * each cell's two sides must hold the same seeds, each once, at least 2 (else SeedMismatchError).
 */
export function compareDistributions(
  ours: readonly ExperimentRecord[], twin: readonly ExperimentRecord[], cellFields: readonly string[], seeds?: readonly number[],
): DistributionComparison[] {
  const group = (rs: readonly ExperimentRecord[], side: string) => {
    const m = new Map<string, Map<number, ExperimentRecord>>();
    for (const r of rs) {
      if (seeds && !seeds.includes(r.seed)) continue;
      const k = cellKey(r, cellFields);
      const bySeed = m.get(k) ?? new Map<number, ExperimentRecord>();
      if (bySeed.has(r.seed)) throw new SeedMismatchError(side, "each seed once", `seed ${r.seed} twice`, k);
      m.set(k, bySeed.set(r.seed, r));
    }
    return m;
  };
  const a = group(ours, "ours"), b = group(twin, "the twin");
  const out: DistributionComparison[] = [];
  for (const [key, ra] of a) {
    const rb = b.get(key);
    if (!rb) continue;
    const s = [...ra.keys()].sort((x, y) => x - y);
    const t = [...rb.keys()].sort((x, y) => x - y);
    if (s.join() !== t.join()) throw new SeedMismatchError("the twin's seeds", `ours, ${s.join(",")}`, t.join(","), key);
    if (s.length < 2) throw new SeedMismatchError("seeds", "at least 2 on each side", String(s.length), key);
    const acc = (m: Map<number, ExperimentRecord>, seed: number) => m.get(seed)!.test_accuracy;
    const o = sampleStats(s.map((x) => acc(ra, x))), w = sampleStats(s.map((x) => acc(rb, x)));
    const d = sampleStats(s.map((x) => acc(ra, x) - acc(rb, x)));
    const standardError = d.sd / Math.sqrt(d.n);
    const tolerance = Math.max(0.02, 3 * standardError);
    out.push({ key, fields: fieldsOf(ra.get(s[0]!)!, cellFields), seeds: s, ours: o, twin: w, diff: d.mean, standardError, tolerance, ok: Math.abs(d.mean) <= tolerance + 1e-9 });
  }
  return out;
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
