/**
 * Browser test of the explorer's "Live on MNIST" view (explorer/src/live.ts) in headless Chromium:
 *
 * - the statistics the page shows (mean / variance per statistic group of the tracked image, and
 *   BatchNorm's running statistics) and its outputs (Σy, Σ|y|, Σy² of the tracked image) equal what
 *   normkit computes in Node for the same batch: rebuilt here from the built digits.bin, the sample
 *   indices the page shows and the filters it shows, through Conv2d and the four layers;
 * - resampling the batch-mates (keyboard: Enter, Space) moves BatchNorm's output for the tracked image
 *   and leaves LayerNorm's, InstanceNorm's and GroupNorm's exactly unchanged; in eval mode BatchNorm's too;
 * - every control works from the keyboard (Tab, arrow keys, Enter / Space);
 * - no console errors, no request outside the page's origin;
 * - on WebGPU (SwiftShader; VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json) the view says so,
 *   its results match the CPU's within float32 tolerance, and the resample check holds there too.
 *
 * NORMKIT_SCREENSHOT_DIR=DIR also writes DIR/explorer-live.png (1280x900), the README's screenshot.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Page } from "playwright-core";
import { BatchNorm2d, Conv2d, GroupNorm, InstanceNorm2d, LayerNorm, Tensor, type Normalization } from "../../src/index.js";
import { MNIST_MEAN, MNIST_STD } from "../../src/lab/data.js";
import { skipOrFail } from "./chromium.js";
import { buildOnce, haveChromium, withExplorer, type ExplorerPage } from "./explorer_harness.js";

// The little of the DOM that the page-side functions below use (this project's tsconfig has no DOM lib).
interface DomEl {
  readonly id: string;
  readonly dataset: Record<string, string | undefined>;
  readonly textContent: string | null;
  readonly value: string;
  readonly width: number;
  readonly height: number;
  querySelectorAll(selector: string): Iterable<DomEl>;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
  blur(): void;
}
declare const document: {
  getElementById(id: string): DomEl | null;
  querySelector(selector: string): DomEl | null;
  querySelectorAll(selector: string): Iterable<DomEl>;
  readonly activeElement: DomEl | null;
};

const METHODS = ["batch_norm", "layer_norm", "instance_norm", "group_norm"] as const;
type Method = (typeof METHODS)[number];

interface Digits {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

/** digits.bin as the build wrote it: "NKDG", u32 count, rows, cols, labels, pixels. */
function readDigits(dir: string): Digits {
  const b = readFileSync(join(dir, "digits.bin"));
  assert.equal(b.subarray(0, 4).toString("latin1"), "NKDG");
  const count = b.readUInt32LE(4), rows = b.readUInt32LE(8), cols = b.readUInt32LE(12);
  return { count, rows, cols, pixels: new Uint8Array(b.buffer, b.byteOffset + 16 + count, count * rows * cols) };
}

interface Cell {
  text: string;
  v: number;
}
interface ViewState {
  updates: number;
  indices: number[];
  weights: number[][];
  kernel: number;
  padValue: number;
  groups: number;
  backend: string;
  backendText: string;
  bn: { mode: string; steps: number; warmupPasses: number; warmupBatch: number };
  methods: Record<Method, { change: string; sum: number; abs: number; sq: number; rows: Record<string, Cell>[] }>;
}

