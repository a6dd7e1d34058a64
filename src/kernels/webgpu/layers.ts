/// <reference types="@webgpu/types" />
/**
 * The layers on the GPU. A GPU layer is the twin of a CPU layer: build and configure the layer as
 * usual (options, validation, state dicts — src/layers/), then `gpuLayer(ctx, layer)` copies its
 * parameters and running statistics to the GPU. forward / backward take and return GpuTensors and
 * keep everything on the GPU, with the CPU layers' semantics (training / eval, running statistics
 * updated on the GPU, gradients ACCUMULATED into `grad`, PyTorch's checks). `stateDict()` and
 * `copyTo(layer)` bring parameters, gradients and buffers back explicitly.
 *
 *   const gpu = gpuLayer(ctx, new BatchNorm2d({ numFeatures: 64 }));
 *   const y = gpu.forward(uploadTensor(ctx, x));
 *   const host = await downloadTensor(y);
 */
import type { AffineKind, NormShape, StatsConfig } from "../ts/norm.js";
import { numStats, statCount } from "../ts/norm.js";
import { ShapeError, StateError, fmtShape } from "../../errors.js";
import type { Module } from "../../nn/module.js";
import { BatchNorm, GroupNorm, InstanceNorm, LayerNorm, Normalization, RMSNorm } from "../../nn/normalization.js";
import { SwitchableNorm } from "../../nn/switchable_norm.js";
import { Tensor, sameShape, sizeOf } from "../../tensor.js";
import type { GpuContext, GpuRun } from "./device.js";
import type { GpuRunning, GpuStats } from "./contract.js";
import { EngineOptions, Scratch, WebGpuNormKernels, createStats, makeView } from "./engine.js";
import { WebGpuError } from "./errors.js";
import { GpuTensor, downloadTensor, uploadTensor } from "./tensor.js";
import { WORKGROUP_SIZE as WG } from "./wgsl.js";
import { SN_U, switchBackwardProgram, switchDxProgram, switchMixProgram, switchableLayout } from "./kernels/switchable.js";

/** A parameter on the GPU: value and accumulated gradient. */
export interface GpuParameter {
  readonly value: GpuTensor;
  readonly grad: GpuTensor;
}

function gpuParam(ctx: GpuContext, t: Tensor, label: string): GpuParameter {
  return { value: uploadTensor(ctx, t, undefined, label), grad: GpuTensor.zeros(ctx, t.shape, `${label}.grad`) };
}

/** Common to the GPU layers. */
export abstract class GpuLayer {
  readonly ctx: GpuContext;
  readonly kernels: WebGpuNormKernels;
  training = true;
  protected readonly scratch: Scratch;

  protected constructor(ctx: GpuContext, options: EngineOptions) {
    this.ctx = ctx;
    this.kernels = new WebGpuNormKernels(ctx, options);
    this.scratch = new Scratch(ctx);
  }

  abstract forward(x: GpuTensor, out?: GpuTensor): GpuTensor;
  abstract backward(dy: GpuTensor, out?: GpuTensor): GpuTensor;
  abstract namedParameters(): Record<string, GpuParameter>;
  namedBuffers(): Record<string, GpuTensor> {
    return {};
  }
  /** Host-side buffers (num_batches_tracked). */
  protected hostBuffers(): Record<string, Tensor> {
    return {};
  }

  train(mode = true): this {
    this.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Zeroes every gradient on the GPU. */
  zeroGrad(): void {
    for (const p of Object.values(this.namedParameters())) {
      const enc = this.ctx.device.createCommandEncoder();
      enc.clearBuffer(p.grad.buffer);
      this.ctx.scoped(() => this.ctx.device.queue.submit([enc.finish()]));
    }
  }

  /** Parameters and buffers downloaded (PyTorch key names). */
  async stateDict(): Promise<Record<string, Tensor>> {
    const out: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(this.namedParameters())) out[k] = await downloadTensor(p.value);
    for (const [k, b] of Object.entries(this.namedBuffers())) out[k] = await downloadTensor(b);
    Object.assign(out, this.hostBuffers());
    return out;
  }

