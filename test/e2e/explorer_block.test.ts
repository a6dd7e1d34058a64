/**
 * The explorer's block view in headless Chromium: the highlighted set for each method (counts derived
 * from the block's shape here, membership checked cell by cell), the statistics the page shows
 * against normkit's functional forms run in Node on the page's own input values, Switchable Norm's
 * blend against the component statistics mixed by hand, keyboard operation of every control, no
 * console errors and no request outside the page's origin.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Tensor, functional } from "../../src/index.js";
import { ROOT, haveChromium, withExplorer } from "./explorer_harness.js";
import type { Page } from "playwright-core";

const EPS = 1e-5;
/** The part of an element the page callbacks read (this file compiles without the DOM library). */
interface Data {
  dataset: Record<string, string | undefined>;
}
type Method = "batch_norm" | "layer_norm" | "instance_norm" | "group_norm" | "switchable_norm";

/** Sets a number input by keyboard: select its text, type, Tab away (commits the change). */
async function setSize(page: Page, id: string, v: number): Promise<void> {
  await page.focus(id);
  await page.keyboard.press("Control+A");
  await page.keyboard.type(String(v));
  await page.keyboard.press("Tab");
}

/** Chooses a method with the keyboard: focus the checked radio, arrow until `m` is checked. */
async function chooseMethod(page: Page, m: Method): Promise<void> {
  await page.focus('input[name="block-method"]:checked');
  for (let i = 0; i < 5 && !(await page.isChecked(`#block-method-${m}`)); i++) await page.keyboard.press("ArrowRight");
  assert.ok(await page.isChecked(`#block-method-${m}`), `could not reach ${m} with the arrow keys`);
}

interface Cell { n: number; c: number; h: number; w: number; shared: boolean }
async function cells(page: Page): Promise<Cell[]> {
  return page.$$eval("#block-svg polygon.cell", (ps) =>
    ps.map((p) => {
      const d = (p as unknown as Data).dataset;
      return { n: Number(d["n"]), c: Number(d["c"]), h: Number(d["h"]), w: Number(d["w"]), shared: p.classList.contains("shared") };
    }),
  );
}
async function selected(page: Page): Promise<{ n: number; c: number }> {
  return page.$eval("#block-svg polygon.cell.selected", (p) => ({ n: Number((p as unknown as Data).dataset["n"]), c: Number((p as unknown as Data).dataset["c"]) }));
}
const num = (t: string) => Number(t.trim().replace(/\u2212/g, "-"));

/** Whether (n, c) shares the statistic of (n0, c0): the methods' definitions, written out here. */
function member(m: Method, G: number, C: number, n0: number, c0: number, n: number, c: number): boolean {
  const per = C / G;
  switch (m) {
    case "batch_norm": return c === c0;
    case "layer_norm": return n === n0;
    case "instance_norm": return n === n0 && c === c0;
    case "group_norm": return n === n0 && Math.floor(c / per) === Math.floor(c0 / per);
    case "switchable_norm": return n === n0 && c === c0;
  }
}

