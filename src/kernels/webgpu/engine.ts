/// <reference types="@webgpu/types" preserve="true" />
/**
 * The WebGPU statistics engine behind the WebGPU kernel set (kernel_set.ts): it chooses, per call,
 * the kernels sized for the shape:
 *
 * - a statistic of up to WORKGROUP_SIZE * 8 vector units (8192 float32 with vec4): one workgroup
 *   per statistic, values held in registers — forward (stats + y) and, for LayerNorm / RMSNorm,
 *   backward (sums + dx) in one pass each;
 * - larger statistics, and BatchNorm's per-channel reduction across N: a split reduction —
 *   (statistic, chunk) workgroups writing partial (mean, M2), combined per statistic by Chan's
 *   formula — then the scale/shift pass over all elements;
 * - vec4 loads whenever the positions per channel S are a multiple of 4 (every run of a statistic
 *   and channel is then whole vec4s), scalar loads otherwise.
 * Only the NCHW (channels-first) view is implemented; channels-last inputs are refused by name.
 */
import type { AffineKind, NormShape, StatsConfig } from "../contract/view.js";
import { numStats, statCount } from "../contract/view.js";
import type { GpuContext, GpuRun, Program } from "./device.js";
import { WebGpuError } from "./errors.js";
import type { GpuTensor } from "./tensor.js";
import type { VecWidth } from "./wgsl.js";
import { WORKGROUP_SIZE as WG } from "./wgsl.js";
import { AffineSpec, NORM_U, NormUniforms } from "./kernels/common.js";
import {
  evalStatsProgram, fusedForwardProgram, instanceRunningProgram, momentsCombineProgram, momentsPartialProgram, momentsRowProgram,
  normalizeApplyProgram,
} from "./kernels/stats.js";
import {
  channelGradsProgram, columnFinalProgram, columnPartialProgram, dxApplyProgram, fusedRowBackwardProgram, segmentSumsProgram, statGradsProgram,
} from "./kernels/backward.js";

/** Statistics on the GPU: `count` entries of vec4 (shift, dmean, rstd, var). */
export interface GpuStats {
  readonly buffer: GPUBuffer;
  readonly count: number;
}

/** Running statistics to update in forwardTrain. */
export interface GpuRunning {
  readonly mean: GpuTensor;
  readonly var: GpuTensor;
  /** BatchNorm: per statistic; InstanceNorm: mean over the batch of per-instance statistics. */
  readonly policy: "batch" | "instance";
  /** Weight of the new value (PyTorch's momentum, or 1 / num_batches_tracked). */
  readonly factor: number;
}

/** Reusable temporary buffers of one caller (re-entrant: one scratch per layer). */
export interface GpuScratch {
  get(name: string, bytes: number): GPUBuffer;
}

export interface EngineOptions {
  /** Use vec4 loads where the shape allows (default true). */
  vec4?: boolean;
  /** Most vector units a thread holds in registers in the fused kernels (1, 2, 4 or 8; default 8; 0 disables them). */
  maxRegisterUnits?: number;
  /** Workgroups the split reductions aim for (default 1024: several per SM on a large GPU). */
  targetWorkgroups?: number;
  /** Force the split reduction with chunks of this many vector units (tests). */
  chunkLen?: number;
  /**
   * Fewest statistics for which the fused kernels run with more than 2 registers per thread
   * (default 128: with fewer, large statistics fill the GPU better as a split reduction).
   */
  fusedMinStats?: number;
  /** Rows (n, c) of at most this many vector units are summed one thread per row in backward (default 16). */
  threadRowUnits?: number;
}

/** The engine's view of one call, in vector units. */
export interface View {
  vec: VecWidth;
  N: number;
  C: number;
  /** positions per channel, vector units */
  S: number;
  G: number;
  gs: number;
  perSample: boolean;
  /** statistics, units per statistic, scalars per statistic */
  K: number;
  M: number;
  count: number;
  E: number;
}

export function makeView(shape: NormShape, cfg: StatsConfig, vec4: boolean): View {
  if (shape.channelsLast) throw new WebGpuError("unsupported", "channels-last inputs are not implemented by the WebGPU backend (use channelsLast: false)");
  const { N, C } = shape;
  const vec: VecWidth = vec4 && shape.S % 4 === 0 ? 4 : 1;
  const S = shape.S / vec;
  const gs = cfg.groupSize;
  return {
    vec, N, C, S, G: C / gs, gs, perSample: cfg.perSample,
    K: numStats(shape, cfg), M: (cfg.perSample ? 1 : N) * gs * S, count: statCount(shape, cfg), E: N * C * S,
  };
}