  /** Gradients downloaded, keyed by parameter name. */
  async grads(): Promise<Record<string, Tensor>> {
    const out: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(this.namedParameters())) out[k] = await downloadTensor(p.grad);
    return out;
  }

  /** Copies parameters, gradients and buffers back into a CPU layer (converted to its dtype). */
  async copyTo(layer: Module): Promise<void> {
    layer.loadStateDict(await this.stateDict());
    const grads = await this.grads();
    for (const [k, p] of Object.entries(layer.namedParameters())) if (grads[k]) p.grad.data.set(grads[k]!.data);
  }

  protected submit(run: GpuRun): void {
    if (this.recording) this.recording.push(...run);
    else this.ctx.submit(run);
  }
  private recording: GpuRun | null = null;

  /**
   * The dispatches `fn` would submit (a forward and/or backward call), recorded instead of run, for
   * re-encoding many times (benchmarks). Host-side effects of the calls (the cache for backward,
   * num_batches_tracked) happen once, at recording.
   */
  record(fn: () => void): GpuRun {
    const out: GpuRun = [];
    this.recording = out;
    try {
      fn();
    } finally {
      this.recording = null;
    }
    return out;
  }

  protected output(x: GpuTensor, out: GpuTensor | undefined, what: string): GpuTensor {
    if (out) {
      if (!sameShape(out.shape, x.shape)) throw new ShapeError("out", `shape ${fmtShape(x.shape)}`, `shape ${fmtShape(out.shape)}`, what);
      return out;
    }
    return GpuTensor.zeros(this.ctx, x.shape, what);
  }

  protected ensureStats(count: number): GpuStats {
    if (!this.statsBuf || this.statsBuf.count < count) {
      this.statsBuf?.buffer.destroy();
      this.statsBuf = createStats(this.ctx, count);
    }
    return this.statsBuf;
  }
  private statsBuf: GpuStats | null = null;
}

type Method = "batch" | "instance" | "group" | "layer" | "rms";

interface Cache {
  x: GpuTensor;
  shape: NormShape;
  cfg: StatsConfig;
  stats: GpuStats;
  fixed: boolean;
}

/** BatchNorm, InstanceNorm, GroupNorm, LayerNorm and RMSNorm on the GPU. */
export class GpuNormalization extends GpuLayer {
  readonly method: Method;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affineKind: AffineKind;
  readonly weight: GpuParameter | null;
  readonly bias: GpuParameter | null;
  readonly runningMean: GpuTensor | null;
  readonly runningVar: GpuTensor | null;
  numBatchesTracked: number;
  private readonly numChannels: number;
  private readonly groupSize: number;
  private readonly normalizedShape: readonly number[];
  private readonly minRank: number;
  private cache: Cache | null = null;

  constructor(ctx: GpuContext, layer: Normalization, options: EngineOptions = {}) {
    super(ctx, options);
    const name = layer.constructor.name;
    if (layer instanceof BatchNorm) this.method = "batch";
    else if (layer instanceof InstanceNorm) this.method = "instance";
    else if (layer instanceof GroupNorm) this.method = "group";
    else if (layer instanceof LayerNorm) this.method = "layer";
    else if (layer instanceof RMSNorm) this.method = "rms";
    else throw new WebGpuError("unsupported", `${name} has no WebGPU twin`);
    if ((layer as { channelsLast?: boolean }).channelsLast) throw new WebGpuError("unsupported", `${name}: channelsLast is not implemented by the WebGPU backend`);
    this.training = layer.training;
    this.eps = layer.eps;
    this.momentum = layer.momentum;
    this.weight = layer.weight ? gpuParam(ctx, layer.weight.value, `${name}.weight`) : null;
    this.bias = layer.bias ? gpuParam(ctx, layer.bias.value, `${name}.bias`) : null;
    this.runningMean = layer.runningMean ? uploadTensor(ctx, layer.runningMean, undefined, `${name}.running_mean`) : null;
    this.runningVar = layer.runningVar ? uploadTensor(ctx, layer.runningVar, undefined, `${name}.running_var`) : null;
    this.numBatchesTracked = layer.numBatchesTracked ? layer.numBatchesTracked.data[0]! : 0;
    if (layer instanceof BatchNorm || layer instanceof InstanceNorm) {
      this.numChannels = layer.numFeatures;
      this.groupSize = 1;
      this.normalizedShape = [];
      this.minRank = layer instanceof BatchNorm ? 2 : 3;
      this.affineKind = "channel";
    } else if (layer instanceof GroupNorm) {
      this.numChannels = layer.numChannels;
      this.groupSize = layer.numChannels / layer.numGroups;
      this.normalizedShape = [];
      this.minRank = 2;
      this.affineKind = "channel";
    } else {
      const l = layer as LayerNorm | RMSNorm;
      this.numChannels = 1;
      this.groupSize = 1;
      this.normalizedShape = l.normalizedShape;
      this.minRank = l.normalizedShape.length;
      this.affineKind = this.weight ? "element" : "none";
    }
  }

