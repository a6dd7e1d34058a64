/// <reference types="@webgpu/types" preserve="true" />
/**
 * The WebGPU implementation of the training stack's contract (../contract/ops.ts): the kernels of
 * ./kernels/ops.ts, enqueued on the context's queue (nothing is read back). Linear is a tiled matrix
 * product; the convolution is direct (one thread per output, per input gradient, per weight
 * gradient) — correct everywhere, tuned nowhere yet.
 */
import type { Indices, OpKernels, Workspace } from "../contract/ops.js";
import type { GpuContext, GpuRun, Program } from "./device.js";
import { type GpuTensor, clearTensors } from "./tensor.js";
import { WORKGROUP_SIZE as WG } from "./wgsl.js";
import { Scratch } from "./engine.js";
import { l2NormalizeBackward, l2NormalizeForward, weightNormBackward, weightNormForward } from "./vector_ops.js";
import { cosineConvForwardProgram, cosineConvGradsProgram, cosineConvInputGradProgram, patchNormProgram } from "./kernels/cosine.js";
import type { Conv2dGeometry, Pool2dGeometry } from "../contract/ops.js";
import {
  adamProgram, avgPoolBackwardProgram, avgPoolForwardProgram, columnSumProgram,
  convBiasGradProgram, convForwardProgram, convInputGradProgram, convWeightGradProgram, crossEntropyRowsProgram, gemmFlatProgram, gemmProgram,
  maxPoolBackwardProgram, maxPoolForwardProgram, meanProgram, reluBackwardProgram, reluForwardProgram, sgdProgram,
} from "./kernels/ops.js";

class GpuIndices implements Indices {
  readonly buffer: GPUBuffer;
  constructor(ctx: GpuContext, readonly count: number) {
    this.buffer = ctx.createStorage(count * 4, "argmax");
  }
  destroy(): void {
    this.buffer.destroy();
  }
}

/** The argument type of an operation of the contract, on GpuTensors. */
type A<K extends keyof OpKernels<GpuTensor>> = Parameters<OpKernels<GpuTensor>[K]>[0];

const groups = (n: number) => Math.max(1, Math.ceil(n / WG));

