/**
 * The host implementation of the training stack's contract (../contract/ops.ts): the TypeScript
 * kernels of this folder, whose matrix products run on the WebAssembly SIMD GEMM where it takes them
 * (../wasm/gemm.ts) — the same calls the layers made before the contract, so nothing changes in speed.
 */
import type { FloatArray, Tensor } from "../../tensor.js";
import type { Indices, OpKernels, Workspace } from "../contract/ops.js";
import { conv2dBackward, conv2dForward, conv2dScratchSize } from "./conv2d.js";
import { linearBackward, linearForward } from "./linear.js";
import { sgdKernel, sgdMomentumFirstKernel, sgdMomentumKernel, sgdNesterovKernel, sgdStepF32, adamKernel } from "./optim.js";
import { avgPool2dBackward, avgPool2dForward, maxPool2dBackward, maxPool2dForward, maxPool2x2Forward } from "./pool.js";
import { reluBackward, reluForward } from "./relu.js";
import { softmaxCrossEntropyKernel } from "./loss.js";
import { weightNormBackward, weightNormForward } from "./weight_norm.js";
import { SGD_MOMENTUM, SGD_MOMENTUM_FIRST, SGD_PLAIN, wasmElementwise } from "../wasm/elementwise.js";
import { cosineConv2dBackward, cosineConv2dForward, cosineConv2dScratchSize, normalizeBackward, normalizeForward } from "./cosine.js";

class HostWorkspace implements Workspace {
  private f64 = new Float64Array(0);
  /** A float64 scratch of at least n values (contents unspecified). */
  get(n: number): Float64Array {
    if (this.f64.length < n) this.f64 = new Float64Array(n);
    return this.f64;
  }
  destroy(): void {
    this.f64 = new Float64Array(0);
  }
}

/** Weight Norm's v̂ and g / ‖v‖ between its forward and backward, at the front and back of one scratch. */
function weightNormState(w: Workspace, R: number, S: number): { vhat: Float64Array; gOverN: Float64Array } {
  const f = (w as HostWorkspace).get(R * S + R);
  return { vhat: f.subarray(0, R * S), gOverN: f.subarray(R * S, R * S + R) };
}

/** Max pooling's argmax: in the WebAssembly memory where the element-wise kernels run, else on the JS heap. */
class HostIndices implements Indices {
  data: Int32Array;
  constructor(readonly count: number) {
    this.data = wasmElementwise()?.indices(count) ?? new Int32Array(count);
  }
  destroy(): void {
    wasmElementwise()?.freeIndices(this.data);
    this.data = new Int32Array(0);
  }
}

/** The WebAssembly element-wise kernels when every operand is a float32 array resident in their memory. */
function residentF32(...arrays: ArrayBufferView[]) {
  const w = wasmElementwise();
  if (w === null) return null;
  for (const a of arrays) if (!(a instanceof Float32Array || a instanceof Int32Array)) return null;
  return w.resident(...arrays) ? w : null;
}

const dataOf = (t: Tensor | null): FloatArray | null => (t === null ? null : t.data);

