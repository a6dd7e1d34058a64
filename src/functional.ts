/**
 * Functional forms, as torch.nn.functional: stateless calls that take the parameters and running
 * buffers as arguments. Each returns `y`, the statistics it used, and a `backward(dy)` closure
 * that returns dx and the parameter gradients (fresh tensors, not accumulated).
 *
 * Running buffers passed to `batchNorm` / `instanceNorm` in training mode are updated IN PLACE,
 * as PyTorch does. The functional forms run through the same layers (and so the same engine and
 * the same validation) as the classes.
 */
import { ShapeError, fmtShape } from "./errors.js";
import type { Parameter } from "./nn/module.js";
import { BatchNorm, GroupNorm, InstanceNorm, LayerNorm, Normalization, RMSNorm } from "./nn/normalization.js";
import { Tensor, sameShape } from "./tensor.js";

export interface NormResult {
  y: Tensor;
  /** Per statistic group (see the engine): the mean and 1/sqrt(var + eps) that normalised x. */
  mean: Float64Array;
  rstd: Float64Array;
  /** Gradients for this call: dx, and dweight / dbias where weight / bias were given. */
  backward(dy: Tensor): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null };
}

interface Affine {
  weight?: Tensor | null;
  bias?: Tensor | null;
}

function install(dst: Parameter | null, src: Tensor | null | undefined, name: string, ctx: string): void {
  if (!dst || !src) return;
  if (!sameShape(dst.value.shape, src.shape)) throw new ShapeError(name, `shape ${fmtShape(dst.value.shape)}`, `shape ${fmtShape(src.shape)}`, ctx);
  dst.value.data.set(src.data);
}

function checkBuffer(src: Tensor | null | undefined, dst: Tensor | null, name: string, ctx: string): void {
  if (src && dst && !sameShape(src.shape, dst.shape)) throw new ShapeError(name, `shape ${fmtShape(dst.shape)}`, `shape ${fmtShape(src.shape)}`, ctx);
}

function run(layer: Normalization, x: Tensor, a: Affine, training: boolean, ctx: string, rm?: Tensor | null, rv?: Tensor | null): NormResult {
  checkBuffer(rm, layer.runningMean, "runningMean", ctx);
  checkBuffer(rv, layer.runningVar, "runningVar", ctx);
  install(layer.weight, a.weight, "weight", ctx);
  install(layer.bias, a.bias, "bias", ctx);
  if (rm && layer.runningMean) layer.runningMean.data.set(rm.data);
  if (rv && layer.runningVar) layer.runningVar.data.set(rv.data);
  layer.train(training);
  const y = layer.forward(x);
  if (training) {
    if (rm && layer.runningMean) rm.data.set(layer.runningMean.data);
    if (rv && layer.runningVar) rv.data.set(layer.runningVar.data);
  }
  const stats = layer.lastStatistics()!;
  return {
    y,
    mean: stats.mean,
    rstd: stats.rstd,
    backward(dy: Tensor) {
      layer.zeroGrad();
      const dx = layer.backward(dy);
      return { dx, dweight: a.weight ? layer.weight!.grad.clone() : null, dbias: a.bias ? layer.bias!.grad.clone() : null };
    },
  };
}

/**
 * F.batch_norm: statistics per channel over N and the spatial dims. `training` (default false, as
 * PyTorch) uses the batch statistics and updates runningMean / runningVar in place; otherwise the
 * running statistics are used. Without running buffers the batch statistics are always used.
 */
export function batchNorm(
  x: Tensor,
  o: Affine & { runningMean?: Tensor | null; runningVar?: Tensor | null; training?: boolean; momentum?: number; eps?: number; channelsLast?: boolean } = {},
): NormResult {
  const channelsLast = o.channelsLast ?? false;
  const C = channelsLast && x.rank > 2 ? x.shape[x.rank - 1]! : x.shape[1]!;
  const track = !!(o.runningMean && o.runningVar);
  const layer = new BatchNorm({
    numFeatures: C ?? 0, eps: o.eps, momentum: o.momentum ?? 0.1, affine: !!(o.weight || o.bias), trackRunningStats: track,
    channelsLast, dtype: x.dtype,
  });
  return run(layer, x, o, o.training ?? !track, "batchNorm", o.runningMean, o.runningVar);
}

/** F.instance_norm: statistics per sample and channel (or the running ones when useInputStats is false). */
export function instanceNorm(
  x: Tensor,
  o: Affine & { runningMean?: Tensor | null; runningVar?: Tensor | null; useInputStats?: boolean; momentum?: number; eps?: number; channelsLast?: boolean } = {},
): NormResult {
  const channelsLast = o.channelsLast ?? false;
  const C = channelsLast && x.rank > 2 ? x.shape[x.rank - 1]! : x.shape[1]!;
  const track = !!(o.runningMean && o.runningVar);
  const layer = new InstanceNorm({
    numFeatures: C ?? 0, eps: o.eps, momentum: o.momentum ?? 0.1, affine: !!(o.weight || o.bias), trackRunningStats: track,
    channelsLast, dtype: x.dtype,
  });
  return run(layer, x, o, o.useInputStats ?? true, "instanceNorm", o.runningMean, o.runningVar);
}

/** F.layer_norm over the trailing `normalizedShape` dims. */
export function layerNorm(x: Tensor, normalizedShape: number | number[], o: Affine & { eps?: number } = {}): NormResult {
  const layer = new LayerNorm({ normalizedShape, eps: o.eps, elementwiseAffine: !!(o.weight || o.bias), bias: !!o.bias, dtype: x.dtype });
  if (o.bias && !o.weight) layer.weight!.value.data.fill(1);
  return run(layer, x, o, true, "layerNorm");
}

/** F.group_norm with per-channel weight and bias. */
export function groupNorm(x: Tensor, numGroups: number, o: Affine & { eps?: number; channelsLast?: boolean } = {}): NormResult {
  const channelsLast = o.channelsLast ?? false;
  const C = channelsLast && x.rank > 2 ? x.shape[x.rank - 1]! : x.shape[1]!;
  const layer = new GroupNorm({ numGroups, numChannels: C ?? 0, eps: o.eps, affine: !!(o.weight || o.bias), channelsLast, dtype: x.dtype });
  return run(layer, x, o, true, "groupNorm");
}

/** F.rms_norm: y = x / sqrt(mean(x^2) + eps) * weight; eps defaults to the dtype's machine epsilon. */
export function rmsNorm(x: Tensor, normalizedShape: number | number[], o: { weight?: Tensor | null; eps?: number | null } = {}): NormResult {
  const layer = new RMSNorm({ normalizedShape, eps: o.eps, elementwiseAffine: !!o.weight, dtype: x.dtype });
  return run(layer, x, o, true, "rmsNorm");
}
