/**
 * One training run of the lab's protocol (PROTOCOL.md): SGD with momentum 0.9 and weight decay 1e-4,
 * lr = max(0.05 · batch / 64, 0.005), a fresh seeded shuffle of the training set every epoch, the last
 * incomplete batch dropped; then test accuracy in eval mode (BatchNorm and Switchable Norm's BN branch
 * use their running statistics).
 *
 * Deterministic given the seed: initialisation draws from mulberry32(seed) (see models.ts), the
 * shuffles from mulberry32(seed + 0x9e3779b9) — a Fisher–Yates shuffle of 0..n−1 per epoch (or, for
 * the shuffle experiment's `two_class` ordering, the permutations orderings.ts describes, from the
 * same stream).
 */
import { Tensor, allocate } from "../tensor.js";
import type { Device } from "../kernels/contract/device.js";
import { cpu } from "../kernels/cpu.js";
import { crossEntropyLoss, softmaxCrossEntropy } from "../nn/loss.js";
import { SGD } from "../nn/optim.js";
import { mulberry32 } from "../rng.js";
import { type Ordering, shuffledOrder, twoClassBatches, twoClassOrder } from "./orderings.js";
import type { Dataset, Split } from "./data.js";
import { IMAGE_SIZE } from "./mnist_constants.js";
import { type Arch, INPUT_SHAPE, type Method, type Model, buildModel } from "./models.js";

export const MOMENTUM = 0.9;
export const WEIGHT_DECAY = 1e-4;
/** Samples per point of the training-loss curve. */
export const DEFAULT_CURVE_EVERY = 500;
/** Test-set forward passes go in chunks of this many samples (eval mode: results do not depend on it). */
const EVAL_CHUNK = 500;

/** PROTOCOL.md's learning-rate rule. */
export function learningRate(batchSize: number): number {
  return Math.max((0.05 * batchSize) / 64, 0.005);
}

export interface RunSpec {
  arch: Arch;
  method: Method;
  batchSize: number;
  seed: number;
  epochs: number;
  /** Train on the first `trainLimit` training samples only (--quick). Default: all. */
  trainLimit?: number;
  /** Samples per loss-curve point. Default 500. */
  curveEvery?: number;
  /** Also write the trained model into this directory (save.ts: safetensors and ONNX). Default: none. */
  save?: string;
  /** The learning rate. Default: PROTOCOL.md's rule, {@link learningRate}(batchSize). */
  lr?: number;
  /** How batches are formed (orderings.ts). Default "shuffled"; "two_class" needs an even batch size. */
  ordering?: Ordering;
  /**
   * Stop at the first non-finite training loss (before its backward pass), skip the evaluation and
   * count the run as 10% test accuracy (the experiments' rule). Default false: the run goes on and
   * is only marked `diverged`.
   */
  stopOnDivergence?: boolean;
}

export type Importance = {
  /** Which norm layer: its index in the network and its position among the norms (1-based). */
  layer: string;
  mean: Partial<Record<"in" | "ln" | "bn", number>>;
  variance: Partial<Record<"in" | "ln" | "bn", number>>;
};

export type RunResult = {
  arch: Arch;
  method: Method;
  batch_size: number;
  seed: number;
  /** Fraction of the test set classified correctly, 0..1. */
  test_accuracy: number;
  /**
   * Mean training loss per sample over consecutive windows of `train_loss_curve_every` samples (a
   * batch counts in the window where it ends; the last point may cover a shorter window), so curves
   * at different batch sizes have the same number of points on the same scale.
   */
  train_loss_curve: number[];
  train_loss_curve_every: number;
  /** Wall time of training plus evaluation (as the PyTorch reference measures). */
  seconds: number;
  /** Training samples per second (training only). */
  samples_per_s: number;
  epochs: number;
  steps: number;
  lr: number;
  train_samples: number;
  test_samples: number;
  /** Whether a training loss was NaN or infinite (the run diverged). */
  diverged: boolean;
  /** Switchable Norm only: the learned softmax weights of IN / LN / BN per norm layer. */
  importance?: Importance[];
  /** The device that trained it, when not the host (e.g. "webgpu (…)"). */
  device?: string;
};

export type ProgressFn = (samplesDone: number, samplesTotal: number) => void;

/** Writes a trained model into a directory (save.ts's saveModel, set by the lab's runner and workers: Node only). */
export type ModelSaver = (model: Model, dir: string, batchSize: number, seed: number) => Promise<unknown>;
let modelSaver: ModelSaver | null = null;
/** Sets what trainRun calls for a spec with `save` (this file does no file I/O itself: it also runs in browsers). */
export function setModelSaver(f: ModelSaver | null): void {
  modelSaver = f;
}

/**
 * Trains one model from scratch and evaluates it, on `device` (default the host). On a GPU the
 * model, its optimiser state and every step stay there: a batch is uploaded, the step's loss stays a
 * tensor on the device, and the losses of a loss-curve window are read back when it closes.
 */
