/**
 * Softmax cross-entropy, as torch.nn.CrossEntropyLoss with reduction "mean":
 *   p = softmax(z_n)   loss = −(1/N) Σ_n log p[n, y_n]   dz[n, k] = (p[n, k] − [k = y_n]) / N
 * computed in float64 with the max subtracted (log-sum-exp), whatever the storage type.
 */
import { ConfigError, DeviceError, ShapeError, fmtShape } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import type { Workspace } from "../kernels/contract/ops.js";
import { deviceOf } from "../kernels/cpu.js";
import { softmaxCrossEntropyKernel } from "../kernels/ts/loss.js";
import { FloatArray, Tensor, allocate, sizeOf } from "../tensor.js";

export interface LossResult {
  /** Mean loss over the batch. */
  loss: number;
  /** dLoss/dlogits, the logits' shape and dtype. */
  dlogits: Tensor;
}

/**
 * logits [N, K]; labels: N integers in [0, K). `out`, if given, receives dlogits (same shape and dtype
 * as logits) so a training loop can reuse one buffer.
 */
/** Logits must be a non-empty [N, K]; returns [N, K]. */
function checkLogits(logits: Tensor, ctx: string): [number, number] {
  if (logits.rank !== 2) throw new ShapeError("logits", "rank 2 [N, K]", `shape ${fmtShape(logits.shape)}`, ctx);
  const [N, K] = logits.shape as [number, number];
  if (N === 0 || K === 0) throw new ShapeError("logits", "a non-empty [N, K]", `shape ${fmtShape(logits.shape)}`, ctx);
  return [N, K];
}

/** Host labels: N integers in [0, K). */
function checkLabels(labels: ArrayLike<number>, N: number, K: number, ctx: string): void {
  if (labels.length !== N) throw new ShapeError("labels", `${N} labels (one per row of logits)`, `${labels.length}`, ctx);
  for (let n = 0; n < N; n++) {
    const y = labels[n]!;
    if (!Number.isInteger(y) || y < 0 || y >= K) throw new ConfigError(`labels[${n}]`, `an integer in [0, ${K})`, String(y), ctx);
  }
}

export function softmaxCrossEntropy(logits: Tensor, labels: ArrayLike<number>, out?: Tensor): LossResult {
  const ctx = "softmaxCrossEntropy";
  const [N, K] = checkLogits(logits, ctx);
  checkLabels(labels, N, K, ctx);
  if (out && (out.dtype !== logits.dtype || out.size !== logits.size)) {
    throw new ShapeError("out", `a ${logits.dtype} tensor of shape ${fmtShape(logits.shape)}`, `${out.dtype} ${fmtShape(out.shape)}`, ctx);
  }
  const dz: FloatArray = out ? out.data : allocate(logits.dtype, N * K);
  const loss = softmaxCrossEntropyKernel(dz, logits.data, labels, N, K);
  return { loss, dlogits: out && out.rank === 2 ? out : new Tensor(dz, logits.shape) };
}

export interface CrossEntropyOptions {
  /** Receives dlogits (the logits' shape and dtype, on their device); a fresh tensor otherwise. */
  dlogits?: Tensor;
  /** Receives the mean loss (shape [], on the logits' device); a fresh tensor otherwise. */
  loss?: Tensor;
}

/**
 * Softmax cross-entropy on the logits' device (host or GPU): the mean loss as a scalar tensor of
 * that device — read it (a download on a GPU) only when you need the number — and dlogits. Labels
 * are N integers in [0, K): host values (checked, then uploaded) or a tensor of the device (trusted).
 */
export function crossEntropyLoss(logits: Tensor, labels: ArrayLike<number> | Tensor, options: CrossEntropyOptions = {}): { loss: Tensor; dlogits: Tensor } {
  const ctx = "crossEntropyLoss";
  const device = deviceOf(logits, ctx);
  const [N, K] = checkLogits(logits, ctx);
  let y: Tensor;
  if (labels instanceof Tensor) {
    if (!device.holds(labels)) throw new DeviceError("labels", `a tensor on ${device.label} (the logits' device)`, `a tensor on ${labels.device}`, ctx);
    if (labels.size !== N) throw new ShapeError("labels", `${N} labels (one per row of logits)`, `${labels.size}`, ctx);
    y = labels;
  } else {
    checkLabels(labels, N, K, ctx);
    y = device.upload(Tensor.from(labels, [N], logits.dtype), logits.dtype);
  }
  for (const [name, t, shape] of [["dlogits", options.dlogits, logits.shape], ["loss", options.loss, []]] as const) {
    if (t && (!device.holds(t) || t.dtype !== logits.dtype || t.size !== sizeOf(shape))) {
      throw new ShapeError(name, `a ${logits.dtype} tensor of shape ${fmtShape(shape)} on ${device.label}`, `${t.dtype} ${fmtShape(t.shape)} on ${t.device}`, ctx);
    }
  }
  const dlogits = options.dlogits ?? device.zeros(logits.shape, logits.dtype);
  const loss = options.loss ?? device.zeros([], logits.dtype);
  device.ops.crossEntropy({ logits, labels: y, dlogits, loss, workspace: workspaceOf(device) });
  return { loss, dlogits };
}

const workspaces = new WeakMap<Device, Workspace>();
function workspaceOf(device: Device): Workspace {
  let w = workspaces.get(device);
  if (!w) workspaces.set(device, (w = device.ops.createWorkspace()));
  return w;
}

export interface MseResult {
  /** Mean squared error over every element. */
  loss: number;
  /** dLoss/dinput: 2 (input − target) / n, the input's shape and dtype. */
  dinput: Tensor;
}

/**
 * torch.nn.MSELoss with reduction "mean": loss = (1/n) Σ (x − t)²,  dx = 2 (x − t) / n (on the host,
 * summed in float64). input and target: the same shape; `out` receives dx.
 */
export function mseLoss(input: Tensor, target: Tensor | ArrayLike<number>, out?: Tensor): MseResult {
  const ctx = "mseLoss";
  if (!input.isHost) throw new DeviceError("input", "a host tensor", `a tensor on ${input.device}`, ctx);
  const t = target instanceof Tensor ? target : null;
  if (t && !t.isHost) throw new DeviceError("target", "a host tensor", `a tensor on ${t.device}`, ctx);
  const tv = t ? t.data : (target as ArrayLike<number>);
  if (t ? !(t.shape.length === input.shape.length && t.shape.every((d, i) => d === input.shape[i])) : tv.length !== input.size) {
    throw new ShapeError("target", `shape ${fmtShape(input.shape)} (the input's)`, t ? `shape ${fmtShape(t.shape)}` : `${tv.length} values`, ctx);
  }
  const n = input.size;
  if (n === 0) throw new ShapeError("input", "a non-empty tensor", `shape ${fmtShape(input.shape)}`, ctx);
  if (out && (out.dtype !== input.dtype || out.size !== n)) {
    throw new ShapeError("out", `a ${input.dtype} tensor of shape ${fmtShape(input.shape)}`, `${out.dtype} ${fmtShape(out.shape)}`, ctx);
  }
  const dx = out ?? new Tensor(allocate(input.dtype, n), input.shape);
  const x = input.data, d = dx.data;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const e = x[i]! - tv[i]!;
    s += e * e;
    d[i] = (2 * e) / n;
  }
  return { loss: s / n, dinput: dx };
}