export class WebGpuOps implements OpKernels<GpuTensor> {
  private unused: GPUBuffer | null = null;
  /** Matrix products without workgroup memory (CPU Vulkan drivers: SwiftShader). */
  readonly flat: boolean;
  constructor(readonly ctx: GpuContext, options: { flatGemm?: boolean } = {}) {
    const info = (ctx.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    this.flat = options.flatGemm ?? /swiftshader/i.test(`${info?.vendor ?? ""} ${info?.architecture ?? ""} ${info?.description ?? ""}`);
  }

  private one(p: Program, values: Record<string, number>, buffers: GPUBuffer[], workgroups: number): void {
    if (workgroups === 0) return;
    this.ctx.submit([this.ctx.prepare(p as never, values as never, buffers, workgroups)]);
  }
  private run(run: GpuRun): void {
    if (run.length) this.ctx.submit(run);
  }

  createWorkspace(): Workspace {
    return new Scratch(this.ctx); // the engine's named buffers serve as a Workspace
  }
  createIndices(count: number): Indices {
    return new GpuIndices(this.ctx, count);
  }

  /** C[M, N] = beta C + A B (+ bias) with A(m, k) = a[m sam + k sak], B(k, n) = b[k sbk + n sbn]. */
  private gemm(c: GPUBuffer, a: GPUBuffer, b: GPUBuffer, bias: GPUBuffer | null, M: number, N: number, K: number, s: [number, number, number, number], beta: number) {
    if (this.flat) {
      const u = { count: M * N, M, N, K, sam: s[0], sak: s[1], sbk: s[2], sbn: s[3], beta };
      return this.ctx.prepare(gemmFlatProgram({ bias: bias !== null }) as never, u as never, [a, b, c, ...(bias ? [bias] : [])], groups(M * N));
    }
    const tilesN = Math.ceil(N / 16);
    const u = { M, N, K, sam: s[0], sak: s[1], sbk: s[2], sbn: s[3], tilesN, beta };
    return this.ctx.prepare(gemmProgram({ bias: bias !== null }) as never, u as never, [a, b, c, ...(bias ? [bias] : [])], Math.ceil(M / 16) * tilesN);
  }

  linear(o: A<"linear">): void {
    if (o.rows === 0) return;
    // y[r, n] = Σ_k x[r, k] W[n, k] + b[n]
    this.run([this.gemm(o.y.buffer, o.x.buffer, o.weight.buffer, o.bias?.buffer ?? null, o.rows, o.outF, o.inF, [o.inF, 1, 1, o.inF], 0)]);
  }

  linearBackward(o: A<"linearBackward">): void {
    // overwriting dW and db: zeroed first, then the same accumulating kernels
    if (o.accumulate === false) clearTensors(this.ctx, o.dbias ? [o.dweight, o.dbias] : [o.dweight]);
    if (o.rows === 0) return;
    const { rows, inF, outF } = o;
    const run: GpuRun = [];
    // dx[r, i] = Σ_o dy[r, o] W[o, i]
    if (o.dx) run.push(this.gemm(o.dx.buffer, o.dy.buffer, o.weight.buffer, null, rows, inF, outF, [outF, 1, inF, 1], 0));
    // dW[o, i] += Σ_r dy[r, o] x[r, i]
    run.push(this.gemm(o.dweight.buffer, o.dy.buffer, o.x.buffer, null, outF, inF, rows, [1, outF, inF, 1], 1));
    if (o.dbias) run.push(this.ctx.prepare(columnSumProgram() as never, { count: outF, rows } as never, [o.dy.buffer, o.dbias.buffer], groups(outF)));
    this.run(run);
  }

  private convUniforms(g: Conv2dGeometry, count: number) {
    return { count, N: g.N, C: g.C, H: g.H, W: g.W, O: g.O, kh: g.kh, kw: g.kw, sh: g.sh, sw: g.sw, ph: g.ph, pw: g.pw, Ho: g.Ho, Wo: g.Wo };
  }

  conv2d(o: A<"conv2d">): void {
    const g = o.geometry;
    const n = g.N * g.O * g.P;
    this.one(convForwardProgram({ bias: o.bias !== null }), this.convUniforms(g, n), [o.x.buffer, o.weight.buffer, o.y.buffer, ...(o.bias ? [o.bias.buffer] : [])], groups(n) * (n > 0 ? 1 : 0));
  }

  conv2dBackward(o: A<"conv2dBackward">): void {
    if (o.accumulate === false) clearTensors(this.ctx, o.dbias ? [o.dweight, o.dbias] : [o.dweight]);
    const g = o.geometry;
    if (g.N === 0) return;
    const run: GpuRun = [];
    const nx = g.N * g.C * g.H * g.W, nw = g.O * g.K;
    if (o.dx) run.push(this.ctx.prepare(convInputGradProgram() as never, this.convUniforms(g, nx) as never, [o.dy.buffer, o.weight.buffer, o.dx.buffer], groups(nx)));
    run.push(this.ctx.prepare(convWeightGradProgram() as never, this.convUniforms(g, nw) as never, [o.dy.buffer, o.x.buffer, o.dweight.buffer], groups(nw)));
    if (o.dbias) run.push(this.ctx.prepare(convBiasGradProgram() as never, this.convUniforms(g, g.O) as never, [o.dy.buffer, o.dbias.buffer], groups(g.O)));
    this.run(run);
  }

  relu(o: A<"relu">): void {
    this.one(reluForwardProgram(), { count: o.x.size }, [o.x.buffer, o.y.buffer], o.x.size ? groups(o.x.size) : 0);
  }
  reluBackward(o: A<"reluBackward">): void {
    this.one(reluBackwardProgram(), { count: o.x.size }, [o.dy.buffer, o.x.buffer, o.dx.buffer], o.x.size ? groups(o.x.size) : 0);
  }

  private poolUniforms(g: Pool2dGeometry, count: number) {
    return { count, H: g.H, W: g.W, kh: g.kh, kw: g.kw, sh: g.sh, sw: g.sw, Ho: g.Ho, Wo: g.Wo };
  }
  maxPool2d(o: A<"maxPool2d">): void {
    const g = o.geometry, n = g.planes * g.Ho * g.Wo;
    this.one(maxPoolForwardProgram(), this.poolUniforms(g, n), [o.x.buffer, o.y.buffer, (o.argmax as GpuIndices).buffer], n ? groups(n) : 0);
  }
  maxPool2dBackward(o: A<"maxPool2dBackward">): void {
    const g = o.geometry, n = g.planes * g.H * g.W;
    this.one(maxPoolBackwardProgram(), this.poolUniforms(g, n), [o.dy.buffer, (o.argmax as GpuIndices).buffer, o.dx.buffer], n ? groups(n) : 0);
  }
  avgPool2d(o: A<"avgPool2d">): void {
    const g = o.geometry, n = g.planes * g.Ho * g.Wo;
    this.one(avgPoolForwardProgram(), this.poolUniforms(g, n), [o.x.buffer, o.y.buffer], n ? groups(n) : 0);
  }
  avgPool2dBackward(o: A<"avgPool2dBackward">): void {
    const g = o.geometry, n = g.planes * g.H * g.W;
    this.one(avgPoolBackwardProgram(), this.poolUniforms(g, n), [o.dy.buffer, o.dx.buffer], n ? groups(n) : 0);
  }

  crossEntropy(o: A<"crossEntropy">): void {
    const [N, K] = o.logits.shape as [number, number];
    const rows = (o.workspace as Scratch).get("rows", N * 4);
    this.run([
      this.ctx.prepare(crossEntropyRowsProgram() as never, { count: N, K } as never, [o.logits.buffer, o.labels.buffer, o.dlogits.buffer, rows], groups(N)),
      this.ctx.prepare(meanProgram() as never, { count: N } as never, [rows, o.loss.buffer], 1),
    ]);
  }

  weightNorm(o: A<"weightNorm">): void {
    const norms = (o.state as Scratch).get("norms", o.groups * 8);
    this.run(weightNormForward(this.ctx, o.weight, norms, o.g, o.v, o.groups, o.size));
  }
  weightNormBackward(o: A<"weightNormBackward">): void {
    const norms = (o.state as Scratch).get("norms", o.groups * 8);
    this.run(weightNormBackward(this.ctx, o.dg, o.dv, o.dweight, o.v, norms, o.groups, o.size));
  }

  normalize(o: A<"normalize">): void {
    if (o.count === 0) return;
    this.run(l2NormalizeForward(this.ctx, o.u, o.norms.buffer, o.x, o, o.eps));
  }
  normalizeBackward(o: A<"normalizeBackward">): void {
    if (o.count === 0) return;
    this.run(l2NormalizeBackward(this.ctx, o.dx, o.du, o.u, o.norms.buffer, o, o.eps, o.accumulate));
  }

  cosineConv2d(o: A<"cosineConv2d">): void {
    const g = o.geometry;
    const np = g.N * g.P, ny = np * g.O;
    if (ny === 0) return;
    this.run([
      this.ctx.prepare(patchNormProgram() as never, { ...this.convUniforms(g, np), eps: o.eps } as never, [o.x.buffer, o.norms.buffer], groups(np)),
      this.ctx.prepare(cosineConvForwardProgram() as never, { ...this.convUniforms(g, ny), eps: o.eps } as never,
        [o.x.buffer, o.weight.buffer, o.norms.buffer, o.y.buffer], groups(ny)),
    ]);
  }
  cosineConv2dBackward(o: A<"cosineConv2dBackward">): void {
    const g = o.geometry;
    const np = g.N * g.P, nx = g.N * g.C * g.H * g.W, nw = g.O * g.K;
    if (np * g.O === 0) return;
    const ws = o.workspace as Scratch;
    const da = ws.get("cosine da", np * g.O * 4), gn = ws.get("cosine g", np * 4);
    const run: GpuRun = [
      this.ctx.prepare(cosineConvGradsProgram() as never, { ...this.convUniforms(g, np), eps: o.eps } as never,
        [o.dy.buffer, o.y.buffer, o.norms.buffer, da, gn], groups(np)),
      this.ctx.prepare(convWeightGradProgram() as never, this.convUniforms(g, nw) as never, [da, o.x.buffer, o.dweight.buffer], groups(nw)),
    ];
    if (o.dx) {
      run.push(this.ctx.prepare(cosineConvInputGradProgram() as never, { ...this.convUniforms(g, nx), eps: o.eps } as never,
        [da, gn, o.weight.buffer, o.x.buffer, o.dx.buffer], groups(nx)));
    }
    this.run(run);
  }

  sgdStep(o: A<"sgdStep">): void {
    const u = {
      count: o.param.size, lr: o.lr, mu: o.momentum, keep: o.keep, wd: o.weightDecay, first: o.first ? 1 : 0, nesterov: o.nesterov ? 1 : 0,
      momentum: o.buffer ? 1 : 0,
    };
    // without momentum the buffer binding is unused: a 16-byte stand-in (a binding may not alias another)
    this.unused ??= this.ctx.createStorage(16, "unused");
    this.one(sgdProgram(), u, [o.param.buffer, o.grad.buffer, o.buffer?.buffer ?? this.unused], o.param.size ? groups(o.param.size) : 0);
  }
  adamStep(o: A<"adamStep">): void {
    const u = { count: o.param.size, lr: o.lr, b1: o.beta1, b2: o.beta2, eps: o.eps, wd: o.weightDecay, c1: o.c1, c2: o.c2, decay: o.decay };
    this.one(adamProgram(), u, [o.param.buffer, o.grad.buffer, o.m.buffer, o.v.buffer], o.param.size ? groups(o.param.size) : 0);
  }
}
