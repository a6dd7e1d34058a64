/**
 * Browser test of the explorer's "Scale invariance" view (explorer/src/scale.ts): in headless Chromium,
 * with x or the conv weights multiplied by λ, the normalized rows stay put (BN, LN, IN, GN up to eps; Weight
 * Norm for weight scaling; Cosine Norm for both) while "no normalization" scales by λ; every number on
 * the page equals what normkit computes here in Node from the recipe the page publishes (data-recipe)
 * and the same digit sample; the controls work from the keyboard; no console error; only same-origin
 * requests. With NORMKIT_SCREENSHOT_DIR=DIR it writes DIR/explorer-scale.png.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ConsoleMessage, Page } from "playwright-core";
import {
  BatchNorm2d, Conv2d, CosineConv2d, GroupNorm, InstanceNorm2d, LayerNorm, Tensor, WeightNorm, backend, mulberry32,
} from "../../src/index.js";
import { buildOnce, haveChromium, withExplorer } from "./explorer_harness.js";

interface Recipe {
  digits: number[]; mean: number; std: number; outChannels: number; kernel: number; padding: number; seed: number; groups: number; eps: number;
}
interface Row {
  method: string; maxdiff: number; rel: number; ratio: number; epsShare: number | null; expectInvariant: boolean; verdict: string;
  shown: { maxdiff: string; rel: string; ratio: string; eps: string };
}
type Target = "input" | "weights";
const NORMALIZING = ["batch_norm", "layer_norm", "instance_norm", "group_norm"];

/** The page's display format (explorer/src/app.ts fmt/parseFmt): 4 significant digits, "−" for minus. */
const parseShown = (t: string) => Number(t.trim().replace(/\u2212/g, "-"));
const fmt3 = (v: number) => (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? v.toPrecision(3) : v.toExponential(2)).replace(/^-/, "\u2212");

// ---- the same computation, independently, with normkit in Node ------------------------------------

function digitSample(dir: string): { count: number; rows: number; cols: number; pixels: Uint8Array } {
  const b = readFileSync(join(dir, "digits.bin"));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const count = dv.getUint32(4, true), rows = dv.getUint32(8, true), cols = dv.getUint32(12, true);
  return { count, rows, cols, pixels: new Uint8Array(b.buffer, b.byteOffset + 16 + count, count * rows * cols) };
}

