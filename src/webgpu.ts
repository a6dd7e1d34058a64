/**
 * normkit/webgpu — the WebGPU device and its kernels. Portable: it takes a GPUDevice
 * (navigator.gpu in browsers; in Node see normkit/webgpu/node) and uses no Node API.
 *
 *   const gpu = await requestWebGpuDevice(navigator.gpu);      // or webgpuDevice(await GpuContext.create(device))
 *   const bn = await new BatchNorm2d({ numFeatures: 64 }).to(gpu);
 *   const y = bn.forward(gpu.upload(x));                      // enqueued; stays on the GPU
 *   const dx = bn.backward(gpu.upload(dy));
 *   const host = await gpu.download(dx);                      // explicit; throws on any GPU error
 */
export { WebGpuDevice, webgpuDevice, requestWebGpuDevice } from "./kernels/webgpu/webgpu_device.js";
export { WebGpuKernelSet } from "./kernels/webgpu/kernel_set.js";
export { GpuContext, requestGpuContext } from "./kernels/webgpu/device.js";
export type { GpuContextOptions, RequestOptions, Program, PreparedDispatch, GpuRun } from "./kernels/webgpu/device.js";
export { WebGpuError } from "./kernels/webgpu/errors.js";
export type { WebGpuErrorKind } from "./kernels/webgpu/errors.js";
export { GpuTensor, uploadTensor, downloadTensor, writeTensor } from "./kernels/webgpu/tensor.js";
export type { EngineOptions } from "./kernels/webgpu/engine.js";
export {
  weightNormForward, weightNormBackward, l2NormalizeForward, l2NormalizeBackward, normsBuffer, rowsOf, columnsOf,
} from "./kernels/webgpu/vector_ops.js";
export type { VectorLayout } from "./kernels/webgpu/vector_ops.js";
export { runCaseWebGpu, computeCaseWebGpu, gpuTolerance } from "./conformance/webgpu.js";
export { WORKGROUP_SIZE } from "./kernels/webgpu/wgsl.js";
