/**
 * safetensors (https://github.com/huggingface/safetensors, the format Hugging Face and PyTorch users
 * share weights in), read and written with no dependency and no Node API, so it runs in browsers.
 *
 * The layout:
 *   8 bytes   N, an unsigned little-endian 64-bit integer (at most 100 000 000 here, as the reference
 *             implementation's limit)
 *   N bytes   a UTF-8 JSON object, starting with "{", possibly padded with spaces (0x20):
 *             { name: { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, ...,
 *               optional "__metadata__": { string: string } }
 *   the rest  the byte buffer: every tensor's values, row-major, little-endian; data_offsets are
 *             relative to the buffer's start, and the tensors cover it exactly, with no overlap and no gap.
 *
 * normkit's Tensor holds float32 or float64, so loading widens: F16, BF16 and F32 become float32,
 * F64 float64; the integer and bool dtypes (I64 num_batches_tracked, ...) become float64, which holds
 * every integer up to 2^53 exactly (a larger I64 value is an error, not a rounding). Writing keeps
 * each tensor's dtype by default (float32 → F32, float64 → F64) and writes every `num_batches_tracked`
 * as I64, as PyTorch does; `dtype` and `dtypes` choose others (F16 and BF16 round to nearest even).
 */
import { SafetensorsError, fmtShape } from "../errors.js";
import { DType, Tensor, allocate, sizeOf } from "../tensor.js";

/** The dtypes normkit reads and writes (the format's others, U16 to U64 and the F8 kinds, are refused by name). */
export const SAFETENSORS_DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"] as const;
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];
/** The float dtypes, for `SaveSafetensorsOptions.dtype`. */
export type SafetensorsFloatDType = "F64" | "F32" | "F16" | "BF16";

const BYTES: Record<SafetensorsDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** Integer ranges of the integer dtypes (I64: the doubles that are exact integers). */
const RANGE: Partial<Record<SafetensorsDType, [number, number]>> = {
  I64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], I32: [-(2 ** 31), 2 ** 31 - 1], I16: [-32768, 32767], I8: [-128, 127], U8: [0, 255], BOOL: [0, 1],
};

/** The largest header accepted (the reference implementation's MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

const isDType = (s: unknown): s is SafetensorsDType => typeof s === "string" && (SAFETENSORS_DTYPES as readonly string[]).includes(s);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isCounterKey = (k: string) => k === "num_batches_tracked" || k.endsWith(".num_batches_tracked");

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 24 ? v.slice(0, 24) + "…" : v)}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

// ---------------------------------------------------------------------------------------------
// 16-bit floats

/** Rounds m ≥ 0 to the nearest integer, ties to even. */
function roundHalfEven(m: number): number {
  const f = Math.floor(m), d = m - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/**
 * The bits of x as a binary float of `expBits` exponent and `manBits` mantissa bits (IEEE-style:
 * subnormals, infinities, a quiet NaN), rounded to nearest even from the double itself (no double
 * rounding through float32).
 */
function encodeMinifloat(x: number, expBits: number, manBits: number): number {
  const signBit = 1 << (expBits + manBits);
  const infBits = ((1 << expBits) - 1) << manBits;
  if (Number.isNaN(x)) return infBits | (1 << (manBits - 1));
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  const bias = (1 << (expBits - 1)) - 1;
  const emin = 1 - bias;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  if (e < emin) return sign | roundHalfEven(a / 2 ** (emin - manBits)); // subnormal (2^manBits carries into the smallest normal)
  let f = roundHalfEven((a / 2 ** e - 1) * 2 ** manBits);
  if (f === 2 ** manBits) {
    f = 0;
    e++;
  }
  if (e > bias) return sign | infBits;
  return sign | ((e + bias) << manBits) | f;
}

/** IEEE binary16 bits of x (round to nearest even). */
export function float16Bits(x: number): number {
  return encodeMinifloat(x, 5, 10);
}
/** bfloat16 bits of x (round to nearest even). */
export function bfloat16Bits(x: number): number {
  return encodeMinifloat(x, 8, 7);
}
/** The value of IEEE binary16 bits. */
export function float16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The value of bfloat16 bits (the top half of a float32). */
export function bfloat16Value(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

// ---------------------------------------------------------------------------------------------
// reading

/** What a file holds: its tensors, each one's stored dtype, and its `__metadata__` (null when absent). */
export interface SafetensorsContents {
  tensors: Record<string, Tensor>;
  dtypes: Record<string, SafetensorsDType>;
  metadata: Record<string, string> | null;
}

export interface LoadSafetensorsOptions {
  /**
   * The dtype of every loaded tensor; by default F64 and the integer dtypes load as float64, F32,
   * F16 and BF16 as float32.
   */
  dtype?: DType;
}

function bytesOf(bytes: unknown, ctx: string): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw new SafetensorsError("bytes", "a Uint8Array or an ArrayBuffer", kind(bytes), ctx);
}

/** The first key that appears twice in one object of a valid JSON text, or null. */
function duplicateKey(text: string): string | null {
  const stack: (Set<string> | null)[] = []; // one per open object (null: an array)
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const keys = stack[stack.length - 1]!;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (ch === "{") {
      stack.push(new Set());
      expectKey = true;
    } else if (ch === "[") {
      stack.push(null);
    } else if (ch === "}" || ch === "]") {
      stack.pop();
      expectKey = false;
    } else if (ch === ",") {
      expectKey = stack[stack.length - 1] !== null;
    }
  }
  return null;
}

