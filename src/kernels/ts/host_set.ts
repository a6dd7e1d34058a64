/**
 * A kernel set on host memory, from host primitives: the contract's operations (option objects,
 * statistics, scratch, the running update, Switchable Norm) over a set of array-level kernels.
 * The TypeScript set (./index.ts) and the WebAssembly set (../wasm/index.ts) are both this adapter
 * over their own primitives, so the two agree on everything but the arithmetic of the hot loops.
 */
import type { Tensor } from "../../tensor.js";
import type {
  BackwardArgs, ForwardTrainArgs, KernelSetName, NormKernels, NormalizeArgs, Scratch, Stats, SwitchBackwardArgs,
  SwitchForwardArgs, SwitchWork,
} from "../contract/kernels.js";
import type { HostPrimitives, HostStatsArrays } from "../contract/host.js";
import { AffineKind, NormPlan, statCount } from "../contract/view.js";
import { BackwardScratch, makeBackwardScratch } from "./norm.js";
import { updateRunningBatch, updateRunningInstance } from "./running.js";
import { HostSwitchWork, switchBackwardHost, switchForwardHost } from "./switchable.js";

/** Statistics in host memory, float64 whatever the storage: mean, biased variance, rstd per group. */
export class HostStats implements HostStatsArrays {
  readonly mean: Float64Array;
  readonly variance: Float64Array;
  readonly rstd: Float64Array;
  constructor(readonly count: number) {
    this.mean = new Float64Array(count);
    this.variance = new Float64Array(count);
    this.rstd = new Float64Array(count);
  }
  /** Host memory: garbage collection frees it. */
  destroy(): void {}
}

/** Backward accumulators of one layer, grown on demand. */
export class HostScratch implements Scratch {
  private scratch: BackwardScratch | null = null;
  /** Room for `stats` statistics and `affine` parameter entries. */
  backward(stats: number, affine: number): BackwardScratch {
    const s = this.scratch;
    if (s && s.sumG.length >= stats && s.dw.length >= affine) return s;
    return (this.scratch = makeBackwardScratch(stats, affine));
  }
  destroy(): void {
    this.scratch = null;
  }
}

const dataOf = (t: Tensor | null) => (t === null ? null : t.data);

/** The contract over host primitives. `supports` says which calls the primitives take. */
export function hostKernelSet(
  name: KernelSetName,
  prims: HostPrimitives,
  supports: (x: Tensor, plan: NormPlan, affine: AffineKind) => boolean,
): NormKernels {
  return {
    name,
    supports,
    createStats: (count) => new HostStats(count),
    createScratch: () => new HostScratch(),
    createSwitchWork: (N, C): SwitchWork => new HostSwitchWork(N, C),

    forwardTrain(o: ForwardTrainArgs): void {
      const st = o.stats as HostStats;
      const { shape, cfg } = o.plan;
      prims.forwardTrain(o.y.data, o.x.data, shape, cfg, o.eps, o.affine, dataOf(o.weight), dataOf(o.bias), st.mean, st.variance, st.rstd);
      const r = o.running;
      if (r === null) return;
      if (r.policy === "batch") updateRunningBatch(r.mean.data, r.variance.data, st.mean, st.variance, shape.C, statCount(shape, cfg), r.factor);
      else updateRunningInstance(r.mean.data, r.variance.data, st.mean, st.variance, shape.N, shape.C, shape.S, r.factor);
    },

    statsFromRunning(o): void {
      const st = o.stats as HostStats;
      const rm = o.runningMean.data, rv = o.runningVar.data;
      for (let c = 0; c < rm.length; c++) {
        st.mean[c] = rm[c]!;
        st.variance[c] = rv[c]!;
        st.rstd[c] = 1 / Math.sqrt(rv[c]! + o.eps);
      }
    },

    normalize(o: NormalizeArgs): void {
      const st = o.stats as HostStats;
      prims.normalizeForward(o.y.data, o.x.data, o.plan.shape, o.plan.cfg, st.mean, st.rstd, o.affine, dataOf(o.weight), dataOf(o.bias));
    },

    backward(o: BackwardArgs): void {
      const st = o.stats as HostStats;
      const { shape, cfg } = o.plan;
      const P = o.affine === "channel" ? shape.C : o.affine === "element" ? shape.C * shape.S : 0;
      const sc = (o.scratch as HostScratch).backward(st.count, P);
      prims.normalizeBackward(
        dataOf(o.dx), dataOf(o.dweight), dataOf(o.dbias), o.dy.data, o.x.data, shape, cfg, st.mean, st.rstd, o.affine,
        dataOf(o.weight), o.fixedStats, sc,
      );
    },

    switchForward: (o: SwitchForwardArgs) => switchForwardHost(prims, o),
    switchBackward: (o: SwitchBackwardArgs) => switchBackwardHost(prims, o),
  };
}
