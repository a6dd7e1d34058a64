/**
 * SyncBatchNorm: BatchNorm whose training statistics are those of the global batch of every worker
 * of a group (PyTorch's torch.nn.SyncBatchNorm), and convertSyncBatchNorm (its
 * `convert_sync_batchnorm`).
 *
 * Training forward, per channel c, with n_k values of worker k (N_k samples × S positions) and
 * M = Σ_k n_k (all-reduced, float64, two rounds so that the variance is a sum of centred squares,
 * as BatchNorm's two-pass variance — no E[x²] − mean²):
 *   round 1: [M, Σ x]            mean_c = Σ_k Σ x / M
 *   round 2: [Σ (x − mean_c)²]   var_c  = Σ_k Σ (x − mean_c)² / M        (biased, to normalise)
 *   y = (x − mean_c) · rstd_c · w_c + b_c,   rstd_c = 1 / √(var_c + eps)
 *   running_mean ← (1 − m) running_mean + m mean_c,  running_var ← (1 − m) running_var + m var_c M/(M − 1)
 * Backward, with x̂ = (x − mean_c) rstd_c and g = dy · w_c:
 *   round 3: [Σ dy, Σ dy x̂]  (each worker's local sums, all-reduced)
 *   dx = rstd_c w_c (dy − Σ dy / M − x̂ Σ dy x̂ / M)
 *   dweight += local Σ dy x̂,  dbias += local Σ dy   (each worker its own; the data-parallel gradient
 *   all-reduce averages them, as PyTorch's)
 * Every worker calls the collectives of every training forward and backward, a worker with no sample
 * too (it contributes zeros). Eval mode (and a layer without running statistics in eval) is BatchNorm
 * on the worker's own input: no communication.
 *
 * Host only: the statistics go through the host's all-reduce (a move to another device is refused).
 */
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import type { HostStatsArrays } from "../kernels/contract/host.js";
import type { NormalizeArgs, Stats } from "../kernels/contract/kernels.js";
import type { NormShape } from "../kernels/contract/view.js";
import { Tensor, sameShape } from "../tensor.js";
import { type AllReduce, InProcessGroup, type SyncGroup, checkGroup, singleWorker } from "./all_reduce.js";
import { Module, requireCache } from "./module.js";
import { BatchNorm, type BatchNormOptions } from "./normalization.js";

export interface SyncBatchNormOptions extends BatchNormOptions {
  /** The workers whose batches share the statistics. Default: one worker (then it is BatchNorm). */
  group?: SyncGroup;
}

interface SyncCache {
  x: Tensor;
  shape: NormShape;
  /** Rows of each local part (one for an AllReduce, the workers' for an InProcessGroup). */
  counts: readonly number[];
  /** The global number of values per channel. */
  M: number;
  mean: Float64Array;
  rstd: Float64Array;
}

/**
 * BatchNorm with statistics over every worker's batch (see the module comment). Takes inputs of
 * rank 2 to 5 as BatchNorm (PyTorch's SyncBatchNorm takes any N, C, … input); state-dict keys are
 * BatchNorm's.
 */
export class SyncBatchNorm extends BatchNorm {
  private syncGroup: SyncGroup;
  private syncCache: SyncCache | null = null;
  /** Whether the last forward was the synchronised one (else BatchNorm's own, whose backward is BatchNorm's). */
  private lastSynced = false;
  private hostStats: Stats | null = null;

  constructor(options: SyncBatchNormOptions) {
    super(options);
    this.syncGroup = options.group === undefined ? singleWorker : checkGroup(options.group, "SyncBatchNorm");
  }

  /** The group the statistics are all-reduced over. */
  get group(): SyncGroup {
    return this.syncGroup;
  }
  set group(g: SyncGroup) {
    this.syncGroup = checkGroup(g, "SyncBatchNorm.group");
  }

  protected override deviceProblem(device: Device): string | null {
    return device.type === "cpu" ? null : "SyncBatchNorm's statistics go through a host all-reduce (host only)";
  }
  protected override movedTo(): void {
    super.movedTo();
    this.syncCache = null;
    this.hostStats = null;
  }

