/**
 * The lab's `rnn` experiment (shared/lab/EXPERIMENTS.md "rnn"): row-sequential MNIST — each normalised
 * image is 28 steps of 28 pixels, row t at step t — through one LSTM layer (H = 64, one bias b [4H],
 * src/nn/lstm.ts with singleBias) and Linear(64 → 10) on the last hidden state h_T.
 * method: none | layer_norm (Ba et al.) | batch_norm (a BatchNorm per step, Cooijmans et al.).
 * Adam (lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay), gradients clipped to global norm 1
 * (clip_grad_norm_) before each step, 2 epochs of a fresh seeded shuffle (as src/lab/train.ts: a
 * Fisher–Yates shuffle from mulberry32(seed + 0x9e3779b9)), the last incomplete batch dropped; then
 * accuracy on the test digits in eval mode (batch_norm: each step's running statistics). A non-finite
 * training loss stops the run: diverged, test_accuracy 0.1 (chance).
 *
 * Deterministic given the seed: the LSTM's weights, then the Linear's, draw from mulberry32(seed).
 * The PyTorch twin is docs/pytorch_rnn.py (same networks and protocol, and by default these very draws
 * and shuffles: docs/normkit_streams.py ports them, scripts/check_normkit_streams.py checks the port).
 */
import { Tensor, allocate } from "../../tensor.js";
import { cpu } from "../../kernels/cpu.js";
import { Linear } from "../../nn/linear.js";
import { LSTM, type LSTMNorm } from "../../nn/lstm.js";
import { softmaxCrossEntropy } from "../../nn/loss.js";
import { Adam, clipGradNorm } from "../../nn/optim.js";
import { mulberry32 } from "../../rng.js";
import { ConfigError } from "../../errors.js";
import type { Dataset, Split } from "../data.js";
import { IMAGE_SIZE } from "../mnist_constants.js";
import { shuffledOrder } from "../orderings.js";
import { LAB_DTYPE } from "../models.js";
import type { TrainedRunFields } from "./types.js";

export const RNN_METHODS: readonly LSTMNorm[] = ["none", "layer_norm", "batch_norm"];
/** Steps (rows) and inputs per step (pixels of a row). */
export const RNN_STEPS = 28;
export const RNN_INPUT = 28;
export const RNN_HIDDEN = 64;
export const RNN_LR = 1e-3;
export const RNN_CLIP = 1;
/** Samples per point of the training-loss curve (as the lab's other runs). */
const CURVE_EVERY = 500;
const EVAL_CHUNK = 500;

export interface RnnSpec {
  method: LSTMNorm;
  batchSize: number;
  seed: number;
  epochs: number;
  /** Train on the first `trainLimit` training samples only. Default: all. */
  trainLimit?: number;
}

export interface RnnResult extends TrainedRunFields {
  experiment: "rnn";
  arch: "lstm";
  method: LSTMNorm;
  batch_size: number;
  seed: number;
  /** Mean wall time of one training step (forward, backward, clip, Adam), milliseconds. */
  step_ms: number;
}

/** The network: the LSTM and the classifier on h_T. */
export interface RnnModel {
  lstm: LSTM;
  fc: Linear;
}

export function buildRnn(method: LSTMNorm, seed: number): RnnModel {
  if (!RNN_METHODS.includes(method)) throw new ConfigError("method", `one of ${RNN_METHODS.join(", ")}`, String(method), "rnn");
  const rng = mulberry32(seed);
  const lstm = new LSTM({
    inputSize: RNN_INPUT, hiddenSize: RNN_HIDDEN, batchFirst: true, singleBias: true, norm: method,
    ...(method === "batch_norm" ? { maxSteps: RNN_STEPS } : {}), dtype: LAB_DTYPE, rng,
  });
  const fc = new Linear({ inFeatures: RNN_HIDDEN, outFeatures: 10, dtype: LAB_DTYPE, rng });
  return { lstm, fc };
}

