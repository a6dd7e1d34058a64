// safetensors: the format's layout, every dtype normkit reads and writes (F16 / BF16 rounding as
// PyTorch's), a PyTorch-written file, and a table of malformed files, each a SafetensorsError.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SafetensorsError } from "../../src/errors.js";
import {
  MAX_HEADER_BYTES, bfloat16Bits, bfloat16Value, float16Bits, float16Value, loadSafetensors, parseSafetensors, saveSafetensors,
} from "../../src/io/safetensors.js";
import { readSafetensorsFile, readSafetensorsFileSync, writeSafetensorsFile } from "../../src/io/node.js";
import { Tensor } from "../../src/tensor.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const data = join(root, "test", "data", "safetensors");

/** A file from a header (object or raw text) and a buffer; `n` overrides the header length field. */
function file(header: unknown, buffer: ArrayLike<number> = [], n?: number | bigint, raw?: Uint8Array): Uint8Array {
  const h = raw ?? new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + buffer.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n ?? h.length), true);
  out.set(h, 8);
  out.set(buffer, 8 + h.length);
  return out;
}
const t32 = (shape: number[], offsets: [number, number]) => ({ dtype: "F32", shape, data_offsets: offsets });

/** The header of a file, its length and the bytes after it. */
function headerOf(bytes: Uint8Array): { n: number; text: string; header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  return { n, text, header: JSON.parse(text) };
}

