/// <reference types="@webgpu/types" preserve="true" />
/**
 * A WebGPU device: GpuTensors (float32) on one GPUDevice, computed by the WebGPU kernel set. Any
 * module that supports it moves there with `await module.to(device)`.
 *
 *   const gpu = await requestWebGpuDevice(navigator.gpu);   // a browser; in Node see ./node_device.ts
 *   await bn.to(gpu);
 *   const y = bn.forward(gpu.upload(x));                      // enqueued; nothing is read back
 *   const host = await gpu.download(y);                       // explicit; throws on any GPU error
 */
import { DeviceError } from "../../errors.js";
import type { DType, Tensor } from "../../tensor.js";
import type { Device } from "../contract/device.js";
import { GpuContext, RequestOptions, requestGpuContext } from "./device.js";
import type { EngineOptions } from "./engine.js";
import { WebGpuKernelSet } from "./kernel_set.js";
import { WebGpuOps } from "./ops_set.js";
import { GpuTensor, clearTensors, downloadTensor, uploadTensor, writeTensor } from "./tensor.js";

export class WebGpuDevice implements Device<GpuTensor> {
  readonly type = "webgpu" as const;
  readonly dtypes: readonly DType[] = Object.freeze(["float32"] as DType[]);
  readonly kernels: WebGpuKernelSet;
  readonly ops: WebGpuOps;
  readonly label: string;

  /** A device over a context; `engine` tunes the kernels (tests force their paths with it). */
  constructor(readonly ctx: GpuContext, engine: EngineOptions = {}) {
    this.kernels = new WebGpuKernelSet(ctx, engine);
    this.ops = new WebGpuOps(ctx);
    // the context's tensors answer `home` with the first device made on it (optimisers step there)
    ctx.home ??= this;
    const info = (ctx.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const name = info ? [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ") : "";
    this.label = name ? `webgpu (${name})` : "webgpu";
  }

  holds(t: Tensor): boolean {
    return t instanceof GpuTensor && t.ctx === this.ctx && !t.isDestroyed;
  }
  zeros(shape: readonly number[], dtype: DType = "float32"): GpuTensor {
    this.checkDType(dtype, "zeros");
    return GpuTensor.zerosOn(this.ctx, shape);
  }
  /** A float32 copy of a host tensor (float64 values are rounded to float32: the storage). */
  upload(t: Tensor, dtype: DType = "float32"): GpuTensor {
    this.checkDType(dtype, "upload");
    if (!t.isHost) throw new DeviceError("tensor", "a host tensor", `a tensor on ${t.device}`, "WebGpuDevice.upload");
    return uploadTensor(this.ctx, t);
  }
  download(t: Tensor, dtype: DType = "float32"): Promise<Tensor> {
    if (!this.holds(t)) return Promise.reject(new DeviceError("tensor", `a tensor on ${this.label}`, t.isHost ? "a host tensor" : `a tensor of another ${t.device} device`, "WebGpuDevice.download"));
    return downloadTensor(t as GpuTensor, dtype);
  }
  fill(t: Tensor, value: number): void {
    const g = t as GpuTensor;
    if (value === 0) {
      clearTensors(this.ctx, [g]);
    } else {
      writeTensor(g, new Float32Array(g.size).fill(value));
    }
  }
  private checkDType(dtype: DType, method: string): void {
    if (dtype !== "float32") throw new DeviceError("dtype", "float32 (the only storage of a WebGPU device)", String(dtype), `WebGpuDevice.${method}`);
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
