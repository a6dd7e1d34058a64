/**
 * A minimal dense tensor: a shape and a row-major (C-order) typed array, float32 or float64.
 * float64 is how exactness against PyTorch is proved; float32 is what users run. Kernels accept
 * either and accumulate in float64 (JavaScript numbers) whatever the storage.
 */
import { ConfigError, DeviceError, ShapeError, fmtShape } from "./errors.js";
import type { Device } from "./kernels/contract/device.js";

export type DType = "float32" | "float64";
export type FloatArray = Float32Array | Float64Array;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function allocate(dtype: DType, size: number): FloatArray {
  return dtype === "float64" ? new Float64Array(size) : new Float32Array(size);
}

export function dtypeOf(a: FloatArray): DType {
  return a instanceof Float64Array ? "float64" : "float32";
}

/**
 * What a device tensor passes to the Tensor constructor instead of host data (a GPU tensor's
 * storage is a GPUBuffer; see src/kernels/webgpu/tensor.ts). Not for users.
 */
export const DEVICE_STORAGE: unique symbol = Symbol("normkit.deviceStorage");

/**
 * A dense tensor. Host tensors (device "cpu") hold their values in `data`; a subclass holds them
 * on another device (`GpuTensor`: a GPUBuffer, device "webgpu"), where `data` throws a
 * DeviceError naming the device — read such a tensor with its device's download.
 */
export class Tensor {
  readonly shape: readonly number[];
  private readonly host: FloatArray | null;
  private readonly storageDType: DType;

  /** Wraps `data` (no copy). `data.length` must equal the product of `shape`. */
  constructor(data: FloatArray, shape: readonly number[]);
  /** @internal the constructor of device tensors (no host data). */
  constructor(data: typeof DEVICE_STORAGE, shape: readonly number[], dtype: DType);
  constructor(data: FloatArray | typeof DEVICE_STORAGE, shape: readonly number[], dtype?: DType) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError("shape", "non-negative integer dimensions", fmtShape(shape));
    }
    if (data === DEVICE_STORAGE) {
      this.shape = Object.freeze([...shape]);
      this.host = null;
      this.storageDType = dtype ?? "float32";
      return;
    }
    if (!(data instanceof Float32Array || data instanceof Float64Array)) {
      throw new ConfigError("data", "a Float32Array or Float64Array", Object.prototype.toString.call(data));
    }
    const n = sizeOf(shape);
    if (data.length !== n) {
      throw new ShapeError("data", `${n} values for shape ${fmtShape(shape)}`, `${data.length}`);
    }
    this.shape = Object.freeze([...shape]);
    this.host = data;
    this.storageDType = dtypeOf(data);
  }

  /** The values (row-major). Host tensors only: on another device this throws a DeviceError. */
  get data(): FloatArray {
    const h = this.host;
    if (h === null) throw new DeviceError("tensor", "a host tensor (device cpu)", `a tensor on ${this.device}: download it first`, "Tensor.data");
    return h;
  }
  /** Where the values live: "cpu" (host memory) or, for a subclass, its device ("webgpu"). */
  get device(): string {
    return "cpu";
  }
  /** The device object of a device tensor (whose kernels compute on it), or null for a host tensor. */
  get home(): Device | null {
    return null;
  }
  /** Whether the values are in host memory (`data` readable). */
  get isHost(): boolean {
    return this.host !== null;
  }
  get dtype(): DType {
    return this.storageDType;
  }
  get size(): number {
    return this.host ? this.host.length : sizeOf(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }

  static zeros(shape: readonly number[], dtype: DType = "float32"): Tensor {
    return new Tensor(allocate(dtype, sizeOf(shape)), shape);
  }
  static full(shape: readonly number[], value: number, dtype: DType = "float32"): Tensor {
    const t = Tensor.zeros(shape, dtype);
    t.data.fill(value);
    return t;
  }
  /** Copies `values` into a new tensor of the given shape and dtype. */
  static from(values: ArrayLike<number>, shape: readonly number[], dtype: DType = "float32"): Tensor {
    const n = sizeOf(shape);
    if (values.length !== n) throw new ShapeError("values", `${n} values for shape ${fmtShape(shape)}`, `${values.length}`);
    const a = allocate(dtype, n);
    for (let i = 0; i < n; i++) a[i] = values[i]!;
    return new Tensor(a, shape);
  }

  /** A deep copy, optionally converted to another dtype. */
  clone(dtype: DType = this.dtype): Tensor {
    const a = allocate(dtype, this.size);
    a.set(this.data);
    return new Tensor(a, this.shape);
  }
  /** Same storage, another shape with the same number of elements. */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape);
  }
  toArray(): number[] {
    return Array.from(this.data);
  }
  /**
   * The plain form `JSON.stringify` writes: `{shape, dtype, data: [...]}` (host tensors only).
   * `Module.loadStateDict` takes it back, so a state dict round-trips through JSON (NaN and
   * ±Infinity excepted: JSON writes them as null, which a load refuses).
   */
  toJSON(): { shape: number[]; dtype: DType; data: number[] } {
    return { shape: [...this.shape], dtype: this.dtype, data: this.toArray() };
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
