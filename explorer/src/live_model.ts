/**
 * The "Live on MNIST" view's model, free of the DOM: a batch of digits from the bundled sample through
 * a fixed convolution (normkit's Conv2d with hand-set filters), then BatchNorm, LayerNorm,
 * InstanceNorm and GroupNorm — normkit's layers on the CPU, and copies of them moved to a WebGPU
 * device (`await layer.to(device)`) where asked. The view
 * (live.ts) only draws what this returns.
 *
 * Running statistics of BatchNorm follow PyTorch: every training-mode forward of a NEW batch moves
 * them by momentum 0.1. Recomputing the SAME batch (another G, another backend, back to train mode)
 * starts again from the statistics before that batch, so looking twice does not count twice.
 */
import { BatchNorm2d, Conv2d, GroupNorm, InstanceNorm2d, LayerNorm, Tensor, mulberry32 } from "../../src/index.js";
import type { Normalization } from "../../src/index.js";
import { WebGpuDevice, writeTensor } from "../../src/webgpu.js";
import type { GpuContext, GpuTensor } from "../../src/webgpu.js";
import type { Digits } from "./digits.js";
import { MNIST_MEAN, MNIST_STD } from "../../src/lab/mnist_constants.js";

/** A black pixel after normalisation: the value the convolution's border padding uses. */
export const BACKGROUND = (0 - MNIST_MEAN) / MNIST_STD;

export const KERNEL = 3;
/** Hand-designed 3x3 filters (one output channel each), scaled so responses stay within about ±3. */
export const FILTERS: readonly { name: string; w: readonly number[] }[] = [
  { name: "edge |", w: [-1, 0, 1, -2, 0, 2, -1, 0, 1].map((v) => v / 4) },
  { name: "edge —", w: [-1, -2, -1, 0, 0, 0, 1, 2, 1].map((v) => v / 4) },
  { name: "edge \\", w: [-2, -1, 0, -1, 0, 1, 0, 1, 2].map((v) => v / 4) },
  { name: "edge /", w: [0, 1, 2, -1, 0, 1, -2, -1, 0].map((v) => v / 4) },
  { name: "blur", w: [1, 2, 1, 2, 4, 2, 1, 2, 1].map((v) => v / 16) },
  { name: "Laplacian", w: [0, -1, 0, -1, 4, -1, 0, -1, 0].map((v) => v / 4) },
  { name: "identity", w: [0, 0, 0, 0, 1, 0, 0, 0, 0] },
  { name: "line —", w: [-1, -1, -1, 2, 2, 2, -1, -1, -1].map((v) => v / 4) },
];
export const C = FILTERS.length;
/** GroupNorm's choices of G: the divisors of C. */
export const GROUP_CHOICES = Array.from({ length: C }, (_, i) => i + 1).filter((g) => C % g === 0);
export const BATCH_MIN = 2;
export const BATCH_MAX = 16;
/** Warm-up of BatchNorm's running statistics at load: passes over the sample, in batches of this size, in order. */
export const WARMUP = { passes: 3, batch: 8 } as const;
export const MOMENTUM = 0.1;

export const METHODS = ["batch_norm", "layer_norm", "instance_norm", "group_norm"] as const;
export type Method = (typeof METHODS)[number];
export type Backend = "cpu" | "webgpu";

export interface StatRow {
  /** What the statistic covers, e.g. "ch 3" or "g 1 (ch 2–3)". */
  label: string;
  mean: number;
  variance: number;
}

export interface MethodResult {
  /** The tracked image's (batch position 0) output: C x H x W. */
  tracked: Float32Array;
  /** The statistics that normalised the tracked image (normkit's lastStatistics(), CPU layers). */
  stats: StatRow[];
}

export interface LiveResult {
  backend: Backend;
  indices: number[];
  /** The tracked image's conv output ("before"): C x H x W. */
  raw: Float32Array;
  height: number;
  width: number;
  methods: Record<Method, MethodResult>;
  /** BatchNorm's running statistics after this computation (read back from the GPU on WebGPU). */
  running: { mean: Float32Array; variance: Float32Array };
  bnMode: "train" | "eval";
}

/** max |a − b| over all elements (0 for identical arrays). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** var from normkit's rstd = 1/sqrt(var + eps). */
const varianceOf = (rstd: number, eps: number) => 1 / (rstd * rstd) - eps;

export class LiveModel {
  readonly digits: Digits;
  readonly tracked: number;
  readonly conv: Conv2d;
  readonly bn = new BatchNorm2d({ numFeatures: C, momentum: MOMENTUM });
  readonly ln: LayerNorm;
  readonly inorm = new InstanceNorm2d({ numFeatures: C });
  gn: GroupNorm;
  indices: number[];
  bnMode: "train" | "eval" = "train";
  /** Running statistics now, and (while the current batch has updated them) before that update. */
  private running: { mean: Float32Array; variance: Float32Array };
  private before: { mean: Float32Array; variance: Float32Array } | null = null;
  /** Training-mode steps of earlier batches (warm-up included). */
  private committed = 0;
  private readonly rng = mulberry32(20240607);
  private twins = new Map<Normalization, Normalization>();
  private twinsOn: WebGpuDevice | null = null;
  readonly height: number;
  readonly width: number;