describe("saveSafetensors / loadSafetensors", () => {
  const a = Tensor.from([1.5, -2, 3.25, 1e-3, 7, 8], [2, 3]);
  const b = Tensor.from([Math.PI, Math.E], [2], "float64");
  const counter = Tensor.from([12], [], "float64");

  it("round trip: float32 stays F32, float64 F64, num_batches_tracked I64; metadata kept", () => {
    const bytes = saveSafetensors({ "1.weight": a, "0.bias": b, "1.num_batches_tracked": counter }, { metadata: { format: "pt" } });
    const { n, text, header } = headerOf(bytes);
    assert.equal((8 + n) % 8, 0, "the header is padded to 8 bytes");
    assert.equal(text[0], "{");
    assert.match(text, /^\{"__metadata__":\{"format":"pt"\},/);
    assert.ok(/ *$/.test(text) && text.trimEnd().endsWith("}"));
    assert.deepEqual(header["1.weight"], { dtype: "F32", shape: [2, 3], data_offsets: [24, 48] });
    // largest elements first, then by name: F64 0.bias, I64 counter, F32 weight; each aligned to its size
    assert.deepEqual(header["0.bias"]!.data_offsets, [0, 16]);
    assert.deepEqual(header["1.num_batches_tracked"], { dtype: "I64", shape: [], data_offsets: [16, 24] });
    const back = parseSafetensors(bytes);
    assert.deepEqual(back.metadata, { format: "pt" });
    assert.deepEqual(back.dtypes, { "0.bias": "F64", "1.num_batches_tracked": "I64", "1.weight": "F32" });
    assert.equal(back.tensors["1.weight"]!.dtype, "float32");
    assert.deepEqual(back.tensors["1.weight"]!.toArray(), a.toArray());
    assert.deepEqual([...back.tensors["1.weight"]!.shape], [2, 3]);
    assert.equal(back.tensors["0.bias"]!.dtype, "float64");
    assert.deepEqual(back.tensors["0.bias"]!.toArray(), b.toArray());
    assert.deepEqual([...back.tensors["1.num_batches_tracked"]!.shape], []);
    assert.deepEqual(back.tensors["1.num_batches_tracked"]!.toArray(), [12]);
    assert.equal(parseSafetensors(saveSafetensors({ x: a })).metadata, null);
    // an ArrayBuffer, and a Uint8Array at an offset into a larger buffer, read the same
    assert.deepEqual(loadSafetensors(bytes.slice().buffer)["1.weight"]!.toArray(), a.toArray());
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    assert.deepEqual(loadSafetensors(shifted.subarray(3))["0.bias"]!.toArray(), b.toArray());
  });

  it("dtype options: one float dtype for all, per-key dtypes, float64 loading", () => {
    const all64 = parseSafetensors(saveSafetensors({ a, b }, { dtype: "F64" }));
    assert.deepEqual(all64.dtypes, { a: "F64", b: "F64" });
    assert.deepEqual(all64.tensors.a!.toArray(), a.toArray());
    const all32 = parseSafetensors(saveSafetensors({ a, b }, { dtype: "F32" }));
    assert.deepEqual(all32.tensors.b!.toArray(), [Math.fround(Math.PI), Math.fround(Math.E)]);
    const half = parseSafetensors(saveSafetensors({ a, b }, { dtype: "F16", dtypes: { b: "BF16" } }));
    assert.deepEqual(half.dtypes, { a: "F16", b: "BF16" });
    assert.deepEqual(half.tensors.a!.toArray(), a.toArray().map((v) => float16Value(float16Bits(v))));
    assert.deepEqual(half.tensors.b!.toArray(), [3.140625, 2.71875]);
    const ints = Tensor.from([0, -5, 127, 3], [4], "float64");
    for (const d of ["I64", "I32", "I16", "I8"] as const) {
      const r = parseSafetensors(saveSafetensors({ ints }, { dtypes: { ints: d } }));
      assert.equal(r.dtypes.ints, d);
      assert.deepEqual(r.tensors.ints!.toArray(), [0, -5, 127, 3]);
    }
    const bytes = Tensor.from([0, 1, 255], [3]);
    assert.deepEqual(loadSafetensors(saveSafetensors({ bytes }, { dtypes: { bytes: "U8" } })).bytes!.toArray(), [0, 1, 255]);
    const flags = Tensor.from([0, 1, 1], [3]);
    assert.deepEqual(loadSafetensors(saveSafetensors({ flags }, { dtypes: { flags: "BOOL" } })).flags!.toArray(), [0, 1, 1]);
    assert.equal(loadSafetensors(saveSafetensors({ a }), { dtype: "float64" }).a!.dtype, "float64");
    // empty tensors and an empty file
    const e = parseSafetensors(saveSafetensors({ e: Tensor.zeros([0, 3]), s: Tensor.from([1], [1]) }));
    assert.deepEqual([...e.tensors.e!.shape], [0, 3]);
    assert.deepEqual(parseSafetensors(saveSafetensors({})), { tensors: {}, dtypes: {}, metadata: null });
  });

  it("refuses what it cannot write, naming it", () => {
    const cases: [string, () => unknown, string, RegExp][] = [
      ["a fractional counter", () => saveSafetensors({ "1.num_batches_tracked": Tensor.from([2.5], [], "float64") }), "1.num_batches_tracked", /expected I64 values \(integers in .*\), got 2\.5 at index 0/],
      ["out of an integer dtype's range", () => saveSafetensors({ x: Tensor.from([1, 300], [2]) }, { dtypes: { x: "I8" } }), "x", /expected I8 values \(integers in \[-128, 127\]\), got 300 at index 1/],
      ["NaN as an integer", () => saveSafetensors({ x: Tensor.from([NaN], [1]) }, { dtypes: { x: "I32" } }), "x", /got NaN at index 0/],
      ["the reserved name", () => saveSafetensors({ __metadata__: a }), "__metadata__", /reserved/],
      ["not a Tensor", () => saveSafetensors({ x: { shape: [1], data: [1] } as never }), "x", /expected a Tensor, got an object/],
      ["metadata not strings", () => saveSafetensors({ a }, { metadata: { v: 1 as never } }), "metadata.v", /expected a string, got number 1/],
      ["an unknown dtype option", () => saveSafetensors({ a }, { dtype: "F8" as never }), "dtype", /expected "keep", "F64", "F32", "F16" or "BF16", got the string "F8"/],
      ["a per-key dtype of no tensor", () => saveSafetensors({ a }, { dtypes: { c: "F32" } }), "dtypes.c", /the name of a tensor given/],
      ["an unknown per-key dtype", () => saveSafetensors({ a }, { dtypes: { a: "U64" as never } }), "dtypes.a", /expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, got the string "U64"/],
    ];
    for (const [what, fn, param, message] of cases) {
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, `${what}: ${(e as Error)?.message}`);
        assert.equal(e.param, param, what);
        assert.match(e.message, /^saveSafetensors: /);
        assert.match(e.message, message, what);
        return true;
      }, what);
    }
  });
});

describe("F16 and BF16 rounding as PyTorch's", () => {
  const fixture = JSON.parse(readFileSync(join(data, "pytorch_dtypes.json"), "utf8")) as {
    rounding: { source: (number | string)[]; f16: number[]; bf16: number[] };
  };
  const num = (v: number | string) => (typeof v === "number" ? v : Number(v.replace("inf", "Infinity")));
  it("float16Bits / bfloat16Bits give PyTorch's bits for float32 values (ties, subnormals, overflow)", () => {
    const src = fixture.rounding.source.map(num);
    assert.ok(src.length > 50);
    assert.deepEqual(src.map(float16Bits), fixture.rounding.f16);
    assert.deepEqual(src.map(bfloat16Bits), fixture.rounding.bf16);
  });
  it("decoding: every one of the 65536 bit patterns survives a round trip (NaNs stay NaN)", () => {
    for (let h = 0; h < 65536; h++) {
      const v = float16Value(h), w = bfloat16Value(h);
      if (Number.isNaN(v)) assert.ok(Number.isNaN(float16Value(float16Bits(v))));
      else assert.equal(float16Bits(v), h, `f16 ${h}`);
      if (Number.isNaN(w)) assert.ok(Number.isNaN(bfloat16Value(bfloat16Bits(w))));
      else assert.equal(bfloat16Bits(w), h, `bf16 ${h}`);
    }
    assert.equal(float16Value(0x3c00), 1);
    assert.equal(float16Value(0x7bff), 65504);
    assert.equal(float16Value(0x0001), 2 ** -24);
    assert.equal(bfloat16Value(0x3f80), 1);
  });
});

