/**
 * A device: where a module's tensors live and which kernel set computes on them — in the spirit of
 * PyTorch's `module.to(device)`. normkit has two: `cpu` (host typed arrays; each call runs on the
 * WebAssembly or TypeScript kernels, src/kernels/registry.ts) and a `WebGpuDevice` (GpuTensors on
 * one GPUDevice; src/kernels/webgpu/webgpu_device.ts).
 *
 *   const gpu = await requestWebGpuDevice(navigator.gpu);  // or webgpuDevice(ctx)
 *   await layer.to(gpu);       // parameters, gradients and running buffers move; the layer is the same object
 *   const y = layer.forward(gpu.upload(x));
 *   const host = await gpu.download(y);
 *   await layer.to(cpu);       // and back (a read-back, hence async)
 */
import type { DType, Tensor } from "../../tensor.js";
import type { NormKernels } from "./kernels.js";

export interface Device {
  readonly type: "cpu" | "webgpu";
  /** For messages: "cpu", "webgpu (<adapter>)". */
  readonly label: string;
  /** Storage types its tensors can have. */
  readonly dtypes: readonly DType[];
  /** The normalisation kernels of its tensors. */
  readonly kernels: NormKernels;
  /** Whether `t` lives on this device. */
  holds(t: Tensor): boolean;
  /** A zero-filled tensor on this device. */
  zeros(shape: readonly number[], dtype: DType): Tensor;
  /** A copy of host tensor `t` on this device, in `dtype` (default: t's). Synchronous. */
  upload(t: Tensor, dtype?: DType): Tensor;
  /** A host copy of `t` (a tensor of this device), in `dtype` (default: t's). */
  download(t: Tensor, dtype?: DType): Promise<Tensor>;
  /** Sets every value of `t` (a tensor of this device) to 0 — on a GPU, enqueued. */
  fillZero(t: Tensor): void;
}
