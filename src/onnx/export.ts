/**
 * ONNX export of a normkit model for inference (the `normkit/onnx` entry point).
 *
 * The model is walked module by module (Sequential in order; ReuseOutputs and WeightNorm are
 * transparent) and each module becomes standard ONNX operators of the default domain, opset 17 or
 * later. The graph computes the model's EVAL forward, whatever its training flag: BatchNorm with its
 * running statistics, Switchable Norm's BN branch from its running statistics. Everything learned
 * or derived is a float32 initializer, computed at export in float64 and rounded once:
 *
 * | module | ONNX |
 * |---|---|
 * | Conv2d, Linear | Conv; Gemm (rank-2 input) or MatMul + Add |
 * | WeightNorm(layer) | the layer with w = g · v / ‖v‖ folded into its weight |
 * | BatchNorm (tracking), InstanceNorm (tracking) | BatchNormalization with the running statistics |
 * | BatchNorm (not tracking) | its batch statistics: ReduceMean / Sub / Mul / Sqrt / Div, then Mul + Add |
 * | InstanceNorm | InstanceNormalization (unbatched input: Unsqueeze / Squeeze around it) |
 * | GroupNorm | Reshape [N, G, -1] → InstanceNormalization → Reshape back → Mul + Add (as PyTorch exports it) |
 * | LayerNorm | LayerNormalization (opset 17) |
 * | RMSNorm | x / Sqrt(ReduceMean(x²) + eps) · weight |
 * | SwitchableNorm | IN statistics by ReduceMean, LN statistics from them (the layer's law of total variance), BN from the running statistics, blended with the softmax weights (constants) |
 * | CosineLinear | x / max(‖x‖, eps) (ReduceSum of x², Sqrt, Max, Div), then Gemm / MatMul with ŵ folded |
 * | CosineConv2d | Conv(x, ŵ) / max(sqrt(Conv(x², ones)), eps): the receptive-field norms by a convolution |
 * | ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten | Relu, MaxPool, AveragePool, GlobalAveragePool + Flatten, Flatten |
 *
 * float64 models are exported as float32 graphs (their weights rounded to float32); the graph's input
 * and output are float32. Layers with `channelsLast` are refused (ConfigError naming the layer).
 */
import { ConfigError, DeviceError, NormkitError, ShapeError, fmtShape } from "../errors.js";
import { Module } from "../nn/module.js";
import { AvgPool2d, Flatten, GlobalAvgPool2d, MaxPool2d, ReLU, ReuseOutputs, Sequential } from "../nn/basic.js";
import { Conv2d } from "../nn/conv2d.js";
import { Linear } from "../nn/linear.js";
import { CosineConv2d, CosineLinear } from "../nn/cosine_norm.js";
import { WeightNorm } from "../nn/weight_norm.js";
import { BatchNorm, GroupNorm, InstanceNorm, LayerNorm, Normalization, RMSNorm } from "../nn/normalization.js";
import { SwitchableNorm } from "../nn/switchable_norm.js";
import { conv2dGeometry } from "../kernels/contract/ops.js";
import { DEVICE_STORAGE, Tensor, sizeOf } from "../tensor.js";
import { AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, encodeModel } from "./proto.js";

/** The opsets exportOnnx writes (the default domain). */
export const SUPPORTED_OPSETS = [17, 18, 19, 20, 21] as const;
/** The default opset: 17, the first with LayerNormalization. */
export const DEFAULT_OPSET = 17;
/** The ONNX IR version of each opset (onnx/helper.py's VERSION_TABLE). */
const IR_VERSION: Record<number, number> = { 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };

/** The module classes exportOnnx translates (subclasses included). */
export const EXPORTABLE_MODULES = [
  "Sequential", "ReuseOutputs", "WeightNorm", "Conv2d", "Linear", "ReLU", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "Flatten",
  "BatchNorm", "InstanceNorm", "GroupNorm", "LayerNorm", "RMSNorm", "SwitchableNorm", "CosineLinear", "CosineConv2d",
] as const;

