/// <reference types="@webgpu/types" />
/**
 * The WebGPU kernel set: the kernel contract (src/kernels/contract/kernels.ts) on GpuTensors. Each
 * operation prepares its dispatches with the WebGPU statistics engine (./engine.ts) and the
 * Switchable Norm kernels (./kernels/switchable.ts) and submits them to the device's queue
 * (`ctx.record` collects them instead, for benchmarks). Nothing is read back: statistics, running
 * buffers and gradients stay on the GPU.
 *
 * Only the NCHW view is implemented: `supports` refuses channels-last inputs, and a layer with
 * channelsLast refuses to move to a WebGPU device, by name (Module.to).
 */
import type { Tensor } from "../../tensor.js";
import type {
  BackwardArgs, ForwardTrainArgs, NormKernels, NormalizeArgs, Scratch, Stats, SwitchBackwardArgs, SwitchConfig,
  SwitchForwardArgs, SwitchWork,
} from "../contract/kernels.js";
import type { AffineKind, NormPlan, StatsConfig } from "../contract/view.js";
import type { GpuContext } from "./device.js";
import { EngineOptions, GpuRunning, GpuStats, Scratch as GpuScratchBuffers, WebGpuNormKernels, createStats, makeView } from "./engine.js";
import { GpuTensor } from "./tensor.js";
import { WORKGROUP_SIZE as WG } from "./wgsl.js";
import { switchBackwardProgram, switchDxProgram, switchMixProgram, switchableLayout } from "./kernels/switchable.js";

class GpuStatsObject implements Stats, GpuStats {
  constructor(readonly buffer: GPUBuffer, readonly count: number) {}
}

class GpuScratchObject implements Scratch {
  readonly kind = "scratch" as const;
  constructor(readonly buffers: GpuScratchBuffers) {}
}

/** Switchable Norm's per-(n, c) work on the GPU: the instance statistics, the mixed ones, and one buffer of the rest. */
class GpuSwitchWork implements SwitchWork {
  readonly inStats: GpuStats;
  readonly mixed: GpuStats;
  readonly ws: GPUBuffer;
  constructor(ctx: GpuContext, readonly N: number, readonly C: number) {
    this.inStats = createStats(ctx, N * C);
    this.mixed = createStats(ctx, N * C);
    this.ws = ctx.createStorage(switchableLayout(N, C).floats * 4, "switchable work");
  }
}

const IN_CFG: StatsConfig = { perSample: true, groupSize: 1, center: true };

function gpu(t: Tensor): GpuTensor {
  return t as GpuTensor;
}
function gpuOrNull(t: Tensor | null): GpuTensor | null {
  return t as GpuTensor | null;
}

export class WebGpuKernelSet implements NormKernels {
  readonly name = "webgpu" as const;
  readonly engine: WebGpuNormKernels;

  constructor(readonly ctx: GpuContext, options: EngineOptions = {}) {
    this.engine = new WebGpuNormKernels(ctx, options);
  }

  supports(x: Tensor, plan: NormPlan, _affine: AffineKind): boolean {
    return x instanceof GpuTensor && x.ctx === this.ctx && !plan.shape.channelsLast;
  }
  createStats(count: number): Stats {
    return new GpuStatsObject(this.ctx.createStorage(count * 16, "stats"), count);
  }
  createScratch(): Scratch {
    return new GpuScratchObject(new GpuScratchBuffers(this.ctx));
  }
  createSwitchWork(N: number, C: number): SwitchWork {
    return new GpuSwitchWork(this.ctx, N, C);
  }

  forwardTrain(o: ForwardTrainArgs): void {
    const r = o.running;
    const running: GpuRunning | null = r ? { mean: gpu(r.mean), var: gpu(r.variance), policy: r.policy, factor: r.factor } : null;
    this.ctx.submit(this.engine.forwardTrain(
      gpu(o.y), gpu(o.x), o.plan.shape, o.plan.cfg, o.eps, o.affine, gpuOrNull(o.weight), gpuOrNull(o.bias), o.stats as GpuStats,
      running, (o.scratch as GpuScratchObject).buffers,
    ));
  }

  statsFromRunning(o: { runningMean: Tensor; runningVar: Tensor; eps: number; stats: Stats }): void {
    this.ctx.submit(this.engine.evalStatistics(gpu(o.runningMean), gpu(o.runningVar), o.eps, o.stats as GpuStats));
  }

