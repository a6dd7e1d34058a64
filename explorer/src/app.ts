/**
 * What every view of the explorer gets: the compute backends found in this browser, the bundled
 * digit sample, and a few DOM helpers. Views are `mount(root, ctx)` functions (one file each).
 */
import type { GpuContext } from "../../src/webgpu.js";
import type { Digits } from "./digits.js";

export type Compute = "cpu" | "webgpu";

export interface ExplorerContext {
  /** The CPU path: "WebAssembly SIMD" or "TypeScript kernels", and why not WebAssembly. */
  readonly cpuLabel: string;
  /** The WebGPU device where navigator.gpu gave one, else null (and `gpuReason` says why). */
  readonly gpu: GpuContext | null;
  readonly gpuLabel: string | null;
  readonly gpuReason: string | null;
  /** The bundled MNIST sample. */
  readonly digits: Digits;
  /** What views that can use either backend compute on now (the header's select). */
  compute(): Compute;
  /** Called after the header's select changed. */
  onComputeChange(fn: (c: Compute) => void): void;
  /** Reports an error to the page (shown in the header status; never thrown into the void). */
  fail(where: string, e: unknown): void;
}

export type MountView = (root: HTMLElement, ctx: ExplorerContext) => void | Promise<void>;

type Attrs = Record<string, string | number | boolean | null | undefined>;

/** document.createElement with attributes (null / false / undefined omitted) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : String(v));
  for (const c of children) e.append(c);
  return e;
}

const SVG_NS = "http://www.w3.org/2000/svg";
/** An SVG element with attributes. */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : String(v));
  for (const c of children) e.append(c);
  return e;
}

/** A number for display: 4 significant digits, fixed or exponent form, "−" for minus. */
export function fmt(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  const t = a >= 1e-3 && a < 1e5 ? v.toPrecision(digits) : v.toExponential(digits - 1);
  return t.replace(/^-/, "−");
}

/** A display string back to a number (for tests and copy/paste): "−" as "-". */
export function parseFmt(t: string): number {
  return Number(t.trim().replace(/\u2212/g, "-"));
}

/** Diverging blue–white–red for t in [−1, 1] (clipped): the one colour map of the page's feature maps. */
export function diverging(t: number): [number, number, number] {
  const u = Math.max(-1, Math.min(1, t));
  const [end, w] = u < 0 ? [[33, 102, 172], -u] : [[178, 24, 43], u];
  return [0, 1, 2].map((i) => Math.round(247 + (end[i]! - 247) * w)) as [number, number, number];
}

/** Paints an H×W plane (pixel i → colour) into a canvas of that size (CSS scales it up). */
export function paint(cv: HTMLCanvasElement, H: number, W: number, value: (i: number) => [number, number, number]): void {
  if (cv.width !== W || cv.height !== H) [cv.width, cv.height] = [W, H];
  const g = cv.getContext("2d");
  if (!g) return;
  const img = g.createImageData(W, H);
  for (let i = 0; i < H * W; i++) {
    const [r, gr, b] = value(i);
    img.data.set([r, gr, b, 255], 4 * i);
  }
  g.putImageData(img, 0, 0);
}