export interface ExportOnnxOptions {
  /** The model's input shape, batch dim first, e.g. [1, 1, 28, 28]. Required: positive integers. */
  inputShape: readonly number[];
  /** Opset of the default domain: one of SUPPORTED_OPSETS. Default 17. */
  opset?: number;
  /** Name of the graph's input. Default "input". */
  inputName?: string;
  /** Name of the graph's output. Default "output". */
  outputName?: string;
  /**
   * Declare the batch dim (dim 0) symbolic ("batch"), so that one model runs any batch size.
   * Default false: the graph declares exactly inputShape.
   */
  dynamicBatch?: boolean;
  /** The graph's name. Default "normkit". */
  graphName?: string;
}

/**
 * A module exportOnnx has no translation for. `modulePath` is its dotted path in the model (the
 * names of namedModules(): "3", "0.1"; "" for the model itself), `moduleClass` its class name.
 */
export class UnsupportedModuleError extends ConfigError {
  readonly modulePath: string;
  readonly moduleClass: string;
  constructor(modulePath: string, moduleClass: string) {
    super(pathParam(modulePath), `a module exportOnnx translates (${EXPORTABLE_MODULES.join(", ")})`, `${moduleClass} at "${modulePath}"`, "exportOnnx");
    this.modulePath = modulePath;
    this.moduleClass = moduleClass;
  }
}

function pathParam(path: string): string {
  return path === "" ? "model" : `model.${path}`;
}

/**
 * The ONNX ModelProto (the bytes of an .onnx file) computing `model`'s eval forward on an input of
 * `options.inputShape`. Throws ConfigError for bad options, ShapeError when the input shape does not
 * fit a layer (the layer's own check, with the layer's path), UnsupportedModuleError for a module it
 * cannot translate, DeviceError for a model not on the host. The model is not changed.
 */
export function exportOnnx(model: Module, options: ExportOnnxOptions): Uint8Array {
  return encodeModel(buildOnnxModel(model, options));
}

/** The model as plain ModelProto objects (what exportOnnx encodes). */
export function buildOnnxModel(model: Module, options: ExportOnnxOptions): ModelProto {
  const ctx = "exportOnnx";
  if (!(model instanceof Module)) throw new ConfigError("model", "a normkit Module", String(model), ctx);
  if (options === null || typeof options !== "object") throw new ConfigError("options", "an options object", String(options), ctx);
  const shape = options.inputShape as unknown;
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 1)) {
    throw new ConfigError("inputShape", "a non-empty array of positive integers (batch dim first)", JSON.stringify(shape), ctx);
  }
  const opset = options.opset ?? DEFAULT_OPSET;
  if (!(SUPPORTED_OPSETS as readonly number[]).includes(opset)) throw new ConfigError("opset", `one of ${SUPPORTED_OPSETS.join(", ")}`, String(opset), ctx);
  const inputName = checkName(options.inputName ?? "input", "inputName");
  const outputName = checkName(options.outputName ?? "output", "outputName");
  if (inputName === outputName) throw new ConfigError("outputName", `a name other than inputName ("${inputName}")`, JSON.stringify(outputName), ctx);
  const dynamicBatch = options.dynamicBatch ?? false;
  if (typeof dynamicBatch !== "boolean") throw new ConfigError("dynamicBatch", "true or false", String(dynamicBatch), ctx);
  const graphName = checkName(options.graphName ?? "normkit", "graphName");
  for (const [path, m] of model.namedModules()) {
    if (m.device.type !== "cpu") throw new DeviceError("model", "a model on the host", `${m.constructor.name} at "${path}" on ${m.device.label} (await model.to(cpu) first)`, ctx);
  }

  const b = new GraphBuilder(opset, [inputName, outputName]);
  const x: Value = { name: inputName, shape: [...(shape as number[])] };
  let y = emit(b, model, x, "");
  if (y.name === inputName) y = { name: b.node("Identity", [y.name], {}, ""), shape: y.shape };
  b.rename(y.name, outputName);
  const dims = (s: readonly number[]) => s.map((d, i) => (i === 0 && dynamicBatch ? { dim_param: "batch" } : { dim_value: d }));
  const info = (name: string, s: readonly number[]): ValueInfoProto => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims(s) } } } });
  const graph: GraphProto = {
    name: graphName,
    node: b.nodes,
    initializer: b.initializers,
    input: [info(inputName, x.shape)],
    output: [info(outputName, y.shape)],
  };
  return {
    ir_version: IR_VERSION[opset]!,
    opset_import: [{ domain: "", version: opset }],
    producer_name: "normkit",
    doc_string: `normkit model ${model.constructor.name}, eval forward`,
    graph,
  };
}