  override namedParameters(): Record<string, GpuParameter> {
    const out: Record<string, GpuParameter> = {};
    if (this.weight) out["weight"] = this.weight;
    if (this.bias) out["bias"] = this.bias;
    return out;
  }
  override namedBuffers(): Record<string, GpuTensor> {
    return this.runningMean && this.runningVar ? { running_mean: this.runningMean, running_var: this.runningVar } : {};
  }
  protected override hostBuffers(): Record<string, Tensor> {
    return this.runningMean ? { num_batches_tracked: Tensor.from([this.numBatchesTracked], [], "float64") } : {};
  }

  private plan(x: GpuTensor): { shape: NormShape; cfg: StatsConfig } {
    const ctx = `Gpu${this.method}.forward`;
    x.assertAlive(ctx);
    if (x.rank < this.minRank) throw new ShapeError("x", `rank ≥ ${this.minRank}`, `shape ${fmtShape(x.shape)}`, ctx);
    if (x.size === 0) throw new ShapeError("x", "a non-empty tensor", `shape ${fmtShape(x.shape)}`, ctx);
    if (this.method === "layer" || this.method === "rms") {
      const ns = this.normalizedShape;
      if (!sameShape(x.shape.slice(x.rank - ns.length), ns)) throw new ShapeError("x", `trailing dims ${fmtShape(ns)} (normalizedShape)`, `shape ${fmtShape(x.shape)}`, ctx);
      const K = sizeOf(ns);
      return { shape: { N: x.size / K, C: 1, S: K, channelsLast: false }, cfg: { perSample: true, groupSize: 1, center: this.method === "layer" } };
    }
    const N = x.shape[0]!, C = x.shape[1]!;
    if (C !== this.numChannels) throw new ShapeError("x", `${this.numChannels} channels at dim 1`, `${C} (shape ${fmtShape(x.shape)})`, ctx);
    const shape = { N, C, S: x.size / (N * C), channelsLast: false };
    return { shape, cfg: { perSample: this.method !== "batch", groupSize: this.groupSize, center: true } };
  }

  forward(x: GpuTensor, out?: GpuTensor): GpuTensor {
    const ctx = `Gpu${this.method}.forward`;
    const { shape, cfg: planCfg } = this.plan(x);
    const fixed = !this.training && this.runningMean !== null;
    let cfg = planCfg;
    if (!fixed) {
      if (this.method === "batch" && statCount(shape, cfg) <= 1) throw new ShapeError("x", "more than 1 value per channel when training", `shape ${fmtShape(x.shape)}`, ctx);
      if (this.method === "instance" && shape.S <= 1) throw new ShapeError("x", "more than 1 spatial element when training", `shape ${fmtShape(x.shape)}`, ctx);
    } else cfg = { perSample: false, groupSize: 1, center: true };
    const y = this.output(x, out, ctx);
    const stats = this.ensureStats(numStats(shape, cfg));
    const w = this.weight?.value ?? null, b = this.bias?.value ?? null;
    let run: GpuRun;
    let running: GpuRunning | null = null;
    if (fixed) {
      run = [...this.kernels.evalStatistics(this.runningMean!, this.runningVar!, this.eps, stats), ...this.kernels.normalizeForward(y, x, shape, cfg, stats, this.affineKind, w, b)];
    } else {
      if (this.training && this.runningMean && this.runningVar) {
        if (this.method === "batch") {
          running = { mean: this.runningMean, var: this.runningVar, policy: "batch" as const, factor: this.momentum ?? 1 / (this.numBatchesTracked + 1) };
        } else {
          // PyTorch's InstanceNorm passes momentum None on as 0.0: the running statistics stay.
          running = { mean: this.runningMean, var: this.runningVar, policy: "instance" as const, factor: this.momentum ?? 0 };
        }
      }
      run = this.kernels.forwardTrain(y, x, shape, cfg, this.eps, this.affineKind, w, b, stats, running, this.scratch);
    }
    this.submit(run);
    if (running?.policy === "batch") this.numBatchesTracked += 1;
    this.cache = { x, shape, cfg, stats, fixed };
    return y;
  }

  backward(dy: GpuTensor, out?: GpuTensor): GpuTensor {
    const ctx = `Gpu${this.method}.backward`;
    const c = this.cache;
    if (!c) throw new StateError("backward", "a preceding forward()", "no cached forward", ctx);
    if (!sameShape(dy.shape, c.x.shape)) throw new ShapeError("dy", `shape ${fmtShape(c.x.shape)} (the input's)`, `shape ${fmtShape(dy.shape)}`, ctx);
    const dx = this.output(c.x, out, ctx);
    this.submit(this.kernels.normalizeBackward(
      dx, this.weight?.grad ?? null, this.bias?.grad ?? null, dy, c.x, c.shape, c.cfg, c.stats, this.affineKind,
      this.weight?.value ?? null, c.fixed, this.scratch,
    ));
    return dx;
  }
}