export async function trainRun(spec: RunSpec, data: Dataset, onProgress?: ProgressFn, device: Device = cpu): Promise<RunResult> {
  const t0 = performance.now();
  const { arch, method, batchSize: bs, seed, epochs } = spec;
  const n = Math.min(spec.trainLimit ?? data.train.count, data.train.count);
  const every = spec.curveEvery ?? DEFAULT_CURVE_EVERY;
  const model = buildModel(arch, method, seed);
  const net = model.net;
  if (device !== cpu) await net.to(device);
  const onHost = device.type === "cpu";
  const params = net.parameters();
  const lr = spec.lr ?? learningRate(bs);
  const ordering = spec.ordering ?? "shuffled";
  if (ordering === "two_class" && bs % 2 !== 0) throw new Error(`trainRun: the two_class ordering needs an even batch size, got ${bs}`);
  const opt = new SGD(params, { lr, momentum: MOMENTUM, weightDecay: WEIGHT_DECAY });
  const shuffleRng = mulberry32((seed + 0x9e3779b9) >>> 0);

  const stepsPerEpoch = ordering === "two_class" ? twoClassBatches(data.train.y, n, bs / 2) : Math.floor(n / bs);
  const total = stepsPerEpoch * bs * epochs;
  const order = new Int32Array(n);
  const xb = allocate(net.dtype, bs * IMAGE_SIZE);
  const yb = new Uint8Array(bs);
  const x = new Tensor(xb, [bs, ...INPUT_SHAPE]);
  const dlogits = device.zeros([bs, 10], net.dtype);
  const curve: number[] = [];
  let winSum = 0, winCount = 0, seen = 0, diverged = false;
  /** The losses of this window's steps still on the device (GPU runs). */
  let pending: Tensor[] = [];
  const settle = async () => {
    for (const t of pending) {
      const loss = (await device.download(t)).data[0]!;
      if (!Number.isFinite(loss)) diverged = true;
      winSum += loss * bs;
    }
    pending = [];
  };
  const progressEvery = Math.max(1, Math.floor(stepsPerEpoch / 50));

  const stop = spec.stopOnDivergence ?? false;
  let steps = 0;
  net.train();
  epochs: for (let epoch = 0; epoch < epochs; epoch++) {
    if (ordering === "two_class") twoClassOrder(data.train.y, n, bs / 2, shuffleRng, order);
    else shuffledOrder(n, bs, shuffleRng, order);
    for (let s = 0; s < stepsPerEpoch; s++) {
      for (let b = 0; b < bs; b++) {
        const src = order[s * bs + b]!;
        xb.set(data.train.x.subarray(src * IMAGE_SIZE, (src + 1) * IMAGE_SIZE), b * IMAGE_SIZE);
        yb[b] = data.train.y[src]!;
      }
      opt.zeroGrad();
      if (onHost) {
        const { loss } = softmaxCrossEntropy(net.forward(x), yb, dlogits);
        if (!Number.isFinite(loss)) {
          diverged = true;
          if (stop) break epochs;
        }
        winSum += loss * bs;
      } else {
        pending.push(crossEntropyLoss(net.forward(device.upload(x)), yb, { dlogits }).loss);
      }
      net.backwardParams(dlogits);
      opt.step();
      steps++;
      if (stop && !onHost && pending.length > 0) {
        await settle(); // a GPU run reads each loss back to stop at once
        if (diverged) break epochs;
      }
      winCount += bs;
      seen += bs;
      if (seen % every < bs || seen === total) {
        await settle();
        curve.push(winSum / winCount);
        winSum = 0;
        winCount = 0;
      }
      if (onProgress && (s % progressEvery === 0 || seen === total)) onProgress(seen, total);
    }
  }
  if (diverged && stop) {
    await settle();
    if (winCount > 0) curve.push(winSum / winCount);
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  const accuracy = diverged && stop ? 0.1 : await evaluate(model, data.test);
  if (device !== cpu) await net.to(cpu); // Switchable Norm's weights are read on the host
  if (spec.save !== undefined) {
    if (!modelSaver) throw new Error("trainRun: spec.save needs a model saver (setModelSaver; the lab's runner sets save.ts's)");
    await modelSaver(model, spec.save, bs, seed);
  }
  const result: RunResult = {
    arch, method, batch_size: bs, seed,
    test_accuracy: accuracy,
    train_loss_curve: curve,
    train_loss_curve_every: every,
    seconds: round((performance.now() - t0) / 1000, 3),
    samples_per_s: round((steps * bs) / trainSeconds, 1),
    epochs, steps, lr, train_samples: n, test_samples: data.test.count, diverged,
  };
  if (device !== cpu) result.device = device.label;
  if (model.switchable.length > 0) result.importance = importanceOf(model);
  return result;
}

/** Accuracy of the model on a split, in eval mode, on the model's device (the model is left in eval mode). */
export async function evaluate(model: Model, split: Split): Promise<number> {
  const net = model.net;
  const device = net.device;
  net.eval();
  let correct = 0;
  for (let start = 0; start < split.count; start += EVAL_CHUNK) {
    const m = Math.min(EVAL_CHUNK, split.count - start);
    const x = new Tensor(allocate(net.dtype, m * IMAGE_SIZE), [m, ...INPUT_SHAPE]);
    x.data.set(split.x.subarray(start * IMAGE_SIZE, (start + m) * IMAGE_SIZE));
    const logits = device.type === "cpu" ? net.forward(x) : await device.download(net.forward(device.upload(x)));
    const z = logits.data;
    const K = z.length / m;
    for (let i = 0; i < m; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (z[i * K + k]! > z[i * K + best]!) best = k;
      if (best === split.y[start + i]) correct++;
    }
  }
  return correct / split.count;
}

/** The learned IN/LN/BN weights of every Switchable Norm layer, in network order. */
export function importanceOf(model: Model): Importance[] {
  return model.switchable.map((sn, i) => {
    const imp = sn.importance();
    return { layer: `norm${i + 1} (layer ${model.net.layers.indexOf(sn)}, ${sn.numFeatures} channels)`, mean: imp.mean, variance: imp.variance };
  });
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
