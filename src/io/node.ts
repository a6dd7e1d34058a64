/**
 * Node-only file helpers for safetensors (the `normkit/node` entry point; the core, `normkit`,
 * imports no Node API and bundles for browsers). The format itself is src/io/safetensors.ts.
 */
import { readFile, writeFile } from "node:fs/promises";
import { readFileSync, writeFileSync } from "node:fs";
import type { Tensor } from "../tensor.js";
import {
  LoadSafetensorsOptions, SafetensorsContents, SaveSafetensorsOptions, loadSafetensors, parseSafetensors, saveSafetensors,
} from "./safetensors.js";

/** The tensors of the safetensors file at `path` (as loadSafetensors). */
export async function readSafetensorsFile(path: string, options: LoadSafetensorsOptions = {}): Promise<Record<string, Tensor>> {
  return loadSafetensors(await readFile(path), options);
}
/** Tensors, stored dtypes and metadata of the safetensors file at `path` (as parseSafetensors). */
export async function readSafetensorsFileContents(path: string, options: LoadSafetensorsOptions = {}): Promise<SafetensorsContents> {
  return parseSafetensors(await readFile(path), options);
}
/** Writes `tensors` to `path` as safetensors (as saveSafetensors; nothing is written when they are refused). */
export async function writeSafetensorsFile(path: string, tensors: Record<string, Tensor>, options: SaveSafetensorsOptions = {}): Promise<void> {
  await writeFile(path, saveSafetensors(tensors, options));
}
/** readSafetensorsFile, synchronous. */
export function readSafetensorsFileSync(path: string, options: LoadSafetensorsOptions = {}): Record<string, Tensor> {
  return loadSafetensors(readFileSync(path), options);
}
/** writeSafetensorsFile, synchronous. */
export function writeSafetensorsFileSync(path: string, tensors: Record<string, Tensor>, options: SaveSafetensorsOptions = {}): void {
  writeFileSync(path, saveSafetensors(tensors, options));
}