async function readView(page: Page): Promise<ViewState> {
  return page.evaluate(() => {
    const root = document.getElementById("view-live")!;
    const num = (el: DomEl, k: string) => Number(el.dataset[k]);
    const filters = document.getElementById("live-filters")!;
    const bnTable = document.querySelector("table[data-stats=batch_norm]")!;
    const backend = document.getElementById("live-backend")!;
    const methods: Record<string, unknown> = {};
    for (const box of document.querySelectorAll("#view-live [data-method]")) {
      const rows = [...box.querySelectorAll("tbody tr")].map((tr) => {
        const r: Record<string, { text: string; v: number }> = {};
        for (const td of tr.querySelectorAll("td[data-stat]")) r[td.dataset["stat"]!] = { text: td.textContent!, v: Number(td.dataset["v"]) };
        return r;
      });
      methods[box.dataset["method"]!] = { change: box.dataset["change"]!, sum: num(box, "sum"), abs: num(box, "abs"), sq: num(box, "sq"), rows };
    }
    return {
      updates: Number(root.dataset["updates"] ?? 0),
      indices: document.getElementById("live-batch-strip")!.dataset["indices"]!.split(",").map(Number),
      weights: JSON.parse(filters.dataset["weights"]!) as number[][],
      kernel: num(filters, "kernel"),
      padValue: num(filters, "padValue"),
      groups: Number(document.getElementById("live-groups")!.value),
      backend: backend.dataset["compute"]!,
      backendText: backend.textContent!,
      bn: { mode: bnTable.dataset["mode"]!, steps: num(bnTable, "steps"), warmupPasses: num(bnTable, "warmupPasses"), warmupBatch: num(bnTable, "warmupBatch") },
      methods: methods as ViewState["methods"],
    };
  });
}

/** Runs `act` and waits until the view finished the update(s) it started. */
async function after(page: Page, act: () => Promise<void>, count = 1): Promise<ViewState> {
  const before = Number(await page.getAttribute("#view-live", "data-updates"));
  await act();
  await page.waitForFunction((n) => Number(document.getElementById("view-live")!.dataset["updates"]) >= n && document.getElementById("view-live")!.dataset["busy"] === "false", before + count, { timeout: 60_000 });
  return readView(page);
}

/** The page's pipeline, redone in Node with normkit: images → MNIST standardisation, black frame → Conv2d. */
class NodeModel {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly C: number;
  constructor(readonly digits: Digits, readonly v: ViewState) {
    this.C = v.weights.length;
    this.conv = new Conv2d({ inChannels: 1, outChannels: this.C, kernelSize: v.kernel, bias: false });
    this.conv.weight.value.data.set(v.weights.flat());
    this.bn = new BatchNorm2d({ numFeatures: this.C, momentum: 0.1 });
  }
  convOf(indices: number[]): Tensor {
    const { rows: H, cols: W, pixels } = this.digits;
    const p = (this.v.kernel - 1) / 2, Hp = H + 2 * p, Wp = W + 2 * p;
    const x = Tensor.full([indices.length, 1, Hp, Wp], this.v.padValue);
    indices.forEach((k, n) => {
      for (let i = 0; i < H * W; i++) x.data[n * Hp * Wp + (Math.floor(i / W) + p) * Wp + (i % W) + p] = (pixels[k * H * W + i]! / 255 - MNIST_MEAN) / MNIST_STD;
    });
    const y = this.conv.forward(x);
    assert.deepEqual(y.shape.slice(2), [H, W], "the conv keeps the 28x28 map");
    return y;
  }
  /** BatchNorm's warm-up as the page describes it: passes over the sample in order, in batches. */
  warmUp(): void {
    const { warmupPasses: passes, warmupBatch: b } = this.v.bn;
    for (let p = 0; p < passes; p++) for (let s = 0; s + b <= this.digits.count; s += b) this.bn.forward(this.convOf(Array.from({ length: b }, (_, i) => s + i)));
  }
  /** Per method: the tracked image's (sample 0) statistics rows and output sums. */
  run(indices: number[], groups: number, bnMode: string) {
    const x = this.convOf(indices);
    const per = x.size / x.shape[0]!;
    this.bn.train(bnMode === "train");
    const layers: Record<Method, Normalization> = {
      batch_norm: this.bn,
      layer_norm: new LayerNorm({ normalizedShape: x.shape.slice(1) }),
      instance_norm: new InstanceNorm2d({ numFeatures: this.C }),
      group_norm: new GroupNorm({ numGroups: groups, numChannels: this.C }),
    };
    const out = {} as Record<Method, { mean: number[]; variance: number[]; sum: number; abs: number; sq: number }>;
    for (const m of METHODS) {
      const y = layers[m].forward(x).data.subarray(0, per);
      const st = layers[m].lastStatistics()!;
      const k = m === "batch_norm" || m === "instance_norm" ? this.C : m === "layer_norm" ? 1 : groups; // sample 0's groups: 0..k-1
      const mean = [...st.mean.subarray(0, k)], variance = [...st.rstd.subarray(0, k)].map((r) => 1 / (r * r) - layers[m].eps);
      let sum = 0, abs = 0, sq = 0;
      for (const v of y) [sum, abs, sq] = [sum + v, abs + Math.abs(v), sq + v * v];
      out[m] = { mean, variance, sum, abs, sq };
    }
    return out;
  }
}

