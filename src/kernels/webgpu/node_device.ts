/// <reference types="@webgpu/types" preserve="true" />
/**
 * Node only: a GpuContext on Dawn for Node (the `webgpu` npm package). The core WebGPU backend
 * takes any GPUDevice and never imports this file; the command line, tests and benchmarks do.
 *
 * Without a GPU, Dawn runs on SwiftShader's Vulkan driver (shipped in Debian's chromium package):
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
 * (with libvulkan1 installed). The error for a missing adapter says so.
 */
import { existsSync } from "node:fs";
import { GpuContext, RequestOptions, requestGpuContext } from "./device.js";
import { WebGpuError } from "./errors.js";
import type { EngineOptions } from "./engine.js";
import { WebGpuDevice } from "./webgpu_device.js";

export const SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";

/** Kept alive for the life of the process: Dawn's instance must outlive its devices. */
const instances: unknown[] = [];

export interface NodeGpuOptions extends RequestOptions {
  /** Set VK_ICD_FILENAMES to SwiftShader's ICD when it is unset and the file exists (tests on machines without a GPU). */
  swiftshaderFallback?: boolean;
}

export async function createNodeGpuContext(opts: NodeGpuOptions = {}): Promise<GpuContext> {
  if (opts.swiftshaderFallback && !process.env["VK_ICD_FILENAMES"] && !process.env["VK_DRIVER_FILES"] && existsSync(SWIFTSHADER_ICD)) {
    process.env["VK_ICD_FILENAMES"] = SWIFTSHADER_ICD;
  }
  let mod: typeof import("webgpu");
  try {
    mod = await import("webgpu");
  } catch (e) {
    throw new WebGpuError("no-adapter", `the "webgpu" package (Dawn for Node) could not be loaded (${(e as Error).message.split("\n")[0]}); install it with: npm install webgpu`);
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  instances.push(gpu);
  try {
    return await requestGpuContext(gpu, opts);
  } catch (e) {
    if (e instanceof WebGpuError && e.kind === "no-adapter") {
      const icd = process.env["VK_ICD_FILENAMES"] ?? process.env["VK_DRIVER_FILES"];
      const hint = icd
        ? `Vulkan driver file ${icd}${existsSync(icd) ? "" : " does not exist"}; is libvulkan1 installed?`
        : `without a GPU, install libvulkan1 and chromium and set VK_ICD_FILENAMES=${SWIFTSHADER_ICD}`;
      throw new WebGpuError("no-adapter", `no WebGPU adapter found through Dawn/Vulkan (${hint})`);
    }
    throw e;
  }
}

/** A WebGPU device (for `module.to(device)`) on Dawn for Node; see {@link createNodeGpuContext}. */
export async function createNodeWebGpuDevice(opts: NodeGpuOptions & { engine?: EngineOptions } = {}): Promise<WebGpuDevice> {
  return new WebGpuDevice(await createNodeGpuContext(opts), opts.engine ?? {});
}
