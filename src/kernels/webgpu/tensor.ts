/// <reference types="@webgpu/types" preserve="true" />
/**
 * Tensors on the GPU: float32 storage in a GPUBuffer, a shape, and explicit transfers —
 * `uploadTensor` (host → GPU) and `downloadTensor` (GPU → host, async). Nothing moves implicitly:
 * outputs of the kernels stay on the GPU until downloaded. A download awaits the context's error
 * scopes first, so a failed kernel surfaces as a WebGpuError, never as wrong numbers.
 */
import { ShapeError, fmtShape } from "../../errors.js";
import { DEVICE_STORAGE, Tensor, sizeOf } from "../../tensor.js";
import type { Device } from "../contract/device.js";
import type { GpuContext } from "./device.js";
import { WebGpuError } from "./errors.js";

/**
 * A tensor on the GPU: a `Tensor` whose values live in a GPUBuffer (float32). `data` throws a
 * DeviceError (download it first); shape, size, rank and dtype work as for host tensors.
 */
export class GpuTensor extends Tensor {
  readonly ctx: GpuContext;
  readonly buffer: GPUBuffer;
  private destroyed = false;

  constructor(ctx: GpuContext, buffer: GPUBuffer, shape: readonly number[]) {
    super(DEVICE_STORAGE, shape, "float32");
    this.ctx = ctx;
    this.buffer = buffer;
  }

  override get device(): string {
    return "webgpu";
  }
  override get home(): Device | null {
    return this.ctx.home;
  }
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** A zero-filled tensor on the GPU. */
  static zerosOn(ctx: GpuContext, shape: readonly number[], label = "tensor"): GpuTensor {
    const n = sizeOf(shape);
    return new GpuTensor(ctx, ctx.scoped(() => ctx.createStorage(n * 4, `${label} ${fmtShape(shape)}`)), shape);
  }

  /** Frees the GPU memory now (otherwise it goes with garbage collection). */
  destroy(): void {
    if (!this.destroyed) this.buffer.destroy();
    this.destroyed = true;
  }

  /** Same buffer, another shape with the same number of elements. */
  override reshape(shape: readonly number[]): GpuTensor {
    if (sizeOf(shape) !== this.size) throw new ShapeError("shape", `${this.size} elements`, fmtShape(shape), "GpuTensor.reshape");
    return new GpuTensor(this.ctx, this.buffer, shape);
  }

  assertAlive(what: string): void {
    if (this.destroyed) throw new WebGpuError("unsupported", `${what}: the tensor was destroyed`);
  }
}

/** Copies host values (a Tensor, or numbers with a shape) into a new float32 GPU tensor. */
export function uploadTensor(ctx: GpuContext, src: Tensor | ArrayLike<number>, shape?: readonly number[], label = "tensor"): GpuTensor {
  const sh = src instanceof Tensor ? src.shape : shape;
  if (!sh) throw new ShapeError("shape", "a shape for plain arrays", "none", "uploadTensor");
  const data = src instanceof Tensor ? src.data : src;
  const n = sizeOf(sh);
  if (data.length !== n) throw new ShapeError("data", `${n} values for shape ${fmtShape(sh)}`, `${data.length}`, "uploadTensor");
  const t = GpuTensor.zerosOn(ctx, sh, label);
  writeTensor(t, data);
  return t;
}

/** Overwrites a GPU tensor with host values. */
export function writeTensor(t: GpuTensor, data: ArrayLike<number>): void {
  t.assertAlive("writeTensor");
  if (data.length !== t.size) throw new ShapeError("data", `${t.size} values`, `${data.length}`, "writeTensor");
  // a view of shared memory (a host tensor resident in the WebAssembly memory) is copied out first:
  // Dawn's writeBuffer takes only an ArrayBuffer
  const f32 = data instanceof Float32Array && data.buffer instanceof ArrayBuffer ? data : Float32Array.from(data);
  if (f32.length > 0) t.ctx.scoped(() => t.ctx.device.queue.writeBuffer(t.buffer, 0, f32.buffer, f32.byteOffset, f32.byteLength));
}

/** Zeroes GPU tensors: a clearBuffer each, in one submit (so before whatever is submitted next). */
export function clearTensors(ctx: GpuContext, tensors: readonly GpuTensor[]): void {
  const enc = ctx.device.createCommandEncoder();
  for (const t of tensors) enc.clearBuffer(t.buffer);
  ctx.scoped(() => ctx.device.queue.submit([enc.finish()]));
}

/** Copies a GPU tensor back (float32, or converted to float64). Throws a WebGpuError if any GPU work failed. */
export async function downloadTensor(t: GpuTensor, dtype: "float32" | "float64" = "float32"): Promise<Tensor> {
  t.assertAlive("downloadTensor");
  const ctx = t.ctx;
  const bytes = Math.max(16, Math.ceil((t.size * 4) / 16) * 16);
  const read = ctx.scoped(() => ctx.device.createBuffer({ label: "readback", size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
  const enc = ctx.device.createCommandEncoder();
  enc.copyBufferToBuffer(t.buffer, 0, read, 0, bytes);
  ctx.scoped(() => ctx.device.queue.submit([enc.finish()]));
  try {
    await read.mapAsync(GPUMapMode.READ);
  } catch (e) {
    ctx.check();
    await ctx.flush();
    throw new WebGpuError("gpu-error", `reading a tensor back failed: ${(e as Error).message ?? String(e)}`);
  }
  await ctx.flush();
  const out = new Float32Array(read.getMappedRange(0, bytes).slice(0, t.size * 4));
  read.unmap();
  read.destroy();
  const host = new Tensor(out, t.shape);
  return dtype === "float64" ? host.clone("float64") : host;
}
