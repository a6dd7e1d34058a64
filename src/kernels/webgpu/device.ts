/// <reference types="@webgpu/types" preserve="true" />
/**
 * The WebGPU context: wraps a caller-provided `GPUDevice` (navigator.gpu in browsers, the `webgpu`
 * package in Node — see node_device.ts) and owns what every kernel shares: the pipeline cache
 * (keyed by each program's cache key), a small cache of uniform buffers, buffer creation with
 * limit checks, and error tracking.
 *
 * Errors are never silent. Each submitted batch of dispatches runs inside validation /
 * out-of-memory / internal error scopes; `flush()` (which every download calls) awaits them and
 * throws a WebGpuError for the first one. A lost device makes every later call throw with the
 * reason. Buffers larger than the device's binding limit are refused before they are created.
 *
 * Subgroups: where the device has the `subgroups` feature, `GpuContext.create` runs a one-off probe
 * that checks subgroup lanes are consecutive local invocations of one size dividing the workgroup
 * (what the reduction in wgsl.ts relies on); only then do kernels use subgroupAdd. Otherwise they
 * use the shared-memory tree.
 */
import type { Device } from "../contract/device.js";
import { WebGpuError } from "./errors.js";
import type { StorageBinding, UniformBlock, UniformFields, UniformValues, ReduceMode } from "./wgsl.js";
import { WORKGROUP_SIZE, dispatchSize } from "./wgsl.js";

/** A compute program: WGSL source, its bindings and uniform block, and the key its pipeline is cached under. */
export interface Program<F extends UniformFields = UniformFields> {
  /** Kernel name (labels, error messages). */
  readonly name: string;
  /** Everything that changes the generated code; equal keys ⇒ equal source. */
  readonly cacheKey: string;
  readonly uniforms: UniformBlock<F>;
  readonly bindings: readonly StorageBinding[];
  readonly source: string;
}

/** One dispatch, ready to encode: pipeline, bind group and workgroup counts. */
export interface PreparedDispatch {
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number];
}

/** A sequence of dispatches that together compute one operation (run in order, one compute pass). */
export type GpuRun = PreparedDispatch[];

export interface GpuContextOptions {
  /** "auto" (default): subgroups where the device has them and the probe passes; "shared": never. */
  reduce?: "auto" | "shared";
  /** Wrap every submit in error scopes (default true). Benchmarks may turn it off. */
  checkErrors?: boolean;
  /** The adapter's limits, to name them in limit errors (requestGpuContext passes them). */
  adapterLimits?: GPUSupportedLimits;
  /** Lay dispatches out 2-D above this many workgroups per dimension (default: the device's limit; tests lower it). */
  maxWorkgroupsPerDimension?: number;
}

const UNIFORM_CACHE_MAX = 512;

export class GpuContext {
  readonly device: GPUDevice;
  readonly reduceMode: ReduceMode;
  checkErrors: boolean;
  private readonly adapterLimits: GPUSupportedLimits | undefined;
  private readonly maxPerDim: number;
  private lostReason: string | null = null;
  private uncaptured: string | null = null;
  private pending: Promise<GPUError | null>[] = [];
  private readonly pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  private readonly uniformCache = new Map<string, GPUBuffer>();
  /** The normkit device of this context's tensors (the first WebGpuDevice made on it), or null. */
  home: Device | null = null;
  /** Dispatches submitted so far (tests check which path ran). */
  dispatches = 0;
  /** Names of the kernels run so far, most recent last (bounded). */
  readonly recent: string[] = [];

