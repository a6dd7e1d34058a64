/**
 * normkit's WebGPU backend. Portable: it takes a GPUDevice (navigator.gpu in browsers; in Node see
 * node_device.ts) and uses no Node API.
 *
 *   const ctx = await requestGpuContext(navigator.gpu);          // or GpuContext.create(device)
 *   const bn = gpuLayer(ctx, new BatchNorm2d({ numFeatures: 64 }));
 *   const y = bn.forward(uploadTensor(ctx, x));                 // stays on the GPU
 *   const dx = bn.backward(uploadTensor(ctx, dy));
 *   const host = await downloadTensor(dx);                      // explicit; throws on any GPU error
 */
export { GpuContext, requestGpuContext } from "./device.js";
export type { GpuContextOptions, RequestOptions, Program, PreparedDispatch, GpuRun } from "./device.js";
export { WebGpuError } from "./errors.js";
export type { WebGpuErrorKind } from "./errors.js";
export { GpuTensor, uploadTensor, downloadTensor, writeTensor } from "./tensor.js";
export type { GpuNormKernels, GpuStats, GpuRunning, GpuScratch } from "./contract.js";
export { WebGpuNormKernels, Scratch, createStats, makeView } from "./engine.js";
export type { EngineOptions, View } from "./engine.js";
export { GpuLayer, GpuNormalization, GpuSwitchableNorm, gpuLayer } from "./layers.js";
export type { GpuParameter } from "./layers.js";
export {
  weightNormForward, weightNormBackward, l2NormalizeForward, l2NormalizeBackward, normsBuffer, rowsOf, columnsOf,
} from "./vector_ops.js";
export type { VectorLayout } from "./vector_ops.js";
export { runCaseWebGpu, computeCaseWebGpu, gpuTolerance } from "./conformance.js";
export { WORKGROUP_SIZE } from "./wgsl.js";