/**
 * `v` (the full-precision value behind the text) equals `want` within `rel` of max(|want|, scale), and
 * `text` (4 significant digits, "−" for minus) is `want` rounded — or within that tolerance where the
 * value is rounding noise around 0 (the mean of an edge filter's map: float32 sums in another order
 * give ±1e-9 there). `scale` is the statistic's natural size: the group's standard deviation for a mean.
 */
function assertShown(cell: Cell, want: number, what: string, scale = 0, rel = 1e-5): void {
  const tol = rel * Math.max(Math.abs(want), scale, 1e-6);
  assert.ok(Math.abs(cell.v - want) <= tol, `${what}: data-v ${cell.v} vs ${want} (Node)`);
  const shown = Number(cell.text.replace(/\u2212/g, "-"));
  assert.ok(Number.isFinite(shown), `${what}: "${cell.text}" is a number`);
  const halfUnit = want === 0 ? 0 : 0.5 * 10 ** (Math.floor(Math.log10(Math.abs(want))) - 3);
  assert.ok(Math.abs(shown - want) <= Math.max(halfUnit * 1.001, tol), `${what}: shown "${cell.text}" vs ${want} (Node)`);
}

function near(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);
}

/** The page's statistics and outputs against Node's; BatchNorm's running statistics against `bn`'s. */
function checkAgainstNode(v: ViewState, node: ReturnType<NodeModel["run"]>, running: { mean: ArrayLike<number>; var: ArrayLike<number> }, outTol: number): void {
  for (const m of METHODS) {
    const shown = v.methods[m], want = node[m];
    assert.equal(shown.rows.length, want.mean.length, `${m}: one row per statistic group of the tracked image`);
    shown.rows.forEach((r, g) => {
      assertShown(r["mean"]!, want.mean[g]!, `${m} group ${g} mean`, Math.sqrt(want.variance[g]!));
      assertShown(r["var"]!, want.variance[g]!, `${m} group ${g} variance`);
    });
    near(shown.abs, want.abs, outTol * want.abs, `${m} Σ|y|`);
    near(shown.sum, want.sum, outTol * want.abs, `${m} Σy`);
    near(shown.sq, want.sq, outTol * want.sq, `${m} Σy²`);
  }
  v.methods.batch_norm.rows.forEach((r, c) => {
    assertShown(r["running_mean"]!, running.mean[c]!, `running mean ${c}`, Math.sqrt(running.var[c]!));
    assertShown(r["running_var"]!, running.var[c]!, `running var ${c}`);
  });
}

const changeOf = (v: ViewState, m: Method) => {
  assert.notEqual(v.methods[m].change, "", `${m}: a change is shown`);
  return Number(v.methods[m].change);
};

function checkOrigin(p: ExplorerPage): void {
  assert.ok(p.requests.length > 0);
  for (const r of p.requests) assert.equal(new URL(r).origin, p.origin, `request outside the page's origin: ${r}`);
  assert.deepEqual(p.consoleErrors, [], "no console errors");
}