  constructor(digits: Digits, o: { batch?: number; groups?: number; tracked?: number } = {}) {
    this.digits = digits;
    this.tracked = o.tracked ?? 0;
    this.height = digits.rows;
    this.width = digits.cols;
    this.conv = new Conv2d({ inChannels: 1, outChannels: C, kernelSize: KERNEL, padding: 0, bias: false });
    this.conv.weight.value.data.set(FILTERS.flatMap((f) => f.w));
    this.ln = new LayerNorm({ normalizedShape: [C, this.height, this.width] });
    this.gn = new GroupNorm({ numGroups: o.groups ?? 2, numChannels: C });
    this.indices = [this.tracked];
    this.setBatchSize(o.batch ?? 8);
    this.running = { mean: new Float32Array(C), variance: new Float32Array(C).fill(1) };
  }

  /** Images [B, 1, H+2, W+2]: pixels/255 standardised with MNIST's mean and std, framed by one black pixel. */
  input(indices: readonly number[]): Tensor {
    const { rows: H, cols: W, pixels } = this.digits;
    const Hp = H + 2, Wp = W + 2;
    const x = Tensor.full([indices.length, 1, Hp, Wp], BACKGROUND);
    indices.forEach((k, n) => {
      for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) x.data[n * Hp * Wp + (r + 1) * Wp + c + 1] = (pixels[k * H * W + r * W + c]! / 255 - MNIST_MEAN) / MNIST_STD;
    });
    return x;
  }

  /**
   * Runs BatchNorm in training mode over the sample (WARMUP.passes passes in batches of WARMUP.batch,
   * in order), so that eval mode has running statistics worth using.
   */
  warmUp(): void {
    this.bn.train();
    this.bn.resetRunningStats();
    for (let p = 0; p < WARMUP.passes; p++) {
      for (let s = 0; s + WARMUP.batch <= this.digits.count; s += WARMUP.batch) {
        this.bn.forward(this.conv.forward(this.input(Array.from({ length: WARMUP.batch }, (_, i) => s + i))));
      }
    }
    this.running = { mean: Float32Array.from(this.bn.runningMean!.data), variance: Float32Array.from(this.bn.runningVar!.data) };
    this.before = null;
    this.committed = this.bn.numBatchesTracked!.data[0]!;
  }

  /** BatchNorm's training-mode steps so far (warm-up included; the current batch once at most). */
  get steps(): number {
    return this.committed + (this.before ? 1 : 0);
  }

  /** A new batch: what the last one moved the running statistics to is kept. */
  private newBatch(): void {
    if (this.before) this.committed++;
    this.before = null;
  }

  /** Draws `count` distinct sample indices not in `taken`. */
  private draw(count: number, taken: readonly number[]): number[] {
    const pool = Array.from({ length: this.digits.count }, (_, i) => i).filter((i) => !taken.includes(i));
    for (let i = 0; i < count; i++) {
      const j = i + Math.floor(this.rng() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, count);
  }

  /** Keeps the tracked image, draws new batch-mates. */
  resample(): void {
    this.indices = [this.tracked, ...this.draw(this.indices.length - 1, [this.tracked])];
    this.newBatch();
  }

  /** Keeps the current batch-mates that fit, draws more when it grows. */
  setBatchSize(b: number): void {
    const n = Math.min(BATCH_MAX, Math.max(BATCH_MIN, Math.round(b)), this.digits.count);
    if (n === this.indices.length) return;
    this.indices = n < this.indices.length ? this.indices.slice(0, n) : [...this.indices, ...this.draw(n - this.indices.length, this.indices)];
    this.newBatch();
  }

  setGroups(g: number): void {
    if (g === this.gn.numGroups) return;
    this.twins.delete(this.gn);
    this.gn = new GroupNorm({ numGroups: g, numChannels: C });
  }

  /** The running statistics BatchNorm starts this computation from. */
  private bnStart(): { mean: Float32Array; variance: Float32Array } {
    if (this.bnMode === "eval") return this.running;
    this.before ??= { mean: this.running.mean.slice(), variance: this.running.variance.slice() };
    return this.before;
  }

  /**
   * The whole pipeline on the CPU: conv, then the four layers. Statistics rows are the tracked
   * image's (sample 0): normkit's statistic index for per-sample methods is n * groups + g, so
   * sample 0 owns the first `groups` entries.
   */
  private cpu(): LiveResult {
    const conv = this.conv.forward(this.input(this.indices));
    const [, , H, W] = conv.shape as [number, number, number, number];
    const per = C * H * W;
    const start = this.bnStart();
    this.bn.runningMean!.data.set(start.mean);
    this.bn.runningVar!.data.set(start.variance);
    if (this.bnMode === "eval") this.bn.eval();
    else this.bn.train();
    const layers: Record<Method, Normalization> = { batch_norm: this.bn, layer_norm: this.ln, instance_norm: this.inorm, group_norm: this.gn };
    const methods = {} as Record<Method, MethodResult>;
    for (const m of METHODS) {
      const layer = layers[m];
      const y = layer.forward(conv);
      const st = layer.lastStatistics()!;
      const rows: StatRow[] = [];
      const row = (label: string, k: number) => rows.push({ label, mean: st.mean[k]!, variance: varianceOf(st.rstd[k]!, layer.eps) });
      if (m === "batch_norm" || m === "instance_norm") for (let c = 0; c < C; c++) row(`ch ${c}`, c);
      else if (m === "layer_norm") row("image", 0);
      else {
        const G = this.gn.numGroups, s = C / G;
        for (let g = 0; g < G; g++) row(s === 1 ? `g ${g} (ch ${g})` : `g ${g} (ch ${g * s}–${g * s + s - 1})`, g);
      }
      methods[m] = { tracked: Float32Array.from(y.data.subarray(0, per)), stats: rows };
    }
    if (this.bnMode === "train") this.running = { mean: Float32Array.from(this.bn.runningMean!.data), variance: Float32Array.from(this.bn.runningVar!.data) };
    const result: LiveResult = {
      backend: "cpu", indices: [...this.indices], raw: Float32Array.from(conv.data.subarray(0, per)), height: H, width: W, methods,
      running: { mean: this.running.mean.slice(), variance: this.running.variance.slice() }, bnMode: this.bnMode,
    };
    return result;
  }

  /** A copy of a CPU layer (same class, options and state) on the GPU, made again when the layer or the device changes. */
  private async twin(gpu: WebGpuDevice, layer: Normalization): Promise<Normalization> {
    if (this.twinsOn !== gpu) {
      this.twins.clear();
      this.twinsOn = gpu;
    }
    let t = this.twins.get(layer);
    if (!t) {
      t = layer === this.bn ? new BatchNorm2d({ numFeatures: C, momentum: MOMENTUM }) : layer === this.ln ? new LayerNorm({ normalizedShape: [C, this.height, this.width] })
        : layer === this.inorm ? new InstanceNorm2d({ numFeatures: C }) : new GroupNorm({ numGroups: this.gn.numGroups, numChannels: C });
      t.loadStateDict(layer.stateDict());
      await t.to(gpu);
      this.twins.set(layer, t);
    }
    return t;
  }
  private device: WebGpuDevice | null = null;
  private convOnGpu: Conv2d | null = null;

  /**
   * Computes the current batch. On "webgpu" the convolution and the four normalisations run on the
   * GPU (copies of the CPU layers moved there; BatchNorm's running statistics updated on the GPU
   * and read back). The statistics table comes from the CPU layers
   * on the same input: the WebGPU layers keep their per-group statistics on the GPU.
   */
  async compute(backend: Backend, gpu: GpuContext | null): Promise<LiveResult> {
    const start = this.bnStart();
    const result = this.cpu();
    if (backend === "cpu" || !gpu) return result;
    const layers: Record<Method, Normalization> = { batch_norm: this.bn, layer_norm: this.ln, instance_norm: this.inorm, group_norm: this.gn };
    if (this.device?.ctx !== gpu) {
      this.device = new WebGpuDevice(gpu);
      this.convOnGpu = null;
    }
    const dev = this.device;
    // the convolution on the GPU too: a copy of the fixed filters moved there, fed the same images
    if (!this.convOnGpu) {
      const c = new Conv2d({ inChannels: 1, outChannels: C, kernelSize: KERNEL, padding: 0, bias: false });
      c.loadStateDict(this.conv.stateDict());
      this.convOnGpu = await c.to(dev);
    }
    const images = dev.upload(this.input(this.indices));
    const x = this.convOnGpu.forward(images) as GpuTensor;
    images.destroy();
    const per = result.raw.length;
    result.raw = (await dev.download(x)).data.slice(0, per) as Float32Array;
    try {
      for (const m of METHODS) {
        const t = await this.twin(dev, layers[m]);
        if (m === "batch_norm") {
          t.train(this.bnMode === "train");
          writeTensor(t.runningMean as GpuTensor, start.mean);
          writeTensor(t.runningVar as GpuTensor, start.variance);
        }
        const y = t.forward(x) as GpuTensor;
        result.methods[m].tracked = (await dev.download(y)).data.slice(0, per) as Float32Array;
        y.destroy();
      }
      if (this.bnMode === "train") {
        const t = await this.twin(dev, this.bn);
        this.running = { mean: (await dev.download(t.runningMean!)).data as Float32Array, variance: (await dev.download(t.runningVar!)).data as Float32Array };
      }
    } finally {
      x.destroy();
    }
    result.backend = "webgpu";
    result.running = { mean: this.running.mean.slice(), variance: this.running.variance.slice() };
    return result;
  }
}
