/** `normkit conformance FILE [--dtype float32|float64]` */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { checkOps, formatResult, runCase } from "../conformance/runner.js";
import { FixtureError, validateFixture } from "../conformance/fixture.js";
import type { DType } from "../tensor.js";

export const CONFORMANCE_USAGE = `usage: normkit conformance FILE [--dtype float64|float32] [--backend cpu]

Runs every case of a reference fixture file (see test/data/FORMAT.md) and prints one line per case
(PASS/FAIL, the worst relative error and where) and a closing "N passed, M failed".
Tolerance: 1e-9 (float64) or 1e-4 (float32) times max(1, max|want|). Exit 0 when all pass, 1 otherwise.`;

export function conformance(argv: string[], log: (s: string) => void, err: (s: string) => void): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { dtype: { type: "string", default: "float64" }, backend: { type: "string", default: "cpu" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    err(`normkit conformance: ${(e as Error).message}`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    log(CONFORMANCE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    err(`normkit conformance: expected one FILE argument, got ${positionals.length}\n${CONFORMANCE_USAGE}`);
    return 1;
  }
  const dtype = values.dtype as string;
  if (dtype !== "float32" && dtype !== "float64") {
    err(`normkit conformance: --dtype: expected float32 or float64, got "${dtype}"`);
    return 1;
  }
  if (values.backend !== "cpu") {
    err(`normkit conformance: --backend: expected cpu (the only backend in this build), got "${values.backend}"`);
    return 1;
  }
  const file = positionals[0]!;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    err(`normkit conformance: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 1;
  }
  let passed = 0, failed = 0;
  try {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FixtureError(`${file} is not valid JSON (${(e as Error).message})`);
    }
    const fixture = validateFixture(json);
    checkOps(fixture);
    for (const c of fixture.cases) {
      const r = runCase(c, dtype as DType);
      log(formatResult(r));
      if (r.pass) passed++;
      else failed++;
    }
  } catch (e) {
    if (e instanceof FixtureError) {
      err(`normkit conformance: malformed fixture: ${e.message}`);
      return 1;
    }
    throw e;
  }
  log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