function uniforms(v: View, extra: Partial<NormUniforms> = {}): NormUniforms {
  return {
    K: v.K, M: v.M, segLen: v.gs * v.S, segStride: v.C * v.S, chunkLen: v.M, J: 1, N: v.N, C: v.C, S: v.S, G: v.G, gs: v.gs,
    perSample: v.perSample ? 1 : 0, E: v.E, rowChunk: 1, count: v.count, eps: 0, factor: 0, unbias: 1, ...extra,
  };
}

/**
 * Largest chunk of the two-pass statistics kernel: ~1000 resident workgroups on a large GPU times
 * 32 KiB stays within a 50 MB L2, so the second pass reads from cache, not memory.
 */
const STATS_CHUNK_BYTES = 32 * 1024;
/** Fewest rows per chunk in the column (elementwise-affine gradient) reduction: partials stay small next to x. */
const COLUMN_MIN_ROWS = 32;

const pow2 = (n: number) => (n <= 1 ? 1 : n <= 2 ? 2 : n <= 4 ? 4 : 8);
const cdiv = (a: number, b: number) => Math.ceil(a / b);

function spec(kind: AffineKind, weight: GpuTensor | null, bias: GpuTensor | null): AffineSpec {
  return { kind, hasWeight: kind !== "none" && weight !== null, hasBias: kind !== "none" && bias !== null };
}
function affineBuffers(a: AffineSpec, weight: GpuTensor | null, bias: GpuTensor | null): GPUBuffer[] {
  const out: GPUBuffer[] = [];
  if (a.hasWeight) out.push(weight!.buffer);
  if (a.hasBias) out.push(bias!.buffer);
  return out;
}

/** Scratch buffers reused between calls of one owner; grown on demand. */
export class Scratch implements GpuScratch {
  private readonly ctx: GpuContext;
  private readonly bufs = new Map<string, GPUBuffer>();
  constructor(ctx: GpuContext) {
    this.ctx = ctx;
  }
  get(name: string, bytes: number): GPUBuffer {
    let b = this.bufs.get(name);
    if (!b || b.size < bytes) {
      b?.destroy();
      b = this.ctx.createStorage(bytes, `scratch ${name}`);
      this.bufs.set(name, b);
    }
    return b;
  }
  destroy(): void {
    for (const b of this.bufs.values()) b.destroy();
    this.bufs.clear();
  }
}

/** A statistics buffer for `count` statistics. */
export function createStats(ctx: GpuContext, count: number): GpuStats {
  return { buffer: ctx.createStorage(count * 16, "stats"), count };
}

/**
 * The WebGPU statistics engine: each method prepares (does not submit) the dispatches of one
 * operation and returns them as a GpuRun; the kernel set (./kernel_set.ts) submits them, which is
 * where the kernel contract's operations are implemented.
 */
export class WebGpuNormKernels {
  readonly name = "webgpu" as const;
  readonly ctx: GpuContext;
  readonly options: Required<EngineOptions>;

  constructor(ctx: GpuContext, options: EngineOptions = {}) {
    this.ctx = ctx;
    this.options = { vec4: true, maxRegisterUnits: 8, targetWorkgroups: 1024, chunkLen: 0, fusedMinStats: 128, threadRowUnits: 16, ...options };
  }

  supports(shape: NormShape): boolean {
    return !shape.channelsLast;
  }

  private run(p: Program, values: NormUniforms, buffers: GPUBuffer[], workgroups: number) {
    return this.ctx.prepare(p as Program<typeof NORM_U.fields>, values, buffers, workgroups);
  }

  /** How normalizeBackward splits the rows (n, c) of S positions: J chunks of chunkLen vector units. */
  rowChunking(shape: NormShape, cfg: StatsConfig): { J: number; chunkLen: number } {
    const v = makeView(shape, cfg, this.options.vec4);
    if (this.options.chunkLen <= 0 && v.S <= this.options.threadRowUnits) return { J: 1, chunkLen: Math.max(1, v.S) };
    return this.chunking(v.S, v.N * v.C);
  }

  /** Statistics of at most threadRowUnits vector units: one thread each (momentsRow), not a workgroup. */
  private rowStatistics(v: View): boolean {
    return this.options.chunkLen <= 0 && v.M <= this.options.threadRowUnits;
  }

  /** Registers per thread for the fused kernels, or 0 when the statistic does not fit (or is a row statistic). */
  private fusedUnits(v: View): number {
    const r = cdiv(v.M, WG);
    const max = this.options.maxRegisterUnits;
    if (this.options.chunkLen > 0 || max <= 0 || r > max || this.rowStatistics(v)) return 0;
    if (v.K < this.options.fusedMinStats && r > 2) return 0; // few large statistics: the split reduction fills the GPU better
    return pow2(r);
  }

