/**
 * "Live on MNIST": a batch of real digits through a fixed convolution, then BatchNorm, LayerNorm,
 * InstanceNorm and GroupNorm, computed by normkit in the page (live_model.ts). One image — the
 * tracked one, batch position 0 — is shown before and after each method with the statistics that
 * normalised it. Resampling its batch-mates moves BatchNorm's output for it (in training mode, its
 * statistics are the batch's) and leaves the per-sample methods' exactly where they were.
 *
 * For tests: #live-batch-strip[data-indices] lists the batch's sample indices; each method panel
 * [data-method] carries data-change (max |Δ| of the tracked output since the previous update, ""
 * when there is none) and data-sum / data-abs / data-sq (Σy, Σ|y|, Σy² of the tracked output);
 * statistics cells carry data-v (the full-precision value behind the text); #view-live[data-updates]
 * counts finished updates.
 */
import { diverging, fmt, h, paint, type Compute, type ExplorerContext } from "./app.js";
import {
  BACKGROUND, BATCH_MAX, BATCH_MIN, C, FILTERS, GROUP_CHOICES, KERNEL, LiveModel, METHODS, MOMENTUM, WARMUP, maxAbsDiff,
  type LiveResult, type Method,
} from "./live_model.js";

const NAMES: Record<Method, { title: string; colour: string; what: string }> = {
  batch_norm: { title: "BatchNorm", colour: "var(--bn)", what: "one mean and variance per channel, over the whole batch" },
  layer_norm: { title: "LayerNorm", colour: "var(--ln)", what: "one mean and variance per image, over all its channels" },
  instance_norm: { title: "InstanceNorm", colour: "var(--in)", what: "one mean and variance per channel of each image" },
  group_norm: { title: "GroupNorm", colour: "var(--gn)", what: "one mean and variance per group of channels of each image" },
};
/** The fixed colour scale of feature maps: −RANGE (blue) … 0 (white) … +RANGE (red). */
const RANGE = 3;
const MAP_PX = 56;

function mapCanvas(label: string): HTMLCanvasElement {
  return h("canvas", { width: 28, height: 28, class: "map", role: "img", "aria-label": label, title: label });
}

function statCell(stat: string, v: number): HTMLTableCellElement {
  return h("td", { "data-stat": stat, "data-v": String(v) }, fmt(v));
}

