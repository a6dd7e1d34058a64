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