test("explorer block view: highlighted sets, statistics equal normkit's in Node, keyboard, no console errors, same-origin only", { timeout: 240_000 }, async (t) => {
  if (!haveChromium(t)) return;
  await withExplorer(async ({ page, origin, consoleErrors, requests, open }) => {
    await open("block");
    const [N, C, H, W, G] = [4, 6, 3, 3, 2];
    await setSize(page, "#block-n", N);
    await setSize(page, "#block-c", C);
    await setSize(page, "#block-h", H);
    await setSize(page, "#block-w", W);
    assert.equal((await cells(page)).length, N * C * H * W, "one drawn cell per value");

    // G with the keyboard: the slider steps through the divisors of C
    await chooseMethod(page, "group_norm");
    await page.focus("#block-g");
    await page.keyboard.press("Home");
    for (let i = 0; i < 6 && (await page.textContent("#block-g-value"))!.split(" ")[0] !== String(G); i++) await page.keyboard.press("ArrowRight");
    assert.equal((await page.textContent("#block-g-value"))!.split(" ")[0], String(G));

    const expectedCount: Record<Exclude<Method, "switchable_norm">, number> = {
      batch_norm: N * H * W, layer_norm: C * H * W, instance_norm: H * W, group_norm: (C / G) * H * W,
    };
    const x = Tensor.from(JSON.parse((await page.textContent("#block-values"))!).data as number[], [N, C, H, W], "float64");
    const node = {
      batch_norm: functional.batchNorm(x, { training: true }),
      layer_norm: functional.layerNorm(x, [C, H, W]),
      instance_norm: functional.instanceNorm(x),
      group_norm: functional.groupNorm(x, G),
    };
    for (const m of ["batch_norm", "layer_norm", "instance_norm", "group_norm"] as const) {
      await chooseMethod(page, m);
      // from two selected cells: the start and one moved to with the keyboard
      for (const move of [[], ["PageDown", "PageDown", "PageDown", "End", "ArrowRight"]]) {
        if (move.length) {
          await page.focus("#block-svg polygon.cell[tabindex='0']");
          for (const k of move) await page.keyboard.press(k);
        }
        const sel = await selected(page);
        const cs = await cells(page);
        const shared = cs.filter((c) => c.shared);
        assert.equal(shared.length, expectedCount[m], `${m}: highlighted cells`);
        for (const c of cs) assert.equal(c.shared, member(m, G, C, sel.n, sel.c, c.n, c.c), `${m}: cell ${JSON.stringify(c)} with (${sel.n}, ${sel.c}) selected`);
        assert.equal(num((await page.textContent('#block-cell tr[data-key="count"] td'))!), expectedCount[m]);
      }
      // every group's mean and variance, as displayed (6 significant digits), against Node
      const rows = await page.$$eval("#block-groups tr[data-group]", (trs) =>
        trs.map((tr) => ({ k: Number((tr as unknown as Data).dataset["group"]), mean: tr.querySelector(".mean")!.textContent!, v: tr.querySelector(".var")!.textContent! })),
      );
      const ref = node[m];
      assert.equal(rows.length, ref.mean.length, `${m}: number of groups`);
      for (const r of rows) {
        const mean = ref.mean[r.k]!, variance = 1 / ref.rstd[r.k]! ** 2 - EPS;
        assert.ok(Math.abs(num(r.mean) - mean) <= 5e-6 * Math.max(1e-3, Math.abs(mean)), `${m} group ${r.k}: mean ${r.mean} vs ${mean}`);
        assert.ok(Math.abs(num(r.v) - variance) <= 5e-6 * Math.abs(variance) + 1e-9, `${m} group ${r.k}: variance ${r.v} vs ${variance}`);
      }
      // the selected cell's normalized value
      const sel = await selected(page);
      const hw = await page.$eval("#block-svg polygon.cell.selected", (p) => [Number((p as unknown as Data).dataset["h"]), Number((p as unknown as Data).dataset["w"])]);
      const yi = ((sel.n * C + sel.c) * H + hw[0]!) * W + hw[1]!;
      const yShown = num((await page.textContent('#block-cell tr[data-key="y"] td'))!);
      assert.ok(Math.abs(yShown - ref.y.data[yi]!) <= 5e-6 * Math.max(1e-3, Math.abs(ref.y.data[yi]!)), `${m}: normalized value`);
    }

    // Switchable Norm: move two weight sliders with the keyboard, check the blend against the
    // component statistics (paper convention: the biased IN, LN and BN statistics) mixed here
    await chooseMethod(page, "switchable_norm");
    await page.focus("#block-sn-mean-in");
    for (let i = 0; i < 6; i++) await page.keyboard.press("ArrowLeft");
    await page.focus("#block-sn-var-bn");
    for (let i = 0; i < 10; i++) await page.keyboard.press("ArrowLeft");
    const wm = await Promise.all(["in", "ln", "bn"].map(async (k) => Number(await page.inputValue(`#block-sn-mean-${k}`))));
    const wv = await Promise.all(["in", "ln", "bn"].map(async (k) => Number(await page.inputValue(`#block-sn-var-${k}`))));
    assert.notDeepEqual(wm, [1, 1, 1], "the arrow keys moved the IN weight of the mean");
    const norm = (w: number[]) => w.map((v) => v / (w[0]! + w[1]! + w[2]!));
    const [am, av] = [norm(wm), norm(wv)];
    const sel = await selected(page);
    assert.equal((await cells(page)).filter((c) => c.shared).length, H * W, "Switchable Norm: one blended statistic per (sample, channel)");
    const inI = sel.n * C + sel.c;
    const comp = {
      in: [node.instance_norm.mean[inI]!, 1 / node.instance_norm.rstd[inI]! ** 2 - EPS],
      ln: [node.layer_norm.mean[sel.n]!, 1 / node.layer_norm.rstd[sel.n]! ** 2 - EPS],
      bn: [node.batch_norm.mean[sel.c]!, 1 / node.batch_norm.rstd[sel.c]! ** 2 - EPS],
    };
    const mixMean = am[0]! * comp.in[0]! + am[1]! * comp.ln[0]! + am[2]! * comp.bn[0]!;
    const mixVar = av[0]! * comp.in[1]! + av[1]! * comp.ln[1]! + av[2]! * comp.bn[1]!;
    const snRow = async (k: string) => page.$$eval(`#block-sn-stats tr[data-component="${k}"] td`, (tds) => tds.map((td) => td.textContent!));
    for (const [k, [mu, v]] of Object.entries(comp)) {
      const r = await snRow(k);
      assert.ok(Math.abs(num(r[2]!) - mu!) <= 5e-6 * Math.max(1e-3, Math.abs(mu!)), `SN ${k} mean`);
      assert.ok(Math.abs(num(r[4]!) - v!) <= 5e-6 * Math.abs(v!), `SN ${k} variance`);
    }
    const mixed = await snRow("mixed");
    assert.ok(Math.abs(num(mixed[2]!) - mixMean) <= 5e-6 * Math.max(1e-3, Math.abs(mixMean)), `SN blended mean ${mixed[2]} vs ${mixMean}`);
    assert.ok(Math.abs(num(mixed[4]!) - mixVar) <= 5e-6 * Math.abs(mixVar), `SN blended variance ${mixed[4]} vs ${mixVar}`);
    // the variance convention by keyboard: the reference code's IN variance is the unbiased one
    await page.focus("#block-sn-variance");
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.inputValue("#block-sn-variance"), "reference");
    const S = H * W;
    const inRef = (await snRow("in"))[4]!;
    assert.ok(Math.abs(num(inRef) - (comp.in[1]! * S) / (S - 1)) <= 5e-6 * comp.in[1]!, `SN reference IN variance ${inRef}`);
    await page.keyboard.press("ArrowUp");
    assert.equal(await page.inputValue("#block-sn-variance"), "paper");

    // "New values" by keyboard: new input, same shapes
    const before = await page.textContent("#block-values");
    await page.focus("#block-reseed");
    await page.keyboard.press("Enter");
    assert.notEqual(await page.textContent("#block-values"), before, "Enter on New values draws new values");
    await page.keyboard.press("Space");
    assert.match((await page.textContent("#block-seed"))!, /seed 3/);

    // BatchNorm with one value per channel: normkit's error is shown, not thrown
    await chooseMethod(page, "batch_norm");
    await setSize(page, "#block-n", 1);
    await setSize(page, "#block-h", 1);
    await setSize(page, "#block-w", 1);
    assert.match((await page.textContent("#block-error"))!, /more than 1 value per channel/);
    assert.equal(await page.isVisible("#block-error"), true);

    if (process.env["NORMKIT_SCREENSHOT_DIR"]) {
      await setSize(page, "#block-n", N);
      await setSize(page, "#block-h", H);
      await setSize(page, "#block-w", W);
      await chooseMethod(page, "group_norm");
      await page.focus("#block-svg polygon.cell[tabindex='0']");
      for (const k of ["PageDown", "PageDown", "PageDown", "End"]) await page.keyboard.press(k);
      await page.mouse.move(0, 0);
      await page.screenshot({ path: join(ROOT, process.env["NORMKIT_SCREENSHOT_DIR"], "explorer-block.png"), fullPage: true });
    }

    assert.deepEqual(consoleErrors, [], "no console errors");
    const foreign = requests.filter((u) => new URL(u).origin !== origin);
    assert.deepEqual(foreign, [], "no request leaves the page's origin");
  });
});