function checkName(s: unknown, param: string): string {
  if (typeof s !== "string" || s.length === 0) throw new ConfigError(param, "a non-empty string", JSON.stringify(s), "exportOnnx");
  return s;
}

// ---------------------------------------------------------------------------------------------
// The graph under construction

/** A value of the graph: its name and its static shape (dim 0 the inputShape's batch). */
interface Value {
  name: string;
  shape: number[];
}

type Attr = { f: number } | { i: number } | { ints: readonly number[] };
const f = (v: number): Attr => ({ f: v });
const i = (v: number): Attr => ({ i: v });
const ints = (v: readonly number[]): Attr => ({ ints: v });

class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly used = new Set<string>();
  private count = 0;
  constructor(readonly opset: number, reserved: string[]) {
    for (const r of reserved) this.used.add(r);
  }

  private unique(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  /** A float32 initializer (values rounded from float64 once). */
  floats(name: string, dims: readonly number[], values: ArrayLike<number>): string {
    if (values.length !== sizeOf(dims)) throw new Error(`normkit/onnx: internal error, ${name}: ${values.length} values for ${fmtShape(dims)}`);
    const a = Float32Array.from(values as ArrayLike<number>);
    return this.tensor(name, dims, DataType.FLOAT, new Uint8Array(a.buffer));
  }
  /** A scalar float32 initializer. */
  scalar(name: string, v: number): string {
    return this.floats(name, [], [v]);
  }
  /** An int64 initializer (shapes, axes). */
  int64s(name: string, values: readonly number[]): string {
    const a = BigInt64Array.from(values, (v) => BigInt(v));
    return this.tensor(name, [values.length], DataType.INT64, new Uint8Array(a.buffer));
  }
  private tensor(name: string, dims: readonly number[], type: number, raw: Uint8Array): string {
    const n = this.unique(name);
    // raw_data is little-endian by definition; the typed arrays are in the platform's order
    if (!LITTLE_ENDIAN) throw new Error("normkit/onnx: big-endian platforms are not supported");
    this.initializers.push({ name: n, dims: [...dims], data_type: type, raw_data: raw });
    return n;
  }

  /** Appends a node; returns the name of its (single) output. */
  node(op: string, inputs: string[], attrs: Record<string, Attr>, path: string): string {
    const base = `${path === "" ? "" : path + "/"}${op}`;
    const out = this.unique(`${base}_${this.count++}`);
    const attribute: AttributeProto[] = Object.entries(attrs).map(([name, a]) => {
      if ("f" in a) return { name, type: AttributeType.FLOAT, f: a.f };
      if ("i" in a) return { name, type: AttributeType.INT, i: a.i };
      return { name, type: AttributeType.INTS, ints: [...a.ints] };
    });
    this.nodes.push({ input: inputs, output: [out], name: out, op_type: op, attribute });
    return out;
  }

  /** ReduceMean / ReduceSum over `axes`, keepdims 1 (axes an attribute before opset 18 for ReduceMean, an input from 13 for ReduceSum). */
  reduce(op: "ReduceMean" | "ReduceSum", x: string, axes: readonly number[], path: string): string {
    if (op === "ReduceSum" || this.opset >= 18) return this.node(op, [x, this.int64s(`${path}.axes`, axes)], { keepdims: i(1) }, path);
    return this.node(op, [x], { axes: ints(axes), keepdims: i(1) }, path);
  }

  /** Renames the output `from` of its node to `to` (the graph's output). */
  rename(from: string, to: string): void {
    for (const n of this.nodes) {
      n.output = n.output.map((o) => (o === from ? to : o));
      n.input = n.input.map((o) => (o === from ? to : o));
    }
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Modules

const join = (path: string, name: string) => (name === "" ? path : path === "" ? name : `${path}.${name}`);
const prefix = (path: string, key: string) => (path === "" ? key : `${path}.${key}`);

/** Runs a layer's shape check, re-thrown with the layer's path in the context. */
function atPath<T>(path: string, m: Module, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NormkitError && !(e instanceof UnsupportedModuleError)) {
      const Cls = e.constructor as new (param: string, expected: string, actual: string, context?: string) => NormkitError;
      throw new Cls(e.param, e.expected, e.actual, `exportOnnx: ${pathParam(path)} (${m.constructor.name})`);
    }
    throw e;
  }
}