export function mountLive(root: HTMLElement, ctx: ExplorerContext): Promise<void> {
  const model = new LiveModel(ctx.digits, { batch: 8, groups: 2 });
  model.warmUp(); // BatchNorm in training mode over the sample: running statistics for eval mode

  // ---- controls (native elements: keyboard-operable as they are)
  const resample = h("button", { id: "live-resample", type: "button" }, "Resample the batch");
  const batch = h("input", { id: "live-batch", type: "number", min: BATCH_MIN, max: BATCH_MAX, step: 1, value: model.indices.length });
  const groups = h("select", { id: "live-groups" }, ...GROUP_CHOICES.map((g) => h("option", { value: g, selected: g === model.gn.numGroups }, String(g))));
  const radio = (mode: "train" | "eval", text: string) => {
    const input = h("input", { type: "radio", name: "live-bn-mode", id: `live-bn-${mode}`, value: mode, checked: mode === model.bnMode });
    return [input, h("label", { for: input.id }, text)] as const;
  };
  const [train, trainLabel] = radio("train", "train (batch statistics)");
  const [evalIn, evalLabel] = radio("eval", "eval (running statistics)");
  const modeSet = h("fieldset", { id: "live-bn-mode" }, h("legend", {}, "BatchNorm mode"), train, trainLabel, evalIn, evalLabel);

  const backendLine = h("p", { id: "live-backend", class: "note", role: "status", "aria-live": "polite" });
  const updateLine = h("p", { id: "live-update", class: "note" });

  // ---- the batch and the tracked image before normalisation
  const strip = h("div", { id: "live-batch-strip", class: "strip" });
  const batchN = h("span", { class: "muted", id: "live-batch-n" });
  const filters = h("div", {
    id: "live-filters", class: "maps",
    "data-weights": JSON.stringify(FILTERS.map((f) => f.w)), "data-kernel": KERNEL, "data-pad-value": BACKGROUND,
  });
  const rawMaps = FILTERS.map((f, c) => mapCanvas(`conv channel ${c} (${f.name})`));
  FILTERS.forEach((f, c) => {
    const k = h("canvas", { width: KERNEL, height: KERNEL, class: "kernel", role: "img", "aria-label": `filter ${c}: ${f.name}`, title: f.w.map((v) => fmt(v, 3)).join(" ") });
    const m = Math.max(...f.w.map(Math.abs));
    paint(k, KERNEL, KERNEL, (i) => diverging(f.w[i]! / m));
    filters.append(h("figure", {}, k, rawMaps[c]!, h("figcaption", {}, `${c}: ${f.name}`)));
  });

  // ---- one panel per method
  const panels = {} as Record<Method, { box: HTMLElement; change: HTMLElement; maps: HTMLCanvasElement[]; table: HTMLTableElement; caption: HTMLElement }>;
  const grid = h("div", { class: "methods" });
  for (const m of METHODS) {
    const n = NAMES[m];
    const change = h("output", { class: "change" }, "—");
    const maps = FILTERS.map((f, c) => mapCanvas(`${n.title} output, channel ${c} (${f.name})`));
    const caption = h("p", { class: "note" });
    const table = h("table", { class: "stats", "data-stats": m });
    const box = h("section", { class: "method", "data-method": m, style: `--c:${n.colour}`, "aria-label": n.title },
      h("h3", {}, n.title),
      h("p", { class: "note what" }, n.what),
      h("p", { class: "delta" }, h("span", { title: "the largest absolute difference between the tracked image's output now and at the previous update" }, "max |Δ| since last update: "), change),
      h("div", { class: "maps" }, ...maps), caption, table);
    panels[m] = { box, change, maps, table, caption };
    grid.append(box);
  }

  const scale = h("span", { class: "scale", "aria-hidden": "true" });
  root.append(
    h("h2", {}, "Live on MNIST: the same digit, different batch-mates"),
    h("p", { class: "lead" },
      `Real MNIST digits through a fixed convolution (${C} hand-made ${KERNEL}×${KERNEL} filters), then each method. The outlined digit is tracked. `,
      "Resample its batch-mates: BatchNorm's output for it moves (its statistics are the batch's), while LayerNorm's, InstanceNorm's and GroupNorm's stay exactly put. ",
      "In eval mode BatchNorm uses its running statistics and stops depending on the batch too."),
    h("div", { class: "controls" },
      resample,
      h("label", { for: batch.id }, "Batch size"), batch,
      h("label", { for: groups.id }, "GroupNorm groups G"), groups,
      modeSet),
    backendLine,
    h("div", { class: "top" },
      h("section", {}, h("h3", {}, "The batch ", batchN), strip),
      h("section", {},
        h("h3", {}, "Before: filters and the tracked image's conv feature maps"),
        filters)),
    h("div", { class: "legend" }, h("p", { class: "note" }, `Feature maps: −${RANGE} `, scale, ` +${RANGE} (fixed scale; white = 0).`), updateLine),
    grid,
  );

  // ---- rendering
  let previous: Partial<Record<Method, Float32Array>> = {};
  let updates = 0;

  function render(r: LiveResult, reason: string): void {
    const { height: H, width: W } = r;
    const plane = H * W;
    const { rows, cols, pixels, labels } = ctx.digits;
    strip.dataset["indices"] = r.indices.join(",");
    batchN.textContent = `(N = ${r.indices.length})`;
    strip.replaceChildren(...r.indices.map((k, n) => {
      const cv = h("canvas", { width: cols, height: rows, class: n === 0 ? "digit tracked" : "digit", role: "img", "aria-label": `sample ${k}: a ${labels[k]}${n === 0 ? " (tracked)" : ""}` });
      paint(cv, rows, cols, (i) => {
        const v = 255 - pixels[k * rows * cols + i]!;
        return [v, v, v];
      });
      return h("figure", { "data-index": k }, cv, h("figcaption", {}, n === 0 ? `#${k} tracked` : `#${k}`));
    }));
    rawMaps.forEach((cv, c) => paint(cv, H, W, (i) => diverging(r.raw[c * plane + i]! / RANGE)));

    for (const m of METHODS) {
      const p = panels[m], out = r.methods[m];
      p.maps.forEach((cv, c) => paint(cv, H, W, (i) => diverging(out.tracked[c * plane + i]! / RANGE)));
      const prev = previous[m];
      const d = prev && prev.length === out.tracked.length ? maxAbsDiff(prev, out.tracked) : null;
      previous[m] = out.tracked;
      p.change.textContent = d === null ? "— (first update)" : fmt(d);
      p.box.dataset["change"] = d === null ? "" : String(d);
      let sum = 0, abs = 0, sq = 0;
      for (const v of out.tracked) [sum, abs, sq] = [sum + v, abs + Math.abs(v), sq + v * v];
      Object.assign(p.box.dataset, { sum: String(sum), abs: String(abs), sq: String(sq) });
      p.box.classList.toggle("moved", d !== null && d > 0);

      const bn = m === "batch_norm";
      const head = ["", "mean", "var", ...(bn ? ["running mean", "running var"] : [])];
      p.table.replaceChildren(
        h("thead", {}, h("tr", {}, ...head.map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, ...out.stats.map((s, g) => h("tr", { "data-group": g },
          h("th", { scope: "row" }, s.label), statCell("mean", s.mean), statCell("var", s.variance),
          ...(bn ? [statCell("running_mean", r.running.mean[g]!), statCell("running_var", r.running.variance[g]!)] : []),
        ))));
      p.caption.textContent =
        m === "batch_norm"
          ? r.bnMode === "train"
            ? `Train mode: each channel's statistics over all ${r.indices.length} images. Running statistics after ${model.steps} training steps (warm-up: ${WARMUP.passes} passes over the ${ctx.digits.count} digits in batches of ${WARMUP.batch}; momentum ${MOMENTUM}).`
            : `Eval mode: the running statistics (after ${model.steps} training steps), whatever the batch.`
          : m === "layer_norm"
            ? "The tracked image alone, all channels and positions."
            : m === "instance_norm"
              ? "Each channel of the tracked image alone."
              : `G = ${model.gn.numGroups}: each group of ${C / model.gn.numGroups} channel${C === model.gn.numGroups ? "" : "s"} of the tracked image alone.`;
    }
    const bnTable = panels.batch_norm.table;
    bnTable.dataset["mode"] = r.bnMode;
    bnTable.dataset["steps"] = String(model.steps);
    bnTable.dataset["warmupPasses"] = String(WARMUP.passes);
    bnTable.dataset["warmupBatch"] = String(WARMUP.batch);

    const gpuNote = "convolution by normkit's Conv2d on the CPU, normalisation by normkit's WebGPU layers (outputs and BatchNorm's running statistics read back from the GPU); the mean/variance tables by normkit's CPU layers on the same conv output, as the WebGPU layers keep per-group statistics on the GPU";
    backendLine.dataset["compute"] = r.backend;
    backendLine.textContent = r.backend === "webgpu" ? `computed on ${ctx.gpuLabel} — ${gpuNote}.` : `computed on ${ctx.cpuLabel} — convolution and normalisation by normkit's CPU layers.`;
    updateLine.textContent = `Last update: ${reason}.`;
    updateLine.dataset["reason"] = reason;
  }

  // ---- updates, one at a time and in order
  let queue: Promise<void> = Promise.resolve();
  function update(reason: string): Promise<void> {
    root.dataset["busy"] = "true";
    queue = queue
      .then(async () => {
        const backend: Compute = ctx.compute() === "webgpu" && ctx.gpu ? "webgpu" : "cpu";
        render(await model.compute(backend, ctx.gpu), reason);
      })
      .catch((e) => ctx.fail("live", e))
      .finally(() => {
        root.dataset["updates"] = String(++updates);
        root.dataset["busy"] = "false";
      });
    return queue;
  }

  resample.addEventListener("click", () => {
    model.resample();
    void update("resampled the batch-mates (the tracked image stays)");
  });
  const onBatch = () => {
    const v = Number(batch.value);
    if (!Number.isInteger(v) || v < BATCH_MIN || v > BATCH_MAX || v === model.indices.length) return;
    model.setBatchSize(v);
    void update(`batch size ${v}`);
  };
  batch.addEventListener("input", onBatch);
  batch.addEventListener("change", () => {
    onBatch();
    batch.value = String(model.indices.length); // out-of-range typing snaps back
  });
  groups.addEventListener("change", () => {
    model.setGroups(Number(groups.value));
    void update(`GroupNorm with G = ${groups.value}`);
  });
  for (const r of [train, evalIn]) {
    r.addEventListener("change", () => {
      if (!r.checked) return;
      model.bnMode = r.value === "eval" ? "eval" : "train";
      void update(`BatchNorm in ${model.bnMode} mode`);
    });
  }
  ctx.onComputeChange((c) => {
    previous = {}; // a change between backends is not a change of the batch
    void update(`switched to ${c === "webgpu" ? "WebGPU" : "CPU"}`);
  });

  return update("first batch");
}