function nodeCompute(rc: Recipe, dir: string, lambda: number, target: Target) {
  const d = digitSample(dir);
  const size = d.rows * d.cols, N = rc.digits.length, C = rc.outChannels;
  const x = new Float32Array(N * size);
  rc.digits.forEach((k, i) => {
    for (let j = 0; j < size; j++) x[i * size + j] = (d.pixels[k * size + j]! / 255 - rc.mean) / rc.std;
  });
  const geom = { inChannels: 1, outChannels: C, kernelSize: rc.kernel, padding: rc.padding };
  const run = (lam: number, tgt: Target) => {
    const xs = new Tensor(tgt === "input" ? x.map((v) => v * lam) : x, [N, 1, d.rows, d.cols]);
    const conv = new Conv2d({ ...geom, bias: false, rng: mulberry32(rc.seed) });
    const w0 = Float32Array.from(conv.weight.value.data);
    if (tgt === "weights") conv.weight.value.data.set(w0.map((v) => v * lam));
    const z = conv.forward(xs);
    const wn = new WeightNorm(new Conv2d({ ...geom, bias: false, rng: mulberry32(rc.seed) }));
    if (tgt === "weights") wn.v.value.data.set(wn.v.value.data.map((v) => v * lam));
    const cos = new CosineConv2d({ ...geom, rng: mulberry32(rc.seed) });
    cos.weight.value.data.set(tgt === "weights" ? w0.map((v) => v * lam) : w0);
    const [, , H, W] = z.shape as [number, number, number, number];
    return {
      z,
      ys: {
        none: z,
        batch_norm: new BatchNorm2d({ numFeatures: C, eps: rc.eps }).train().forward(z),
        layer_norm: new LayerNorm({ normalizedShape: [C, H, W], eps: rc.eps }).train().forward(z),
        instance_norm: new InstanceNorm2d({ numFeatures: C, eps: rc.eps }).train().forward(z),
        group_norm: new GroupNorm({ numGroups: rc.groups, numChannels: C, eps: rc.eps }).train().forward(z),
        weight_norm: wn.forward(xs),
        cosine_norm: cos.forward(xs),
      } as Record<string, Tensor>,
    };
  };
  const ref = run(1, "input"), at = run(lambda, target);
  // σ²min of each normalizing layer's groups, from the conv output at λ = 1 (biased variance)
  const z = ref.z.data, [, , H, W] = ref.z.shape as number[];
  const P = H! * W!;
  const minVar = (groups: number[][]) =>
    Math.min(...groups.map((idx) => {
      const m = idx.reduce((s, i) => s + z[i]!, 0) / idx.length;
      return idx.reduce((s, i) => s + (z[i]! - m) ** 2, 0) / idx.length;
    }));
  const range = (n: number, f: (k: number) => number) => Array.from({ length: n }, (_, k) => f(k));
  const cg = C / rc.groups;
  const sigma2: Record<string, number> = {
    batch_norm: minVar(range(C, (c) => c).map((c) => range(N * P, (k) => Math.floor(k / P) * C * P + c * P + (k % P)))),
    layer_norm: minVar(range(N, (n) => n).map((n) => range(C * P, (k) => n * C * P + k))),
    instance_norm: minVar(range(N * C, (i) => i).map((i) => range(P, (k) => i * P + k))),
    group_norm: minVar(range(N * rc.groups, (i) => i).map((i) => range(cg * P, (k) => Math.floor(i / rc.groups) * C * P + (i % rc.groups) * cg * P + k))),
  };
  const out: Record<string, { maxdiff: number; rel: number; ratio: number; epsShare: number | null }> = {};
  for (const m of Object.keys(ref.ys)) {
    const a = ref.ys[m]!.data, b = at.ys[m]!.data;
    let maxdiff = 0, maxref = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) {
      maxdiff = Math.max(maxdiff, Math.abs(b[i]! - a[i]!));
      maxref = Math.max(maxref, Math.abs(a[i]!));
      na += a[i]! ** 2;
      nb += b[i]! ** 2;
    }
    out[m] = { maxdiff, rel: maxdiff / maxref, ratio: Math.sqrt(nb / na), epsShare: m in sigma2 ? rc.eps / (lambda * lambda * sigma2[m]!) : null };
  }
  return out;
}

// ---- reading the page -------------------------------------------------------------------------------

async function rows(page: Page): Promise<Map<string, Row>> {
  const list = await page.$$eval("#scale-table tbody tr", (trs) =>
    trs.map((tr) => {
      // (no DOM types in the Node build: the element as this function uses it)
      const t = tr as unknown as { dataset: Record<string, string | undefined>; querySelector(sel: string): { textContent: string | null } | null };
      const cell = (c: string) => t.querySelector(`td.${c}`)!.textContent ?? "";
      return {
        method: t.dataset["method"]!, maxdiff: Number(t.dataset["maxdiff"]), rel: Number(t.dataset["rel"]), ratio: Number(t.dataset["ratio"]),
        epsShare: t.dataset["epsShare"] ? Number(t.dataset["epsShare"]) : null, expectInvariant: t.dataset["expectInvariant"] === "true",
        verdict: t.dataset["verdict"]!,
        shown: { maxdiff: cell("maxdiff"), rel: t.querySelector("td.rel .num")!.textContent ?? "", ratio: cell("ratio"), eps: cell("eps") },
      };
    }),
  );
  return new Map(list.map((r) => [r.method, r]));
}

async function setLambda(page: Page, value: string): Promise<void> {
  await page.focus("#scale-lambda-value");
  await page.keyboard.press("Control+A");
  await page.keyboard.type(value);
  await page.waitForSelector(`#view-scale[data-lambda="${Number(value)}"]`);
}