export async function runRnn(spec: RnnSpec, data: Dataset): Promise<RnnResult> {
  const t0 = performance.now();
  const { method, batchSize: bs, seed, epochs } = spec;
  if (!Number.isInteger(bs) || bs < 1) throw new ConfigError("batchSize", "a positive integer", String(bs), "rnn");
  const n = Math.min(spec.trainLimit ?? data.train.count, data.train.count);
  const { lstm, fc } = buildRnn(method, seed);
  const params = [...lstm.parameters(), ...fc.parameters()];
  const opt = new Adam(params, { lr: RNN_LR, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
  const shuffleRng = mulberry32((seed + 0x9e3779b9) >>> 0);
  const H = RNN_HIDDEN;

  const stepsPerEpoch = Math.floor(n / bs);
  const order = new Int32Array(n);
  // the batch [bs, 28 steps, 28 pixels] (an image's rows in order), and every reused output
  const x = cpu.zeros([bs, RNN_STEPS, RNN_INPUT], LAB_DTYPE);
  const yb = new Uint8Array(bs);
  const outs = { output: cpu.zeros([bs, RNN_STEPS, H], LAB_DTYPE), h: cpu.zeros([1, bs, H], LAB_DTYPE), c: cpu.zeros([1, bs, H], LAB_DTYPE) };
  const logits = cpu.zeros([bs, 10], LAB_DTYPE), dlogits = cpu.zeros([bs, 10], LAB_DTYPE), dh = cpu.zeros([bs, H], LAB_DTYPE);
  const grads = { dx: null, dh0: cpu.zeros([1, bs, H], LAB_DTYPE), dc0: cpu.zeros([1, bs, H], LAB_DTYPE) };
  const curve: number[] = [];
  let winSum = 0, winCount = 0, steps = 0, diverged = false;
  let stepTime = 0;

  lstm.train();
  fc.train();
  train: for (let epoch = 0; epoch < epochs; epoch++) {
    shuffledOrder(n, bs, shuffleRng, order);
    for (let s = 0; s < stepsPerEpoch; s++) {
      for (let b = 0; b < bs; b++) {
        const src = order[s * bs + b]!;
        x.data.set(data.train.x.subarray(src * IMAGE_SIZE, (src + 1) * IMAGE_SIZE), b * IMAGE_SIZE);
        yb[b] = data.train.y[src]!;
      }
      const ts = performance.now();
      opt.zeroGrad();
      // h_T [1, bs, H] viewed as [bs, H] for the classifier
      const { h } = lstm.forwardSequence(x, {}, outs);
      fc.forward(h.reshape([bs, H]), logits);
      const { loss } = softmaxCrossEntropy(logits, yb, dlogits);
      if (!Number.isFinite(loss)) {
        diverged = true;
        break train;
      }
      fc.backward(dlogits, dh);
      // only h_T reaches the loss: no output gradient; the data needs no dx
      lstm.backwardSequence(null, { h: dh.reshape([1, bs, H]) }, grads);
      clipGradNorm(params, RNN_CLIP);
      opt.step();
      stepTime += performance.now() - ts;
      steps++;
      winSum += loss * bs;
      winCount += bs;
      if (winCount >= CURVE_EVERY) {
        curve.push(round(winSum / winCount, 5));
        winSum = 0;
        winCount = 0;
      }
    }
  }
  if (winCount > 0) curve.push(round(winSum / winCount, 5));
  const accuracy = diverged ? 0.1 : evaluateRnn({ lstm, fc }, data.test);
  return {
    experiment: "rnn", arch: "lstm", method, batch_size: bs, seed,
    test_accuracy: accuracy, diverged,
    seconds: round((performance.now() - t0) / 1000, 3),
    train_loss_curve: curve, train_loss_curve_every: CURVE_EVERY,
    epochs, steps, train_samples: n, test_samples: data.test.count,
    step_ms: round(steps ? stepTime / steps : 0, 3),
  };
}

/** Accuracy on a split in eval mode (the model is left in eval mode). */
export function evaluateRnn(model: RnnModel, split: Split): number {
  const { lstm, fc } = model;
  lstm.eval();
  fc.eval();
  let correct = 0;
  for (let start = 0; start < split.count; start += EVAL_CHUNK) {
    const m = Math.min(EVAL_CHUNK, split.count - start);
    const x = new Tensor(allocate(LAB_DTYPE, m * IMAGE_SIZE), [m, RNN_STEPS, RNN_INPUT]);
    x.data.set(split.x.subarray(start * IMAGE_SIZE, (start + m) * IMAGE_SIZE));
    const { h } = lstm.forwardSequence(x);
    const z = fc.forward(h.reshape([m, RNN_HIDDEN])).data;
    for (let i = 0; i < m; i++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (z[i * 10 + k]! > z[i * 10 + best]!) best = k;
      if (best === split.y[start + i]) correct++;
    }
  }
  return correct / split.count;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