describe("a file PyTorch's side wrote (scripts/fixtures/gen_safetensors.py, an independent writer)", () => {
  it("every dtype reads as PyTorch's values; metadata", () => {
    const fixture = JSON.parse(readFileSync(join(data, "pytorch_dtypes.json"), "utf8")) as {
      tensors: Record<string, { shape: number[]; dtype: string; data: (number | string)[] }>;
      metadata: Record<string, string>;
    };
    const got = parseSafetensors(readFileSync(join(data, "pytorch_dtypes.safetensors")));
    assert.deepEqual(got.metadata, fixture.metadata);
    assert.deepEqual(Object.keys(got.tensors).sort(), Object.keys(fixture.tensors).sort());
    for (const [k, want] of Object.entries(fixture.tensors)) {
      const t = got.tensors[k]!;
      assert.equal(got.dtypes[k], want.dtype, k);
      assert.deepEqual([...t.shape], want.shape, k);
      assert.equal(t.dtype, ["F64", "I64", "I32"].includes(want.dtype) ? "float64" : "float32", k);
      const w = want.data.map((v) => (typeof v === "number" ? v : Number(v.replace("inf", "Infinity"))));
      assert.deepEqual(t.toArray(), w, k);
    }
  });
});

describe("malformed files: a SafetensorsError naming the part", () => {
  const ok = file({ a: t32([2], [0, 8]) }, new Array(8).fill(0));
  const cases: [string, unknown, string, RegExp][] = [
    ["not bytes", "a string", "bytes", /expected a Uint8Array or an ArrayBuffer, got the string "a string"/],
    ["shorter than the length field", new Uint8Array(5), "header length", /expected 8 bytes \(a little-endian u64\), got a file of 5 bytes/],
    ["header over 100 MB", file({}, [], 2n ** 40n), "header length", /expected at most 100000000 bytes, got 1099511627776/],
    ["header just over the limit", file({}, [], MAX_HEADER_BYTES + 1), "header length", /expected at most 100000000 bytes, got 100000001/],
    ["header length past the end", file({}, [], 100), "header length", /expected at most 2 \(the bytes after the length\), got 100, past the end of the file/],
    ["header not UTF-8", file(null, [], undefined, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), "header", /expected UTF-8 text, got bytes that are not UTF-8/],
    ["header not JSON", file("{not json"), "header", /expected JSON, got text that is not JSON/],
    ["header an array", file("[1, 2]"), "header", /expected a JSON object, got an array/],
    ["header a string", file('"abc"'), "header", /expected a JSON object, got the string "abc"/],
    ["header null", file("null"), "header", /expected a JSON object, got null/],
    ["header not starting with {", file("  {}"), "header", /expected a JSON object starting with "\{", got text starting with " "/],
    ["a duplicate tensor name", file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), "header",
      /expected each key once, got the key "a" twice/],
    ["a duplicate field", file('{"a":{"dtype":"F32","shape":[1],"dtype":"F64","data_offsets":[0,4]}}', [0, 0, 0, 0]), "header", /got the key "dtype" twice/],
    ["an entry not an object", file({ a: [1, 2] }), "a", /expected \{dtype, shape, data_offsets\}, got an array/],
    ["an unknown dtype", file({ a: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] } }, [0, 0]), "a.dtype", /expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, got the string "F8_E4M3"/],
    ["no dtype", file({ a: { shape: [2], data_offsets: [0, 8] } }, new Array(8).fill(0)), "a.dtype", /got no dtype/],
    ["a negative dimension", file({ a: t32([-2], [0, 8]) }, new Array(8).fill(0)), "a.shape", /expected a list of non-negative integers, got \[-2\]/],
    ["a fractional dimension", file({ a: t32([1.5], [0, 8]) }, new Array(8).fill(0)), "a.shape", /got \[1\.5\]/],
    ["offsets reversed", file({ a: t32([2], [8, 0]) }, new Array(8).fill(0)), "a.data_offsets", /expected \[begin, end\], integers with 0 ≤ begin ≤ end, got \[8,0\]/],
    ["offsets not a pair", file({ a: { dtype: "F32", shape: [2], data_offsets: [0] } }, new Array(8).fill(0)), "a.data_offsets", /got \[0\]/],
    ["offsets out of range", file({ a: t32([4], [0, 16]) }, new Array(8).fill(0)), "a.data_offsets", /expected offsets within the 8-byte buffer, got \[0, 16\]/],
    ["shape and size disagree", file({ a: t32([3], [0, 8]) }, new Array(8).fill(0)), "a", /expected 12 bytes for F32 of shape \[3\], got 8 bytes \(data_offsets \[0, 8\]\)/],
    ["overlapping tensors", file({ a: t32([2], [0, 8]), b: t32([2], [4, 12]) }, new Array(12).fill(0)), "b.data_offsets", /expected no overlap with "a" \(which ends at 8\), got \[4, 12\]/],
    ["a gap between tensors", file({ a: t32([1], [0, 4]), b: t32([1], [8, 12]) }, new Array(12).fill(0)), "buffer", /expected tensors covering it without gaps, got bytes 4 to 8 in no tensor/],
    ["bytes after the last tensor", file({ a: t32([2], [0, 8]) }, new Array(12).fill(0)), "buffer", /expected 8 bytes \(the end of the last tensor\), got 12 bytes/],
    ["a buffer not starting at 0", file({ a: t32([1], [4, 8]) }, new Array(8).fill(0)), "buffer", /got bytes 0 to 4 in no tensor/],
    ["__metadata__ not an object", file({ __metadata__: "pt" }), "__metadata__", /expected an object of strings, got the string "pt"/],
    ["__metadata__ values not strings", file({ __metadata__: { epoch: 3 } }), "__metadata__.epoch", /expected a string, got number 3/],
    ["an I64 value past 2^53", file({ n: { dtype: "I64", shape: [], data_offsets: [0, 8] } }, [0, 0, 0, 0, 0, 0, 0x40, 0]), "n", /expected I64 values within ±2\^53 \(exact as a double\), got 18014398509481984 at index 0/],
    ["a BOOL byte other than 0 and 1", file({ f: { dtype: "BOOL", shape: [2], data_offsets: [0, 2] } }, [1, 2]), "f", /expected BOOL bytes 0 or 1, got 2 at index 1/],
  ];
  it("the well-formed base case loads", () => assert.deepEqual(loadSafetensors(ok).a!.toArray(), [0, 0]));
  for (const [what, bytes, param, message] of cases) {
    it(what, () => {
      assert.throws(() => loadSafetensors(bytes as Uint8Array), (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, `${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
        assert.equal(e.param, param);
        assert.match(e.message, /^loadSafetensors: /);
        assert.match(e.message, message);
        return true;
      });
    });
  }
  it("a tensor named __proto__ is a tensor like any other", () => {
    const t = loadSafetensors(file('{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0x80, 0x3f]));
    assert.deepEqual(Object.keys(t), ["__proto__"]);
    assert.deepEqual(Object.getOwnPropertyDescriptor(t, "__proto__")!.value.toArray(), [1]);
  });
});

describe("Node file helpers (normkit/node)", () => {
  it("write, read back (async and sync)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "normkit-st-"));
    try {
      const path = join(dir, "w.safetensors");
      const t = { w: Tensor.from([1, 2, 3], [3]) };
      await writeSafetensorsFile(path, t, { metadata: { a: "b" } });
      assert.deepEqual(readFileSync(path), Buffer.from(saveSafetensors(t, { metadata: { a: "b" } })));
      assert.deepEqual((await readSafetensorsFile(path)).w!.toArray(), [1, 2, 3]);
      assert.deepEqual(readSafetensorsFileSync(path).w!.toArray(), [1, 2, 3]);
      await assert.rejects(writeSafetensorsFile(join(dir, "x.safetensors"), { __metadata__: t.w }), SafetensorsError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("the package exports them from normkit/node, not from the core", async () => {
    // the package's self-reference: what `import "normkit"` and `import "normkit/node"` give a user
    const [coreName, nodeName] = ["normkit", "normkit/node"];
    const core = (await import(coreName)) as Record<string, unknown>;
    const node = (await import(nodeName)) as Record<string, unknown>;
    for (const f of ["loadSafetensors", "saveSafetensors", "parseSafetensors", "SafetensorsError"]) assert.equal(typeof core[f], "function", f);
    for (const f of ["readSafetensorsFile", "writeSafetensorsFile", "readSafetensorsFileSync", "writeSafetensorsFileSync"]) {
      assert.equal(typeof node[f], "function", f);
      assert.equal(core[f], undefined, `${f} is not in the core`);
    }
  });
});
