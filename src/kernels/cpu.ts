/** The host device: tensors in typed arrays; kernels chosen per call (src/kernels/registry.ts). */
import { DeviceError } from "../errors.js";
import type { DType, Tensor as TensorType } from "../tensor.js";
import { Tensor } from "../tensor.js";
import type { Device } from "./contract/device.js";
import { cpuKernels, getKernelMode } from "./registry.js";
import { hostOps } from "./ts/ops_set.js";
import { WasmTensor } from "./wasm/wasm_tensor.js";

/** float32 tensors up to this size live in the WebAssembly memory (bigger ones on the JS heap). */
const RESIDENT_MAX_BYTES = 2 ** 28;

/**
 * A zero tensor of the host. float32 storage goes into the WebAssembly kernels' shared memory where
 * that exists (and the kernel mode is not "ts"), so the WebAssembly kernels work on it in place —
 * activations and gradients made by the layers never cross into and out of that memory per call.
 * It is an ordinary Tensor either way; a full memory falls back to the JS heap.
 */
function hostZeros(shape: readonly number[], dtype: DType): Tensor {
  if (dtype === "float32" && getKernelMode() !== "ts") {
    let n = 1;
    for (const d of shape) n *= d;
    if (n > 0 && n * 4 <= RESIDENT_MAX_BYTES) {
      const t = WasmTensor.zerosOrNull(shape);
      if (t) return t;
    }
  }
  return Tensor.zeros(shape, dtype);
}

function hostOnly(t: TensorType, where: string): TensorType {
  if (!t.isHost) throw new DeviceError("tensor", "a host tensor", `a tensor on ${t.device}`, where);
  return t;
}

/** The device of a tensor: cpu for host tensors, a device tensor's `home`; a DeviceError without one. */
export function deviceOf(t: TensorType, ctx: string): Device {
  if (t.isHost) return cpu;
  const d = t.home;
  if (!d) throw new DeviceError("tensor", "a tensor of a device (made by a Device or moved by Module.to)", `a ${t.device} tensor without one`, ctx);
  return d;
}

export const cpu: Device<Tensor> = Object.freeze({
  type: "cpu" as const,
  label: "cpu",
  dtypes: Object.freeze(["float32", "float64"] as DType[]),
  kernels: cpuKernels,
  ops: hostOps,
  holds: (t: TensorType) => t.isHost,
  zeros: hostZeros,
  upload: (t: TensorType, dtype?: DType) => hostOnly(t, "cpu.upload").clone(dtype ?? t.dtype),
  download: async (t: TensorType, dtype?: DType) => hostOnly(t, "cpu.download").clone(dtype ?? t.dtype),
  fill: (t: TensorType, value: number) => void t.data.fill(value),
});