function shapeError(path: string, m: Module, expected: string, x: Value): ShapeError {
  return new ShapeError("x", expected, `shape ${fmtShape(x.shape)}`, `exportOnnx: ${pathParam(path)} (${m.constructor.name})`);
}

function refuseChannelsLast(path: string, m: Module & { channelsLast: boolean }): void {
  if (m.channelsLast) {
    throw new ConfigError("channelsLast", "false (channels-last layers are not exported)", "true", `exportOnnx: ${pathParam(path)} (${m.constructor.name})`);
  }
}

function emit(b: GraphBuilder, m: Module, x: Value, path: string): Value {
  if (m instanceof Sequential) {
    let h = x;
    for (const [name, child] of m.namedChildren()) h = emit(b, child, h, join(path, name));
    return h;
  }
  if (m instanceof ReuseOutputs) return emit(b, m.inner, x, path);
  if (m instanceof WeightNorm) {
    const w = foldWeightNorm(m);
    return m.layer instanceof Conv2d ? emitConv(b, m.layer, w, x, path) : emitLinear(b, m.layer, w, x, path);
  }
  if (m instanceof Conv2d) return emitConv(b, m, m.weight.value.data, x, path);
  if (m instanceof Linear) return emitLinear(b, m, m.weight.value.data, x, path);
  if (m instanceof ReLU) return { name: b.node("Relu", [x.name], {}, path), shape: x.shape };
  if (m instanceof MaxPool2d || m instanceof AvgPool2d) return emitPool(b, m, x, path);
  if (m instanceof GlobalAvgPool2d) {
    if (x.shape.length !== 4) throw shapeError(path, m, "rank 4 [N, C, H, W]", x);
    const g = b.node("GlobalAveragePool", [x.name], {}, path);
    return { name: b.node("Flatten", [g], { axis: i(1) }, path), shape: [x.shape[0]!, x.shape[1]!] };
  }
  if (m instanceof Flatten) {
    const N = x.shape[0]!;
    return { name: b.node("Flatten", [x.name], { axis: i(1) }, path), shape: [N, sizeOf(x.shape) / N] };
  }
  if (m instanceof Normalization) return emitNorm(b, m, x, path);
  if (m instanceof SwitchableNorm) return emitSwitchable(b, m, x, path);
  if (m instanceof CosineLinear) return emitCosineLinear(b, m, x, path);
  if (m instanceof CosineConv2d) return emitCosineConv(b, m, x, path);
  throw new UnsupportedModuleError(path, m.constructor.name);
}

/** w = g · v / ‖v‖ (per output unit for dim 0, over the whole tensor for dim null), in float64. */
function foldWeightNorm(m: WeightNorm): Float64Array {
  const v = m.v.value.data, g = m.g.value.data;
  const R = m.dim === 0 ? m.v.value.shape[0]! : 1;
  const S = v.length / R;
  const w = new Float64Array(v.length);
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let k = 0; k < S; k++) s += v[r * S + k]! * v[r * S + k]!;
    const scale = g[r]! / Math.sqrt(s);
    for (let k = 0; k < S; k++) w[r * S + k] = v[r * S + k]! * scale;
  }
  return w;
}

/** Rows of [R, K] each divided by max(‖row‖, eps) (F.normalize), in float64; a zero row with eps 0 is refused as the layer does. */
function normalizeRows(w: ArrayLike<number>, R: number, K: number, eps: number, path: string, m: Module): Float64Array {
  const out = new Float64Array(R * K);
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += w[r * K + k]! * w[r * K + k]!;
    const n = Math.sqrt(s);
    if (eps === 0 && n === 0) throw new ConfigError("weight", "non-zero rows (eps is 0)", `row ${r} is all zeros`, `exportOnnx: ${pathParam(path)} (${m.constructor.name})`);
    const d = n > eps ? n : eps;
    for (let k = 0; k < K; k++) out[r * K + k] = w[r * K + k]! / d;
  }
  return out;
}

