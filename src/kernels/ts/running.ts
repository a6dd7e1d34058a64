/**
 * Running statistics (PyTorch convention): momentum weights the NEW value,
 *   running = (1 - m) * running + m * batch,     m = momentum ?? 1 / num_batches_tracked
 * and the stored variance is UNBIASED (M / (M - 1) times the variance used to normalise).
 * (Keras / TF.js / Flax write momentum the other way round: their 0.99 is PyTorch's 0.01.)
 */
import type { FloatArray } from "../../tensor.js";

/**
 * BatchNorm: one statistic per channel over M = N*S values.
 * `mean`/`biasedVar` are the batch statistics (numStats = C entries).
 */
export function updateRunningBatch(
  runningMean: FloatArray,
  runningVar: FloatArray,
  mean: Readonly<Float64Array>,
  biasedVar: Readonly<Float64Array>,
  C: number,
  M: number,
  factor: number,
): void {
  const unbias = M / (M - 1);
  for (let c = 0; c < C; c++) {
    runningMean[c] = (1 - factor) * runningMean[c]! + factor * mean[c]!;
    runningVar[c] = (1 - factor) * runningVar[c]! + factor * biasedVar[c]! * unbias;
  }
}

/**
 * InstanceNorm: one statistic per (n, c) over S values; the running value of channel c is the
 * update with the batch-mean over n of the per-instance mean and unbiased variance.
 */
export function updateRunningInstance(
  runningMean: FloatArray,
  runningVar: FloatArray,
  mean: Readonly<Float64Array>,
  biasedVar: Readonly<Float64Array>,
  N: number,
  C: number,
  S: number,
  factor: number,
): void {
  const unbias = S / (S - 1);
  for (let c = 0; c < C; c++) {
    let m = 0, v = 0;
    for (let n = 0; n < N; n++) {
      m += mean[n * C + c]!;
      v += biasedVar[n * C + c]!;
    }
    m /= N;
    v = (v / N) * unbias;
    runningMean[c] = (1 - factor) * runningMean[c]! + factor * m;
    runningVar[c] = (1 - factor) * runningVar[c]! + factor * v;
  }
}
