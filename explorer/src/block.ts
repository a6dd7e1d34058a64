/**
 * "Which values share statistics": an N×C×H×W block drawn as N towers (one per sample) of C floors
 * (one per channel), each floor an H×W grid in isometric projection. Choosing a method highlights
 * the values that share one mean and variance with the selected cell; hovering or focusing a cell
 * selects it and shows its group's statistics, computed by normkit in float64 (block_model.ts).
 *
 * Keyboard: Tab reaches the block (one cell in the tab order); arrows move along W and H, PageUp /
 * PageDown along C, Home / End along N.
 */
import { h, s, fmt, type ExplorerContext } from "./app.js";
import {
  BLOCK_METHODS, METHOD_LABEL, SIZE_LIMITS, computeBlock, demoInput, divisors, sharingSets,
  type BlockMethod, type BlockResult, type BlockShape, type SwitchWeights,
} from "./block_model.js";
import type { Tensor } from "../../src/index.js";

const COS30 = Math.cos(Math.PI / 6), SIN30 = 0.5;
const METHOD_COLOR: Record<BlockMethod, string> = {
  batch_norm: "#2563eb", layer_norm: "#16a34a", instance_norm: "#9333ea", group_norm: "#dc2626", switchable_norm: "#ea580c",
};
const WHAT: Record<BlockMethod, string> = {
  batch_norm: "one mean and variance per channel, over the batch and all positions (N·H·W values). Each sample's output depends on its batch-mates.",
  layer_norm: "one mean and variance per sample, over all its channels and positions (C·H·W values). Independent of the batch.",
  instance_norm: "one mean and variance per sample and channel, over the positions (H·W values). Independent of the batch.",
  group_norm: "one mean and variance per sample and group of C/G consecutive channels (C/G·H·W values). G = 1 is LayerNorm, G = C is InstanceNorm.",
  switchable_norm: "each (sample, channel) is normalized with a learned blend of its InstanceNorm, LayerNorm and BatchNorm statistics: μ = Σ wₖ μₖ, σ² = Σ w′ₖ σ²ₖ.",
};

interface State {
  shape: BlockShape;
  method: BlockMethod;
  gIndex: number; // index into divisors(C)
  seed: number;
  sel: { n: number; c: number; h: number; w: number };
  sw: SwitchWeights;
  swVariance: "paper" | "reference";
}

