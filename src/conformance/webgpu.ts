/**
 * The conformance runner on the WebGPU backend: runs a fixture case the way the CPU runner does
 * (src/conformance/), with every normalisation step on the GPU, and compares at FORMAT.md's GPU
 * tolerances: 1e-4 * max(1, max|want|), and 1e-2 on the `*_large_offset` cases (float32 storage,
 * no float64 anywhere: rounding the mean itself to float32 costs ~3e-3 of the spread there).
 *
 * - batch/instance/layer/group/rms/switchable_norm: the case's layer itself, moved to the device
 *   (`await layer.to(device)`): one training forward + backward, the running buffers, then (with
 *   x_eval) one eval forward — the CPU runner's steps, on GpuTensors.
 * - weight_norm: the effective weight g·v/‖v‖ and dg, dv on the GPU; the wrapped Linear / Conv2d
 *   (a matrix product, not a normalisation) runs on the CPU with that weight.
 * - cosine_norm: every normalisation (inputs, receptive fields, filters; forward and backward) on
 *   the GPU; the products between them on the CPU.
 */
import type { CaseResult } from "./runner.js";
import { checkOutputs, runnerOf } from "./runner.js";
import { runNormCase } from "./cases_norm.js";
import { loadCosineNormCase, loadWeightNormCase } from "./cases_weight.js";
import { FixtureCase, FixtureError } from "./fixture.js";
import { NormkitError } from "../errors.js";
import { CosineLinear } from "../nn/cosine_norm.js";
import { col2im, gemmDyColT, gemmWCol, gemmWTDy, im2col, conv2dGeometry } from "../kernels/ts/conv2d.js";
import { linearBackward, linearForward } from "../kernels/ts/linear.js";
import { Tensor } from "../tensor.js";
import type { GpuContext } from "../kernels/webgpu/device.js";
import type { EngineOptions } from "../kernels/webgpu/engine.js";
import { GpuTensor, downloadTensor, uploadTensor } from "../kernels/webgpu/tensor.js";
import { WebGpuDevice } from "../kernels/webgpu/webgpu_device.js";
import { columnsOf, l2NormalizeBackward, l2NormalizeForward, normsBuffer, rowsOf, weightNormBackward, weightNormForward } from "../kernels/webgpu/vector_ops.js";

/** FORMAT.md's tolerance for a GPU (float32, no float64) path. */
export function gpuTolerance(caseName: string): number {
  return caseName.endsWith("_large_offset") ? 1e-2 : 1e-4;
}

const f32 = (t: Tensor) => (t.dtype === "float32" ? t : t.clone("float32"));

async function runWeightNorm(ctx: GpuContext, c: FixtureCase): Promise<Record<string, Tensor>> {
  const { wn, layer, x, dyFor } = loadWeightNormCase(c, "float32");
  const W = layer.weight.value;
  const R = wn.dim === 0 ? W.shape[0]! : 1;
  const S = W.size / R;
  const g = uploadTensor(ctx, wn.g.value, undefined, "g"), v = uploadTensor(ctx, wn.v.value, undefined, "v");
  const w = GpuTensor.zerosOn(ctx, W.shape, "weight");
  const norms = normsBuffer(ctx, R, 2);
  ctx.submit(weightNormForward(ctx, w, norms, g, v, R, S));
  const weight = await downloadTensor(w);
  // the wrapped layer (CPU) with the GPU's weight
  W.data.set(weight.data);
  layer.zeroGrad();
  const y = layer.forward(x);
  const dx = layer.backward(dyFor(y.shape));
  const dW = uploadTensor(ctx, layer.weight.grad, undefined, "dW");
  const dg = GpuTensor.zerosOn(ctx, wn.g.value.shape, "dg"), dv = GpuTensor.zerosOn(ctx, W.shape, "dv");
  ctx.submit(weightNormBackward(ctx, dg, dv, dW, v, norms, R, S));
  const out: Record<string, Tensor> = { y, dx, weight, dg: await downloadTensor(dg), dv: await downloadTensor(dv) };
  if (layer.bias) out["dbias"] = layer.bias.grad.clone();
  return out;
}

/** F.normalize of vectors on the GPU; returns the normalised values and the GPU-side state for backward. */
async function normalizeOnGpu(ctx: GpuContext, data: ArrayLike<number>, shape: readonly number[], layout: ReturnType<typeof rowsOf>, eps: number) {
  const x = uploadTensor(ctx, data, shape, "vectors");
  const u = GpuTensor.zerosOn(ctx, shape, "normalized");
  const norms = normsBuffer(ctx, layout.count);
  ctx.submit(l2NormalizeForward(ctx, u, norms, x, layout, eps));
  return { u, norms, host: (await downloadTensor(u)).data as Float32Array };
}