const IN_CFG: StatsConfig = { perSample: true, groupSize: 1, center: true };

interface SNCache {
  x: GpuTensor;
  shape: NormShape;
  bnFromBatch: boolean;
  uniforms: Parameters<typeof SN_U.pack>[0];
}

/** Switchable Normalization on the GPU (twin of SwitchableNorm1d/2d/3d). */
export class GpuSwitchableNorm extends GpuLayer {
  readonly spatialDims: number;
  readonly components: readonly string[];
  readonly eps: number;
  readonly momentum: number;
  readonly usingMovingAverage: boolean;
  readonly usingBN: boolean;
  readonly variance: "reference" | "paper";
  readonly numFeatures: number;
  readonly weight: GpuParameter;
  readonly bias: GpuParameter;
  readonly meanWeight: GpuParameter;
  readonly varWeight: GpuParameter;
  readonly runningMean: GpuTensor | null;
  readonly runningVar: GpuTensor | null;
  private cache: SNCache | null = null;
  private readonly bufs = new Map<string, GPUBuffer>();

  constructor(ctx: GpuContext, layer: SwitchableNorm, options: EngineOptions = {}) {
    super(ctx, options);
    if (layer.channelsLast) throw new WebGpuError("unsupported", `${layer.constructor.name}: channelsLast is not implemented by the WebGPU backend`);
    this.training = layer.training;
    this.spatialDims = layer.spatialDims;
    this.components = layer.components;
    this.eps = layer.eps;
    this.momentum = layer.momentum;
    this.usingMovingAverage = layer.usingMovingAverage;
    this.usingBN = layer.usingBN;
    this.variance = layer.variance;
    this.numFeatures = layer.numFeatures;
    this.weight = gpuParam(ctx, layer.weight.value, "weight");
    this.bias = gpuParam(ctx, layer.bias.value, "bias");
    this.meanWeight = gpuParam(ctx, layer.meanWeight.value, "mean_weight");
    this.varWeight = gpuParam(ctx, layer.varWeight.value, "var_weight");
    this.runningMean = layer.runningMean ? uploadTensor(ctx, layer.runningMean, undefined, "running_mean") : null;
    this.runningVar = layer.runningVar ? uploadTensor(ctx, layer.runningVar, undefined, "running_var") : null;
  }

  override namedParameters(): Record<string, GpuParameter> {
    return { weight: this.weight, bias: this.bias, mean_weight: this.meanWeight, var_weight: this.varWeight };
  }
  override namedBuffers(): Record<string, GpuTensor> {
    return this.runningMean && this.runningVar ? { running_mean: this.runningMean, running_var: this.runningVar } : {};
  }

  private buf(name: string, bytes: number): GPUBuffer {
    let b = this.bufs.get(name);
    if (!b || b.size < bytes) {
      b?.destroy();
      b = this.ctx.createStorage(bytes, `switchable ${name}`);
      this.bufs.set(name, b);
    }
    return b;
  }