async function setTarget(page: Page, target: Target): Promise<void> {
  // the radio group from the keyboard: focus the checked radio, arrows move the selection
  const current = await page.getAttribute("#view-scale", "data-target");
  if (current === target) return;
  await page.focus('#scale-target input[type=radio]:checked');
  await page.keyboard.press("ArrowDown");
  await page.waitForSelector(`#view-scale[data-target="${target}"]`);
}

/** |a − b| ≤ tol·max(|a|, |b|) + abs. */
function close(a: number, b: number, tol: number, abs = 0): boolean {
  return Math.abs(a - b) <= tol * Math.max(Math.abs(a), Math.abs(b)) + abs;
}

for (const isolate of [false, true]) {
  // served plain and cross-origin isolated (the page's CPU kernels may differ: Node uses the ones the page says it uses)
  test(`scale invariance view (${isolate ? "cross-origin isolated" : "plain server"}): normalized outputs stay, the control scales by λ, numbers match normkit in Node, keyboard works`, { timeout: 240_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const { dir } = await buildOnce();
  await withExplorer(async ({ page, origin, consoleErrors, requests, open }) => {
    const located: string[] = [];
    page.on("console", (m: ConsoleMessage) => {
      if (m.type() === "error") located.push(`${m.text()} @ ${m.location().url}`);
    });
    await open("scale");
    const recipe = JSON.parse((await page.getAttribute("#view-scale", "data-recipe"))!) as Recipe;
    const status = (await page.textContent("#scale-backend")) ?? "";
    assert.match(status, /CPU/);
    // the same kernels as the page (TypeScript without cross-origin isolation, else WebAssembly SIMD)
    await backend.configure({ kernels: /TypeScript kernels/.test(status) ? "ts" : "auto" });

    // at start: λ = 1, nothing changes anywhere
    assert.equal(await page.getAttribute("#view-scale", "data-lambda"), "1");
    for (const r of (await rows(page)).values()) assert.equal(r.maxdiff, 0, `${r.method} at λ = 1`);

    const check = async (lambda: number, target: Target) => {
      const got = await rows(page);
      const want = nodeCompute(recipe, dir, lambda, target);
      assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort());
      for (const [m, r] of got) {
        const w = want[m]!;
        const where = `${m}, λ = ${lambda}, ${target}`;
        // the page's numbers are normkit's, computed here in Node from the same recipe and digits
        assert.ok(close(r.maxdiff, w.maxdiff, 1e-6, 1e-9), `${where}: maxdiff page ${r.maxdiff} node ${w.maxdiff}`);
        assert.ok(close(r.rel, w.rel, 1e-6, 1e-9), `${where}: rel page ${r.rel} node ${w.rel}`);
        assert.ok(close(r.ratio, w.ratio, 1e-6), `${where}: ratio page ${r.ratio} node ${w.ratio}`);
        if (w.epsShare === null) assert.equal(r.epsShare, null, where);
        else assert.ok(close(r.epsShare!, w.epsShare, 1e-9), `${where}: eps share page ${r.epsShare} node ${w.epsShare}`);
        // what is shown is those numbers (4 significant digits; eps share 3)
        assert.ok(close(parseShown(r.shown.maxdiff), w.maxdiff, 5e-4, 1e-9), `${where}: shown ${r.shown.maxdiff}`);
        assert.ok(close(parseShown(r.shown.rel), w.rel, 5e-4, 1e-9), `${where}: shown ${r.shown.rel}`);
        assert.ok(close(parseShown(r.shown.ratio), w.ratio, 5e-4), `${where}: shown ${r.shown.ratio}`);
        if (w.epsShare !== null) assert.ok(close(parseShown(r.shown.eps), w.epsShare, 5e-3), `${where}: shown ${r.shown.eps}`);
      }
      return got;
    };

    // λ = 10 on the input, typed
    await setLambda(page, "10");
    let r = await check(10, "input");
    assert.ok(close(r.get("none")!.ratio, 10, 1e-5), `none scales by λ: ${r.get("none")!.ratio}`);
    assert.ok(close(r.get("none")!.rel, 9, 1e-5), "none: max |y(λ) − y(1)| = (λ − 1)·max |y(1)|");
    assert.ok(close(r.get("weight_norm")!.ratio, 10, 1e-5), "Weight Norm is not invariant to input scaling");
    assert.equal(r.get("weight_norm")!.expectInvariant, false);
    for (const m of NORMALIZING) {
      assert.ok(r.get(m)!.rel < 1e-3, `${m} invariant at λ = 10: rel ${r.get(m)!.rel}`);
      assert.ok(r.get(m)!.rel > 0 || r.get(m)!.maxdiff === 0);
    }
    assert.ok(r.get("cosine_norm")!.rel < 1e-5, `cosine invariant to input scaling: ${r.get("cosine_norm")!.rel}`);
    assert.match((await page.textContent("#scale-wn-note"))!, /not inputs/);

    // the same λ on the weights, chosen with the arrow keys in the radio group
    await setTarget(page, "weights");
    r = await check(10, "weights");
    assert.ok(close(r.get("none")!.ratio, 10, 1e-5));
    assert.ok(r.get("weight_norm")!.rel < 1e-5, `Weight Norm invariant to scaling v: ${r.get("weight_norm")!.rel}`);
    assert.equal(r.get("weight_norm")!.expectInvariant, true);
    assert.ok(r.get("cosine_norm")!.rel < 1e-5);
    for (const m of NORMALIZING) assert.ok(r.get(m)!.rel < 1e-3, `${m}: ${r.get(m)!.rel}`);

    // λ = 0.01 on the input: eps is no longer small against λ²σ² — approximate, and said so
    await setTarget(page, "input"); // ArrowDown from the last radio wraps to the first
    await setLambda(page, "0.01");
    const r10 = r;
    r = await check(0.01, "input");
    assert.ok(close(r.get("none")!.ratio, 0.01, 1e-5));
    for (const m of NORMALIZING) {
      assert.ok(r.get(m)!.rel > r10.get(m)!.rel, `${m}: eps weighs more at λ = 0.01`);
      assert.ok(r.get(m)!.epsShare! > r10.get(m)!.epsShare!);
    }
    assert.ok(r.get("cosine_norm")!.rel < 1e-5);
    const epsNote = (await page.textContent("#scale-eps-note"))!;
    assert.match(epsNote, /eps/);
    const worst = NORMALIZING.map((m) => r.get(m)!).reduce((a, b) => (b.rel > a.rel ? b : a));
    assert.ok(epsNote.includes(fmt3(worst.rel)), `the eps note quotes the largest change, ${fmt3(worst.rel)}: ${epsNote}`);

    if (process.env["NORMKIT_SCREENSHOT_DIR"] && !isolate) {
      await page.screenshot({ path: join(process.env["NORMKIT_SCREENSHOT_DIR"], "explorer-scale.png"), fullPage: true });
    }

    // the slider from the keyboard: arrows, Home, End
    await page.focus("#scale-lambda");
    await page.keyboard.press("End");
    await page.waitForSelector('#view-scale[data-lambda="100"]');
    assert.equal(await page.inputValue("#scale-lambda-value"), "100");
    await page.keyboard.press("Home");
    await page.waitForSelector('#view-scale[data-lambda="0.01"]');
    await page.keyboard.press("ArrowRight");
    const stepped = Number(await page.getAttribute("#view-scale", "data-lambda"));
    assert.ok(stepped > 0.01 && stepped < 0.02, `one arrow step up from 0.01 on the log slider: ${stepped}`);
    assert.equal(Number(await page.inputValue("#scale-lambda-value")), stepped);
    await check(stepped, "input");

    // an invalid λ typed: flagged, nothing recomputed
    await page.focus("#scale-lambda-value");
    await page.keyboard.press("Control+A");
    await page.keyboard.type("0");
    assert.equal(await page.getAttribute("#scale-lambda-value", "aria-invalid"), "true");
    assert.equal(Number(await page.getAttribute("#view-scale", "data-lambda")), stepped);

    assert.deepEqual(located, [], "no console errors");
    assert.deepEqual(consoleErrors, [], `console errors: ${located.join(" | ")}`);
    assert.ok(requests.length > 0);
    for (const u of requests) assert.equal(new URL(u).origin, origin, `request outside the origin: ${u}`);
  }, { isolate });
  });
}
