/**
 * Runs the `weight_norm` and `cosine_norm` fixture cases (see test/data and FORMAT.md): builds the
 * layer from `config`, loads the inputs, does one forward and one backward, and returns the computed
 * outputs under the fixture's output names. The caller compares them.
 */
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import { Conv2d } from "../nn/conv2d.js";
import { CosineConv2d, CosineLinear } from "../nn/cosine_norm.js";
import { Linear } from "../nn/linear.js";
import { G_KEY, V_KEY, WeightNorm } from "../nn/weight_norm.js";
import { DType, Tensor, sameShape, sizeOf } from "../tensor.js";
import type { FixtureCase } from "./fixture.js";


function posInt(config: Record<string, unknown>, key: string, ctx: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new ConfigError(key, "a positive integer", v === undefined ? "a missing key" : JSON.stringify(v), ctx);
  return v;
}

function intOrPair(config: Record<string, unknown>, key: string, min: number, ctx: string, fallback?: number): [number, number] {
  const v = config[key] ?? fallback;
  const p = typeof v === "number" ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new ConfigError(key, `an integer ≥ ${min} or a pair of them`, v === undefined ? "a missing key" : JSON.stringify(v), ctx);
  }
  return [p[0], p[1]];
}

/** inputs[name] as a Tensor of `dtype`; `expect`, when given, is the shape the config implies. */
function input(c: FixtureCase, name: string, dtype: DType, ctx: string, expect?: readonly number[]): Tensor {
  const t = c.inputs?.[name];
  const param = `inputs.${name}`;
  if (t === undefined) throw new ConfigError(param, "a tensor", "a missing input", ctx);
  if (!Array.isArray(t.shape) || t.data === undefined || t.data.length !== sizeOf(t.shape)) {
    throw new ShapeError(param, `${Array.isArray(t.shape) ? sizeOf(t.shape) : "shape-many"} values for shape ${JSON.stringify(t.shape)}`, `${t.data?.length}`, ctx);
  }
  if (expect !== undefined && !sameShape(t.shape, expect)) {
    throw new ShapeError(param, `shape ${fmtShape(expect)} (from the config)`, `shape ${fmtShape(t.shape)}`, ctx);
  }
  return Tensor.from(t.data, t.shape, dtype);
}

const noRng = () => 0.5; // every parameter is overwritten from the fixture

function layerKind(config: Record<string, unknown>, ctx: string): "linear" | "conv2d" {
  const layer = config.layer;
  if (layer !== "linear" && layer !== "conv2d") throw new ConfigError("layer", '"linear" or "conv2d"', JSON.stringify(layer), ctx);
  return layer;
}

/** Checks that x matches the config before the layer sees it, so the error names the fixture input. */
function inputX(c: FixtureCase, dtype: DType, ctx: string, rank: number, axis: number, size: number): Tensor {
  const x = input(c, "x", dtype, ctx);
  if (x.rank !== rank || x.shape[axis] !== size) {
    throw new ShapeError("inputs.x", `rank ${rank} with ${size} on axis ${axis} (from the config)`, `shape ${fmtShape(x.shape)}`, ctx);
  }
  return x;
}

/** weight_norm: outputs y, dx, dg, dv, weight (effective) and dbias (when the case has a bias). */
export function runWeightNormCase(c: FixtureCase, dtype: DType): Record<string, Tensor> {
  const { wn, layer, x, dyFor } = loadWeightNormCase(c, dtype);
  wn.zeroGrad();
  const y = wn.forward(x);
  const dx = wn.backward(dyFor(y.shape));
  const out: Record<string, Tensor> = { y, dx, dg: wn.g.grad.clone(), dv: wn.v.grad.clone(), weight: wn.weight() };
  if (layer.bias) out.dbias = layer.bias.grad.clone();
  return out;
}

