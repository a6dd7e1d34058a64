/**
 * Small typed helpers that generate the WGSL of every kernel (the pattern of onnxruntime-web's
 * `ops/common.ts`): a uniform block declared once as a typed field list (the WGSL struct and the
 * byte packer come from the same list, so they cannot disagree), storage bindings, the element type
 * of a vectorised load, the workgroup reduction (subgroup operations where the device has them, a
 * shared-memory tree otherwise) and the linear workgroup index of a 2-D dispatch.
 *
 * Sizes and eps are always uniforms; only what changes the code (vec4 or scalar, affine kind,
 * centring, subgroups, values per thread) goes into a program's cache key.
 */

/**
 * Threads per workgroup. 256 is WebGPU's default `maxComputeInvocationsPerWorkgroup`, so every
 * adapter runs it without raising a limit; on NVIDIA it is 8 warps, enough to hide load latency
 * for a memory-bound row reduction, and 256 threads x one vec4 covers a 1024-wide row in one load.
 */
export const WORKGROUP_SIZE = 256;

/** Largest workgroup count in one dispatch dimension (WebGPU's default limit). */
export const MAX_WORKGROUPS_PER_DIM = 65535;

export type UniformType = "u32" | "f32";
export type UniformFields = Readonly<Record<string, UniformType>>;
export type UniformValues<F extends UniformFields> = { readonly [K in keyof F]: number };

/** A uniform block: its WGSL struct, its byte size and a packer for its values. */
export interface UniformBlock<F extends UniformFields> {
  readonly fields: F;
  readonly wgsl: string;
  readonly byteSize: number;
  pack(values: UniformValues<F>): ArrayBuffer;
}

/** Declares `struct Uniforms { ... }` bound at @group(0) @binding(0) as `u`. */
export function uniformBlock<const F extends UniformFields>(fields: F): UniformBlock<F> {
  const names = Object.keys(fields);
  const members = names.map((n) => `  ${n}: ${fields[n]},`).join("\n");
  // 4 bytes per field; a uniform struct's size rounds up to 16.
  const byteSize = Math.max(16, Math.ceil((names.length * 4) / 16) * 16);
  const wgsl = `struct Uniforms {\n${members}\n};\n@group(0) @binding(0) var<uniform> u: Uniforms;\n`;
  return {
    fields,
    wgsl,
    byteSize,
    pack(values) {
      const buf = new ArrayBuffer(byteSize);
      const dv = new DataView(buf);
      names.forEach((n, i) => {
        const v = (values as Record<string, number>)[n];
        if (v === undefined || !Number.isFinite(v)) throw new TypeError(`uniform ${n}: expected a finite number, got ${String(v)}`);
        if (fields[n] === "u32") {
          if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`uniform ${n}: expected a u32, got ${v}`);
          dv.setUint32(i * 4, v, true);
        } else dv.setFloat32(i * 4, v, true);
      });
      return buf;
    },
  };
}

export type Access = "read" | "read_write";
/** A storage binding: WGSL name, element type and access. */
export interface StorageBinding {
  readonly name: string;
  readonly type: string;
  readonly access: Access;
}
export const storage = (name: string, type: string, access: Access = "read"): StorageBinding => ({ name, type, access });

/** `@group(0) @binding(i+1) var<storage, access> name: array<type>;` (binding 0 is the uniform block). */
export function storageDecls(bindings: readonly StorageBinding[]): string {
  return bindings.map((b, i) => `@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`).join("\n") + "\n";
}

/** Element type of a vectorised load: 1 → f32, 4 → vec4<f32>. */
export type VecWidth = 1 | 4;
export const vecType = (w: VecWidth): string => (w === 4 ? "vec4<f32>" : "f32");
/** The sum of the lanes of an expression of width w. */
export const hsum = (w: VecWidth, e: string): string => (w === 4 ? `dot(${e}, vec4<f32>(1.0))` : `(${e})`);

/** Whether kernels use subgroupAdd (verified linear layout, see device.ts) or the shared-memory tree. */
export type ReduceMode = "subgroup" | "shared";

/** `enable subgroups;` where the reduction uses them. */
export const enables = (mode: ReduceMode): string => (mode === "subgroup" ? "enable subgroups;\n" : "");

/** Entry-point builtins; `storeBuiltins` copies them to module-scope privates the helpers read. */
export function entryParams(mode: ReduceMode): string {
  const sg = mode === "subgroup" ? ", @builtin(subgroup_invocation_id) sgid: u32, @builtin(subgroup_size) sgsize: u32" : "";
  return `@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>${sg}`;
}
export function storeBuiltins(mode: ReduceMode): string {
  return mode === "subgroup" ? "  local_id = lid; sg_id = sgid; sg_size = sgsize;\n" : "  local_id = lid;\n";
}
export function builtinPrivates(mode: ReduceMode): string {
  return mode === "subgroup" ? "var<private> local_id: u32;\nvar<private> sg_id: u32;\nvar<private> sg_size: u32;\n" : "var<private> local_id: u32;\n";
}

/** Linear workgroup index of a dispatch laid out by `dispatchSize` (x fastest). */
export const WG_INDEX = "(wid.y * nwg.x + wid.x)";

/**
 * `fn <name>(v: T) -> T`: the sum of v over the workgroup, returned to every thread. Must be
 * called in uniform control flow. Subgroup mode: subgroupAdd, one partial per subgroup in shared
 * memory, then every thread adds the partials in the same order (deterministic). Shared mode: a
 * halving tree over WORKGROUP_SIZE entries.
 */
export function workgroupSum(name: string, type: string, mode: ReduceMode): string {
  const arr = `${name}_buf`;
  if (mode === "subgroup") {
    return `var<workgroup> ${arr}: array<${type}, ${WORKGROUP_SIZE}>;
fn ${name}(v: ${type}) -> ${type} {
  let s = subgroupAdd(v);
  if (sg_id == 0u) { ${arr}[local_id / sg_size] = s; }
  workgroupBarrier();
  let nsg = ${WORKGROUP_SIZE}u / sg_size;
  var t = ${arr}[0];
  for (var i = 1u; i < nsg; i = i + 1u) { t = t + ${arr}[i]; }
  workgroupBarrier();
  return t;
}
`;
  }
  return `var<workgroup> ${arr}: array<${type}, ${WORKGROUP_SIZE}>;
fn ${name}(v: ${type}) -> ${type} {
  ${arr}[local_id] = v;
  workgroupBarrier();
  for (var s = ${WORKGROUP_SIZE / 2}u; s > 0u; s = s >> 1u) {
    if (local_id < s) { ${arr}[local_id] = ${arr}[local_id] + ${arr}[local_id + s]; }
    workgroupBarrier();
  }
  let t = ${arr}[0];
  workgroupBarrier();
  return t;
}
`;
}

/** Workgroups for `count` units of work as (x, y) within the per-dimension limit. */
export function dispatchSize(count: number, maxPerDim = MAX_WORKGROUPS_PER_DIM): [number, number] {
  if (count <= maxPerDim) return [Math.max(1, count), 1];
  const y = Math.ceil(count / maxPerDim);
  if (y > maxPerDim) throw new RangeError(`dispatch of ${count} workgroups exceeds ${maxPerDim}^2`);
  return [Math.ceil(count / y), y];
}
