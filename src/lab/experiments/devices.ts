/**
 * The `devices` experiment (EXPERIMENTS.md "devices"): data-parallel training with W workers of b
 * images each, (W, b) ∈ {(1, 16), (4, 4), (8, 2)}, global batch 16, lr 0.0125; otherwise PROTOCOL.md
 * (SGD momentum 0.9, weight decay 1e-4, the seeded shuffle of src/lab/train.ts, eval-mode accuracy).
 *
 * The W workers are simulated in one network, in lock-step: each step takes the next 16 digits of the
 * epoch's permutation, worker k's are rows k·b … (k+1)·b − 1, and the loss is the mean over all 16.
 * Every layer but the norms works per sample, so this network computes what W DDP replicas compute
 * (their averaged gradient is this one's), once each norm sees what a worker would see:
 * - batch_norm, switchable_norm: {@link PerWorker} runs W replicas of the norm, one per worker's rows,
 *   sharing its parameters (their gradients summed into it); the running statistics are worker 0's
 *   (DDP's broadcast_buffers: each replica starts the step from rank 0's buffers);
 * - sync_batch_norm: the network's BatchNorms converted to SyncBatchNorm over an InProcessGroup of
 *   W workers (global statistics, running statistics of the 16);
 * - group_norm (no batch statistics) and none (at (1, 16) only): as they are.
 */
import { ConfigError } from "../../errors.js";
import { cpu } from "../../kernels/cpu.js";
import { residentScope } from "../../kernels/wasm/wasm_tensor.js";
import { InProcessGroup } from "../../nn/all_reduce.js";
import { ReuseOutputs } from "../../nn/basic.js";
import { softmaxCrossEntropy } from "../../nn/loss.js";
import { Module, type Parameter } from "../../nn/module.js";
import { BatchNorm, BatchNorm1d, BatchNorm2d } from "../../nn/normalization.js";
import { SGD } from "../../nn/optim.js";
import { SwitchableNorm, SwitchableNorm1d, SwitchableNorm2d } from "../../nn/switchable_norm.js";
import { convertSyncBatchNorm } from "../../nn/sync_batch_norm.js";
import { mulberry32 } from "../../rng.js";
import { Tensor, allocate } from "../../tensor.js";
import type { Dataset } from "../data.js";
import { IMAGE_SIZE } from "../mnist_constants.js";
import { shuffledOrder } from "../orderings.js";
import { type Arch, INPUT_SHAPE, buildModel } from "../models.js";
import { DEFAULT_CURVE_EVERY, MOMENTUM, WEIGHT_DECAY, evaluate } from "../train.js";
import type { TrainedRunFields } from "./types.js";

/** The global batch of every configuration. */
export const DEVICES_BATCH = 16;
/** lr = max(0.05 · 16 / 64, 0.005). */
export const DEVICES_LR = 0.0125;
/** (W, b): workers × images per worker. */
export const DEVICES_CONFIGS: readonly (readonly [number, number])[] = [[1, 16], [4, 4], [8, 2]];
export const DEVICES_METHODS = ["none", "batch_norm", "sync_batch_norm", "group_norm", "switchable_norm"] as const;
export type DevicesMethod = (typeof DEVICES_METHODS)[number];

export interface DevicesSpec {
  arch: Arch;
  method: DevicesMethod;
  workers: number;
  perWorkerBatch: number;
  seed: number;
  epochs: number;
  /** Train on the first `trainLimit` training digits only (a quick run). Default: all. */
  trainLimit?: number;
  /** Samples per loss-curve point. Default 500 (as train.ts). */
  curveEvery?: number;
}

/** One run's record (EXPERIMENTS.md "Records"), with train.ts's bookkeeping fields. */
export interface DevicesRecord extends TrainedRunFields {
  experiment: "devices";
  arch: Arch;
  method: DevicesMethod;
  batch_size: number;
  seed: number;
  workers: number;
  per_worker_batch: number;
  lr: number;
}

/** The specs of the experiment's grid: every (W, b), the methods that apply, seeds 0 and 1. */
export function devicesGrid(options: { archs?: readonly Arch[]; seeds?: readonly number[]; epochs?: number; trainLimit?: number } = {}): DevicesSpec[] {
  const out: DevicesSpec[] = [];
  for (const arch of options.archs ?? (["cnn", "mlp"] as const)) {
    for (const [workers, perWorkerBatch] of DEVICES_CONFIGS) {
      for (const method of DEVICES_METHODS) {
        if (method === "none" && workers !== 1) continue;
        for (const seed of options.seeds ?? [0, 1]) {
          const s: DevicesSpec = { arch, method, workers, perWorkerBatch, seed, epochs: options.epochs ?? 2 };
          if (options.trainLimit !== undefined) s.trainLimit = options.trainLimit;
          out.push(s);
        }
      }
    }
  }
  return out;
}