  private constructor(device: GPUDevice, reduceMode: ReduceMode, opts: GpuContextOptions) {
    this.device = device;
    this.reduceMode = reduceMode;
    this.checkErrors = opts.checkErrors ?? true;
    this.adapterLimits = opts.adapterLimits;
    this.maxPerDim = Math.min(device.limits.maxComputeWorkgroupsPerDimension, opts.maxWorkgroupsPerDimension ?? Infinity);
    device.lost.then((info) => {
      this.lostReason = `${info.reason}${info.message ? `: ${info.message}` : ""}`;
    });
    device.addEventListener?.("uncapturederror", (ev: Event) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      if (!this.uncaptured) this.uncaptured = e?.message ?? String(e);
    });
  }

  /** Wraps a device; probes subgroups (see the file comment). */
  static async create(device: GPUDevice, opts: GpuContextOptions = {}): Promise<GpuContext> {
    let mode: ReduceMode = "shared";
    if ((opts.reduce ?? "auto") === "auto" && device.features.has("subgroups")) {
      mode = (await probeSubgroups(device)) ? "subgroup" : "shared";
    }
    return new GpuContext(device, mode, opts);
  }

  /** Throws if the device is lost or reported an error outside a scope. */
  check(): void {
    if (this.lostReason !== null) throw new WebGpuError("device-lost", `the GPU device was lost (${this.lostReason}); create a new context`);
    if (this.uncaptured !== null) {
      const m = this.uncaptured;
      this.uncaptured = null;
      throw new WebGpuError("gpu-error", `the GPU reported an error: ${m}`);
    }
  }

  get lost(): boolean {
    return this.lostReason !== null;
  }

  /** A storage buffer of at least `bytes` (rounded up to 16), zero-filled; refused above the device's limits. */
  createStorage(bytes: number, label: string, extraUsage = 0): GPUBuffer {
    this.check();
    const lim = this.device.limits;
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const cap = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
    if (size > cap) {
      const which = lim.maxStorageBufferBindingSize <= lim.maxBufferSize ? "maxStorageBufferBindingSize" : "maxBufferSize";
      const adapter = this.adapterLimits ? ` (the adapter allows ${this.adapterLimits[which]})` : "";
      throw new WebGpuError("limit", `${label}: ${bytes} bytes exceed this device's ${which} of ${lim[which]}${adapter}`);
    }
    return this.device.createBuffer({
      label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extraUsage,
    });
  }

  private pipelineFor(p: Program): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
    let entry = this.pipelines.get(p.cacheKey);
    if (entry) return entry;
    const layout = this.device.createBindGroupLayout({
      label: p.name,
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
        ...p.bindings.map((b, i) => ({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: b.access === "read" ? ("read-only-storage" as const) : ("storage" as const) },
        })),
      ],
    });
    const module = this.device.createShaderModule({ label: p.name, code: p.source });
    const pipeline = this.device.createComputePipeline({
      label: p.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    entry = { pipeline, layout };
    this.pipelines.set(p.cacheKey, entry);
    return entry;
  }

  /** Number of distinct pipelines compiled so far. */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  private uniformBuffer(data: ArrayBuffer): GPUBuffer {
    const bytes = new Uint8Array(data);
    let key = "";
    for (let i = 0; i < bytes.length; i++) key += String.fromCharCode(bytes[i]!);
    let buf = this.uniformCache.get(key);
    if (buf) {
      this.uniformCache.delete(key); // LRU: re-insert as newest
      this.uniformCache.set(key, buf);
      return buf;
    }
    buf = this.device.createBuffer({ label: "uniforms", size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(buf, 0, data);
    this.uniformCache.set(key, buf);
    if (this.uniformCache.size > UNIFORM_CACHE_MAX) {
      const oldest = this.uniformCache.keys().next().value as string;
      this.uniformCache.get(oldest)?.destroy();
      this.uniformCache.delete(oldest);
    }
    return buf;
  }

  /**
   * Binds a program to its uniform values and buffers (in the program's binding order) for
   * `workgroups` workgroups (a count laid out 2-D by dispatchSize, or explicit [x, y]).
   */
  prepare<F extends UniformFields>(p: Program<F>, values: UniformValues<F>, buffers: readonly GPUBuffer[], workgroups: number): PreparedDispatch {
    this.check();
    if (buffers.length !== p.bindings.length) throw new Error(`${p.name}: expected ${p.bindings.length} buffers, got ${buffers.length}`);
    const lim = this.maxPerDim;
    let wg: [number, number];
    try {
      wg = dispatchSize(workgroups, lim);
    } catch {
      throw new WebGpuError("limit", `${p.name}: ${workgroups} workgroups exceed maxComputeWorkgroupsPerDimension^2 (${lim}^2)`);
    }
    const data = p.uniforms.pack(values);
    return this.scoped(() => {
      const { pipeline, layout } = this.pipelineFor(p);
      const ub = this.uniformBuffer(data);
      const bindGroup = this.device.createBindGroup({
        label: p.name,
        layout,
        entries: [{ binding: 0, resource: { buffer: ub } }, ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } }))],
      });
      return { name: p.name, pipeline, bindGroup, workgroups: wg };
    });
  }

  /** Encodes the dispatches into one compute pass of `encoder`. */
  encode(encoder: GPUCommandEncoder, run: readonly PreparedDispatch[], times = 1): void {
    const pass = encoder.beginComputePass();
    for (let r = 0; r < times; r++) {
      for (const d of run) {
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1]);
      }
    }
    pass.end();
  }

  /**
   * The dispatches that `fn` submits, recorded instead of run, for re-encoding many times
   * (benchmarks: `ctx.submit(run, times)`). Host-side effects of the calls inside `fn` (a layer's
   * cache for backward, num_batches_tracked) happen once, at recording.
   */
  record(fn: () => void): GpuRun {
    const out: GpuRun = [];
    const outer = this.recording;
    this.recording = out;
    try {
      fn();
    } finally {
      this.recording = outer;
    }
    return out;
  }
  private recording: GpuRun | null = null;

  /** Encodes and submits the dispatches (inside error scopes when checkErrors); inside `record`, records them. */
  submit(run: readonly PreparedDispatch[], times = 1): void {
    if (this.recording && times === 1) {
      this.recording.push(...run);
      return;
    }
    this.check();
    if (this.checkErrors) {
      this.device.pushErrorScope("internal");
      this.device.pushErrorScope("out-of-memory");
      this.device.pushErrorScope("validation");
    }
    const enc = this.device.createCommandEncoder();
    this.encode(enc, run, times);
    this.device.queue.submit([enc.finish()]);
    this.dispatches += run.length * times;
    for (const d of run) {
      this.recent.push(d.name);
      if (this.recent.length > 64) this.recent.shift();
    }
    if (this.checkErrors) {
      for (let i = 0; i < 3; i++) this.pending.push(this.device.popErrorScope());
    }
  }

  /** Runs `fn` inside error scopes (buffer creation, writes) and records what they catch. */
  scoped<T>(fn: () => T): T {
    if (!this.checkErrors) return fn();
    this.device.pushErrorScope("out-of-memory");
    this.device.pushErrorScope("validation");
    try {
      return fn();
    } finally {
      this.pending.push(this.device.popErrorScope());
      this.pending.push(this.device.popErrorScope());
    }
  }

  /** Waits for submitted work; throws a WebGpuError for any error it (or earlier work) raised. */
  async flush(): Promise<void> {
    this.check();
    const pending = this.pending;
    this.pending = [];
    let done: unknown = null;
    try {
      await this.device.queue.onSubmittedWorkDone();
    } catch (e) {
      done = e;
    }
    const errs = await Promise.all(pending.map((p) => p.catch((e: unknown) => ({ message: String(e) }) as GPUError)));
    this.check();
    const first = errs.find((e) => e !== null);
    if (first) throw new WebGpuError("gpu-error", `the GPU reported an error: ${first.message}`);
    if (done) throw new WebGpuError("gpu-error", `waiting for the GPU failed: ${String(done)}`);
  }

  /** Creates a GPU timestamp query set when the device has `timestamp-query` (benchmarks). */
  get hasTimestamps(): boolean {
    return this.device.features.has("timestamp-query");
  }
}