export const hostOps: OpKernels<Tensor> = {
  createWorkspace: () => new HostWorkspace(),
  createIndices: (count) => new HostIndices(count),

  linear: (o) => void linearForward(o.y.data, o.x.data, o.weight.data, dataOf(o.bias), o.rows, o.inF, o.outF),
  linearBackward(o) {
    // The kernel's `accumulate` applies to every output: overwriting, it writes dx as well; adding
    // into the gradients, dx (always overwritten) starts at 0.
    const accumulate = o.accumulate ?? true;
    if (accumulate) o.dx?.data.fill(0);
    linearBackward(dataOf(o.dx), o.dweight.data, dataOf(o.dbias), o.dy.data, o.x.data, o.weight.data, o.rows, o.inF, o.outF, accumulate);
  },

  conv2d: (o) => void conv2dForward(o.y.data, o.x.data, o.weight.data, dataOf(o.bias), o.geometry, (o.workspace as HostWorkspace).get(conv2dScratchSize(o.geometry))),
  conv2dBackward(o) {
    // as linearBackward: one `accumulate` for every output of the kernel
    const accumulate = o.accumulate ?? true;
    if (accumulate) o.dx?.data.fill(0);
    conv2dBackward(dataOf(o.dx), o.dweight.data, dataOf(o.dbias), o.dy.data, o.x.data, o.weight.data, o.geometry,
      (o.workspace as HostWorkspace).get(conv2dScratchSize(o.geometry)), accumulate);
  },

  relu(o) {
    const w = residentF32(o.y.data, o.x.data);
    if (w) w.relu(o.y.data as Float32Array, o.x.data as Float32Array);
    else reluForward(o.y.data, o.x.data);
  },
  reluBackward(o) {
    const w = residentF32(o.dx.data, o.dy.data, o.x.data);
    if (w) w.reluBackward(o.dx.data as Float32Array, o.dy.data as Float32Array, o.x.data as Float32Array);
    else reluBackward(o.dx.data, o.dy.data, o.x.data);
  },

  maxPool2d(o) {
    const g = o.geometry;
    const argmax = (o.argmax as HostIndices).data;
    const fast = g.kh === 2 && g.kw === 2 && g.sh === 2 && g.sw === 2;
    const w = fast ? residentF32(o.y.data, o.x.data, argmax) : null;
    if (w) w.maxPool2x2(o.y.data as Float32Array, argmax, o.x.data as Float32Array, g);
    else (fast ? maxPool2x2Forward : maxPool2dForward)(o.y.data, argmax, o.x.data, g);
  },
  maxPool2dBackward(o) {
    const g = o.geometry;
    const argmax = (o.argmax as HostIndices).data;
    const disjoint = g.sh >= g.kh && g.sw >= g.kw;
    const w = disjoint ? residentF32(o.dx.data, o.dy.data, argmax) : null;
    if (w) w.maxPoolBackwardDisjoint(o.dx.data as Float32Array, o.dy.data as Float32Array, argmax, g);
    else maxPool2dBackward(o.dx.data, o.dy.data, argmax, o.dy.size);
  },
  avgPool2d: (o) => void avgPool2dForward(o.y.data, o.x.data, o.geometry),
  avgPool2dBackward: (o) => void avgPool2dBackward(o.dx.data, o.dy.data, o.geometry),

  crossEntropy(o) {
    const [N, K] = o.logits.shape as [number, number];
    o.loss.data[0] = softmaxCrossEntropyKernel(o.dlogits.data, o.logits.data, o.labels.data, N, K);
  },

  weightNorm(o) {
    const { vhat, gOverN } = weightNormState(o.state, o.groups, o.size);
    weightNormForward(o.weight.data, vhat, gOverN, o.g.data, o.v.data, o.groups, o.size);
  },
  weightNormBackward(o) {
    const { vhat, gOverN } = weightNormState(o.state, o.groups, o.size);
    weightNormBackward(o.dg.data, o.dv.data, o.dweight.data, vhat, gOverN, o.groups, o.size, true);
  },

  normalize: (o) => void normalizeForward(o.u.data, o.norms.data, o.x.data, o.count, o.len, o.vs, o.es, o.eps),
  normalizeBackward: (o) => void normalizeBackward(o.dx.data, o.du.data, o.u.data, o.norms.data, o.count, o.len, o.vs, o.es, o.eps, o.accumulate),
  // the receptive fields normalised in float64 (im2col); the backward recomputes them from x (it reads neither y nor norms)
  cosineConv2d: (o) => void cosineConv2dForward(o.y.data, o.norms.data, o.x.data, o.weight.data, o.geometry, o.eps,
    (o.workspace as HostWorkspace).get(cosineConv2dScratchSize(o.geometry))),
  // dx: col2im writes every element of each image
  cosineConv2dBackward: (o) => void cosineConv2dBackward(dataOf(o.dx), o.dweight.data, o.dy.data, o.x.data, o.weight.data, o.geometry, o.eps,
    (o.workspace as HostWorkspace).get(cosineConv2dScratchSize(o.geometry))),

  sgdStep(o) {
    const p = o.param.data, g = o.grad.data, wd = o.weightDecay;
    const w = !o.nesterov ? (o.buffer === null ? residentF32(p, g) : residentF32(p, g, o.buffer.data)) : null;
    if (w) {
      const mode = o.buffer === null ? SGD_PLAIN : o.first ? SGD_MOMENTUM_FIRST : SGD_MOMENTUM;
      w.sgd(p as Float32Array, g as Float32Array, (o.buffer?.data ?? null) as Float32Array | null, mode, o.lr, o.momentum, o.keep, wd);
      return;
    }
    if (p instanceof Float32Array) {
      // float32 storage: float32 arithmetic, the bits of the WebAssembly kernel above
      sgdStepF32(p, g as Float32Array, (o.buffer?.data ?? null) as Float32Array | null, o.lr, o.momentum, o.keep, wd, o.nesterov, o.first);
      return;
    }
    if (o.buffer === null) sgdKernel(p, g, o.lr, wd);
    else if (o.nesterov) sgdNesterovKernel(p, g, o.buffer.data, o.lr, o.momentum, wd, o.first);
    else if (o.first) sgdMomentumFirstKernel(p, g, o.buffer.data, o.lr, wd);
    else sgdMomentumKernel(p, g, o.buffer.data, o.lr, o.momentum, o.keep, wd);
  },
  adamStep: (o) => void adamKernel(o.param.data, o.grad.data, o.m.data, o.v.data, o.lr, o.beta1, o.beta2, o.eps, o.weightDecay, o.c1, o.c2, o.decay),
};
