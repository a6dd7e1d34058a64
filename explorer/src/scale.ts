/**
 * View "Scale invariance": multiply the input x or the preceding layer's weights by λ and compare every
 * method's output with the output at λ = 1 — max |y(λ) − y(1)|, the relative change, the output-norm
 * ratio and two feature maps. Computed by normkit's layers on the CPU (scale_model.ts).
 */
import { diverging, fmt, h, paint, type ExplorerContext } from "./app.js";
import { METHODS, RECIPE, ScaleModel, type MethodResult, type ScaleRun, type Target } from "./scale_model.js";

const LOG_MIN = -2, LOG_MAX = 2; // λ from 0.01 to 100
/** Relative change up to which a row counts as unchanged: float32 rounding (2⁻²⁴ ≈ 6e-8 per value) and a few roundings more. */
const ROUNDING = 1e-6;
/** Relative change up to which an expected invariance counts as holding (what eps leaves at moderate λ). */
const CLOSE = 1e-3;

function round4(v: number): number {
  return Number(v.toPrecision(4));
}

export function mountScale(root: HTMLElement, ctx: ExplorerContext): void {
  const model = new ScaleModel(ctx.digits);
  const [, , rows, cols] = model.x.shape as [number, number, number, number];
  root.dataset["recipe"] = JSON.stringify(RECIPE);

  // ---- controls
  const slider = h("input", {
    type: "range", id: "scale-lambda", min: LOG_MIN, max: LOG_MAX, step: 0.05, value: 0,
    "aria-label": "λ, on a log scale from 0.01 to 100",
  });
  const number = h("input", {
    type: "number", id: "scale-lambda-value", min: 0.01, max: 100, step: "any", value: 1, inputmode: "decimal",
    "aria-label": "λ (0.01 to 100)", "aria-describedby": "scale-lambda-error",
  });
  const numberError = h("span", { id: "scale-lambda-error", class: "error", "aria-live": "polite" });
  const radio = (value: Target, text: string, checked: boolean) =>
    h("label", {}, h("input", { type: "radio", name: "scale-target", value, checked }), text);
  const targets = h(
    "fieldset", { id: "scale-target", role: "radiogroup" },
    h("legend", {}, "multiply by λ:"),
    radio("input", "the input x", true),
    radio("weights", "the preceding layer's weights (conv W; v for Weight Norm)", false),
  );
  const controls = h(
    "div", { class: "controls" },
    h("label", { for: "scale-lambda" }, "λ ", h("span", { class: "muted" }, "0.01"), slider, h("span", { class: "muted" }, "100")),
    h("label", { for: "scale-lambda-value" }, "λ =", number),
    numberError,
    targets,
  );

  // ---- table
  const tbody = h("tbody");
  const rowsById = new Map<string, { tr: HTMLTableRowElement; cells: Record<string, HTMLElement>; ref: HTMLCanvasElement; lam: HTMLCanvasElement }>();
  for (const m of METHODS) {
    const canvas = (label: string) => h("canvas", { width: cols, height: rows, class: "fmap", role: "img", "aria-label": label });
    const ref = canvas(`${m.label}: feature map at λ = 1`), lam = canvas(`${m.label}: feature map at λ`);
    const cells = {
      expect: h("td", { class: "expect" }),
      maxdiff: h("td", { class: "maxdiff" }),
      rel: h("td", { class: "rel" }),
      ratio: h("td", { class: "ratio" }),
      eps: h("td", { class: "eps" }),
      verdict: h("td", { class: "verdict" }),
    };
    const tr = h(
      "tr", { "data-method": m.id },
      h("th", { scope: "row" }, m.label, h("span", { class: "what" }, m.what)),
      cells.expect, cells.maxdiff, cells.rel, cells.ratio, cells.eps, cells.verdict,
      h("td", { class: "maps" }, ref, lam),
    );
    rowsById.set(m.id, { tr, cells, ref, lam });
    tbody.append(tr);
  }
  const table = h(
    "table", { class: "stats", id: "scale-table" },
    h("caption", { class: "note" }, "Every method's output at λ against its output at λ = 1 (the same input and weights otherwise)."),
    h(
      "thead", {},
      h(
        "tr", {},
        h("th", { scope: "col" }, "method"),
        h("th", { scope: "col" }, "theory"),
        h("th", { scope: "col" }, "max |y(λ) − y(1)|"),
        h("th", { scope: "col", title: "max |y(λ) − y(1)| / max |y(1)|" }, "relative change"),
        h("th", { scope: "col", title: "‖y(λ)‖₂ / ‖y(1)‖₂" }, "‖y(λ)‖ / ‖y(1)‖"),
        h("th", { scope: "col", title: "eps / (λ²·σ²min): how much eps weighs against the smallest variance the layer divides by" }, "eps / λ²σ²ₘᵢₙ"),
        h("th", { scope: "col" }, "measured"),
        h("th", { scope: "col" }, "y(1) | y(λ)"),
      ),
    ),
    tbody,
  );

  const backendNote = h("p", { class: "note", id: "scale-backend" });
  const epsNote = h("p", { id: "scale-eps-note" });
  const wnNote = h("p", { id: "scale-wn-note" });
  const whyList = h("ul", { id: "scale-why", class: "why" });

  root.replaceChildren(
    h("h2", {}, "Scale invariance"),
    h(
      "p", { class: "lead" },
      `Multiply the input, or the weights of the layer before the normalization, by λ: a normalized output should not change. `,
      `Input: digits ${RECIPE.digits.join(", ")} of the bundled MNIST sample (x = (p/255 − ${RECIPE.mean}) / ${RECIPE.std}), `,
      `through one ${RECIPE.kernel}×${RECIPE.kernel} convolution to ${RECIPE.outChannels} channels (no bias, seeded weights), then each method; `,
      `"no normalization" is the control that does change. The conv has no bias on purpose: a bias is not multiplied by λ, `,
      `so with one, LayerNorm and GroupNorm (whose statistics mix channels with different biases) would be only approximately invariant.`,
    ),
    controls,
    backendNote,
    table,
    h("p", { class: "note" }, `Feature maps: digit ${RECIPE.digits[0]}, the channel with the largest variance; blue negative, red positive, one colour scale per row: ±max |y(1)| of that map, so a map that scales with λ fades or saturates.`),
    epsNote,
    wnNote,
    h("h3", {}, "Why"),
    whyList,
  );

  const describeBackend = () => {
    backendNote.textContent = `Computed by normkit on the CPU (${ctx.cpuLabel}), float32` +
      (ctx.compute() === "webgpu" ? ` — this view always computes on the CPU, even with WebGPU selected above.` : ".");
    root.dataset["computed"] = "cpu";
  };
  describeBackend();
  ctx.onComputeChange(describeBackend);

  let lambda = 1;
  let target: Target = "input";
  let channel = -1; // chosen on the first run: the channel of digit 0 with the largest variance at λ = 1

  const render = (run: ScaleRun) => {
    const [, C] = run.shape as [number, number];
    const P = rows * cols;
    if (channel < 0) {
      const none = run.results.find((r) => r.id === "none")!.yRef;
      let best = -1;
      for (let c = 0; c < C; c++) {
        let s = 0, s2 = 0;
        for (let i = 0; i < P; i++) {
          s += none[c * P + i]!;
          s2 += none[c * P + i]! ** 2;
        }
        const v = s2 / P - (s / P) ** 2;
        if (v > best) [best, channel] = [v, c];
      }
    }
    let worstEps: MethodResult | null = null;
    for (const r of run.results) {
      const m = METHODS.find((x) => x.id === r.id)!;
      const row = rowsById.get(r.id)!;
      const inv = m.invariant[run.target];
      const verdict = r.rel <= ROUNDING ? "unchanged (float rounding)" : inv ? (r.rel <= CLOSE ? "invariant up to eps" : "approximate: eps matters") : `changes: ‖y‖ ×${fmt(r.ratio)}`;
      const kind = r.rel <= ROUNDING ? "same" : inv ? (r.rel <= CLOSE ? "close" : "approx") : "differs";
      Object.assign(row.tr.dataset, {
        maxdiff: String(r.maxDiff), rel: String(r.rel), ratio: String(r.ratio), maxref: String(r.maxRef),
        expectInvariant: String(inv), epsShare: r.epsShare === null ? "" : String(r.epsShare), verdict,
      });
      row.tr.classList.toggle("changes", !inv);
      row.cells.expect.textContent = inv ? "invariant" : "scales with λ";
      row.cells.maxdiff.textContent = fmt(r.maxDiff);
      // relative change, with a bar on a log scale from 1e-8 to 1e2
      const w = r.rel > 0 ? Math.max(0, Math.min(1, (Math.log10(r.rel) + 8) / 10)) : 0;
      row.cells.rel.replaceChildren(h("span", { class: "num" }, fmt(r.rel)), h("span", { class: "bar", style: `width:${(60 * w).toFixed(1)}px`, "aria-hidden": "true" }));
      row.cells.ratio.textContent = fmt(r.ratio);
      row.cells.eps.textContent = r.epsShare === null ? "–" : fmt(r.epsShare, 3);
      row.cells.verdict.textContent = verdict;
      row.cells.verdict.className = `verdict ${kind}`;
      let scale = 0;
      for (let i = 0; i < P; i++) scale = Math.max(scale, Math.abs(r.yRef[channel * P + i]!));
      paint(row.ref, rows, cols, (i) => diverging(r.yRef[channel * P + i]! / (scale || 1)));
      paint(row.lam, rows, cols, (i) => diverging(r.yLam[channel * P + i]! / (scale || 1)));
      row.lam.setAttribute("aria-label", `${m.label}: feature map at λ = ${fmt(run.lambda)}`);
      if (r.epsShare !== null && (!worstEps || r.rel > worstEps.rel)) worstEps = r;
    }

    const L = String(run.lambda);
    const eps = RECIPE.eps.toExponential();
    if (worstEps) {
      const m = METHODS.find((x) => x.id === worstEps!.id)!;
      epsNote.textContent = run.lambda < 1
        ? `eps makes the invariance approximate at small λ: λ = ${L} shrinks every variance ${fmt(1 / run.lambda ** 2, 3)}×, and BN, LN, IN and GN divide by √(λ²σ² + eps) with eps = ${eps}; eps/(λ²σ²ₘᵢₙ) reaches ${fmt(worstEps.epsShare!, 3)} here (${m.label}), so its output moves by up to ${fmt(worstEps.rel, 3)} of its largest value.`
        : `eps matters only where λ²σ² is not much larger than eps = ${eps}: at λ = ${L}, eps/(λ²σ²ₘᵢₙ) is at most ${fmt(worstEps.epsShare!, 3)}, and the largest relative change of BN, LN, IN and GN is ${fmt(worstEps.rel, 3)} — not 0, because the reference y(1) has eps in it too (about eps/2σ² relative). Try λ = 0.01.`;
    }
    const wn = run.results.find((r) => r.id === "weight_norm")!;
    wnNote.textContent = run.target === "input"
      ? `Weight Norm normalizes weights, not inputs: with x scaled by λ = ${L} its output scales by ${fmt(wn.ratio)} (it is invariant to weight scaling only — switch to "weights" to see it; a norm layer after it would restore input invariance). Cosine Norm normalizes both the weights and the input, so it is invariant to either.`
      : `Weight Norm is invariant to scaling v (W = g·v/‖v‖ does not change; the remaining ${fmt(wn.rel, 3)} is float32 rounding), but not to scaling its input — switch to "the input x". Cosine Norm is invariant to both.`;
    whyList.replaceChildren(...METHODS.map((m) => h("li", { "data-method": m.id }, h("strong", {}, `${m.label}: `), m.why[run.target])));
    root.dataset["lambda"] = String(run.lambda);
    root.dataset["target"] = run.target;
  };

  const update = () => {
    try {
      render(model.compute(lambda, target));
    } catch (e) {
      ctx.fail("scale", e);
    }
  };

  slider.setAttribute("aria-valuetext", "λ = 1");
  slider.addEventListener("input", () => {
    lambda = round4(10 ** Number(slider.value));
    number.value = String(lambda);
    number.removeAttribute("aria-invalid");
    numberError.textContent = "";
    slider.setAttribute("aria-valuetext", `λ = ${lambda}`);
    update();
  });
  number.addEventListener("input", () => {
    const v = Number(number.value);
    if (number.value.trim() === "" || !Number.isFinite(v) || v < 0.01 || v > 100) {
      number.setAttribute("aria-invalid", "true");
      numberError.textContent = "λ must be a number from 0.01 to 100";
      return;
    }
    number.removeAttribute("aria-invalid");
    numberError.textContent = "";
    lambda = v;
    slider.value = String(Math.log10(v));
    slider.setAttribute("aria-valuetext", `λ = ${v}`);
    update();
  });
  targets.addEventListener("change", (ev) => {
    const t = (ev.target as HTMLInputElement).value;
    if (t === "input" || t === "weights") {
      target = t;
      update();
    }
  });
  update();
}
