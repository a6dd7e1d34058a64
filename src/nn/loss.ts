/**
 * Softmax cross-entropy, as torch.nn.CrossEntropyLoss with reduction "mean":
 *   p = softmax(z_n)   loss = −(1/N) Σ_n log p[n, y_n]   dz[n, k] = (p[n, k] − [k = y_n]) / N
 * computed in float64 with the max subtracted (log-sum-exp), whatever the storage type.
 */
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import { FloatArray, Tensor, allocate } from "../tensor.js";

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
export function softmaxCrossEntropy(logits: Tensor, labels: ArrayLike<number>, out?: Tensor): LossResult {
  const ctx = "softmaxCrossEntropy";
  if (logits.rank !== 2) throw new ShapeError("logits", "rank 2 [N, K]", `shape ${fmtShape(logits.shape)}`, ctx);
  const [N, K] = logits.shape as [number, number];
  if (N === 0 || K === 0) throw new ShapeError("logits", "a non-empty [N, K]", `shape ${fmtShape(logits.shape)}`, ctx);
  if (labels.length !== N) throw new ShapeError("labels", `${N} labels (one per row of logits)`, `${labels.length}`, ctx);
  for (let n = 0; n < N; n++) {
    const y = labels[n]!;
    if (!Number.isInteger(y) || y < 0 || y >= K) throw new ConfigError(`labels[${n}]`, `an integer in [0, ${K})`, String(y), ctx);
  }
  if (out && (out.dtype !== logits.dtype || out.size !== logits.size)) {
    throw new ShapeError("out", `a ${logits.dtype} tensor of shape ${fmtShape(logits.shape)}`, `${out.dtype} ${fmtShape(out.shape)}`, ctx);
  }
  const dz: FloatArray = out ? out.data : allocate(logits.dtype, N * K);
  const loss = softmaxCrossEntropyKernel(dz, logits.data, labels, N, K);
  return { loss, dlogits: out && out.rank === 2 ? out : new Tensor(dz, logits.shape) };
}

/** The kernel: writes dz ([N, K]) and returns the mean loss. No validation, no allocation. */
export function softmaxCrossEntropyKernel(dz: FloatArray, z: Readonly<FloatArray>, labels: ArrayLike<number>, N: number, K: number): number {
  let total = 0;
  const invN = 1 / N;
  for (let n = 0; n < N; n++) {
    const o = n * K;
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, z[o + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(z[o + k]! - m);
    const lse = m + Math.log(s);
    const y = labels[n]!;
    total += lse - z[o + y]!;
    for (let k = 0; k < K; k++) dz[o + k] = (Math.exp(z[o + k]! - lse) - (k === y ? 1 : 0)) * invN;
  }
  return total * invN;
}
