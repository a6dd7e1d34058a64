/// <reference types="@webgpu/types" />
/**
 * A WebGPU device: GpuTensors (float32) on one GPUDevice, computed by the WebGPU kernel set. Any
 * module that supports it moves there with `await module.to(device)`.
 *
 *   const gpu = await requestWebGpuDevice(navigator.gpu);   // a browser; in Node see ./node_device.ts
 *   await bn.to(gpu);
 *   const y = bn.forward(gpu.upload(x));                      // enqueued; nothing is read back
 *   const host = await gpu.download(y);                       // explicit; throws on any GPU error
 */
import type { DType, Tensor } from "../../tensor.js";
import type { Device } from "../contract/device.js";
import { GpuContext, RequestOptions, requestGpuContext } from "./device.js";
import type { EngineOptions } from "./engine.js";
import { WebGpuKernelSet } from "./kernel_set.js";
import { GpuTensor, downloadTensor, uploadTensor } from "./tensor.js";

export class WebGpuDevice implements Device {
  readonly type = "webgpu" as const;
  readonly dtypes: readonly DType[] = Object.freeze(["float32"] as DType[]);
  readonly kernels: WebGpuKernelSet;
  readonly label: string;

  /** A device over a context; `engine` tunes the kernels (tests force their paths with it). */
  constructor(readonly ctx: GpuContext, engine: EngineOptions = {}) {
    this.kernels = new WebGpuKernelSet(ctx, engine);
    const info = (ctx.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const name = info ? [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ") : "";
    this.label = name ? `webgpu (${name})` : "webgpu";
  }

  holds(t: Tensor): boolean {
    return t instanceof GpuTensor && t.ctx === this.ctx && !t.isDestroyed;
  }
  zeros(shape: readonly number[], _dtype: DType = "float32"): GpuTensor {
    return GpuTensor.zerosOn(this.ctx, shape);
  }
  upload(t: Tensor, _dtype: DType = "float32"): GpuTensor {
    return uploadTensor(this.ctx, t);
  }
  download(t: Tensor, dtype: DType = "float32"): Promise<Tensor> {
    return downloadTensor(t as GpuTensor, dtype);
  }
  fillZero(t: Tensor): void {
    const g = t as GpuTensor;
    const enc = this.ctx.device.createCommandEncoder();
    enc.clearBuffer(g.buffer);
    this.ctx.scoped(() => this.ctx.device.queue.submit([enc.finish()]));
  }
}

/** A WebGPU device over an existing context. */
export function webgpuDevice(ctx: GpuContext, engine: EngineOptions = {}): WebGpuDevice {
  return new WebGpuDevice(ctx, engine);
}

/** Requests an adapter and a device from `gpu` (navigator.gpu in a browser) and wraps them. */
export async function requestWebGpuDevice(gpu: GPU | null | undefined, opts: RequestOptions & { engine?: EngineOptions } = {}): Promise<WebGpuDevice> {
  return new WebGpuDevice(await requestGpuContext(gpu, opts), opts.engine ?? {});
}