function define<T>(o: Record<string, T>, k: string, value: T): void {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}

interface Entry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Reads a safetensors file: tensors, stored dtypes, metadata. Every part of the header is checked
 * against the format (and the buffer against the header) before any tensor is made; anything
 * malformed is a SafetensorsError naming the part.
 */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer, options: LoadSafetensorsOptions = {}): SafetensorsContents {
  const ctx = "loadSafetensors";
  const u8 = bytesOf(bytes, ctx);
  if (options.dtype !== undefined && options.dtype !== "float32" && options.dtype !== "float64") {
    throw new SafetensorsError("options.dtype", '"float32" or "float64"', kind(options.dtype), ctx);
  }
  if (u8.length < 8) throw new SafetensorsError("header length", "8 bytes (a little-endian u64)", `a file of ${u8.length} bytes`, ctx);
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError("header length", `at most ${MAX_HEADER_BYTES} bytes`, `${n64}`, ctx);
  const n = Number(n64);
  if (8 + n > u8.length) throw new SafetensorsError("header length", `at most ${u8.length - 8} (the bytes after the length)`, `${n}, past the end of the file`, ctx);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(u8.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError("header", "UTF-8 text", "bytes that are not UTF-8", ctx);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError("header", "JSON", `text that is not JSON (${(e as Error).message})`, ctx);
  }
  if (!isObject(header)) throw new SafetensorsError("header", "a JSON object", kind(header), ctx);
  if (text[0] !== "{") throw new SafetensorsError("header", 'a JSON object starting with "{"', `text starting with ${JSON.stringify(text[0])}`, ctx);
  const dup = duplicateKey(text);
  if (dup !== null) throw new SafetensorsError("header", "each key once", `the key ${JSON.stringify(dup)} twice`, ctx);

  let metadata: Record<string, string> | null = null;
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isObject(info)) throw new SafetensorsError("__metadata__", "an object of strings", kind(info), ctx);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== "string") throw new SafetensorsError(`__metadata__.${k}`, "a string", kind(v), ctx);
      }
      metadata = { ...(info as Record<string, string>) };
      continue;
    }
    if (!isObject(info)) throw new SafetensorsError(name, "{dtype, shape, data_offsets}", kind(info), ctx);
    const { dtype, shape, data_offsets: offsets } = info;
    if (!isDType(dtype)) throw new SafetensorsError(`${name}.dtype`, `one of ${SAFETENSORS_DTYPES.join(", ")}`, dtype === undefined ? "no dtype" : kind(dtype), ctx);
    if (!Array.isArray(shape) || !shape.every(isCount)) throw new SafetensorsError(`${name}.shape`, "a list of non-negative integers", shape === undefined ? "no shape" : JSON.stringify(shape), ctx);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw new SafetensorsError(`${name}.data_offsets`, "[begin, end], integers with 0 ≤ begin ≤ end", offsets === undefined ? "no data_offsets" : JSON.stringify(offsets), ctx);
    }
    const [begin, end] = offsets as [number, number];
    const bufferBytes = u8.length - 8 - n;
    if (end > bufferBytes) throw new SafetensorsError(`${name}.data_offsets`, `offsets within the ${bufferBytes}-byte buffer`, `[${begin}, ${end}]`, ctx);
    const need = sizeOf(shape) * BYTES[dtype];
    if (end - begin !== need) {
      throw new SafetensorsError(name, `${need} bytes for ${dtype} of shape ${fmtShape(shape)}`, `${end - begin} bytes (data_offsets [${begin}, ${end}])`, ctx);
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  // The tensors tile the buffer: sorted by offset, each starts where the one before ends.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = "";
  for (const e of sorted) {
    if (e.begin < pos) throw new SafetensorsError(`${e.name}.data_offsets`, `no overlap with ${JSON.stringify(prev)} (which ends at ${pos})`, `[${e.begin}, ${e.end}]`, ctx);
    if (e.begin > pos) throw new SafetensorsError("buffer", "tensors covering it without gaps", `bytes ${pos} to ${e.begin} in no tensor`, ctx);
    pos = e.end;
    prev = e.name;
  }
  const bufferBytes = u8.length - 8 - n;
  if (pos !== bufferBytes) throw new SafetensorsError("buffer", `${pos} bytes (the end of the last tensor)`, `${bufferBytes} bytes`, ctx);

  const tensors: Record<string, Tensor> = {};
  const dtypes: Record<string, SafetensorsDType> = {};
  const base = 8 + n;
  for (const e of entries) {
    const count = sizeOf(e.shape);
    const floatKind = e.dtype === "F32" || e.dtype === "F16" || e.dtype === "BF16";
    const out = allocate(options.dtype ?? (floatKind ? "float32" : "float64"), count);
    const at = base + e.begin;
    switch (e.dtype) {
      case "F64": for (let i = 0; i < count; i++) out[i] = view.getFloat64(at + 8 * i, true); break;
      case "F32": for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i, true); break;
      case "F16": for (let i = 0; i < count; i++) out[i] = float16Value(view.getUint16(at + 2 * i, true)); break;
      case "BF16": for (let i = 0; i < count; i++) out[i] = bfloat16Value(view.getUint16(at + 2 * i, true)); break;
      case "I64":
        for (let i = 0; i < count; i++) {
          const v = view.getBigInt64(at + 8 * i, true);
          if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
            throw new SafetensorsError(e.name, "I64 values within ±2^53 (exact as a double)", `${v} at index ${i}`, ctx);
          }
          out[i] = Number(v);
        }
        break;
      case "I32": for (let i = 0; i < count; i++) out[i] = view.getInt32(at + 4 * i, true); break;
      case "I16": for (let i = 0; i < count; i++) out[i] = view.getInt16(at + 2 * i, true); break;
      case "I8": for (let i = 0; i < count; i++) out[i] = view.getInt8(at + i); break;
      case "U8": for (let i = 0; i < count; i++) out[i] = view.getUint8(at + i); break;
      case "BOOL":
        for (let i = 0; i < count; i++) {
          const b = view.getUint8(at + i);
          if (b > 1) throw new SafetensorsError(e.name, "BOOL bytes 0 or 1", `${b} at index ${i}`, ctx);
          out[i] = b;
        }
        break;
    }
    // defined, not assigned: a tensor named "__proto__" is a key like any other
    define(tensors, e.name, new Tensor(out, e.shape));
    define(dtypes, e.name, e.dtype);
  }
  return { tensors, dtypes, metadata };
}