  forward(x: GpuTensor, out?: GpuTensor): GpuTensor {
    const ctx = "GpuSwitchableNorm.forward";
    const rank = this.spatialDims + 2;
    if (x.rank !== rank) throw new ShapeError("x", `rank ${rank}`, `shape ${fmtShape(x.shape)}`, ctx);
    if (x.shape[1] !== this.numFeatures) throw new ShapeError("x", `${this.numFeatures} channels (num_features)`, `shape ${fmtShape(x.shape)}`, ctx);
    if (x.size === 0) throw new ShapeError("x", "a non-empty tensor", `shape ${fmtShape(x.shape)}`, ctx);
    const N = x.shape[0]!, C = this.numFeatures, S = x.size / (N * C);
    const ref = this.variance === "reference";
    const bnFromBatch = this.usingBN && this.training;
    if (ref && this.spatialDims > 0 && S < 2) throw new ShapeError("x", "more than 1 spatial element (reference variance is unbiased)", `shape ${fmtShape(x.shape)}`, ctx);
    if (ref && this.spatialDims === 0 && C < 2) throw new ShapeError("x", "more than 1 feature (reference LN variance is unbiased)", `shape ${fmtShape(x.shape)}`, ctx);
    if (bnFromBatch && N * S < 2) throw new ShapeError("x", "more than 1 value per channel when training", `shape ${fmtShape(x.shape)}`, ctx);
    if (bnFromBatch && ref && this.spatialDims === 0 && N < 2) throw new ShapeError("x", "more than 1 sample when training (reference BN variance is unbiased)", `shape ${fmtShape(x.shape)}`, ctx);
    const shape: NormShape = { N, C, S, channelsLast: false };
    const NC = N * C;
    const idx = (k: string) => {
      const i = this.components.indexOf(k);
      return i < 0 ? 99 : i;
    };
    const v = makeView(shape, IN_CFG, this.kernels.options.vec4);
    const { floats, ...layout } = switchableLayout(N, C);
    const uniforms = {
      N, C, S, Sv: v.S, E: v.E, J: 1, ncomp: this.components.length, iIn: idx("in"), iLn: idx("ln"), iBn: idx("bn"),
      bnFromBatch: bnFromBatch ? 1 : 0, movingAverage: this.usingMovingAverage ? 1 : 0,
      fIn: ref && this.spatialDims > 0 ? S / (S - 1) : 1, fLn: ref && this.spatialDims === 0 ? C / (C - 1) : 1,
      fBn: ref && this.spatialDims === 0 ? N / (N - 1) : 1, eps: this.eps, momentum: this.momentum,
      ...layout,
    };
    const y = this.output(x, out, ctx);
    const inStats = createStatsIn(this, NC);
    const mixed = this.ensureStats(NC);
    const run: GpuRun = [...this.kernels.moments(x, shape, IN_CFG, 0, inStats, this.scratch)];
    const rb = this.usingBN ? [this.runningMean!.buffer, this.runningVar!.buffer] : [];
    run.push(this.ctx.prepare(switchMixProgram({ bn: this.usingBN }) as never, uniforms as never, [
      inStats.buffer, this.meanWeight.value.buffer, this.varWeight.value.buffer, this.buf("ws", floats * 4), mixed.buffer, ...rb,
    ], 1));
    run.push(...this.kernels.normalizeForward(y, x, shape, IN_CFG, mixed, "channel", this.weight.value, this.bias.value));
    this.submit(run);
    this.cache = { x, shape, bnFromBatch, uniforms };
    return y;
  }

  backward(dy: GpuTensor, out?: GpuTensor): GpuTensor {
    const ctx = "GpuSwitchableNorm.backward";
    const c = this.cache;
    if (!c) throw new StateError("backward", "a preceding forward()", "no cached forward", ctx);
    if (!sameShape(dy.shape, c.x.shape)) throw new ShapeError("dy", `shape ${fmtShape(c.x.shape)} (the input's)`, `shape ${fmtShape(dy.shape)}`, ctx);
    const { N, C } = c.shape;
    const NC = N * C;
    const dx = this.output(c.x, out, ctx);
    const mixed = this.ensureStats(NC);
    // row sums Σ dy, Σ dy (x - mu) per (n, c), and dweight / dbias (accumulated)
    const run: GpuRun = this.kernels.normalizeBackward(null, this.weight.grad, this.bias.grad, dy, c.x, c.shape, IN_CFG, mixed, "channel", this.weight.value, false, this.scratch);
    const { J } = this.kernels.rowChunking(c.shape, IN_CFG);
    const u = { ...c.uniforms, J };
    const ws = this.buf("ws", switchableLayout(N, C).floats * 4);
    run.push(this.ctx.prepare(switchBackwardProgram() as never, u as never, [
      mixed.buffer, this.scratch.get("sums", NC * J * 8), this.weight.value.buffer, this.meanWeight.value.buffer, this.varWeight.value.buffer,
      ws, this.meanWeight.grad.buffer, this.varWeight.grad.buffer,
    ], 1));
    run.push(this.ctx.prepare(switchDxProgram({ vec: makeView(c.shape, IN_CFG, this.kernels.options.vec4).vec }) as never, u as never, [c.x.buffer, dy.buffer, ws, dx.buffer], Math.ceil(u.E / WG)));
    this.submit(run);
    return dx;
  }
}

const inStatsOf = new WeakMap<GpuSwitchableNorm, GpuStats>();
function createStatsIn(layer: GpuSwitchableNorm, count: number): GpuStats {
  let s = inStatsOf.get(layer);
  if (!s || s.count < count) {
    s?.buffer.destroy();
    s = createStats(layer.ctx, count);
    inStatsOf.set(layer, s);
  }
  return s;
}

/** The GPU twin of a CPU normalisation layer (parameters and running statistics copied to the GPU). */
export function gpuLayer(ctx: GpuContext, layer: Normalization | SwitchableNorm, options: EngineOptions = {}): GpuNormalization | GpuSwitchableNorm {
  if (layer instanceof SwitchableNorm) return new GpuSwitchableNorm(ctx, layer, options);
  return new GpuNormalization(ctx, layer, options);
}