  normalize(o: NormalizeArgs): void {
    this.ctx.submit(this.engine.normalizeForward(
      gpu(o.y), gpu(o.x), o.plan.shape, o.plan.cfg, o.stats as GpuStats, o.affine, gpuOrNull(o.weight), gpuOrNull(o.bias),
    ));
  }

  backward(o: BackwardArgs): void {
    this.ctx.submit(this.engine.normalizeBackward(
      gpuOrNull(o.dx), gpuOrNull(o.dweight), gpuOrNull(o.dbias), gpu(o.dy), gpu(o.x), o.plan.shape, o.plan.cfg, o.stats as GpuStats,
      o.affine, gpuOrNull(o.weight), o.fixedStats, (o.scratch as GpuScratchObject).buffers,
    ));
  }

  /** The uniforms of the Switchable Norm kernels for one call. */
  private switchUniforms(plan: NormPlan, cfg: SwitchConfig, bnFromBatch: boolean, J: number) {
    const { N, C, S } = plan.shape;
    const v = makeView(plan.shape, IN_CFG, this.engine.options.vec4);
    const { floats: _floats, ...layout } = switchableLayout(N, C);
    const idx = (i: number) => (i < 0 ? 99 : i);
    return {
      N, C, S, Sv: v.S, E: v.E, J, ncomp: cfg.components, iIn: idx(cfg.index.in), iLn: idx(cfg.index.ln), iBn: idx(cfg.index.bn),
      bnFromBatch: bnFromBatch ? 1 : 0, movingAverage: cfg.movingAverage ? 1 : 0, fIn: cfg.fIn, fLn: cfg.fLn, fBn: cfg.fBn,
      eps: cfg.eps, momentum: cfg.momentum, ...layout,
    };
  }

  switchForward(o: SwitchForwardArgs): void {
    const wk = o.work as GpuSwitchWork;
    const scratch = (o.scratch as GpuScratchObject).buffers;
    const x = gpu(o.x);
    const u = this.switchUniforms(o.plan, o.config, o.bnFromBatch, 1);
    const bn = o.config.index.bn >= 0;
    const run = this.engine.moments(x, o.plan.shape, IN_CFG, 0, wk.inStats, scratch);
    const rb = bn ? [gpu(o.runningMean!).buffer, gpu(o.runningVar!).buffer] : [];
    run.push(this.ctx.prepare(switchMixProgram({ bn }) as never, u as never, [
      wk.inStats.buffer, gpu(o.meanWeight).buffer, gpu(o.varWeight).buffer, wk.ws, wk.mixed.buffer, ...rb,
    ], 1));
    run.push(...this.engine.normalizeForward(gpu(o.y), x, o.plan.shape, IN_CFG, wk.mixed, "channel", gpu(o.weight), gpu(o.bias)));
    this.ctx.submit(run);
  }

  switchBackward(o: SwitchBackwardArgs): void {
    const wk = o.work as GpuSwitchWork;
    const scratch = (o.scratch as GpuScratchObject).buffers;
    const { N, C } = o.plan.shape;
    // row sums Σ dy, Σ dy (x - mu) per (n, c), and dweight / dbias (accumulated)
    const run = this.engine.normalizeBackward(
      null, gpu(o.dweight), gpu(o.dbias), gpu(o.dy), gpu(o.x), o.plan.shape, IN_CFG, wk.mixed, "channel", gpu(o.weight), false, scratch,
    );
    const { J } = this.engine.rowChunking(o.plan.shape, IN_CFG);
    const u = this.switchUniforms(o.plan, o.config, o.bnFromBatch, J);
    run.push(this.ctx.prepare(switchBackwardProgram() as never, u as never, [
      wk.mixed.buffer, scratch.get("sums", N * C * J * 8), gpu(o.weight).buffer, gpu(o.meanWeight).buffer, gpu(o.varWeight).buffer,
      wk.ws, gpu(o.dMeanWeight).buffer, gpu(o.dVarWeight).buffer,
    ], 1));
    const vec = makeView(o.plan.shape, IN_CFG, this.engine.options.vec4).vec;
    run.push(this.ctx.prepare(switchDxProgram({ vec }) as never, u as never, [gpu(o.x).buffer, gpu(o.dy).buffer, wk.ws, gpu(o.dx).buffer], Math.ceil(u.E / WG)));
    this.ctx.submit(run);
  }
}