/**
 * Whether subgroup lanes map to consecutive local invocations (sgid = lid mod sgsize) with one
 * size that divides WORKGROUP_SIZE — the layout the subgroup reduction assumes.
 */
async function probeSubgroups(device: GPUDevice): Promise<boolean> {
  try {
    device.pushErrorScope("validation");
    const code = `enable subgroups;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sgid: u32, @builtin(subgroup_size) sgsize: u32) {
  out[2u * lid] = sgid;
  out[2u * lid + 1u] = sgsize;
}`;
    const module = device.createShaderModule({ code });
    const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    const bytes = WORKGROUP_SIZE * 8;
    const buf = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(1);
    pass.end();
    enc.copyBufferToBuffer(buf, 0, read, 0, bytes);
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) return false;
    await read.mapAsync(GPUMapMode.READ);
    const a = new Uint32Array(read.getMappedRange().slice(0));
    read.unmap();
    buf.destroy();
    read.destroy();
    const size = a[1]!;
    if (size < 1 || WORKGROUP_SIZE % size !== 0) return false;
    for (let i = 0; i < WORKGROUP_SIZE; i++) if (a[2 * i] !== i % size || a[2 * i + 1] !== size) return false;
    return true;
  } catch {
    return false;
  }
}

/** Options for {@link requestGpuContext}. */
export interface RequestOptions extends GpuContextOptions {
  powerPreference?: GPUPowerPreference;
}

/**
 * Requests an adapter and a device from a `GPU` object (navigator.gpu, or the webgpu package's
 * `create([])`), with the adapter's largest storage-buffer limits and its `subgroups` /
 * `timestamp-query` features, and wraps it. Throws WebGpuError("no-adapter") when there is none.
 */
export async function requestGpuContext(gpu: GPU | null | undefined, opts: RequestOptions = {}): Promise<GpuContext> {
  if (!gpu) throw new WebGpuError("no-adapter", "WebGPU is not available here (no navigator.gpu / GPU object)");
  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) throw new WebGpuError("no-adapter", "no WebGPU adapter found (requestAdapter returned null)");
  const wanted: GPUFeatureName[] = ["subgroups", "timestamp-query"];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
    },
  });
  return GpuContext.create(device, { ...opts, adapterLimits: l });
}