function checkConvInput(path: string, m: Conv2d | CosineConv2d, x: Value) {
  if (x.shape.length !== 4) throw shapeError(path, m, "rank 4 [N, C, H, W]", x);
  if (x.shape[1] !== m.inChannels) throw shapeError(path, m, `${m.inChannels} channels (axis 1)`, x);
  return atPath(path, m, () => conv2dGeometry(x.shape, m.outChannels, m.kernelSize, m.stride, m.padding));
}

function convAttrs(m: Conv2d | CosineConv2d): Record<string, Attr> {
  const [ph, pw] = m.padding;
  return { kernel_shape: ints(m.kernelSize), strides: ints(m.stride), pads: ints([ph, pw, ph, pw]), dilations: ints([1, 1]), group: i(1) };
}

function emitConv(b: GraphBuilder, m: Conv2d, weight: ArrayLike<number>, x: Value, path: string): Value {
  const g = checkConvInput(path, m, x);
  const inputs = [x.name, b.floats(prefix(path, "weight"), m.weight.value.shape, weight)];
  if (m.bias) inputs.push(b.floats(prefix(path, "bias"), m.bias.value.shape, m.bias.value.data));
  return { name: b.node("Conv", inputs, convAttrs(m), path), shape: [g.N, g.O, g.Ho, g.Wo] };
}

/** y = x Wᵀ + b over the last axis, W [O, I] given (row-major). */
function matmulRows(b: GraphBuilder, x: Value, W: ArrayLike<number>, O: number, I: number, bias: ArrayLike<number> | null, path: string): Value {
  const shape = [...x.shape.slice(0, -1), O];
  if (x.shape.length === 2) {
    const inputs = [x.name, b.floats(prefix(path, "weight"), [O, I], W)];
    if (bias) inputs.push(b.floats(prefix(path, "bias"), [O], bias));
    return { name: b.node("Gemm", inputs, { transB: i(1) }, path), shape };
  }
  const Wt = new Float64Array(I * O);
  for (let o = 0; o < O; o++) for (let k = 0; k < I; k++) Wt[k * O + o] = W[o * I + k]!;
  let y = b.node("MatMul", [x.name, b.floats(prefix(path, "weight_t"), [I, O], Wt)], {}, path);
  if (bias) y = b.node("Add", [y, b.floats(prefix(path, "bias"), [O], bias)], {}, path);
  return { name: y, shape };
}

function checkLinearInput(path: string, m: Linear | CosineLinear, x: Value): void {
  if (x.shape[x.shape.length - 1] !== m.inFeatures) throw shapeError(path, m, `last axis ${m.inFeatures} (inFeatures)`, x);
}

function emitLinear(b: GraphBuilder, m: Linear, weight: ArrayLike<number>, x: Value, path: string): Value {
  checkLinearInput(path, m, x);
  return matmulRows(b, x, weight, m.outFeatures, m.inFeatures, m.bias?.value.data ?? null, path);
}

function emitPool(b: GraphBuilder, m: MaxPool2d | AvgPool2d, x: Value, path: string): Value {
  const [kh, kw] = m.kernelSize, [sh, sw] = m.stride;
  if (x.shape.length !== 4) throw shapeError(path, m, "rank 4 [N, C, H, W]", x);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  if (H < kh || W < kw) throw shapeError(path, m, `height ≥ ${kh} and width ≥ ${kw} (the window)`, x);
  const op = m instanceof MaxPool2d ? "MaxPool" : "AveragePool";
  const y = b.node(op, [x.name], { kernel_shape: ints([kh, kw]), strides: ints([sh, sw]), pads: ints([0, 0, 0, 0]), ceil_mode: i(0) }, path);
  return { name: y, shape: [N, C, Math.floor((H - kh) / sh) + 1, Math.floor((W - kw) / sw) + 1] };
}