/**
 * The tensors of a safetensors file by name (see parseSafetensors for the stored dtypes and the
 * metadata). A model's `loadStateDict` takes the result as it is.
 */
export function loadSafetensors(bytes: Uint8Array | ArrayBuffer, options: LoadSafetensorsOptions = {}): Record<string, Tensor> {
  return parseSafetensors(bytes, options).tensors;
}

// ---------------------------------------------------------------------------------------------
// writing

export interface SaveSafetensorsOptions {
  /** `__metadata__`: string keys to string values (e.g. { format: "pt" }). Default: none. */
  metadata?: Record<string, string>;
  /**
   * The dtype of the float tensors: "keep" (float32 → F32, float64 → F64; the default) or one dtype
   * for all of them. `num_batches_tracked` keys are written as I64 whatever this says.
   */
  dtype?: "keep" | SafetensorsFloatDType;
  /** A dtype per tensor name, over the rules above (an integer dtype for integer values). */
  dtypes?: Record<string, SafetensorsDType>;
}

/**
 * A safetensors file of `tensors` (host tensors, by name). The buffer holds the tensors sorted by
 * element size (largest first) then name, so each is aligned to its element size; the header is
 * padded with spaces to a multiple of 8 bytes. Values an integer dtype cannot hold exactly (a
 * fraction, out of range, NaN) are a SafetensorsError, as is a name `__metadata__`.
 */