  override forward(x: Tensor, out?: Tensor): Tensor {
    if (!this.training) {
      this.lastSynced = false;
      return super.forward(x, out);
    }
    const ctx = this.errorContext("forward");
    this.checkDevice(x, "x", "forward");
    const plan = this.statisticsPlan(x);
    if (out) this.checkOutput(out, x, "forward");
    const shape = plan.shape;
    const { C, S } = shape;
    const group = this.syncGroup;
    const counts = group instanceof InProcessGroup ? group.split(shape.N, ctx) : [shape.N];
    const P = counts.length;
    const xd = x.data;

    // round 1: [M, Σx per channel] of each local part
    const r1 = new Float64Array(P * (1 + C));
    for (let p = 0, n0 = 0; p < P; n0 += counts[p]!, p++) {
      const base = p * (1 + C);
      r1[base] = counts[p]! * S;
      channelRuns(shape, n0, n0 + counts[p]!, (c, j, stride) => {
        let s = 0;
        for (let i = 0; i < S; i++, j += stride) s += xd[j]!;
        r1[base + 1 + c] += s;
      });
    }
    const g1 = allReduce(group, r1, 1 + C);
    const M = g1[0]!;
    if (M === 1) throw new ShapeError("x", "more than 1 value per channel in the global batch when training", `1 (shape ${fmtShape(x.shape)} on this worker)`, ctx);
    const mean = new Float64Array(C);
    for (let c = 0; c < C; c++) mean[c] = M === 0 ? 0 : g1[1 + c]! / M;

    // round 2: Σ (x − mean)² per channel, centred on the global mean
    const r2 = new Float64Array(P * C);
    for (let p = 0, n0 = 0; p < P; n0 += counts[p]!, p++) {
      channelRuns(shape, n0, n0 + counts[p]!, (c, j, stride) => {
        const m = mean[c]!;
        let s = 0;
        for (let i = 0; i < S; i++, j += stride) {
          const d = xd[j]! - m;
          s += d * d;
        }
        r2[p * C + c] += s;
      });
    }
    const g2 = allReduce(group, r2, C);
    const variance = new Float64Array(C);
    const rstd = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      variance[c] = M === 0 ? 0 : g2[c]! / M;
      rstd[c] = 1 / Math.sqrt(variance[c]! + this.eps);
    }

    // y with the global statistics, by the device's kernels
    const device = this.device;
    const y = out ?? device.zeros(x.shape, this.dtype);
    if (x.size > 0) {
      const stats = (this.hostStats?.count === C ? this.hostStats : (this.hostStats = device.kernels.createStats(C)));
      const st = stats as unknown as HostStatsArrays; // host statistics (the layer is host only)
      st.mean.set(mean);
      st.variance.set(variance);
      st.rstd.set(rstd);
      const a: NormalizeArgs = {
        y, x, plan: { shape, cfg: plan.cfg }, stats, affine: this.affineKind, weight: this.weight?.value ?? null, bias: this.bias?.value ?? null,
      };
      device.kernels.normalize(a);
    }

    // the running statistics, as BatchNorm's on the global batch
    const rm = this.runningMean, rv = this.runningVar;
    if (rm && rv) {
      if (M > 0) {
        const nbt = this.numBatchesTracked!.data;
        const f = this.momentum ?? 1 / (nbt[0]! + 1);
        const unbias = M / (M - 1);
        const rmd = rm.data, rvd = rv.data;
        for (let c = 0; c < C; c++) {
          rmd[c] = (1 - f) * rmd[c]! + f * mean[c]!;
          rvd[c] = (1 - f) * rvd[c]! + f * variance[c]! * unbias;
        }
      }
      const nbt = this.numBatchesTracked!.data;
      nbt[0] = nbt[0]! + 1;
    }
    this.syncCache = { x, shape, counts, M, mean, rstd };
    this.lastSynced = true;
    return y;
  }

  override backward(dy: Tensor, out?: Tensor): Tensor {
    if (!this.lastSynced) return super.backward(dy, out);
    const c0 = this.syncCache ?? requireCache<SyncCache>(null, this.errorContext("backward"));
    this.checkDevice(dy, "dy", "backward");
    if (dy.dtype !== this.dtype) throw new ConfigError("dy.dtype", `${this.dtype} (the layer's dtype)`, dy.dtype, this.errorContext("backward"));
    if (!sameShape(dy.shape, c0.x.shape)) throw new ShapeError("dy", `shape ${fmtShape(c0.x.shape)} (the input's)`, `shape ${fmtShape(dy.shape)}`, this.errorContext("backward"));
    if (out) this.checkOutput(out, c0.x, "backward");
    const { shape, counts, M, mean, rstd } = c0;
    const { C, S } = shape;
    const P = counts.length;
    const xd = c0.x.data, dyd = dy.data;

    // round 3: [Σ dy, Σ dy x̂] per channel of each local part
    const r3 = new Float64Array(P * 2 * C);
    for (let p = 0, n0 = 0; p < P; n0 += counts[p]!, p++) {
      const base = p * 2 * C;
      channelRuns(shape, n0, n0 + counts[p]!, (c, j, stride) => {
        const m = mean[c]!;
        let sd = 0, sdx = 0;
        for (let i = 0; i < S; i++, j += stride) {
          const d = dyd[j]!;
          sd += d;
          sdx += d * (xd[j]! - m);
        }
        r3[base + c] += sd;
        r3[base + C + c] += sdx * rstd[c]!;
      });
    }
    const local = r3.slice(); // an AllReduce sums in place
    const g3 = allReduce(this.syncGroup, r3, 2 * C);
    // the parameter gradients: this worker's (every simulated worker's) local sums, accumulated
    const dw = this.weight?.grad.data ?? null, db = this.bias?.grad.data ?? null;
    for (let p = 0; p < P; p++) {
      for (let c = 0; c < C; c++) {
        if (db) db[c] += local[p * 2 * C + c]!;
        if (dw) dw[c] += local[p * 2 * C + C + c]!;
      }
    }

    // dx = A·dy + B·x + D per channel: A = r w, B = −r² w mgx, D = r w (r m mgx − mg)
    const dx = out ?? this.device.zeros(c0.x.shape, this.dtype);
    const dxd = dx.data;
    const w = this.weight?.value.data ?? null;
    const A = new Float64Array(C), B = new Float64Array(C), D = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      const r = rstd[c]!, wc = w ? w[c]! : 1;
      const mg = g3[c]! / M, mgx = g3[C + c]! / M;
      A[c] = r * wc;
      B[c] = -r * r * wc * mgx;
      D[c] = r * wc * (r * mean[c]! * mgx - mg);
    }
    channelRuns(shape, 0, shape.N, (c, j, stride) => {
      const a = A[c]!, b = B[c]!, d = D[c]!;
      for (let i = 0; i < S; i++, j += stride) dxd[j] = a * dyd[j]! + b * xd[j]! + d;
    });
    return dx;
  }

  override lastStatistics(): { mean: Float64Array; rstd: Float64Array } | null {
    if (!this.lastSynced) return super.lastStatistics();
    this.requireHost("lastStatistics");
    const c = this.syncCache;
    return c ? { mean: c.mean.slice(), rstd: c.rstd.slice() } : null;
  }
}

