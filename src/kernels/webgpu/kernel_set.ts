/// <reference types="@webgpu/types" preserve="true" />
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
import type { AffineKind, NormPlan } from "../contract/view.js";
import type { GpuContext } from "./device.js";
import { EngineOptions, GpuRunning, GpuStats, Scratch as GpuScratchBuffers, WebGpuNormKernels, createStats, makeView } from "./engine.js";
import { GpuTensor } from "./tensor.js";
import { WORKGROUP_SIZE as WG } from "./wgsl.js";
import { switchBackwardProgram, switchDxProgram, switchMixProgram, switchableLayout } from "./kernels/switchable.js";

class GpuStatsObject implements Stats, GpuStats {
  readonly buffer: GPUBuffer;
  constructor(ctx: GpuContext, readonly count: number) {
    this.buffer = createStats(ctx, count).buffer;
  }
  destroy(): void {
    this.buffer.destroy();
  }
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
  destroy(): void {
    this.inStats.buffer.destroy();
    this.mixed.buffer.destroy();
    this.ws.destroy();
  }
}

export class WebGpuKernelSet implements NormKernels<GpuTensor> {
  readonly name = "webgpu" as const;
  readonly engine: WebGpuNormKernels;

  constructor(readonly ctx: GpuContext, options: EngineOptions = {}) {
    this.engine = new WebGpuNormKernels(ctx, options);
  }

  supports(x: Tensor, plan: NormPlan, _affine: AffineKind): boolean {
    return x instanceof GpuTensor && x.ctx === this.ctx && !plan.shape.channelsLast;
  }
  createStats(count: number): Stats {
    return new GpuStatsObject(this.ctx, count);
  }
  createScratch(): Scratch {
    return new GpuScratchBuffers(this.ctx); // the engine's named buffers: a Scratch of the contract as it is
  }
  createSwitchWork(N: number, C: number): SwitchWork {
    return new GpuSwitchWork(this.ctx, N, C);
  }

  forwardTrain(o: ForwardTrainArgs<GpuTensor>): void {
    const r = o.running;
    const running: GpuRunning | null = r ? { mean: r.mean, var: r.variance, policy: r.policy, factor: r.factor } : null;
    this.ctx.submit(this.engine.forwardTrain(
      o.y, o.x, o.plan.shape, o.plan.cfg, o.eps, o.affine, o.weight, o.bias, o.stats as GpuStatsObject,
      running, (o.scratch as GpuScratchBuffers),
    ));
  }

  statsFromRunning(o: { runningMean: GpuTensor; runningVar: GpuTensor; eps: number; stats: Stats }): void {
    this.ctx.submit(this.engine.evalStatistics(o.runningMean, o.runningVar, o.eps, o.stats as GpuStatsObject));
  }

  normalize(o: NormalizeArgs<GpuTensor>): void {
    this.ctx.submit(this.engine.normalizeForward(
      o.y, o.x, o.plan.shape, o.plan.cfg, o.stats as GpuStatsObject, o.affine, o.weight, o.bias,
    ));
  }

  backward(o: BackwardArgs<GpuTensor>): void {
    this.ctx.submit(this.engine.normalizeBackward(
      o.dx, o.dweight, o.dbias, o.dy, o.x, o.plan.shape, o.plan.cfg, o.stats as GpuStatsObject,
      o.affine, o.weight, o.fixedStats, (o.scratch as GpuScratchBuffers),
    ));
  }

  /** The uniforms of the Switchable Norm kernels for one call. */
  private switchUniforms(plan: NormPlan, cfg: SwitchConfig, bnFromBatch: boolean, J: number) {
    const { N, C, S } = plan.shape;
    const v = makeView(plan.shape, plan.cfg, this.engine.options.vec4);
    const { floats: _floats, ...layout } = switchableLayout(N, C);
    const idx = (i: number) => (i < 0 ? 99 : i);
    return {
      N, C, S, Sv: v.S, E: v.E, J, ncomp: cfg.components, iIn: idx(cfg.index.in), iLn: idx(cfg.index.ln), iBn: idx(cfg.index.bn),
      bnFromBatch: bnFromBatch ? 1 : 0, movingAverage: cfg.movingAverage ? 1 : 0, fIn: cfg.fIn, fLn: cfg.fLn, fBn: cfg.fBn,
      eps: cfg.eps, momentum: cfg.momentum, ...layout,
    };
  }

  switchForward(o: SwitchForwardArgs<GpuTensor>): void {
    const wk = o.work as GpuSwitchWork;
    const scratch = (o.scratch as GpuScratchBuffers);
    const x = o.x;
    const u = this.switchUniforms(o.plan, o.config, o.bnFromBatch, 1);
    const bn = o.config.index.bn >= 0;
    const run = this.engine.moments(x, o.plan.shape, o.plan.cfg, 0, wk.inStats, scratch);
    const rb = bn ? [o.runningMean!.buffer, o.runningVar!.buffer] : [];
    run.push(this.ctx.prepare(switchMixProgram({ bn }) as never, u as never, [
      wk.inStats.buffer, o.meanWeight.buffer, o.varWeight.buffer, wk.ws, wk.mixed.buffer, ...rb,
    ], 1));
    run.push(...this.engine.normalizeForward(o.y, x, o.plan.shape, o.plan.cfg, wk.mixed, "channel", o.weight, o.bias));
    this.ctx.submit(run);
  }

  switchBackward(o: SwitchBackwardArgs<GpuTensor>): void {
    const wk = o.work as GpuSwitchWork;
    const scratch = (o.scratch as GpuScratchBuffers);
    const { N, C } = o.plan.shape;
    // row sums Σ dy, Σ dy (x - mu) per (n, c), and dweight / dbias (accumulated)
    const run = this.engine.normalizeBackward(
      null, o.dweight, o.dbias, o.dy, o.x, o.plan.shape, o.plan.cfg, wk.mixed, "channel", o.weight, false, scratch,
    );
    const { J } = this.engine.rowChunking(o.plan.shape, o.plan.cfg);
    const u = this.switchUniforms(o.plan, o.config, o.bnFromBatch, J);
    run.push(this.ctx.prepare(switchBackwardProgram() as never, u as never, [
      wk.mixed.buffer, scratch.get("sums", N * C * J * 8), o.weight.buffer, o.meanWeight.buffer, o.varWeight.buffer,
      wk.ws, o.dMeanWeight.buffer, o.dVarWeight.buffer,
    ], 1));
    const vec = makeView(o.plan.shape, o.plan.cfg, this.engine.options.vec4).vec;
    run.push(this.ctx.prepare(switchDxProgram({ vec }) as never, u as never, [o.x.buffer, o.dy.buffer, wk.ws, o.dx.buffer], Math.ceil(u.E / WG)));
    this.ctx.submit(run);
  }
}