/** The affine of a channel-first layer: Mul by weight and Add bias, both shaped [C, 1, ...] to broadcast over axis 1 of a rank-`rank` value. */
function channelAffine(b: GraphBuilder, y: string, rank: number, weight: Tensor | null, bias: Tensor | null, path: string): string {
  const C = (weight ?? bias)?.size ?? 0;
  const dims = [C, ...new Array<number>(Math.max(rank - 2, 0)).fill(1)];
  if (weight) y = b.node("Mul", [y, b.floats(prefix(path, "weight"), dims, weight.data)], {}, path);
  if (bias) y = b.node("Add", [y, b.floats(prefix(path, "bias"), dims, bias.data)], {}, path);
  return y;
}

const range = (lo: number, hi: number) => Array.from({ length: Math.max(hi - lo, 0) }, (_, k) => lo + k);

/** (x - mean) / sqrt(var + eps) over `axes` (biased variance, two passes). */
function standardize(b: GraphBuilder, x: string, axes: number[], eps: number, path: string): string {
  const mean = b.reduce("ReduceMean", x, axes, path);
  const d = b.node("Sub", [x, mean], {}, path);
  const v = b.reduce("ReduceMean", b.node("Mul", [d, d], {}, path), axes, path);
  const s = b.node("Sqrt", [b.node("Add", [v, b.scalar(prefix(path, "eps"), eps)], {}, path)], {}, path);
  return b.node("Div", [d, s], {}, path);
}

function emitNorm(b: GraphBuilder, m: Normalization, x: Value, path: string): Value {
  // the layer's own check of the input (rank, channels, dtype), on a shape-only tensor
  const probe = new Tensor(DEVICE_STORAGE, x.shape, m.dtype);
  atPath(path, m, () => m.statisticsPlan(probe));
  const rank = x.shape.length;
  const ones = (n: number) => new Float64Array(n).fill(1);
  const weight = m.weight?.value ?? null, bias = m.bias?.value ?? null;
  if (m instanceof LayerNorm || m instanceof RMSNorm) {
    const ns = m.normalizedShape, K = sizeOf(ns);
    const axis = rank - ns.length;
    if (m instanceof LayerNorm) {
      const inputs = [x.name, weight ? b.floats(prefix(path, "weight"), ns, weight.data) : b.floats(prefix(path, "weight"), ns, ones(K))];
      if (bias) inputs.push(b.floats(prefix(path, "bias"), ns, bias.data));
      return { name: b.node("LayerNormalization", inputs, { axis: i(axis), epsilon: f(m.eps), stash_type: i(1) }, path), shape: x.shape };
    }
    // RMSNorm: x / sqrt(mean(x²) + eps) · weight
    const ms = b.reduce("ReduceMean", b.node("Mul", [x.name, x.name], {}, path), range(axis, rank), path);
    const r = b.node("Sqrt", [b.node("Add", [ms, b.scalar(prefix(path, "eps"), m.eps)], {}, path)], {}, path);
    let y = b.node("Div", [x.name, r], {}, path);
    if (weight) y = b.node("Mul", [y, b.floats(prefix(path, "weight"), ns, weight.data)], {}, path);
    return { name: y, shape: x.shape };
  }
  if (m instanceof BatchNorm || m instanceof InstanceNorm) refuseChannelsLast(path, m);
  if (m instanceof GroupNorm) {
    refuseChannelsLast(path, m);
    const G = m.numGroups;
    const r1 = b.node("Reshape", [x.name, b.int64s(prefix(path, "group_shape"), [0, G, -1])], {}, path);
    const n = b.node("InstanceNormalization", [r1, b.floats(prefix(path, "group_scale"), [G], ones(G)), b.floats(prefix(path, "group_bias"), [G], new Float64Array(G))], { epsilon: f(m.eps) }, path);
    const r2 = b.node("Reshape", [n, b.int64s(prefix(path, "shape"), [0, ...x.shape.slice(1)])], {}, path);
    return { name: channelAffine(b, r2, rank, weight, bias, path), shape: x.shape };
  }
  if (!(m instanceof BatchNorm || m instanceof InstanceNorm)) throw new UnsupportedModuleError(path, m.constructor.name);
  // an unbatched InstanceNorm input ((C, L), (C, H, W), ...) runs as a batch of one
  const unbatched = m instanceof InstanceNorm && rank === (m as unknown as { unbatchedRank: number }).unbatchedRank;
  let h = x.name;
  const zero = unbatched ? b.int64s(prefix(path, "batch_axis"), [0]) : "";
  if (unbatched) h = b.node("Unsqueeze", [h, zero], {}, path);
  const r = unbatched ? rank + 1 : rank;
  const C = m.numFeatures;
  let y: string;
  if (m.runningMean && m.runningVar) {
    // eval with running statistics (BatchNorm; InstanceNorm with trackRunningStats)
    const inputs = [
      h,
      b.floats(prefix(path, "weight"), [C], weight ? weight.data : ones(C)),
      b.floats(prefix(path, "bias"), [C], bias ? bias.data : new Float64Array(C)),
      b.floats(prefix(path, "running_mean"), [C], m.runningMean.data),
      b.floats(prefix(path, "running_var"), [C], m.runningVar.data),
    ];
    y = b.node("BatchNormalization", inputs, { epsilon: f(m.eps) }, path);
  } else if (m instanceof InstanceNorm) {
    const inputs = [h, b.floats(prefix(path, "weight"), [C], weight ? weight.data : ones(C)), b.floats(prefix(path, "bias"), [C], bias ? bias.data : new Float64Array(C))];
    y = b.node("InstanceNormalization", inputs, { epsilon: f(m.eps) }, path);
  } else {
    // BatchNorm without running statistics: the batch's statistics in eval too (as PyTorch)
    y = channelAffine(b, standardize(b, h, [0, ...range(2, r)], m.eps, path), r, weight, bias, path);
  }
  if (unbatched) y = b.node("Squeeze", [y, zero], {}, path);
  return { name: y, shape: x.shape };
}