/**
 * The all-reduce of `P` local parts of `width` values each (concatenated in `parts`): an AllReduce
 * sums its one part across the workers; an InProcessGroup's parts are its workers', summed in rank
 * order (what an all-reduce of them computes).
 */
function allReduce(g: SyncGroup, parts: Float64Array, width: number): Float64Array {
  if (g instanceof InProcessGroup) {
    const out = new Float64Array(width);
    for (let p = 0; p < parts.length / width; p++) for (let i = 0; i < width; i++) out[i] += parts[p * width + i]!;
    return out;
  }
  (g as AllReduce).sum(parts);
  return parts;
}

/** Visits the run of S values of every (n, c), n0 ≤ n < n1: fn(c, start index, stride). */
function channelRuns(shape: NormShape, n0: number, n1: number, fn: (c: number, j: number, stride: number) => void): void {
  const { C, S, channelsLast } = shape;
  for (let n = n0; n < n1; n++) {
    for (let c = 0; c < C; c++) {
      if (channelsLast) fn(c, n * S * C + c, C);
      else fn(c, (n * C + c) * S, 1);
    }
  }
}

/**
 * PyTorch's `SyncBatchNorm.convert_sync_batchnorm(module, process_group)`: every BatchNorm of the
 * tree (BatchNorm1d/2d/3d, not already a SyncBatchNorm) replaced by a SyncBatchNorm over `group`
 * with its options, parameters, running statistics and num_batches_tracked (copied) and its training
 * mode; the keys of the state dict stay as they were. Containers are changed in place (through
 * `replaceChild`, which Sequential and ReuseOutputs implement); the returned module is `module`, or
 * the new layer when `module` itself is a BatchNorm.
 */
export function convertSyncBatchNorm<T extends Module>(module: T, group: SyncGroup = singleWorker): T | SyncBatchNorm {
  const g = checkGroup(group, "convertSyncBatchNorm");
  const convert = (m: Module): Module => {
    if (m instanceof BatchNorm && !(m instanceof SyncBatchNorm)) return toSync(m, g);
    for (const child of m.children()) {
      const c = convert(child);
      if (c !== child && !m.replaceChild(child, c)) {
        throw new ConfigError("module", `containers that can replace a child (${m.constructor.name} has no replaceChild)`, m.constructor.name, "convertSyncBatchNorm");
      }
    }
    return m;
  };
  return convert(module) as T | SyncBatchNorm;
}

function toSync(bn: BatchNorm, group: SyncGroup): SyncBatchNorm {
  if (bn.device.type !== "cpu") throw new ConfigError("module", "a module on the host (SyncBatchNorm is host only)", `a BatchNorm on ${bn.device.label}`, "convertSyncBatchNorm");
  const s = new SyncBatchNorm({
    numFeatures: bn.numFeatures, eps: bn.eps, momentum: bn.momentum, affine: bn.weight !== null, trackRunningStats: bn.runningMean !== null,
    channelsLast: bn.channelsLast, dtype: bn.dtype, group,
  });
  const copy = (to: Tensor | undefined | null, from: Tensor | undefined | null) => {
    if (to && from) to.data.set(from.data);
  };
  copy(s.weight?.value, bn.weight?.value);
  copy(s.weight?.grad, bn.weight?.grad);
  copy(s.bias?.value, bn.bias?.value);
  copy(s.bias?.grad, bn.bias?.grad);
  copy(s.runningMean, bn.runningMean);
  copy(s.runningVar, bn.runningVar);
  copy(s.numBatchesTracked, bn.numBatchesTracked);
  s.train(bn.training);
  return s;
}