  /**
   * Chunks of a reduction over `units` for `items` independent reductions: enough (item, chunk)
   * workgroups to fill the GPU, at least 4 units per thread; `cacheUnits` caps a chunk so that a
   * two-pass reduction re-reads it from cache (resident workgroups x chunk within L2).
   */
  private chunking(units: number, items: number, cacheUnits = Infinity): { J: number; chunkLen: number } {
    let J: number;
    if (this.options.chunkLen > 0) J = cdiv(units, this.options.chunkLen);
    else {
      J = Math.max(1, Math.min(cdiv(this.options.targetWorkgroups, items), Math.floor(units / (WG * 4))));
      J = Math.max(J, cdiv(units, cacheUnits));
    }
    const chunkLen = Math.max(1, cdiv(units, J));
    return { J: cdiv(units, chunkLen), chunkLen };
  }

  private checkStats(stats: GpuStats, v: View): void {
    if (stats.count < v.K) throw new RangeError(`stats: expected room for ${v.K} statistics, got ${stats.count}`);
  }

  private statsRun(x: GpuTensor, v: View, center: boolean, eps: number, stats: GpuStats, running: GpuRunning | null, scratch: GpuScratch): GpuRun {
    const batch = running?.policy === "batch";
    const rb = batch ? [running!.mean.buffer, running!.var.buffer] : [];
    const { J, chunkLen } = this.chunking(v.M, v.K, STATS_CHUNK_BYTES / (4 * v.vec));
    const u = uniforms(v, { J, chunkLen, eps, factor: running?.factor ?? 0, unbias: v.count > 1 ? v.count / (v.count - 1) : 1 });
    const mode = this.ctx.reduceMode;
    const out: GpuRun = [];
    if (J === 1 && !batch && this.rowStatistics(v)) {
      out.push(this.run(momentsRowProgram({ vec: v.vec, center }), u, [x.buffer, stats.buffer], cdiv(v.K, WG)));
    } else if (J === 1) {
      out.push(this.run(momentsPartialProgram({ vec: v.vec, center, final: true, running: batch, mode }), u, [x.buffer, stats.buffer, ...rb], v.K));
    } else {
      const part = scratch.get("partials", v.K * J * 8);
      out.push(this.run(momentsPartialProgram({ vec: v.vec, center, final: false, running: false, mode }), u, [x.buffer, part], v.K * J));
      out.push(this.run(momentsCombineProgram({ vec: v.vec, center, running: batch }), u, [x.buffer, part, stats.buffer, ...rb], cdiv(v.K, WG)));
    }
    return out;
  }

  private instanceRunningRun(v: View, stats: GpuStats, running: GpuRunning, S: number): GpuRun {
    const u = uniforms(v, { factor: running.factor, unbias: S > 1 ? S / (S - 1) : 1 });
    return [this.run(instanceRunningProgram(), u, [stats.buffer, running.mean.buffer, running.var.buffer], cdiv(v.C, WG))];
  }

  moments(x: GpuTensor, shape: NormShape, cfg: StatsConfig, eps: number, stats: GpuStats, scratch: GpuScratch): GpuRun {
    const v = makeView(shape, cfg, this.options.vec4);
    this.checkStats(stats, v);
    return this.statsRun(x, v, cfg.center, eps, stats, null, scratch);
  }

  normalizeForward(
    y: GpuTensor, x: GpuTensor, shape: NormShape, cfg: StatsConfig, stats: GpuStats, affine: AffineKind,
    weight: GpuTensor | null, bias: GpuTensor | null,
  ): GpuRun {
    const v = makeView(shape, cfg, this.options.vec4);
    this.checkStats(stats, v);
    const a = spec(affine, weight, bias);
    return [this.run(normalizeApplyProgram({ vec: v.vec, affine: a }), uniforms(v), [x.buffer, y.buffer, stats.buffer, ...affineBuffers(a, weight, bias)], cdiv(v.E, WG))];
  }

  forwardTrain(
    y: GpuTensor, x: GpuTensor, shape: NormShape, cfg: StatsConfig, eps: number, affine: AffineKind,
    weight: GpuTensor | null, bias: GpuTensor | null, stats: GpuStats, running: GpuRunning | null, scratch: GpuScratch,
  ): GpuRun {
    const v = makeView(shape, cfg, this.options.vec4);
    this.checkStats(stats, v);
    const a = spec(affine, weight, bias);
    const R = this.fusedUnits(v);
    const batch = running?.policy === "batch";
    let out: GpuRun;
    if (R > 0) {
      const u = uniforms(v, { eps, factor: running?.factor ?? 0, unbias: v.count > 1 ? v.count / (v.count - 1) : 1 });
      const p = fusedForwardProgram({ vec: v.vec, R, center: cfg.center, affine: a, running: batch, mode: this.ctx.reduceMode });
      const rb = batch ? [running!.mean.buffer, running!.var.buffer] : [];
      out = [this.run(p, u, [x.buffer, y.buffer, stats.buffer, ...affineBuffers(a, weight, bias), ...rb], v.K)];
    } else {
      out = [...this.statsRun(x, v, cfg.center, eps, stats, running, scratch), ...this.normalizeForward(y, x, shape, cfg, stats, affine, weight, bias)];
    }
    if (running?.policy === "instance") out.push(...this.instanceRunningRun(v, stats, running, shape.S));
    return out;
  }