/**
 * Switchable Norm in eval (src/nn/switchable_norm.ts, src/kernels/ts/switchable.ts), x [N, C, *S]:
 *   mu_in = mean_S x, var_in = f_in · mean_S (x − mu_in)²            (per n, c; none for 1d: mu_in = x, var_in = 0)
 *   mu_ln = mean_C mu_in, var_ln = f_ln · mean_C (var_in + (mu_in − mu_ln)²)
 *   mu_bn = running_mean, var_bn = running_var
 *   y = (x − Σ a_k mu_k) / sqrt(Σ b_k var_k + eps) · weight + bias,  a = softmax(mean_weight), b = softmax(var_weight)
 */
function emitSwitchable(b: GraphBuilder, m: SwitchableNorm, x: Value, path: string): Value {
  const ctx = `exportOnnx: ${pathParam(path)} (${m.constructor.name})`;
  refuseChannelsLast(path, m);
  const rank = m.spatialDims + 2;
  if (x.shape.length !== rank) throw shapeError(path, m, `rank ${rank}`, x);
  const [N, C] = x.shape as [number, number];
  if (C !== m.numFeatures) throw shapeError(path, m, `${m.numFeatures} channels (num_features)`, x);
  const S = sizeOf(x.shape) / (N * C);
  const ref = m.variance === "reference";
  if (ref && m.spatialDims > 0 && S < 2) throw new ShapeError("x", "more than 1 spatial element (reference variance is unbiased)", `shape ${fmtShape(x.shape)}`, ctx);
  if (ref && m.spatialDims === 0 && C < 2) throw new ShapeError("x", "more than 1 feature (reference LN variance is unbiased)", `shape ${fmtShape(x.shape)}`, ctx);
  const fIn = ref && m.spatialDims > 0 ? S / (S - 1) : 1;
  const fLn = ref && m.spatialDims === 0 ? C / (C - 1) : 1;
  const { mean: a, variance: bw } = m.importance();
  const node = (op: string, inputs: string[]) => b.node(op, inputs, {}, path);
  const scale = (v: string, k: number, what: string) => (k === 1 ? v : node("Mul", [v, b.scalar(prefix(path, what), k)]));

  // instance statistics
  let muIn = x.name, varIn: string | null = null;
  if (m.spatialDims > 0) {
    const sp = range(2, rank);
    muIn = b.reduce("ReduceMean", x.name, sp, path);
    const d = node("Sub", [x.name, muIn]);
    varIn = scale(b.reduce("ReduceMean", node("Mul", [d, d]), sp, path), fIn, "f_in");
  }
  // layer statistics from them
  const muLn = b.reduce("ReduceMean", muIn, [1], path);
  const e = node("Sub", [muIn, muLn]);
  const e2 = node("Mul", [e, e]);
  const varLn = scale(b.reduce("ReduceMean", varIn ? node("Add", [varIn, e2]) : e2, [1], path), fLn, "f_ln");

  // the blend (softmax weights and running statistics are constants)
  const cShape = [1, C, ...new Array<number>(m.spatialDims).fill(1)];
  const terms = (kind: "mean" | "var"): string => {
    const w = kind === "mean" ? a : bw;
    const parts: string[] = [];
    if (w.in !== undefined) parts.push(node("Mul", [kind === "mean" ? muIn : varIn!, b.scalar(prefix(path, `${kind}_weight_in`), w.in)]));
    if (w.ln !== undefined) parts.push(node("Mul", [kind === "mean" ? muLn : varLn, b.scalar(prefix(path, `${kind}_weight_ln`), w.ln)]));
    if (w.bn !== undefined) {
      const run = kind === "mean" ? m.runningMean! : m.runningVar!;
      const c = Float64Array.from(run.data, (v) => v * w.bn!);
      parts.push(b.floats(prefix(path, kind === "mean" ? "weighted_running_mean" : "weighted_running_var"), cShape, c));
    }
    return parts.reduce((s, p) => node("Add", [s, p]));
  };
  const mean = terms("mean");
  const variance = terms("var");
  const sd = node("Sqrt", [node("Add", [variance, b.scalar(prefix(path, "eps"), m.eps)])]);
  let y = node("Div", [node("Sub", [x.name, mean]), sd]);
  y = node("Mul", [y, b.floats(prefix(path, "weight"), cShape, m.weight.value.data)]);
  y = node("Add", [y, b.floats(prefix(path, "bias"), cShape, m.bias.value.data)]);
  return { name: y, shape: x.shape };
}

