/** `normkit conformance FILE [--dtype float32|float64]` */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { checkOps, formatResult, runCase } from "../conformance/runner.js";
import type { CaseResult } from "../conformance/runner.js";
import type { FixtureCase } from "../conformance/fixture.js";
import { FixtureError, validateFixture } from "../conformance/fixture.js";
import type { DType } from "../tensor.js";

export const CONFORMANCE_USAGE = `usage: normkit conformance FILE [--dtype float64|float32] [--backend cpu|webgpu]

Runs every case of a reference fixture file (see test/data/FORMAT.md) and prints one line per case
(PASS/FAIL, the worst relative error and where) and a closing "N passed, M failed".
Tolerance: 1e-9 (float64) or 1e-4 (float32) times max(1, max|want|). Exit 0 when all pass, 1 otherwise.
--backend webgpu runs the cases on the GPU through Dawn for Node (the "webgpu" package; float32 only,
the default there) at the GPU tolerances: 1e-4, and 1e-2 on cases named *_large_offset. Without a GPU,
Dawn runs on SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (libvulkan1 installed).`;

export async function conformance(argv: string[], log: (s: string) => void, err: (s: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { dtype: { type: "string" }, backend: { type: "string", default: "cpu" }, help: { type: "boolean", short: "h" } },
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
  const backend = values.backend as string;
  if (backend !== "cpu" && backend !== "webgpu") {
    err(`normkit conformance: --backend: expected cpu or webgpu, got "${backend}"`);
    return 1;
  }
  const dtype = (values.dtype as string | undefined) ?? (backend === "webgpu" ? "float32" : "float64");
  if (dtype !== "float32" && dtype !== "float64") {
    err(`normkit conformance: --dtype: expected float32 or float64, got "${dtype}"`);
    return 1;
  }
  if (backend === "webgpu" && dtype !== "float32") {
    err(`normkit conformance: --backend webgpu runs float32 only (WGSL has no float64), got --dtype ${dtype}`);
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
    let run: (c: FixtureCase) => CaseResult | Promise<CaseResult> = (c) => runCase(c, dtype as DType);
    if (backend === "webgpu") {
      const gpu = await webgpuRunner(err);
      if (!gpu) return 1;
      run = gpu;
    }
    for (const c of fixture.cases) {
      const r = await run(c);
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

/** The WebGPU case runner on a Dawn-for-Node device, or null (after a one-line error) without an adapter. */
async function webgpuRunner(err: (s: string) => void): Promise<((c: FixtureCase) => Promise<CaseResult>) | null> {
  const { createNodeGpuContext } = await import("../kernels/webgpu/node_device.js");
  const { runCaseWebGpu, WebGpuError } = await import("../kernels/webgpu/index.js");
  try {
    const ctx = await createNodeGpuContext();
    return (c) => runCaseWebGpu(ctx, c);
  } catch (e) {
    if (e instanceof WebGpuError) {
      err(`normkit conformance: ${e.message}`);
      return null;
    }
    throw e;
  }
}