export function mountBlock(root: HTMLElement, _ctx: ExplorerContext): void {
  const st: State = {
    shape: { N: 4, C: 6, H: 3, W: 3 },
    method: "batch_norm",
    gIndex: 1,
    seed: 1,
    sel: { n: 0, c: 0, h: 0, w: 0 },
    sw: { mean: [1, 1, 1], variance: [1, 1, 1] },
    swVariance: "paper",
  };
  let x: Tensor; // set by newInput(), with the JSON of its values
  let result: BlockResult | null = null;
  let cells: SVGPolygonElement[] = [];

  // --- controls -----------------------------------------------------------------------------
  const sizeInputs = {} as Record<keyof BlockShape, HTMLInputElement>;
  const sizes = h("fieldset", { class: "sizes" }, h("legend", {}, "Sizes"));
  for (const k of ["N", "C", "H", "W"] as const) {
    const [lo, hi] = SIZE_LIMITS[k];
    const inp = h("input", { type: "number", id: `block-${k.toLowerCase()}`, min: lo, max: hi, step: 1, value: st.shape[k] });
    sizeInputs[k] = inp;
    sizes.append(h("label", { for: inp.id }, k, inp));
    inp.addEventListener("change", () => {
      const v = Math.round(Number(inp.value));
      st.shape = { ...st.shape, [k]: Math.min(hi, Math.max(lo, Number.isFinite(v) ? v : st.shape[k])) };
      inp.value = String(st.shape[k]);
      const divs = divisors(st.shape.C);
      st.gIndex = Math.min(st.gIndex, divs.length - 1);
      st.sel = { n: Math.min(st.sel.n, st.shape.N - 1), c: Math.min(st.sel.c, st.shape.C - 1), h: Math.min(st.sel.h, st.shape.H - 1), w: Math.min(st.sel.w, st.shape.W - 1) };
      newInput();
      rebuild();
    });
  }
  const methods = h("fieldset", { class: "methods", role: "radiogroup" }, h("legend", {}, "Method"));
  for (const m of BLOCK_METHODS) {
    const r = h("input", { type: "radio", name: "block-method", id: `block-method-${m}`, value: m, checked: m === st.method });
    r.addEventListener("change", () => {
      if (!r.checked) return;
      st.method = m;
      recompute();
    });
    methods.append(h("label", { for: r.id, style: `--c:${METHOD_COLOR[m]}` }, r, METHOD_LABEL[m]));
  }
  const gInput = h("input", { type: "range", id: "block-g", min: 0, max: 0, step: 1, value: st.gIndex });
  const gText = h("output", { for: "block-g", id: "block-g-value" });
  const gLabel = h("label", { for: "block-g", class: "g-control" }, "Groups G ", gInput, gText);
  gInput.addEventListener("input", () => {
    st.gIndex = Number(gInput.value);
    recompute();
  });
  const reseed = h("button", { type: "button", id: "block-reseed" }, "New values");
  reseed.addEventListener("click", () => {
    st.seed += 1;
    newInput();
    recompute();
  });
  const seedText = h("span", { class: "note", id: "block-seed" });
  const controls = h("div", { class: "controls" }, sizes, methods, gLabel, reseed, seedText);

  // Switchable Norm: weights of the IN, LN and BN statistics for the mean and for the variance.
  const swInputs: HTMLInputElement[] = [];
  const swOut: HTMLOutputElement[] = [];
  const swTable = h("table", { class: "stats sw-weights" });
  swTable.append(h("tr", {}, h("th", {}, ""), h("th", {}, "IN"), h("th", {}, "LN"), h("th", {}, "BN")));
  (["mean", "variance"] as const).forEach((which) => {
    const tr = h("tr", {}, h("th", { scope: "row" }, which === "mean" ? "weights of μ" : "weights of σ²"));
    ["in", "ln", "bn"].forEach((comp, j) => {
      const id = `block-sn-${which === "mean" ? "mean" : "var"}-${comp}`;
      const inp = h("input", { type: "range", id, min: 0, max: 1, step: 0.05, value: 1, "aria-label": `Switchable Norm ${comp.toUpperCase()} weight of the ${which}` });
      const out = h("output", { for: id, id: `${id}-value` });
      inp.addEventListener("input", () => {
        st.sw[which][j] = Number(inp.value);
        recompute();
      });
      swInputs.push(inp);
      swOut.push(out);
      tr.append(h("td", {}, inp, " ", out));
    });
    swTable.append(tr);
  });
  const swVar = h("select", { id: "block-sn-variance" });
  swVar.append(new Option("paper (biased variances)", "paper"), new Option("reference code (unbiased IN variance)", "reference"));
  swVar.addEventListener("change", () => {
    st.swVariance = swVar.value === "reference" ? "reference" : "paper";
    recompute();
  });
  const swPanel = h(
    "div", { class: "controls sw-panel", id: "block-sn" },
    h("div", {}, h("strong", {}, "Switchable Norm weights"), h("p", { class: "note" }, "Learned in training as softmax(logits); set here directly. They are normalized to sum to 1."), swTable),
    h("label", { for: "block-sn-variance" }, "variance convention ", swVar),
  );

  // --- picture and panels -------------------------------------------------------------------
  const svgHost = h("div", { class: "block-svg" });
  const summary = h("p", { class: "lead", id: "block-summary", "aria-live": "polite" });
  const error = h("p", { class: "error-msg", id: "block-error", role: "alert", hidden: true });
  const cellPanel = h("div", { class: "cell-panel", id: "block-cell", "aria-live": "polite" });
  const groupsTable = h("table", { class: "stats", id: "block-groups" });
  const valuesPre = h("pre", { id: "block-values", class: "values" });
  const legend = h("p", { class: "note" }, "Keyboard: Tab to the block, then arrows move along W and H, PageUp / PageDown along C, Home / End along N. Hover or focus a cell to select it.");

  root.append(
    h("h2", {}, "Which values share one mean and variance?"),
    h("p", { class: "lead" }, "A batch of N samples with C channels of H×W values, drawn as one tower per sample with one floor per channel. Pick a method: the highlighted values share the selected cell's mean and variance. All statistics on this page are computed by normkit, in float64, on the CPU."),
    controls,
    swPanel,
    summary,
    error,
    h("div", { class: "block-layout" }, h("div", {}, svgHost, legend), h("div", { class: "side" }, cellPanel, h("h3", {}, "Every group's statistics"), h("div", { class: "scroll" }, groupsTable))),
    h("details", {}, h("summary", {}, "The input values (JSON)"), valuesPre),
  );

  // --- drawing --------------------------------------------------------------------------------
  /** A new input for the current sizes and seed (and its values as JSON, shown under the picture). */
  function newInput(): void {
    x = demoInput(st.shape, st.seed);
    valuesPre.textContent = JSON.stringify({ shape: x.shape, seed: st.seed, data: Array.from(x.data) });
  }

  function rebuild(): void {
    const { N, C, H, W } = st.shape;
    const cs = Math.max(6, Math.min(24, 400 / (C * (H + W) * SIN30 + 1), 760 / (N * (H + W) * COS30 + 2.5 * N)));
    const floorW = (H + W) * cs * COS30, floorH = (H + W) * cs * SIN30;
    const floorGap = floorH + cs * 0.6;
    const towerGap = floorW + 2.2 * cs + 12;
    const left = 44, top = 24;
    const width = left + N * towerGap, height = top + C * floorGap + 30;
    const svg = s("svg", { viewBox: `0 0 ${width.toFixed(1)} ${height.toFixed(1)}`, width: width.toFixed(0), height: height.toFixed(0), role: "grid", "aria-label": `input block, ${N}×${C}×${H}×${W}`, id: "block-svg" });
    // a point of floor c of tower n, at grid position (row r, column q) in cell units
    const P = (n: number, c: number, r: number, q: number): [number, number] => [
      left + n * towerGap + (H * cs * COS30) + (q - r) * cs * COS30,
      top + c * floorGap + (q + r) * cs * SIN30,
    ];
    const pts = (a: [number, number][]) => a.map(([u, v]) => `${u.toFixed(1)},${v.toFixed(1)}`).join(" ");
    cells = [];
    for (let n = 0; n < N; n++) {
      const tower = s("g", { class: "tower", "data-n": n, role: "rowgroup", "aria-label": `sample ${n}` });
      // the block's vertical edges, behind the floors
      if (C > 1) {
        for (const [r, q] of [[H, 0], [0, W], [H, W]] as [number, number][]) {
          const [x0, y0] = P(n, 0, r, q), [, y1] = P(n, C - 1, r, q);
          tower.append(s("line", { x1: x0, y1: y0, x2: x0, y2: y1, class: "edge" }));
        }
      }
      for (let c = 0; c < C; c++) {
        for (let hh = 0; hh < H; hh++) {
          for (let w = 0; w < W; w++) {
            const v = x.data[((n * C + c) * H + hh) * W + w]!;
            const poly = s("polygon", {
              class: "cell", points: pts([P(n, c, hh, w), P(n, c, hh, w + 1), P(n, c, hh + 1, w + 1), P(n, c, hh + 1, w)]),
              "data-n": n, "data-c": c, "data-h": hh, "data-w": w, tabindex: -1, role: "gridcell",
              "aria-label": `sample ${n}, channel ${c}, row ${hh}, column ${w}: ${fmt(v)}`,
            });
            poly.style.setProperty("--l", `${(88 - 40 * sigmoid(v / 2)).toFixed(1)}%`);
            tower.append(poly);
            cells.push(poly);
          }
        }
        if (n === 0) {
          const [lx, ly] = P(0, c, H, 0);
          tower.append(s("text", { x: lx - 6, y: ly - floorH / 2 + 4, class: "axis", "text-anchor": "end" }, `c=${c}`));
        }
      }
      const [bx, by] = P(n, C - 1, H, W);
      tower.append(s("text", { x: bx, y: by + 18, class: "axis", "text-anchor": "middle" }, `sample ${n}`));
      svg.append(tower);
    }
    svgHost.replaceChildren(svg);
    svg.addEventListener("mouseover", (ev) => {
      const t = ev.target as Element;
      if (t instanceof SVGPolygonElement && t.classList.contains("cell")) select(cellPos(t), false);
    });
    svg.addEventListener("focusin", (ev) => {
      const t = ev.target as Element;
      if (t instanceof SVGPolygonElement && t.classList.contains("cell")) select(cellPos(t), false);
    });
    svg.addEventListener("keydown", onKey);
    recompute();
  }

  function cellPos(p: SVGPolygonElement): State["sel"] {
    const d = p.dataset;
    return { n: Number(d["n"]), c: Number(d["c"]), h: Number(d["h"]), w: Number(d["w"]) };
  }
  function cellAt(sel: State["sel"]): SVGPolygonElement {
    const { C, H, W } = st.shape;
    return cells[((sel.n * C + sel.c) * H + sel.h) * W + sel.w]!;
  }

  function onKey(ev: KeyboardEvent): void {
    const { N, C, H, W } = st.shape;
    const p = { ...st.sel };
    switch (ev.key) {
      case "ArrowRight": p.w = Math.min(W - 1, p.w + 1); break;
      case "ArrowLeft": p.w = Math.max(0, p.w - 1); break;
      case "ArrowDown": p.h = Math.min(H - 1, p.h + 1); break;
      case "ArrowUp": p.h = Math.max(0, p.h - 1); break;
      case "PageDown": p.c = Math.min(C - 1, p.c + 1); break;
      case "PageUp": p.c = Math.max(0, p.c - 1); break;
      case "End": p.n = Math.min(N - 1, p.n + 1); break;
      case "Home": p.n = Math.max(0, p.n - 1); break;
      default: return;
    }
    ev.preventDefault();
    select(p, true);
  }

  function select(p: State["sel"], focus: boolean): void {
    st.sel = p;
    for (const c of cells) c.tabIndex = -1;
    const cell = cellAt(p);
    cell.tabIndex = 0;
    if (focus) cell.focus();
    highlight();
  }

  function recompute(): void {
    const divs = divisors(st.shape.C);
    gInput.max = String(divs.length - 1);
    gInput.value = String(st.gIndex);
    const G = divs[st.gIndex]!;
    gText.textContent = `${G} (${st.shape.C / G} channel${st.shape.C / G === 1 ? "" : "s"} per group)`;
    gInput.setAttribute("aria-valuetext", `G = ${G}`);
    gLabel.hidden = st.method !== "group_norm";
    swPanel.hidden = st.method !== "switchable_norm";
    seedText.textContent = `seed ${st.seed}`;
    swInputs.forEach((inp, i) => {
      const which = i < 3 ? st.sw.mean : st.sw.variance;
      const sum = which[0] + which[1] + which[2];
      swOut[i]!.textContent = sum > 0 ? (which[i % 3]! / sum).toFixed(2) : "—";
    });
    try {
      if (st.method === "switchable_norm" && st.sw.mean.every((v) => v <= 0)) throw new Error("Switchable Norm: at least one weight of μ must be above 0");
      if (st.method === "switchable_norm" && st.sw.variance.every((v) => v <= 0)) throw new Error("Switchable Norm: at least one weight of σ² must be above 0");
      result = computeBlock(x, st.method, { groups: G, switchWeights: st.sw, switchVariance: st.swVariance });
      error.hidden = true;
      error.textContent = "";
    } catch (e) {
      result = null;
      error.hidden = false;
      error.textContent = `normkit: ${(e as Error).message}`;
    }
    const r = result;
    const per = r ? r.groups[0]!.count : 0;
    summary.replaceChildren(
      h("strong", { style: `color:${METHOD_COLOR[st.method]}` }, METHOD_LABEL[st.method]),
      `: ${WHAT[st.method]} `,
      r ? h("span", { id: "block-count" }, `Here ${per} values share each statistic, ${r.groups.length} statistic${r.groups.length === 1 ? "" : "s"} in all.`) : "",
    );
    groupsTable.replaceChildren(h("tr", {}, h("th", {}, "group"), h("th", {}, "values"), h("th", {}, "mean"), h("th", {}, "variance")));
    if (r) {
      for (const g of r.groups) {
        groupsTable.append(h("tr", { "data-group": g.index }, h("td", {}, g.label), h("td", {}, String(g.count)), h("td", { class: "mean" }, fmt(g.mean, 6)), h("td", { class: "var" }, fmt(g.variance, 6))));
      }
    }
    select(st.sel, false);
  }

  function highlight(): void {
    const r = result;
    const { C, H, W } = st.shape;
    const { n: n0, c: c0, h: h0, w: w0 } = st.sel;
    const sets = r ? sharingSets(r, n0, c0) : null;
    const svg = svgHost.firstElementChild as SVGSVGElement | null;
    svg?.style.setProperty("--hl", METHOD_COLOR[st.method]);
    if (r?.switchable) {
      const wsum = (a: number[]) => a[0]! + a[1]! + a[2]!;
      svg?.style.setProperty("--ln-o", (st.sw.mean[1] / (wsum(st.sw.mean) || 1)).toFixed(2));
      svg?.style.setProperty("--bn-o", (st.sw.mean[2] / (wsum(st.sw.mean) || 1)).toFixed(2));
    }
    for (const cell of cells) {
      const n = Number(cell.dataset["n"]), c = Number(cell.dataset["c"]);
      const shared = !!sets?.shared(n, c);
      cell.classList.toggle("shared", shared);
      cell.classList.toggle("sn-ln", !shared && !!sets?.ln(n, c));
      cell.classList.toggle("sn-bn", !shared && !!sets?.bn(n, c));
      cell.classList.toggle("selected", n === n0 && c === c0 && Number(cell.dataset["h"]) === h0 && Number(cell.dataset["w"]) === w0);
    }
    if (!r) {
      cellPanel.replaceChildren(h("p", { class: "muted" }, "No statistics: see the error above."));
      return;
    }
    const i = ((n0 * C + c0) * H + h0) * W + w0;
    const k = r.statOfNC[n0 * C + c0]!;
    const g = r.groups[k]!;
    for (const tr of groupsTable.querySelectorAll("tr[data-group]")) tr.classList.toggle("current", Number((tr as HTMLElement).dataset["group"]) === k);
    const rows: [string, string, string][] = [
      ["value x", fmt(x.data[i]!, 6), "x"],
      ["group", g.label, "group"],
      ["values in the group", String(g.count), "count"],
      ["mean μ", fmt(g.mean, 6), "mean"],
      ["variance σ²", fmt(g.variance, 6), "var"],
      ["normalized (x − μ)/√(σ² + ε)", fmt(r.y[i]!, 6), "y"],
    ];
    const panel = h("div", {}, h("h3", {}, `Cell: sample ${n0}, channel ${c0}, row ${h0}, column ${w0}`));
    const t = h("table", { class: "stats" });
    for (const [a, b, key] of rows) t.append(h("tr", { "data-key": key }, h("th", { scope: "row" }, a), h("td", {}, b)));
    panel.append(t);
    const sn = r.switchable;
    if (sn) {
      const wm = sn.weights.mean, wv = sn.weights.variance;
      const comp = h("table", { class: "stats", id: "block-sn-stats" });
      comp.append(h("tr", {}, h("th", {}, "statistic"), h("th", {}, "w(μ)"), h("th", {}, "μ"), h("th", {}, "w(σ²)"), h("th", {}, "σ²")));
      const add = (name: string, key: string, a: number, m: number, b: number, v: number) =>
        comp.append(h("tr", { "data-component": key }, h("td", {}, name), h("td", {}, a.toFixed(3)), h("td", {}, fmt(m, 6)), h("td", {}, b.toFixed(3)), h("td", {}, fmt(v, 6))));
      if (sn.in) add("IN: this sample and channel", "in", wm.in, sn.in.mean[n0 * C + c0]!, wv.in, sn.in.variance[n0 * C + c0]!);
      add("LN: this sample", "ln", wm.ln, sn.ln.mean[n0]!, wv.ln, sn.ln.variance[n0]!);
      if (sn.bn) add("BN: this channel, all samples", "bn", wm.bn, sn.bn.mean[c0]!, wv.bn, sn.bn.variance[c0]!);
      comp.append(h("tr", { "data-component": "mixed", class: "total" }, h("td", {}, "blended"), h("td", {}, "1"), h("td", {}, fmt(sn.mean[n0 * C + c0]!, 6)), h("td", {}, "1"), h("td", {}, fmt(sn.variance[n0 * C + c0]!, 6))));
      panel.append(h("h3", {}, "The blend"), comp, h("p", { class: "note" }, "Shaded: the LN set (this sample) and the BN set (this channel) whose statistics enter the blend, more opaque the larger their weight of μ."));
    }
    cellPanel.replaceChildren(panel);
  }

  newInput();
  rebuild();
}

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}