test("live view on the CPU: normkit's statistics, resampling, eval mode, keyboard", { timeout: 300_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const digits = readDigits((await buildOnce()).dir);
  await withExplorer(async (p) => {
    const { page } = p;
    await p.open("live");
    let v = await readView(page);
    assert.equal(v.backend, "cpu");
    assert.match(v.backendText, /^computed on CPU: /);
    assert.equal(v.bn.mode, "train");
    assert.equal(new Set(v.indices).size, v.indices.length, "distinct digits in the batch");
    assert.ok(v.indices.every((k) => Number.isInteger(k) && k >= 0 && k < digits.count));

    // Node: warm-up, then the page's first batch in training mode.
    const node = new NodeModel(digits, v);
    node.warmUp();
    const warmSteps = Number(node.bn.numBatchesTracked!.data[0]);
    let res = node.run(v.indices, v.groups, "train");
    assert.equal(v.bn.steps, warmSteps + 1);
    checkAgainstNode(v, res, { mean: node.bn.runningMean!.data, var: node.bn.runningVar!.data }, 1e-5);
    const tracked = v.indices[0]!;

    // Resample from the keyboard (Enter on the focused button).
    await page.focus("#live-resample");
    const prev = v;
    v = await after(page, () => page.keyboard.press("Enter"));
    assert.equal(v.indices[0], tracked, "the tracked image stays");
    assert.equal(v.indices.length, prev.indices.length);
    assert.notDeepEqual(v.indices.slice(1), prev.indices.slice(1), "new batch-mates");
    assert.ok(changeOf(v, "batch_norm") > 0, "BatchNorm's output for the tracked image moved");
    assert.notEqual(v.methods.batch_norm.sq, prev.methods.batch_norm.sq);
    for (const m of ["layer_norm", "instance_norm", "group_norm"] as const) {
      assert.equal(changeOf(v, m), 0, `${m}: the tracked image's output is exactly unchanged`);
      assert.equal(v.methods[m].sq, prev.methods[m].sq, m);
    }
    res = node.run(v.indices, v.groups, "train");
    assert.equal(v.bn.steps, warmSteps + 2);
    checkAgainstNode(v, res, { mean: node.bn.runningMean!.data, var: node.bn.runningVar!.data }, 1e-5);

    // Space on the button resamples too.
    const before2 = v.indices;
    v = await after(page, () => page.keyboard.press("Space"));
    assert.notDeepEqual(v.indices, before2);
    node.run(v.indices, v.groups, "train");

    // Tab to the batch size; ArrowUp grows the batch by one.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "live-batch");
    const n0 = v.indices.length;
    v = await after(page, () => page.keyboard.press("ArrowUp"));
    assert.equal(v.indices.length, n0 + 1);
    assert.equal(v.indices[0], tracked);
    res = node.run(v.indices, v.groups, "train");
    checkAgainstNode(v, res, { mean: node.bn.runningMean!.data, var: node.bn.runningVar!.data }, 1e-5);

    // Tab to G; ArrowDown picks the next divisor of C. BatchNorm's running statistics do not move.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "live-groups");
    const g0 = v.groups, steps0 = v.bn.steps;
    v = await after(page, () => page.keyboard.press("ArrowDown"));
    assert.ok(v.groups > g0 && node.C % v.groups === 0, `G ${g0} → ${v.groups}`);
    assert.equal(v.methods.group_norm.rows.length, v.groups);
    assert.equal(v.bn.steps, steps0, "looking again at the same batch is no training step");
    const { runningMean, runningVar } = node.bn;
    const saved = { mean: Float32Array.from(runningMean!.data), var: Float32Array.from(runningVar!.data) };
    res = node.run(v.indices, v.groups, "eval"); // eval: statistics without another update
    for (const m of ["layer_norm", "instance_norm", "group_norm"] as const) {
      v.methods[m].rows.forEach((r, g) => assertShown(r["mean"]!, res[m].mean[g]!, `${m} mean ${g} (G = ${v.groups})`, Math.sqrt(res[m].variance[g]!)));
    }
    v.methods.batch_norm.rows.forEach((r, c) => assertShown(r["running_mean"]!, saved.mean[c]!, `running mean ${c}`, Math.sqrt(saved.var[c]!)));

    // Tab to the mode radios; ArrowRight checks "eval": BatchNorm now shows its running statistics.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "live-bn-train");
    v = await after(page, () => page.keyboard.press("ArrowRight"));
    assert.equal(await page.isChecked("#live-bn-eval"), true);
    assert.equal(v.bn.mode, "eval");
    res = node.run(v.indices, v.groups, "eval");
    checkAgainstNode(v, res, saved, 1e-5);
    v.methods.batch_norm.rows.forEach((r, c) => {
      assertShown(r["mean"]!, saved.mean[c]!, `eval: mean ${c} is the running mean`, Math.sqrt(saved.var[c]!));
      assertShown(r["var"]!, saved.var[c]!, `eval: var ${c} is the running var`);
    });

    // In eval mode resampling moves nothing, BatchNorm included.
    await page.focus("#live-resample");
    const prevEval = v;
    v = await after(page, () => page.keyboard.press("Enter"));
    assert.notDeepEqual(v.indices, prevEval.indices);
    for (const m of METHODS) assert.equal(changeOf(v, m), 0, `eval mode: ${m} unchanged`);
    assert.equal(v.bn.steps, prevEval.bn.steps);
    checkAgainstNode(v, node.run(v.indices, v.groups, "eval"), saved, 1e-5);

    // Back to train from the keyboard (ArrowLeft in the radio group).
    await page.focus("#live-bn-eval");
    v = await after(page, () => page.keyboard.press("ArrowLeft"));
    assert.equal(v.bn.mode, "train");
    res = node.run(v.indices, v.groups, "train");
    checkAgainstNode(v, res, { mean: node.bn.runningMean!.data, var: node.bn.runningVar!.data }, 1e-5);

    // Canvases: the batch, filters, raw maps and C maps per method are drawn (not blank).
    const drawn = await page.evaluate(() =>
      [...document.querySelectorAll("#view-live canvas")].map((c) => {
        const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
        let lo = 255, hi = 0;
        for (let i = 0; i < d.length; i += 4) [lo, hi] = [Math.min(lo, d[i]!), Math.max(hi, d[i]!)];
        return hi - lo;
      }));
    assert.equal(drawn.length, v.indices.length + 2 * node.C + METHODS.length * node.C);
    assert.ok(drawn.every((spread) => spread > 0), "every canvas shows an image");
    checkOrigin(p);
  }, { webgpu: false });
});

