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
import type { OpKernels } from "./ops.js";

/**
 * A device whose tensors are of type T (host `Tensor`s for cpu, `GpuTensor`s for WebGPU). A layer
 * holds a `Device` of any T and checks `holds(x)` before each call, so its kernel set only ever sees
 * tensors of its own type.
 */
export interface Device<T extends Tensor = Tensor> {
  readonly type: "cpu" | "webgpu";
  /** For messages: "cpu", "webgpu (<adapter>)". */
  readonly label: string;
  /** Storage types its tensors can have. */
  readonly dtypes: readonly DType[];
  /** The normalisation kernels of its tensors. */
  readonly kernels: NormKernels<T>;
  /** The training stack's kernels of its tensors (Linear, Conv2d, ReLU, pooling, loss, optimisers). */
  readonly ops: OpKernels<T>;
  /** Whether `t` lives on this device. */
  holds(t: Tensor): boolean;
  /** A zero-filled tensor on this device; a DeviceError for a dtype it does not store. */
  zeros(shape: readonly number[], dtype: DType): T;
  /** A copy of host tensor `t` on this device, in `dtype` (default: t's). Synchronous. DeviceError: a dtype it does not store, a tensor not on the host. */
  upload(t: Tensor, dtype?: DType): T;
  /** A host copy of `t` (a tensor of this device), in `dtype` (default: t's); a DeviceError for a tensor it does not hold. */
  download(t: Tensor, dtype?: DType): Promise<Tensor>;
  /** Sets every value of `t` (a tensor of this device) to `value` — on a GPU, enqueued. */
  fill(t: Tensor, value: number): void;
}