function emitCosineLinear(b: GraphBuilder, m: CosineLinear, x: Value, path: string): Value {
  checkLinearInput(path, m, x);
  const r = x.shape.length;
  const n = b.node("Sqrt", [b.reduce("ReduceSum", b.node("Mul", [x.name, x.name], {}, path), [r - 1], path)], {}, path);
  const d = m.eps > 0 ? b.node("Max", [n, b.scalar(prefix(path, "eps"), m.eps)], {}, path) : n;
  const xhat = b.node("Div", [x.name, d], {}, path);
  const what = normalizeRows(m.weight.value.data, m.outFeatures, m.inFeatures, m.eps, path, m);
  return matmulRows(b, { name: xhat, shape: x.shape }, what, m.outFeatures, m.inFeatures, null, path);
}

function emitCosineConv(b: GraphBuilder, m: CosineConv2d, x: Value, path: string): Value {
  const g = checkConvInput(path, m, x);
  const what = normalizeRows(m.weight.value.data, g.O, g.K, m.eps, path, m);
  const attrs = convAttrs(m);
  const dot = b.node("Conv", [x.name, b.floats(prefix(path, "weight"), m.weight.value.shape, what)], attrs, path);
  // ‖receptive field‖² of every output position: a convolution of x² with ones (zero padding included)
  const sq = b.node("Mul", [x.name, x.name], {}, path);
  const onesW = b.floats(prefix(path, "ones"), [1, g.C, g.kh, g.kw], new Float64Array(g.K).fill(1));
  const n = b.node("Sqrt", [b.node("Conv", [sq, onesW], attrs, path)], {}, path);
  const d = m.eps > 0 ? b.node("Max", [n, b.scalar(prefix(path, "eps"), m.eps)], {}, path) : n;
  return { name: b.node("Div", [dot, d], {}, path), shape: [g.N, g.O, g.Ho, g.Wo] };
}