test("live view on WebGPU: says so, matches the CPU, resampling moves only BatchNorm", { timeout: 300_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const digits = readDigits((await buildOnce()).dir);
  await withExplorer(async (p) => {
    const { page } = p;
    await p.open("live");
    const hasGpu = await page.$$eval("#compute-select option", (os) => os.some((o) => o.getAttribute("value") === "webgpu"));
    if (!hasGpu) {
      const why = await page.textContent("#compute-status");
      const msg = `no WebGPU in this Chromium (${why}); set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json`;
      skipOrFail(t, msg);
      return;
    }
    if ((await page.inputValue("#compute-select")) !== "webgpu") await after(page, async () => void (await page.selectOption("#compute-select", "webgpu")));
    let v = await readView(page);
    assert.equal(v.backend, "webgpu");
    assert.match(v.backendText, /^computed on WebGPU: /);
    const node = new NodeModel(digits, v);
    node.warmUp();
    // float32 on the GPU against Node's CPU: outputs within 1e-4 relative (Σ|y| scale), statistics from the CPU layers.
    let res = node.run(v.indices, v.groups, "train");
    checkAgainstNode(v, res, { mean: node.bn.runningMean!.data, var: node.bn.runningVar!.data }, 1e-4);

    // The same batch on the CPU: the same numbers within float32 tolerance.
    const gpuView = v;
    v = await after(page, async () => void (await page.selectOption("#compute-select", "cpu")));
    assert.equal(v.backend, "cpu");
    assert.deepEqual(v.indices, gpuView.indices);
    for (const m of METHODS) {
      near(v.methods[m].abs, gpuView.methods[m].abs, 1e-4 * v.methods[m].abs, `${m} Σ|y| GPU vs CPU`);
      near(v.methods[m].sq, gpuView.methods[m].sq, 1e-4 * v.methods[m].sq, `${m} Σy² GPU vs CPU`);
      near(v.methods[m].sum, gpuView.methods[m].sum, 1e-4 * v.methods[m].abs, `${m} Σy GPU vs CPU`);
    }
    v.methods.batch_norm.rows.forEach((r, c) => {
      near(r["running_mean"]!.v, gpuView.methods.batch_norm.rows[c]!["running_mean"]!.v, 1e-5, `running mean ${c} GPU vs CPU`);
      near(r["running_var"]!.v, gpuView.methods.batch_norm.rows[c]!["running_var"]!.v, 1e-5, `running var ${c} GPU vs CPU`);
    });
    v = await after(page, async () => void (await page.selectOption("#compute-select", "webgpu")));
    assert.equal(v.backend, "webgpu");

    // Resample on the GPU.
    await page.focus("#live-resample");
    v = await after(page, () => page.keyboard.press("Enter"));
    assert.equal(v.backend, "webgpu");
    assert.ok(changeOf(v, "batch_norm") > 0, "GPU: BatchNorm's output for the tracked image moved");
    for (const m of ["layer_norm", "instance_norm", "group_norm"] as const) assert.equal(changeOf(v, m), 0, `GPU: ${m} unchanged`);
    res = node.run(v.indices, v.groups, "train");
    checkAgainstNode(v, res, { mean: node.bn.runningMean!.data, var: node.bn.runningVar!.data }, 1e-4);

    // Eval on the GPU: resampling moves nothing.
    await page.focus("#live-bn-train");
    v = await after(page, () => page.keyboard.press("ArrowRight"));
    assert.equal(v.bn.mode, "eval");
    await page.focus("#live-resample");
    v = await after(page, () => page.keyboard.press("Enter"));
    for (const m of METHODS) assert.equal(changeOf(v, m), 0, `GPU eval: ${m} unchanged`);
    checkAgainstNode(v, node.run(v.indices, v.groups, "eval"), { mean: node.bn.runningMean!.data, var: node.bn.runningVar!.data }, 1e-4);
    checkOrigin(p);
  });
});

// Registered only when a screenshot is asked for (a screenshot is not a check).
if (process.env["NORMKIT_SCREENSHOT_DIR"]) test("live view screenshot (NORMKIT_SCREENSHOT_DIR)", { timeout: 120_000 }, async (t: TestContext) => {
  const dir = process.env["NORMKIT_SCREENSHOT_DIR"]!;
  if (!haveChromium(t)) return;
  await withExplorer(async (p) => {
    await p.open("live");
    await resampleOnce(p.page);
    mkdirSync(resolve(dir), { recursive: true });
    await p.page.screenshot({ path: join(resolve(dir), "explorer-live.png") });
    assert.deepEqual(p.consoleErrors, []);
  });
});

/** One resample, so the screenshot shows BatchNorm's change next to the others' zeros. */
async function resampleOnce(page: Page): Promise<void> {
  await page.focus("#live-resample");
  await after(page, () => page.keyboard.press("Enter"));
  await page.evaluate(() => document.activeElement?.blur());
}