async function normalizeBackwardOnGpu(ctx: GpuContext, du: ArrayLike<number>, state: { u: GpuTensor; norms: GPUBuffer }, layout: ReturnType<typeof rowsOf>, eps: number) {
  const duT = uploadTensor(ctx, du, state.u.shape, "du");
  const dx = GpuTensor.zerosOn(ctx, state.u.shape, "dx");
  ctx.submit(l2NormalizeBackward(ctx, dx, duT, state.u, state.norms, layout, eps, false));
  return (await downloadTensor(dx)).data as Float32Array;
}

async function runCosineNorm(ctx: GpuContext, c: FixtureCase): Promise<Record<string, Tensor>> {
  const { layer, x, dyFor } = loadCosineNormCase(c, "float32");
  const Wt = layer.weight.value;
  if (layer instanceof CosineLinear) {
    const I = layer.inFeatures, O = layer.outFeatures, rows = x.size / I;
    const xs = await normalizeOnGpu(ctx, x.data, [rows, I], rowsOf(rows, I), layer.eps);
    const ws = await normalizeOnGpu(ctx, Wt.data, [O, I], rowsOf(O, I), layer.eps);
    const y = new Float32Array(rows * O);
    linearForward(y, xs.host, ws.host, null, rows, I, O);
    const yShape = [...x.shape.slice(0, -1), O];
    const dy = dyFor(yShape);
    const dxhat = new Float64Array(rows * I), dwhat = new Float64Array(O * I);
    linearBackward(dxhat, dwhat, null, dy.data, xs.host, ws.host, rows, I, O, false);
    const dx = await normalizeBackwardOnGpu(ctx, dxhat, xs, rowsOf(rows, I), layer.eps);
    const dweight = await normalizeBackwardOnGpu(ctx, dwhat, ws, rowsOf(O, I), layer.eps);
    return { y: new Tensor(y, yShape), dx: new Tensor(dx, x.shape), dweight: new Tensor(dweight, Wt.shape) };
  }
  const geo = conv2dGeometry(x.shape, layer.outChannels, layer.kernelSize, layer.stride, layer.padding);
  const { N, C, H, W, O, K, P } = geo;
  const ws = await normalizeOnGpu(ctx, Wt.data, [O, K], rowsOf(O, K), layer.eps);
  const y = new Float32Array(N * O * P);
  const col = new Float64Array(K * P);
  const cols: { u: GpuTensor; norms: GPUBuffer; host: Float32Array }[] = [];
  for (let n = 0; n < N; n++) {
    im2col(col, x.data, n * C * H * W, geo);
    const cs = await normalizeOnGpu(ctx, col, [K, P], columnsOf(P, K), layer.eps);
    cols.push(cs);
    gemmWCol(y, n * O * P, ws.host, null, cs.host, O, K, P);
  }
  const yShape = [N, O, geo.Ho, geo.Wo];
  const dy = dyFor(yShape);
  const dwhat = new Float64Array(O * K), dcol = new Float64Array(K * P);
  const dx = new Float32Array(x.size);
  for (let n = 0; n < N; n++) {
    gemmDyColT(dwhat, dy.data, n * O * P, cols[n]!.host, O, K, P);
    gemmWTDy(dcol, ws.host, dy.data, n * O * P, O, K, P);
    const dc = await normalizeBackwardOnGpu(ctx, dcol, cols[n]!, columnsOf(P, K), layer.eps);
    col2im(dx, n * C * H * W, dc, geo, false);
  }
  const dweight = await normalizeBackwardOnGpu(ctx, dwhat, ws, rowsOf(O, K), layer.eps);
  return { y: new Tensor(y, yShape), dx: new Tensor(dx, x.shape), dweight: new Tensor(dweight, Wt.shape) };
}

/** Runs one case on the GPU and compares it (GPU tolerance); throws FixtureError for an unknown op or a bad config. */
export async function runCaseWebGpu(ctx: GpuContext, c: FixtureCase, opts: EngineOptions = {}, tol = gpuTolerance(c.name)): Promise<CaseResult> {
  return checkOutputs(c, await computeCaseWebGpu(ctx, c, opts), tol);
}

/** The outputs of one case computed on the GPU (float32), under the fixture's output names. */
export async function computeCaseWebGpu(ctx: GpuContext, c: FixtureCase, opts: EngineOptions = {}): Promise<Record<string, Tensor>> {
  runnerOf(c);
  let got: Record<string, Tensor>;
  try {
    if (c.op === "weight_norm") got = await runWeightNorm(ctx, c);
    else if (c.op === "cosine_norm") got = await runCosineNorm(ctx, c);
    else got = await runNormCase(c, "float32", new WebGpuDevice(ctx, opts));
  } catch (e) {
    if (e instanceof NormkitError) throw new FixtureError(`case "${c.name}": ${e.message}`);
    throw e;
  }
  for (const k of Object.keys(got)) got[k] = f32(got[k]!);
  return got;
}
