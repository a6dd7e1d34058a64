/** The host device: tensors in typed arrays; kernels chosen per call (src/kernels/registry.ts). */
import type { DType, Tensor as TensorType } from "../tensor.js";
import { Tensor } from "../tensor.js";
import type { Device } from "./contract/device.js";
import { cpuKernels } from "./registry.js";

export const cpu: Device = Object.freeze({
  type: "cpu" as const,
  label: "cpu",
  dtypes: Object.freeze(["float32", "float64"] as DType[]),
  kernels: cpuKernels,
  holds: (t: TensorType) => t.isHost,
  zeros: (shape: readonly number[], dtype: DType) => Tensor.zeros(shape, dtype),
  upload: (t: TensorType, dtype?: DType) => t.clone(dtype ?? t.dtype),
  download: async (t: TensorType, dtype?: DType) => t.clone(dtype ?? t.dtype),
  fillZero: (t: TensorType) => void t.data.fill(0),
});
