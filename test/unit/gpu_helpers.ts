/**
 * The WebGPU device of the GPU test files: Dawn for Node, on SwiftShader where there is no GPU
 * (VK_ICD_FILENAMES is set to SwiftShader's ICD when unset). Tests go through `requireGpu(t)`: without
 * an adapter it skips the test locally and FAILS it under CI=true (.ci/install-webgpu.sh).
 */
import assert from "node:assert/strict";
import { createNodeGpuContext } from "../../src/kernels/webgpu/node_device.js";
import { WebGpuDevice } from "../../src/webgpu.js";

let device: WebGpuDevice | null = null;
let noAdapter = "";
try {
  device = new WebGpuDevice(await createNodeGpuContext({ swiftshaderFallback: true }));
} catch (e) {
  noAdapter = (e as Error).message;
}

/** The shared WebGPU device, or null (after skipping the test, or failing it under CI). */
export function requireGpu(t: { skip(m: string): void }): WebGpuDevice | null {
  if (device) return device;
  if (process.env["CI"] === "true") assert.fail(`no WebGPU adapter under CI: ${noAdapter}`);
  t.skip(`no WebGPU adapter: ${noAdapter}`);
  return null;
}

/** The device without the skip logic (null without an adapter). */
export const gpuDevice = (): WebGpuDevice | null => device;