export function saveSafetensors(tensors: Record<string, Tensor>, options: SaveSafetensorsOptions = {}): Uint8Array {
  const ctx = "saveSafetensors";
  if (!isObject(tensors)) throw new SafetensorsError("tensors", "an object of {name: Tensor}", kind(tensors), ctx);
  if (!isObject(options)) throw new SafetensorsError("options", "an object", kind(options), ctx);
  const { metadata, dtype = "keep", dtypes = {} } = options;
  if (metadata !== undefined) {
    if (!isObject(metadata)) throw new SafetensorsError("metadata", "an object of strings", kind(metadata), ctx);
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== "string") throw new SafetensorsError(`metadata.${k}`, "a string", kind(v), ctx);
  }
  if (dtype !== "keep" && dtype !== "F64" && dtype !== "F32" && dtype !== "F16" && dtype !== "BF16") {
    throw new SafetensorsError("dtype", '"keep", "F64", "F32", "F16" or "BF16"', kind(dtype), ctx);
  }
  if (!isObject(dtypes)) throw new SafetensorsError("dtypes", "an object of {name: dtype}", kind(dtypes), ctx);
  for (const [k, d] of Object.entries(dtypes)) {
    if (!isDType(d)) throw new SafetensorsError(`dtypes.${k}`, `one of ${SAFETENSORS_DTYPES.join(", ")}`, kind(d), ctx);
    if (!(k in tensors)) throw new SafetensorsError(`dtypes.${k}`, "the name of a tensor given", "a name not among them", ctx);
  }
  const items: { name: string; t: Tensor; dtype: SafetensorsDType }[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === "__metadata__") throw new SafetensorsError(name, "a tensor name other than __metadata__ (the header's reserved key)", "__metadata__", ctx);
    if (!(t instanceof Tensor)) throw new SafetensorsError(name, "a Tensor", kind(t), ctx);
    if (!t.isHost) throw new SafetensorsError(name, "a host tensor", `a tensor on ${t.device} (download it first)`, ctx);
    const d: SafetensorsDType = (dtypes as Record<string, SafetensorsDType>)[name] ?? (isCounterKey(name) ? "I64" : dtype === "keep" ? (t.dtype === "float64" ? "F64" : "F32") : dtype);
    const range = RANGE[d];
    if (range) {
      const data = t.data;
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (!Number.isInteger(v) || v < range[0] || v > range[1]) throw new SafetensorsError(name, `${d} values (integers in [${range[0]}, ${range[1]}])`, `${v} at index ${i}`, ctx);
      }
    }
    items.push({ name, t, dtype: d });
  }
  items.sort((a, b) => BYTES[b.dtype] - BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header["__metadata__"] = { ...metadata };
  let total = 0;
  const at: number[] = [];
  for (const it of items) {
    const bytes = it.t.size * BYTES[it.dtype];
    at.push(total);
    header[it.name] = { dtype: it.dtype, shape: [...it.t.shape], data_offsets: [total, total + bytes] };
    total += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerBytes + total);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerBytes);
  const base = 8 + headerBytes;
  items.forEach((it, k) => {
    const data = it.t.data;
    const o = base + at[k]!;
    const n = data.length;
    switch (it.dtype) {
      case "F64": for (let i = 0; i < n; i++) view.setFloat64(o + 8 * i, data[i]!, true); break;
      case "F32": for (let i = 0; i < n; i++) view.setFloat32(o + 4 * i, data[i]!, true); break;
      case "F16": for (let i = 0; i < n; i++) view.setUint16(o + 2 * i, float16Bits(data[i]!), true); break;
      case "BF16": for (let i = 0; i < n; i++) view.setUint16(o + 2 * i, bfloat16Bits(data[i]!), true); break;
      case "I64": for (let i = 0; i < n; i++) view.setBigInt64(o + 8 * i, BigInt(data[i]!), true); break;
      case "I32": for (let i = 0; i < n; i++) view.setInt32(o + 4 * i, data[i]!, true); break;
      case "I16": for (let i = 0; i < n; i++) view.setInt16(o + 2 * i, data[i]!, true); break;
      case "I8": for (let i = 0; i < n; i++) view.setInt8(o + i, data[i]!); break;
      case "U8":
      case "BOOL": for (let i = 0; i < n; i++) view.setUint8(o + i, data[i]!); break;
    }
  });
  return out;
}
