/**
 * normkit — the normalization layers of deep learning, forward and backward, exact against PyTorch.
 * Everything exported here runs in Node and in browsers (no Node-only API in the core).
 */
import "./kernels/wasm/webassembly_types.js"; // the WebAssembly type names the declarations use, for consumers without them
export { Tensor, allocate, sizeOf, sameShape } from "./tensor.js";
export type { DType, FloatArray } from "./tensor.js";
export { NormkitError, ShapeError, ConfigError, StateDictError, StateError, DeviceError, SafetensorsError } from "./errors.js";

export { cpu } from "./kernels/cpu.js";
export type { Device } from "./kernels/contract/device.js";
export type {
  NormKernels, KernelSetName, Stats, Scratch, RunningUpdate, NormalizeArgs, ForwardTrainArgs, BackwardArgs, SwitchConfig, SwitchWork,
  SwitchForwardArgs, SwitchBackwardArgs,
} from "./kernels/contract/kernels.js";
export type { NormShape, StatsConfig, AffineKind } from "./kernels/contract/view.js";
export { tsKernels } from "./kernels/ts/index.js";
export { wasmKernelSet } from "./kernels/wasm/index.js";

export { Module } from "./nn/module.js";
export type { Parameter, StateDictEntry, LoadStateDictResult } from "./nn/module.js";
export {
  Normalization, BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,
  GroupNorm, LayerNorm, RMSNorm,
} from "./nn/normalization.js";
export type { BatchNormOptions, InstanceNormOptions, GroupNormOptions, LayerNormOptions, RMSNormOptions, NormPlan } from "./nn/normalization.js";
export { SwitchableNorm, SwitchableNorm1d, SwitchableNorm2d, SwitchableNorm3d } from "./nn/switchable_norm.js";
export type { SwitchableNormOptions, SwitchComponent, SwitchableStatistics } from "./nn/switchable_norm.js";

export { SyncBatchNorm, convertSyncBatchNorm } from "./nn/sync_batch_norm.js";
export type { SyncBatchNormOptions } from "./nn/sync_batch_norm.js";
export { InProcessGroup, SharedMemoryGroup, singleWorker, allReduceGradients, broadcastState } from "./nn/all_reduce.js";
export type { AllReduce, SyncGroup, InProcessGroupOptions, SharedGroupInit, SharedMemoryGroupOptions } from "./nn/all_reduce.js";

export * as functional from "./functional.js";
export * as engine from "./kernels/ts/norm.js";
export * as backend from "./kernels/backend.js";
export { WasmTensor, residentScope } from "./kernels/wasm/wasm_tensor.js";

export { validateFixture, FixtureError } from "./conformance/fixture.js";
export type { FixtureCase, FixtureFile, FixtureTensor } from "./conformance/fixture.js";
export { runCase, compareTensor, TOLERANCE, CASE_RUNNERS } from "./conformance/runner.js";
export type { CaseResult, OutputCheck } from "./conformance/runner.js";

export { Linear } from "./nn/linear.js";
export type { LinearOptions } from "./nn/linear.js";
export { LSTM } from "./nn/lstm.js";
export type { LSTMOptions, LSTMNorm, LSTMState, LSTMResult, LSTMGradients } from "./nn/lstm.js";
export { Conv2d } from "./nn/conv2d.js";
export type { Conv2dOptions } from "./nn/conv2d.js";
export { WeightNorm, weightNorm } from "./nn/weight_norm.js";
export type { WeightNormOptions } from "./nn/weight_norm.js";
export { CosineLinear, CosineConv2d } from "./nn/cosine_norm.js";
export type { CosineLinearOptions, CosineConv2dOptions } from "./nn/cosine_norm.js";
export { mulberry32, uniform } from "./rng.js";

// the training stack (host and WebGPU)
export { Sequential, ReLU, Flatten, MaxPool2d, AvgPool2d, GlobalAvgPool2d, ReuseOutputs, ReusedBuffer } from "./nn/basic.js";
export type { LayerOptions, Pool2dOptions, OutputTaking } from "./nn/basic.js";
export { softmaxCrossEntropy, crossEntropyLoss, mseLoss } from "./nn/loss.js";
export type { LossResult, CrossEntropyOptions } from "./nn/loss.js";
export { ModuleList, ModuleDict } from "./nn/containers.js";
export { Dropout } from "./nn/dropout.js";
export type { DropoutOptions } from "./nn/dropout.js";
export { summary } from "./nn/summary.js";
export type { Summary, SummaryRow } from "./nn/summary.js";
export { SGD, Adam, AdamW, clipGradNorm } from "./nn/optim.js";
export type { SGDOptions, AdamOptions, AdamWOptions } from "./nn/optim.js";
export { StepLR, ExponentialLR, CosineAnnealingLR } from "./nn/schedulers.js";
export type { HasLearningRate, StepLROptions, ExponentialLROptions, CosineAnnealingLROptions } from "./nn/schedulers.js";

// weights in and out: safetensors (the Node file helpers are in "normkit/node")
export { loadSafetensors, parseSafetensors, saveSafetensors, SAFETENSORS_DTYPES, MAX_HEADER_BYTES } from "./io/safetensors.js";
export type { SafetensorsDType, SafetensorsFloatDType, SafetensorsContents, LoadSafetensorsOptions, SaveSafetensorsOptions } from "./io/safetensors.js";
