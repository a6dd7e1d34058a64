/** `normkit conformance FILE [--dtype float32|float64] [--backend ts|wasm|webgpu]` */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { TOLERANCE, caseDType, formatResult, runCase, statedTolerance } from "../conformance/runner.js";
import type { CaseResult } from "../conformance/runner.js";
import type { FixtureCase } from "../conformance/fixture.js";
import { FixtureError, validateFixture } from "../conformance/fixture.js";
import * as backend from "../kernels/backend.js";
import type { DType } from "../tensor.js";

export const CONFORMANCE_USAGE = `usage: normkit conformance FILE [--dtype float64|float32] [--backend auto|ts|wasm|webgpu]

Runs every case of a reference fixture file (see test/data/FORMAT.md) and prints one line per case
(PASS/FAIL, the worst relative error and where; a case the library rejects is "FAIL name: <error>";
a case whose config.dtype names the other precision is "SKIP") and a closing "N passed, M failed"
(", K skipped" when some were). A malformed file is one error line instead.
Tolerance: 1e-9 (float64) or 1e-4 (float32) times max(1, max|want|), or the file's meta.tolerance.
Exit 0 when all pass, 1 otherwise.
--backend picks the kernel set: auto (default: WebAssembly for the float32 calls it takes, TypeScript
for the rest), ts (the TypeScript kernels), wasm (the WebAssembly SIMD kernels; float32; a call they
do not take falls back to TypeScript and the run says how many did), webgpu (the layers moved to a
WebGPU device through Dawn for Node, the "webgpu" package; float32) at the GPU tolerances: 1e-4, and
1e-2 on cases named *_large_offset. Without a GPU, Dawn runs on SwiftShader:
VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (libvulkan1 installed).
--dtype defaults to float64 (auto, ts) or float32 (wasm, webgpu).`;

const BACKENDS = ["auto", "ts", "wasm", "webgpu"] as const;
type Backend = (typeof BACKENDS)[number];

export async function conformance(argv: string[], log: (s: string) => void, err: (s: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { dtype: { type: "string" }, backend: { type: "string", default: "auto" }, help: { type: "boolean", short: "h" } },
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
  const kind = values.backend as string;
  if (!(BACKENDS as readonly string[]).includes(kind)) {
    err(`normkit conformance: --backend: expected ${BACKENDS.join(", ")}, got "${kind}"`);
    return 1;
  }
  const chosen = kind as Backend;
  const f32only = chosen === "wasm" || chosen === "webgpu";
  const dtype = (values.dtype as string | undefined) ?? (f32only ? "float32" : "float64");
  if (dtype !== "float32" && dtype !== "float64") {
    err(`normkit conformance: --dtype: expected float32 or float64, got "${dtype}"`);
    return 1;
  }
  if (f32only && dtype !== "float32") {
    err(`normkit conformance: --backend ${chosen} runs float32 only (${chosen === "webgpu" ? "WGSL has no float64" : "the WebAssembly kernels are float32"}), got --dtype ${dtype}`);
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
  let cases: FixtureCase[];
  let meta: Record<string, unknown>;
  try {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FixtureError(`${file} is not valid JSON (${(e as Error).message})`);
    }
    ({ cases, meta } = validateFixture(json));
  } catch (e) {
    if (e instanceof FixtureError) {
      err(`normkit conformance: malformed fixture: ${e.message}`);
      return 1;
    }
    throw e;
  }

  const stated = statedTolerance(meta, dtype as DType);
  let run: (c: FixtureCase) => Promise<CaseResult> = (c) => runCase(c, dtype as DType, stated ?? TOLERANCE[dtype as DType]);
  if (chosen === "webgpu") {
    const gpu = await webgpuRunner(err, stated);
    if (!gpu) return 1;
    run = gpu;
  } else {
    try {
      await backend.configure({ kernels: chosen });
    } catch (e) {
      err(`normkit conformance: --backend ${chosen}: ${(e as Error).message}`);
      return 1;
    }
  }
  let passed = 0, failed = 0, skipped = 0;
  const noWasm: string[] = [];
  for (const c of cases) {
    const meant = caseDType(c);
    if (meant !== null && meant !== dtype) {
      log(`SKIP  ${c.name}: meant for ${meant} runs (config.dtype)`);
      skipped++;
      continue;
    }
    const before = backend.info().wasmCalls;
    try {
      const r = await run(c);
      log(formatResult(r));
      if (r.pass) passed++;
      else failed++;
    } catch (e) {
      // a case the library rejects (unknown op, impossible config, refused input): reported, and the run goes on
      if (!(e instanceof FixtureError) && (e as Error | null)?.name !== "WebGpuError") throw e;
      log(`FAIL  ${c.name}: ${(e as Error).message.replace(/^case "[^"]*": /, "")}`);
      failed++;
    }
    if (chosen === "wasm" && backend.info().wasmCalls === before) noWasm.push(c.name);
  }
  if (chosen === "wasm" && noWasm.length) log(`note: ${noWasm.length} of ${cases.length} cases made no WebAssembly call (the TypeScript kernels computed them): ${noWasm.join(", ")}`);
  log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  return failed === 0 ? 0 : 1;
}

/** The WebGPU case runner on a Dawn-for-Node device, or null (after a one-line error) without an adapter. */
async function webgpuRunner(err: (s: string) => void, stated: number | null): Promise<((c: FixtureCase) => Promise<CaseResult>) | null> {
  const { createNodeGpuContext } = await import("../kernels/webgpu/node_device.js");
  const { gpuTolerance, runCaseWebGpu } = await import("../conformance/webgpu.js");
  const { WebGpuError } = await import("../kernels/webgpu/errors.js");
  try {
    const ctx = await createNodeGpuContext({ swiftshaderFallback: true });
    return (c) => runCaseWebGpu(ctx, c, {}, stated ?? gpuTolerance(c.name));
  } catch (e) {
    if (e instanceof WebGpuError) {
      err(`normkit conformance: ${e.message}`);
      return null;
    }
    throw e;
  }
}