  evalStatistics(runningMean: GpuTensor, runningVar: GpuTensor, eps: number, stats: GpuStats): GpuRun {
    const C = runningMean.size;
    if (stats.count < C) throw new RangeError(`stats: expected room for ${C} statistics, got ${stats.count}`);
    const v = makeView({ N: 1, C, S: 1, channelsLast: false }, { perSample: false, groupSize: 1, center: true }, false);
    return [this.run(evalStatsProgram(), uniforms(v, { eps }), [runningMean.buffer, runningVar.buffer, stats.buffer], cdiv(C, WG))];
  }

  normalizeBackward(
    dx: GpuTensor | null, dweight: GpuTensor | null, dbias: GpuTensor | null, dy: GpuTensor, x: GpuTensor,
    shape: NormShape, cfg: StatsConfig, stats: GpuStats, affine: AffineKind, weight: GpuTensor | null,
    fixedStats: boolean, scratch: GpuScratch,
  ): GpuRun {
    const v = makeView(shape, cfg, this.options.vec4);
    this.checkStats(stats, v);
    const a = spec(affine, weight, null);
    const wb = affineBuffers(a, weight, null);
    const out: GpuRun = [];
    const mode = this.ctx.reduceMode;
    const R = affine !== "channel" && cfg.perSample && !fixedStats ? this.fusedUnits(v) : 0;
    const needSums = (dx !== null && R === 0) || (affine === "channel" && (dweight !== null || dbias !== null));
    const rows = v.N * v.C;
    const { J, chunkLen } = this.rowChunking(shape, cfg);
    const u = uniforms(v, { J, chunkLen });
    const sums = needSums ? scratch.get("sums", rows * J * 8) : null;
    if (needSums) {
      const perThread = J === 1 && v.S <= this.options.threadRowUnits;
      const p = segmentSumsProgram({ vec: v.vec, affine: a, mode, perThread });
      out.push(this.run(p, u, [x.buffer, dy.buffer, stats.buffer, sums!, ...(affine === "element" ? wb : [])], perThread ? cdiv(rows, WG) : rows * J));
    }
    if (dx) {
      if (R > 0) {
        out.push(this.run(fusedRowBackwardProgram({ vec: v.vec, R, affine: a, center: cfg.center, mode }), u, [x.buffer, dy.buffer, stats.buffer, dx.buffer, ...wb], v.K));
      } else {
        const gstats = scratch.get("gstats", v.K * 8);
        out.push(this.run(statGradsProgram({ affine: a, center: cfg.center, fixed: fixedStats }), u, [stats.buffer, sums!, gstats, ...(affine === "channel" ? wb : [])], cdiv(v.K, WG)));
        out.push(this.run(dxApplyProgram({ vec: v.vec, affine: a }), u, [x.buffer, dy.buffer, stats.buffer, gstats, dx.buffer, ...wb], cdiv(v.E, WG)));
      }
    }
    if (affine === "channel" && (dweight || dbias)) {
      const p = channelGradsProgram({ hasWeight: dweight !== null, hasBias: dbias !== null });
      out.push(this.run(p, u, [stats.buffer, sums!, ...(dweight ? [dweight.buffer] : []), ...(dbias ? [dbias.buffer] : [])], cdiv(v.C, WG)));
    }
    if (affine === "element" && (dweight || dbias)) {
      const P = v.C * v.S;
      const blocks = cdiv(P, WG);
      const Jc0 = this.options.chunkLen > 0 ? cdiv(v.N, this.options.chunkLen) : Math.max(1, Math.min(cdiv(this.options.targetWorkgroups, blocks), cdiv(v.N, COLUMN_MIN_ROWS)));
      const rowChunk = cdiv(v.N, Jc0);
      const Jc = cdiv(v.N, rowChunk);
      const cu = uniforms(v, { J: Jc, rowChunk });
      const bytes = Jc * P * v.vec * 4;
      const pw = scratch.get("colW", bytes), pb = scratch.get("colB", bytes);
      out.push(this.run(columnPartialProgram({ vec: v.vec }), cu, [x.buffer, dy.buffer, stats.buffer, pw, pb], blocks * Jc));
      const p = columnFinalProgram({ vec: v.vec, hasWeight: dweight !== null, hasBias: dbias !== null });
      out.push(this.run(p, cu, [pw, pb, ...(dweight ? [dweight.buffer] : []), ...(dbias ? [dbias.buffer] : [])], blocks));
    }
    return out;
  }
}
