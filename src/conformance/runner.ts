/**
 * The conformance runner: runs every case of a fixture file and compares each output tensor with
 * the reference at FORMAT.md's tolerance:  max |got - want| <= tol * max(1, max |want|), with
 * tol = 1e-9 (float64) or 1e-4 (float32). Reports the worst relative error and where it was.
 */
import { NormkitError } from "../errors.js";
import { DType, Tensor } from "../tensor.js";
import { runCosineNormCase, runWeightNormCase } from "./cases_weight.js";
import { NORM_OPS, runNormCase } from "./cases_norm.js";
import { FixtureCase, FixtureError } from "./fixture.js";

export type CaseRunner = (c: FixtureCase, dtype: DType) => Promise<Record<string, Tensor>>;

/** Ops the runner knows, each mapped to the function that runs its case (every op cases_norm.ts builds, and the two weight ops). */
export const CASE_RUNNERS: Readonly<Record<string, CaseRunner>> = {
  ...Object.fromEntries(NORM_OPS.map((op) => [op, runNormCase])),
  weight_norm: async (c, dtype) => runWeightNormCase(c, dtype),
  cosine_norm: async (c, dtype) => runCosineNormCase(c, dtype),
};

export const TOLERANCE: Readonly<Record<DType, number>> = { float64: 1e-9, float32: 1e-4 };

export interface OutputCheck {
  output: string;
  /** max |got - want| / max(1, max |want|) */
  relError: number;
  /** flat index of the worst element */
  index: number;
  /** the worst element's multi-index */
  at: number[];
  pass: boolean;
  missing?: boolean;
}

export interface CaseResult {
  name: string;
  op: string;
  pass: boolean;
  worst: OutputCheck;
  checks: OutputCheck[];
}

export function compareTensor(name: string, got: Tensor | undefined, want: { shape: number[]; data: number[] }, tol: number): OutputCheck {
  if (!got) return { output: name, relError: Infinity, index: -1, at: [], pass: false, missing: true };
  if (got.size !== want.data.length || got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) {
    return { output: name, relError: Infinity, index: -1, at: [...got.shape], pass: false };
  }
  let scale = 1;
  for (const v of want.data) scale = Math.max(scale, Math.abs(v));
  let worst = 0, idx = 0;
  for (let i = 0; i < want.data.length; i++) {
    const e = Math.abs(got.data[i]! - want.data[i]!);
    if (!(e <= worst)) { // NaN counts as worst
      worst = Number.isNaN(e) ? Infinity : e;
      idx = i;
      if (worst === Infinity) break;
    }
  }
  const rel = worst / scale;
  return { output: name, relError: rel, index: idx, at: unravel(idx, want.shape), pass: rel <= tol };
}

function unravel(i: number, shape: number[]): number[] {
  const at = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    at[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return at;
}

/** The function that runs a case's op; a FixtureError for an op the runner does not know. */
export function runnerOf(c: FixtureCase): CaseRunner {
  const run = CASE_RUNNERS[c.op];
  if (!run) throw new FixtureError(`case "${c.name}": op: expected one of ${Object.keys(CASE_RUNNERS).join(", ")}, got "${c.op}"`);
  return run;
}

/**
 * Runs one case on the host at tolerance `tol` (default FORMAT.md's for the dtype, or the file's
 * {@link statedTolerance}); a FixtureError for an unknown op or a case the library rejects.
 */
export async function runCase(c: FixtureCase, dtype: DType, tol: number = TOLERANCE[dtype]): Promise<CaseResult> {
  const run = runnerOf(c);
  let got: Record<string, Tensor>;
  try {
    got = await run(c, dtype);
  } catch (e) {
    if (e instanceof NormkitError) throw new FixtureError(`case "${c.name}": ${e.message}`);
    throw e;
  }
  return checkOutputs(c, got, tol);
}

/**
 * The tolerance a file states for its cases in `dtype` (`meta.tolerance[dtype]`, FORMAT.md), or null:
 * then FORMAT.md's (TOLERANCE on the host, gpuTolerance on a GPU) applies. A stated one wins over both.
 */
export function statedTolerance(meta: Record<string, unknown>, dtype: DType): number | null {
  const t = (meta["tolerance"] as Record<string, unknown> | undefined)?.[dtype];
  return typeof t === "number" && t > 0 ? t : null;
}

/** The dtype a case is meant for (`config.dtype`, FORMAT.md), or null for any. */
export function caseDType(c: FixtureCase): DType | null {
  const d = c.config["dtype"];
  return d === "float32" || d === "float64" ? d : null;
}

/** Compares computed outputs with every expected output of a case at tolerance `tol`. */
export function checkOutputs(c: FixtureCase, got: Record<string, Tensor>, tol: number): CaseResult {
  const checks = Object.entries(c.outputs).map(([k, want]) => compareTensor(k, got[k], want, tol));
  const worst = checks.reduce((a, b) => (b.relError > a.relError ? b : a));
  return { name: c.name, op: c.op, pass: checks.every((k) => k.pass), worst, checks };
}

export function formatResult(r: CaseResult): string {
  const w = r.worst;
  const where = w.missing ? `${w.output} not computed` : w.index < 0 ? `${w.output} shape mismatch` : `${w.output}[${w.at.join(",")}]`;
  return `${r.pass ? "PASS" : "FAIL"}  ${r.name}  worst rel err ${w.relError.toExponential(2)} at ${where}`;
}