/** A weight_norm case's WeightNorm (g, v, bias loaded), its wrapped layer, x, and dy (checked against y's shape). */
export function loadWeightNormCase(c: FixtureCase, dtype: DType): { wn: WeightNorm; layer: Linear | Conv2d; x: Tensor; dyFor: (shape: readonly number[]) => Tensor } {
  const ctx = `weight_norm case ${c.name}`;
  const cfg = c.config ?? {};
  const kind = layerKind(cfg, ctx);
  const dim = cfg.dim === undefined ? 0 : cfg.dim;
  if (dim !== 0 && dim !== null) throw new ConfigError("dim", "0 or null", JSON.stringify(dim), ctx);
  const hasBias = c.inputs?.bias !== undefined;
  let layer: Linear | Conv2d;
  let x: Tensor;
  if (kind === "linear") {
    layer = new Linear({ inFeatures: posInt(cfg, "in_features", ctx), outFeatures: posInt(cfg, "out_features", ctx), bias: hasBias, dtype, rng: noRng });
    x = inputX(c, dtype, ctx, 2, 1, layer.inFeatures);
  } else {
    layer = new Conv2d({
      inChannels: posInt(cfg, "in_channels", ctx), outChannels: posInt(cfg, "out_channels", ctx),
      kernelSize: intOrPair(cfg, "kernel_size", 1, ctx), stride: intOrPair(cfg, "stride", 1, ctx, 1),
      padding: intOrPair(cfg, "padding", 0, ctx, 0), bias: hasBias, dtype, rng: noRng,
    });
    x = inputX(c, dtype, ctx, 4, 1, layer.inChannels);
  }
  const wn = new WeightNorm(layer, { dim });
  const state: Record<string, Tensor> = {
    [G_KEY]: input(c, "g", dtype, ctx, wn.g.value.shape),
    [V_KEY]: input(c, "v", dtype, ctx, wn.v.value.shape),
  };
  if (layer.bias) state.bias = input(c, "bias", dtype, ctx, layer.bias.value.shape);
  wn.loadStateDict(state);
  return { wn, layer, x, dyFor: (shape) => input(c, "dy", dtype, ctx, shape) };
}

/** cosine_norm: outputs y, dx, dweight. */
export function runCosineNormCase(c: FixtureCase, dtype: DType): Record<string, Tensor> {
  const { layer, x, dyFor } = loadCosineNormCase(c, dtype);
  const y = layer.forward(x);
  const dx = layer.backward(dyFor(y.shape));
  return { y, dx, dweight: layer.weight.grad.clone() };
}

/** A cosine_norm case's layer (weight loaded), x, and dy (checked against y's shape). */
export function loadCosineNormCase(c: FixtureCase, dtype: DType): { layer: CosineLinear | CosineConv2d; x: Tensor; dyFor: (shape: readonly number[]) => Tensor } {
  const ctx = `cosine_norm case ${c.name}`;
  const cfg = c.config ?? {};
  const kind = layerKind(cfg, ctx);
  let layer: CosineLinear | CosineConv2d;
  let x: Tensor;
  if (kind === "linear") {
    layer = new CosineLinear({ inFeatures: posInt(cfg, "in_features", ctx), outFeatures: posInt(cfg, "out_features", ctx), dtype, rng: noRng });
    x = inputX(c, dtype, ctx, 2, 1, layer.inFeatures);
  } else {
    layer = new CosineConv2d({
      inChannels: posInt(cfg, "in_channels", ctx), outChannels: posInt(cfg, "out_channels", ctx),
      kernelSize: intOrPair(cfg, "kernel_size", 1, ctx), stride: intOrPair(cfg, "stride", 1, ctx, 1),
      padding: intOrPair(cfg, "padding", 0, ctx, 0), dtype, rng: noRng,
    });
    x = inputX(c, dtype, ctx, 4, 1, layer.inChannels);
  }
  layer.loadStateDict({ weight: input(c, "weight", dtype, ctx, layer.weight.value.shape) });
  return { layer, x, dyFor: (shape) => input(c, "dy", dtype, ctx, shape) };
}
