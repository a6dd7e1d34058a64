/**
 * The fixture format (see test/data/FORMAT.md, from PyTorch's reference generator):
 *   { "meta": {...}, "cases": [ { "name", "op", "config": {...}, "inputs": {NAME: TENSOR}, "outputs": {NAME: TENSOR} } ] }
 *   TENSOR = { "shape": [int...], "data": [number...] }   (row-major; shape [] is a scalar)
 * `parseFixtureFile` validates the whole structure up front and throws a FixtureError naming the
 * case and field for anything malformed. It assumes nothing about case names, counts or shapes.
 */
import { Tensor, DType, sizeOf } from "../tensor.js";

export interface FixtureTensor {
  shape: number[];
  data: number[];
}
export interface FixtureCase {
  name: string;
  op: string;
  config: Record<string, unknown>;
  inputs: Record<string, FixtureTensor>;
  outputs: Record<string, FixtureTensor>;
}
export interface FixtureFile {
  meta: Record<string, unknown>;
  cases: FixtureCase[];
}

export class FixtureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FixtureError";
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkTensor(v: unknown, where: string): FixtureTensor {
  if (!isObj(v)) throw new FixtureError(`${where}: expected a tensor object {shape, data}, got ${JSON.stringify(v)?.slice(0, 40)}`);
  const { shape, data } = v;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new FixtureError(`${where}.shape: expected a list of non-negative integers, got ${JSON.stringify(shape)?.slice(0, 40)}`);
  }
  if (!Array.isArray(data)) throw new FixtureError(`${where}.data: expected a list of numbers`);
  const n = sizeOf(shape as number[]);
  if (data.length !== n) throw new FixtureError(`${where}.data: expected ${n} values for shape [${shape.join(", ")}], got ${data.length}`);
  for (let i = 0; i < data.length; i++) {
    if (typeof data[i] !== "number") throw new FixtureError(`${where}.data[${i}]: expected a number, got ${JSON.stringify(data[i])}`);
  }
  return { shape: shape as number[], data: data as number[] };
}

/** Validates parsed JSON as a fixture file. */
export function validateFixture(json: unknown): FixtureFile {
  if (!isObj(json)) throw new FixtureError("file: expected a JSON object with a \"cases\" list");
  const cases = json["cases"];
  if (!Array.isArray(cases)) throw new FixtureError('file: expected a "cases" list');
  const out: FixtureCase[] = [];
  cases.forEach((c, i) => {
    const where = `case ${i}`;
    if (!isObj(c)) throw new FixtureError(`${where}: expected an object`);
    const name = typeof c["name"] === "string" ? c["name"] : `#${i}`;
    const at = `case "${name}"`;
    if (typeof c["op"] !== "string") throw new FixtureError(`${at}.op: expected a string`);
    const config = c["config"] ?? {};
    if (!isObj(config)) throw new FixtureError(`${at}.config: expected an object`);
    const inputs: Record<string, FixtureTensor> = {}, outputs: Record<string, FixtureTensor> = {};
    for (const [kind, dst] of [["inputs", inputs], ["outputs", outputs]] as const) {
      const src = c[kind];
      if (!isObj(src)) throw new FixtureError(`${at}.${kind}: expected an object of tensors`);
      for (const [k, v] of Object.entries(src)) dst[k] = checkTensor(v, `${at}.${kind}.${k}`);
    }
    if (Object.keys(outputs).length === 0) throw new FixtureError(`${at}.outputs: expected at least one output to compare`);
    out.push({ name, op: c["op"], config, inputs, outputs });
  });
  return { meta: isObj(json["meta"]) ? json["meta"] : {}, cases: out };
}

export function toTensor(t: FixtureTensor, dtype: DType): Tensor {
  return Tensor.from(t.data, t.shape, dtype);
}