function checkSpec(spec: DevicesSpec): void {
  const ctx = "runDevices";
  if (spec.arch !== "cnn" && spec.arch !== "mlp") throw new ConfigError("arch", "cnn or mlp", String(spec.arch), ctx);
  if (!(DEVICES_METHODS as readonly string[]).includes(spec.method)) throw new ConfigError("method", `one of ${DEVICES_METHODS.join(", ")}`, String(spec.method), ctx);
  const { workers: W, perWorkerBatch: b } = spec;
  if (!Number.isInteger(W) || W < 1 || !Number.isInteger(b) || b < 1 || W * b !== DEVICES_BATCH) {
    throw new ConfigError("workers, perWorkerBatch", `positive integers with workers · perWorkerBatch = ${DEVICES_BATCH}`, `${W} × ${b}`, ctx);
  }
  if (spec.method === "none" && W !== 1) throw new ConfigError("method", "none only at 1 worker (it does not depend on the split)", `none at ${W} workers`, ctx);
  if (!Number.isInteger(spec.epochs) || spec.epochs < 1) throw new ConfigError("epochs", "a positive integer", String(spec.epochs), ctx);
  if (spec.trainLimit !== undefined && !(Number.isInteger(spec.trainLimit) && spec.trainLimit >= DEVICES_BATCH)) {
    throw new ConfigError("trainLimit", `an integer ≥ ${DEVICES_BATCH}`, String(spec.trainLimit), ctx);
  }
}

/** Trains one model of the devices experiment from scratch and evaluates it (see the module comment). */
export async function runDevices(spec: DevicesSpec, data: Dataset): Promise<DevicesRecord> {
  checkSpec(spec);
  return residentScope(() => train(spec, data));
}

async function train(spec: DevicesSpec, data: Dataset): Promise<DevicesRecord> {
  const t0 = performance.now();
  const { arch, method, workers: W, perWorkerBatch: b, seed, epochs } = spec;
  const bs = DEVICES_BATCH;
  const n = Math.min(spec.trainLimit ?? data.train.count, data.train.count);
  const every = spec.curveEvery ?? DEFAULT_CURVE_EVERY;
  const base = method === "sync_batch_norm" ? "batch_norm" : method;
  const model = buildModel(arch, base, seed);
  const net = model.net;
  if (method === "sync_batch_norm") convertSyncBatchNorm(net, new InProcessGroup({ workers: W }));
  else if ((method === "batch_norm" || method === "switchable_norm") && W > 1) splitNorms(net, W);

  const opt = new SGD(net.parameters(), { lr: DEVICES_LR, momentum: MOMENTUM, weightDecay: WEIGHT_DECAY });
  const shuffleRng = mulberry32((seed + 0x9e3779b9) >>> 0); // train.ts's shuffling stream
  const stepsPerEpoch = Math.floor(n / bs);
  const total = stepsPerEpoch * bs * epochs;
  const order = new Int32Array(n);
  const xb = allocate(net.dtype, bs * IMAGE_SIZE);
  const yb = new Uint8Array(bs);
  const x = new Tensor(xb, [bs, ...INPUT_SHAPE]);
  const dlogits = cpu.zeros([bs, 10], net.dtype);
  const curve: number[] = [];
  let winSum = 0, winCount = 0, seen = 0, steps = 0, diverged = false;

  net.train();
  for (let epoch = 0; epoch < epochs && !diverged; epoch++) {
    shuffledOrder(n, bs, shuffleRng, order);
    for (let s = 0; s < stepsPerEpoch; s++) {
      // the next 16 digits: worker k's are rows k·b … (k+1)·b − 1
      for (let r = 0; r < bs; r++) {
        const src = order[s * bs + r]!;
        xb.set(data.train.x.subarray(src * IMAGE_SIZE, (src + 1) * IMAGE_SIZE), r * IMAGE_SIZE);
        yb[r] = data.train.y[src]!;
      }
      opt.zeroGrad();
      const { loss } = softmaxCrossEntropy(net.forward(x), yb, dlogits); // the mean over all 16
      if (!Number.isFinite(loss)) {
        diverged = true; // PROTOCOL: the run stops here and counts as 10%
        break;
      }
      winSum += loss * bs;
      net.backwardParams(dlogits);
      opt.step();
      steps++;
      winCount += bs;
      seen += bs;
      if (seen % every < bs || seen === total) {
        curve.push(winSum / winCount);
        winSum = 0;
        winCount = 0;
      }
    }
  }
  if (winCount > 0) curve.push(winSum / winCount);
  const accuracy = diverged ? 0.1 : await evaluate(model, data.test);
  void b;
  return {
    experiment: "devices", arch, method, batch_size: bs, seed, workers: W, per_worker_batch: spec.perWorkerBatch,
    test_accuracy: accuracy, diverged,
    seconds: Math.round(performance.now() - t0) / 1000,
    train_loss_curve: curve, train_loss_curve_every: every,
    epochs, steps, lr: DEVICES_LR, train_samples: n, test_samples: data.test.count,
  };
}

/** Puts every BatchNorm / SwitchableNorm of the network (inside its ReuseOutputs) behind a PerWorker of W. */
function splitNorms(net: Module, W: number): void {
  for (const m of net.modules()) {
    if (!(m instanceof ReuseOutputs)) continue;
    const inner = m.inner;
    if (inner instanceof BatchNorm || inner instanceof SwitchableNorm) m.replaceChild(inner, new PerWorker(inner, W));
  }
}

/** A fresh layer with `m`'s configuration (the lab's norms use their defaults but for C and dtype). */
function replicaOf(m: BatchNorm | SwitchableNorm): BatchNorm | SwitchableNorm {
  const o = { numFeatures: m.numFeatures, dtype: m.dtype };
  if (m instanceof BatchNorm2d) return new BatchNorm2d({ ...o, eps: m.eps, momentum: m.momentum });
  if (m instanceof BatchNorm1d) return new BatchNorm1d({ ...o, eps: m.eps, momentum: m.momentum });
  if (m instanceof SwitchableNorm2d) return new SwitchableNorm2d({ ...o, eps: m.eps, momentum: m.momentum });
  if (m instanceof SwitchableNorm1d) return new SwitchableNorm1d({ ...o, eps: m.eps, momentum: m.momentum });
  throw new ConfigError("layer", "a BatchNorm1d/2d or SwitchableNorm1d/2d", m.constructor.name, "PerWorker");
}

/**
 * W workers' replicas of one norm layer in lock-step on the concatenated batch (worker k: rows
 * k·N/W … (k+1)·N/W − 1). Replica 0 is the layer itself (its parameters, buffers and keys are this
 * module's); replica k > 0 takes the layer's parameters and — DDP's broadcast_buffers — its buffers
 * before each training forward, and adds its parameter gradients into the layer's after backward.
 * Eval mode runs the layer on the whole input (rank 0's model).
 */
export class PerWorker extends Module {
  readonly replicas: readonly (BatchNorm | SwitchableNorm)[];
  // each replica's input, output, dy and dx rows, reused from step to step
  private xs: Tensor[] = [];
  private ys: Tensor[] = [];
  private dys: Tensor[] = [];
  private dxs: Tensor[] = [];
  private lastShape: readonly number[] | null = null;

  constructor(readonly layer: BatchNorm | SwitchableNorm, readonly workers: number) {
    super(layer.dtype);
    this.replicas = [layer, ...Array.from({ length: workers - 1 }, () => replicaOf(layer))];
    this.training = layer.training;
  }

  forward(x: Tensor, out?: Tensor): Tensor {
    if (!this.training) {
      this.lastShape = null;
      return this.layer.forward(x, out);
    }
    const N = x.shape[0]!;
    if (N % this.workers !== 0) throw new ConfigError("x", `a batch divisible by ${this.workers} workers`, `${N} rows`, "PerWorker.forward");
    const per = x.size / this.workers;
    const shape = [N / this.workers, ...x.shape.slice(1)];
    if (this.xs.length === 0 || this.xs[0]!.size !== per) {
      const make = () => this.replicas.map(() => cpu.zeros(shape, this.dtype));
      this.xs = make();
      this.ys = make();
      this.dys = make();
      this.dxs = make();
    }
    const y = out ?? cpu.zeros(x.shape, this.dtype);
    const main = this.layer;
    const params = Object.values(main.namedParameters());
    const buffers = Object.values(main.namedBuffers());
    this.replicas.forEach((r, k) => {
      if (k > 0) {
        copyAll(Object.values(r.namedParameters()).map((p) => p.value), params.map((p) => p.value));
        copyAll(Object.values(r.namedBuffers()), buffers);
      }
      const xk = this.xs[k]!;
      xk.data.set(x.data.subarray(k * per, (k + 1) * per));
      y.data.set(r.forward(xk, this.ys[k]).data, k * per);
    });
    this.lastShape = x.shape;
    return y;
  }

  backward(dy: Tensor, out?: Tensor): Tensor {
    if (this.lastShape === null) return this.layer.backward(dy, out);
    const per = dy.size / this.workers;
    const dx = out ?? cpu.zeros(dy.shape, this.dtype);
    const main: Parameter[] = Object.values(this.layer.namedParameters());
    this.replicas.forEach((r, k) => {
      const dyk = this.dys[k]!;
      dyk.data.set(dy.data.subarray(k * per, (k + 1) * per));
      if (k > 0) r.zeroGrad();
      dx.data.set(r.backward(dyk, this.dxs[k]).data, k * per);
      if (k > 0) {
        Object.values(r.namedParameters()).forEach((p, i) => {
          const g = main[i]!.grad.data, d = p.grad.data;
          for (let j = 0; j < g.length; j++) g[j] += d[j]!;
        });
      }
    });
    return dx;
  }

  namedParameters(): Record<string, Parameter> {
    return this.layer.namedParameters();
  }
  override namedBuffers(): Record<string, Tensor> {
    return this.layer.namedBuffers();
  }
  override train(mode = true): this {
    this.training = mode;
    for (const r of this.replicas) r.train(mode);
    return this;
  }
  override children(): Module[] {
    return [this.layer];
  }
  override namedChildren(): [string, Module][] {
    return [["", this.layer]];
  }
}

function copyAll(to: Tensor[], from: Tensor[]): void {
  to.forEach((t, i) => t.data.set(from[i]!.data));
}
