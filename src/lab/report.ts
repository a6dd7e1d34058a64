/**
 * The lab's report: one self-contained HTML page (inline CSS and inline SVG, no script, no external
 * request) built from a `results.json` object by plain string building.
 *
 * Charts (each an `<svg class="chart" data-chart="...">` with a legend):
 *  - test error (%) vs batch size, one chart per architecture, log2 x axis in the GN paper's Figure 1
 *    style (large batches on the left), one series per method (`<g class="series" data-series=METHOD>`),
 *    mean and min–max spread bars when there are several seeds;
 *  - the GN paper's ImageNet ResNet-50 numbers as a separate reference chart, labelled as not measured here;
 *  - training-loss curves per architecture and batch size, one series per method;
 *  - Switchable Norm's learned IN/LN/BN importance per layer (stacked bars, mean and variance weights).
 *
 * Every chart carries `data-kind` ("methods", "reference" or "importance"), `data-arch` and, where it
 * applies, `data-batch-size`, so a test can derive which series each chart must hold from results.json.
 *
 * Browser-safe: no Node API here (the explorer bundles this module to draw the same charts in a page;
 * test/unit/report.test.ts checks it imports nothing from Node). Writing report.html to disk is in
 * report_file.ts.
 */

// ---------------------------------------------------------------------------------------------------
// The results schema (what `normkit lab` writes). Everything beyond the core fields is optional and
// read defensively: the report renders whatever is there.

export interface ImportanceEntry {
  layer: string | number;
  /** Weights of the mean statistics by component (in, ln, bn); they sum to 1. */
  mean: Record<string, number>;
  /** Weights of the variance statistics by component. */
  variance: Record<string, number>;
}

export interface LabRun {
  arch: string;
  method: string;
  batch_size: number;
  seed: number;
  /** In [0, 1]. */
  test_accuracy: number;
  train_loss_curve?: number[];
  seconds?: number;
  importance?: ImportanceEntry[];
  [key: string]: unknown;
}

export interface LabResults {
  runs: LabRun[];
  config?: unknown;
  versions?: unknown;
  machine?: unknown;
  [key: string]: unknown;
}

/** Where the runs trained, in words: the config's device (a GPU adapter's label) or the CPU. */
function deviceOfResults(results: LabResults): string {
  const d = (results.config as { device?: unknown } | undefined)?.device;
  return typeof d === "string" && d !== "cpu" ? `the GPU (${d}, through WebGPU)` : "the CPU";
}

// ---------------------------------------------------------------------------------------------------
// Presentation constants.

/** One colour (and marker) per method, the same in every chart. */
export const METHOD_STYLE: Record<string, { color: string; label: string }> = {
  none: { color: "#6b7280", label: "none" },
  batch_norm: { color: "#2563eb", label: "BatchNorm" },
  group_norm: { color: "#dc2626", label: "GroupNorm" },
  layer_norm: { color: "#16a34a", label: "LayerNorm" },
  instance_norm: { color: "#9333ea", label: "InstanceNorm" },
  switchable_norm: { color: "#ea580c", label: "SwitchNorm" },
  rms_norm: { color: "#0891b2", label: "RMSNorm" },
  weight_norm: { color: "#a16207", label: "WeightNorm" },
  cosine_norm: { color: "#db2777", label: "CosineNorm" },
};
const METHOD_ORDER = Object.keys(METHOD_STYLE);
const EXTRA_COLORS = ["#0f766e", "#7c3aed", "#b91c1c", "#4d7c0f", "#1d4ed8", "#be185d"];

/** Switchable Norm's components, coloured like the methods they come from. */
const COMPONENT_STYLE: Record<string, { color: string; label: string }> = {
  in: { color: METHOD_STYLE.instance_norm!.color, label: "IN (instance)" },
  ln: { color: METHOD_STYLE.layer_norm!.color, label: "LN (layer)" },
  bn: { color: METHOD_STYLE.batch_norm!.color, label: "BN (batch)" },
};
const COMPONENT_ORDER = ["in", "ln", "bn"];

const MARKERS = ["circle", "square", "triangle", "diamond", "down", "circle", "square", "triangle", "diamond"] as const;
type Marker = (typeof MARKERS)[number];

/** ImageNet ResNet-50 validation error (%), from the Group Normalization paper (Wu & He, 2018). */
export const GN_PAPER_IMAGENET = {
  imagesPerGpu: [32, 16, 8, 4, 2],
  batch_norm: [23.6, 23.7, 24.8, 27.3, 34.7],
  group_norm: [24.1, 24.2, 24.0, 24.2, 24.1],
} as const;

/**
 * PyTorch's test accuracy (%) for the default protocol (`shared/lab/PROTOCOL.md`): mean and half the
 * spread of seeds 0 and 1, at batch sizes 2, 8 and 64. Shown beside our numbers for reference.
 */
const PYTORCH_REFERENCE: Record<string, Record<string, Record<number, [number, number]>>> = {
  cnn: {
    none: { 2: [92.9, 1.0], 8: [95.5, 0.5], 64: [95.2, 0.5] },
    batch_norm: { 2: [95.6, 0.5], 8: [95.9, 0.4], 64: [95.8, 0.3] },
    group_norm: { 2: [95.8, 0.7], 8: [95.8, 0.2], 64: [94.8, 0.7] },
    layer_norm: { 2: [95.0, 0.3], 8: [95.8, 0.1], 64: [95.3, 0.4] },
    instance_norm: { 2: [96.2, 0.3], 8: [96.3, 0.3], 64: [96.1, 0.7] },
    switchable_norm: { 2: [95.8, 0.6], 8: [96.1, 0.1], 64: [96.1, 0.1] },
  },
  mlp: {
    none: { 2: [89.3, 0.4], 8: [92.6, 1.0], 64: [93.6, 1.2] },
    batch_norm: { 2: [62.8, 2.5], 8: [94.1, 0.2], 64: [94.1, 0.2] },
    group_norm: { 2: [93.1, 1.2], 8: [93.8, 0.2], 64: [93.2, 0.4] },
    layer_norm: { 2: [93.0, 0.9], 8: [93.8, 0.3], 64: [93.3, 0.5] },
    switchable_norm: { 2: [92.8, 1.3], 8: [93.2, 0.3], 64: [93.0, 2.1] },
  },
};

// ---------------------------------------------------------------------------------------------------
// Small helpers.

export function escapeHtml(s: unknown): string {
  return String(s)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}
const esc = escapeHtml;

function num(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toFixed(digits) : "–";
}
/** Coordinates, rounded to keep the page small. */
function c(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function methodRank(m: string): number {
  const i = METHOD_ORDER.indexOf(m);
  return i < 0 ? METHOD_ORDER.length : i;
}
function sortMethods(ms: Iterable<string>): string[] {
  return [...new Set(ms)].sort((a, b) => methodRank(a) - methodRank(b) || a.localeCompare(b));
}
function sortArchs(as: Iterable<string>): string[] {
  const order = ["cnn", "mlp"];
  const r = (a: string) => (order.includes(a) ? order.indexOf(a) : order.length);
  return [...new Set(as)].sort((a, b) => r(a) - r(b) || a.localeCompare(b));
}

function methodStyle(method: string, allMethods: string[]): { color: string; label: string; marker: Marker } {
  const known = METHOD_STYLE[method];
  const rank = methodRank(method);
  if (known) return { ...known, marker: MARKERS[rank % MARKERS.length]! };
  const extra = allMethods.filter((m) => !METHOD_STYLE[m]).sort();
  const i = Math.max(0, extra.indexOf(method));
  return { color: EXTRA_COLORS[i % EXTRA_COLORS.length]!, label: method, marker: MARKERS[i % MARKERS.length]! };
}

interface Stat {
  mean: number;
  min: number;
  max: number;
  n: number;
}
function stat(values: number[]): Stat {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return { mean: NaN, min: NaN, max: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** "Nice" axis ticks covering [lo, hi]. */
function niceTicks(lo: number, hi: number, target = 5): { min: number; max: number; ticks: number[] } {
  if (!(hi > lo)) hi = lo + 1;
  const span = hi - lo;
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= target + 0.5) ?? 10 * mag;
  const min = Math.floor(lo / step + 1e-9) * step;
  const max = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let t = min; t <= max + step * 1e-6; t += step) ticks.push(Math.round(t / step) * step);
  return { min, max, ticks };
}
function tickLabel(v: number): string {
  const r = Math.round(v * 1000) / 1000;
  return String(r);
}

/** Bucket-average a long curve of points down to at most `maxPoints` (keeps its shape, tames noise). */
function downsample(points: { x: number; y: number }[], maxPoints: number): { x: number; y: number }[] {
  const pts = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const n = pts.length;
  if (n <= maxPoints) return pts;
  const out: { x: number; y: number }[] = [];
  for (let b = 0; b < maxPoints; b++) {
    const s = Math.floor((b * n) / maxPoints);
    const e = Math.max(s + 1, Math.floor(((b + 1) * n) / maxPoints));
    let sx = 0;
    let sy = 0;
    for (let i = s; i < e; i++) {
      sx += pts[i]!.x;
      sy += pts[i]!.y;
    }
    out.push({ x: sx / (e - s), y: sy / (e - s) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// SVG building blocks.

const W = 600;
const H = 360;
const M = { l: 58, r: 160, t: 18, b: 50 };

function markerSvg(shape: Marker, x: number, y: number, r: number, color: string): string {
  const fill = `fill="${color}" stroke="#fff" stroke-width="1"`;
  switch (shape) {
    case "circle":
      return `<circle cx="${c(x)}" cy="${c(y)}" r="${c(r)}" ${fill}/>`;
    case "square":
      return `<rect x="${c(x - r * 0.9)}" y="${c(y - r * 0.9)}" width="${c(r * 1.8)}" height="${c(r * 1.8)}" ${fill}/>`;
    case "triangle":
      return `<polygon points="${c(x)},${c(y - r * 1.15)} ${c(x + r * 1.05)},${c(y + r * 0.75)} ${c(x - r * 1.05)},${c(y + r * 0.75)}" ${fill}/>`;
    case "down":
      return `<polygon points="${c(x)},${c(y + r * 1.15)} ${c(x + r * 1.05)},${c(y - r * 0.75)} ${c(x - r * 1.05)},${c(y - r * 0.75)}" ${fill}/>`;
    case "diamond":
      return `<polygon points="${c(x)},${c(y - r * 1.25)} ${c(x + r * 1.05)},${c(y)} ${c(x)},${c(y + r * 1.25)} ${c(x - r * 1.05)},${c(y)}" ${fill}/>`;
  }
}

interface LegendItem {
  key: string;
  label: string;
  color: string;
  marker?: Marker;
  swatch?: "line" | "box";
}

function legendSvg(items: LegendItem[], x: number, y: number, title?: string): string {
  let s = `<g class="legend" transform="translate(${c(x)},${c(y)})">`;
  let yy = 0;
  if (title) {
    s += `<text class="legend-title" x="0" y="${yy + 4}">${esc(title)}</text>`;
    yy += 20;
  }
  for (const it of items) {
    s += `<g class="legend-item" data-key="${esc(it.key)}">`;
    if (it.swatch === "box") {
      s += `<rect x="0" y="${yy - 6}" width="14" height="12" rx="2" fill="${it.color}"/>`;
    } else {
      s += `<line x1="0" y1="${yy}" x2="22" y2="${yy}" stroke="${it.color}" stroke-width="2.5"/>`;
      if (it.marker) s += markerSvg(it.marker, 11, yy, 4, it.color);
    }
    s += `<text x="${it.swatch === "box" ? 20 : 28}" y="${yy + 4}">${esc(it.label)}</text></g>`;
    yy += 19;
  }
  return s + `</g>`;
}

function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${esc(v)}"`)
    .join("");
}

interface SeriesPoint {
  x: number;
  y: number;
  lo?: number;
  hi?: number;
  tip?: string;
}
interface LineSeries {
  key: string;
  label: string;
  color: string;
  marker?: Marker;
  points: SeriesPoint[];
  dash?: string;
}

type XAxis =
  | { kind: "log2"; values: number[]; reverse: boolean }
  | { kind: "linear"; min: number; max: number };

interface LineChartSpec {
  chart: string;
  title: string;
  data: Record<string, string | number | undefined>;
  xLabel: string;
  yLabel: string;
  x: XAxis;
  yMin?: number;
  ySpan?: [number, number];
  series: LineSeries[];
  markers: boolean;
  dodge: boolean;
  legendTitle?: string;
  reference?: boolean;
}

function lineChart(spec: LineChartSpec): string {
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  // y range from the data (spread bars included).
  const ys: number[] = [];
  for (const s of spec.series)
    for (const p of s.points) {
      ys.push(p.y);
      if (isFiniteNumber(p.lo)) ys.push(p.lo);
      if (isFiniteNumber(p.hi)) ys.push(p.hi);
    }
  const finite = ys.filter(Number.isFinite);
  let lo = spec.ySpan ? spec.ySpan[0] : finite.length ? Math.min(...finite) : 0;
  let hi = spec.ySpan ? spec.ySpan[1] : finite.length ? Math.max(...finite) : 1;
  if (spec.yMin !== undefined) lo = Math.min(spec.yMin, lo);
  if (hi - lo < 1e-9) hi = lo + 1;
  const yt = niceTicks(lo, hi + (hi - lo) * 0.04);
  const sy = (v: number) => M.t + ph - ((v - yt.min) / (yt.max - yt.min)) * ph;

  // x scale
  let sx: (v: number) => number;
  let xTicks: { v: number; label: string }[];
  if (spec.x.kind === "log2") {
    const vals = [...new Set(spec.x.values)].sort((a, b) => a - b);
    const l0 = Math.log2(vals[0] ?? 1);
    const l1 = Math.log2(vals[vals.length - 1] ?? 2);
    const pad = 0.35;
    const a = l0 - pad;
    const b = l1 + pad;
    const rev = spec.x.reverse;
    sx = (v: number) => {
      const t = (Math.log2(v) - a) / (b - a);
      return M.l + (rev ? 1 - t : t) * pw;
    };
    xTicks = vals.map((v) => ({ v, label: String(v) }));
  } else {
    const { min, max } = spec.x;
    const t = niceTicks(min, max, 6);
    sx = (v: number) => M.l + ((v - min) / (max - min || 1)) * pw;
    xTicks = t.ticks.filter((v) => v >= min - 1e-9 && v <= max + 1e-9).map((v) => ({ v, label: tickLabel(v) }));
  }

  let s = `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img"${attrs({
    "data-chart": spec.chart,
    ...spec.data,
  })}><title>${esc(spec.title)}</title>`;
  s += `<rect class="plot-bg" x="${M.l}" y="${M.t}" width="${pw}" height="${ph}"/>`;
  // grid + y ticks
  s += `<g class="axis y-axis">`;
  for (const t of yt.ticks) {
    const y = sy(t);
    s += `<line class="grid" x1="${M.l}" x2="${M.l + pw}" y1="${c(y)}" y2="${c(y)}"/>`;
    s += `<text x="${M.l - 7}" y="${c(y + 4)}" text-anchor="end">${esc(tickLabel(t))}</text>`;
  }
  s += `<text class="axis-label" transform="translate(15,${c(M.t + ph / 2)}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text></g>`;
  // x ticks
  s += `<g class="axis x-axis">`;
  for (const t of xTicks) {
    const x = sx(t.v);
    s += `<line class="grid grid-x" x1="${c(x)}" x2="${c(x)}" y1="${M.t}" y2="${M.t + ph}"/>`;
    s += `<text x="${c(x)}" y="${M.t + ph + 17}" text-anchor="middle">${esc(t.label)}</text>`;
  }
  s += `<text class="axis-label" x="${c(M.l + pw / 2)}" y="${H - 10}" text-anchor="middle">${esc(spec.xLabel)}</text></g>`;
  s += `<rect class="frame" x="${M.l}" y="${M.t}" width="${pw}" height="${ph}"/>`;

  // series
  const n = spec.series.length;
  spec.series.forEach((ser, i) => {
    const dx = spec.dodge ? (i - (n - 1) / 2) * 3.2 : 0;
    const pts = ser.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    s += `<g class="series" data-series="${esc(ser.key)}" data-points="${pts.length}">`;
    s += `<title>${esc(ser.label)}</title>`;
    if (pts.length > 1) {
      const d = pts.map((p) => `${c(sx(p.x) + dx)},${c(sy(p.y))}`).join(" ");
      s += `<polyline points="${d}" fill="none" stroke="${ser.color}" stroke-width="${spec.markers ? 2.2 : 1.7}" stroke-linejoin="round" stroke-linecap="round"${ser.dash ? ` stroke-dasharray="${ser.dash}"` : ""}/>`;
    }
    for (const p of pts) {
      const x = sx(p.x) + dx;
      if (isFiniteNumber(p.lo) && isFiniteNumber(p.hi) && p.hi > p.lo) {
        const y0 = sy(p.lo);
        const y1 = sy(p.hi);
        s += `<g class="spread"><line x1="${c(x)}" x2="${c(x)}" y1="${c(y0)}" y2="${c(y1)}" stroke="${ser.color}" stroke-width="1.6"/>`;
        s += `<line x1="${c(x - 4)}" x2="${c(x + 4)}" y1="${c(y0)}" y2="${c(y0)}" stroke="${ser.color}" stroke-width="1.6"/>`;
        s += `<line x1="${c(x - 4)}" x2="${c(x + 4)}" y1="${c(y1)}" y2="${c(y1)}" stroke="${ser.color}" stroke-width="1.6"/></g>`;
      }
      if (spec.markers) {
        s += `<g class="point">${markerSvg(ser.marker ?? "circle", x, sy(p.y), 4.5, ser.color)}`;
        if (p.tip) s += `<title>${esc(p.tip)}</title>`;
        s += `</g>`;
      }
    }
    s += `</g>`;
  });

  s += legendSvg(
    spec.series.map((ser) => ({ key: ser.key, label: ser.label, color: ser.color, ...(spec.markers && ser.marker ? { marker: ser.marker } : {}) })),
    W - M.r + 16,
    M.t + 10,
    spec.legendTitle,
  );
  if (spec.reference) {
    s += `<text class="watermark" x="${c(M.l + pw / 2)}" y="${M.t + 22}" text-anchor="middle">reference — not measured here</text>`;
  }
  return s + `</svg>`;
}

// ---------------------------------------------------------------------------------------------------
// Grouping the runs.

interface Cell {
  arch: string;
  method: string;
  batch: number;
  runs: LabRun[];
  acc: Stat; // accuracy %, over seeds
  err: Stat; // error %, over seeds
}

function validRuns(results: LabResults): LabRun[] {
  const runs = Array.isArray(results?.runs) ? results.runs : [];
  return runs.filter(
    (r) => r && typeof r.arch === "string" && typeof r.method === "string" && isFiniteNumber(r.batch_size),
  );
}

function cells(runs: LabRun[]): Map<string, Cell> {
  const m = new Map<string, Cell>();
  for (const r of runs) {
    const k = `${r.arch}|${r.method}|${r.batch_size}`;
    let cell = m.get(k);
    if (!cell) {
      cell = { arch: r.arch, method: r.method, batch: r.batch_size, runs: [], acc: stat([]), err: stat([]) };
      m.set(k, cell);
    }
    cell.runs.push(r);
  }
  for (const cell of m.values()) {
    const acc = cell.runs.map((r) => (isFiniteNumber(r.test_accuracy) ? r.test_accuracy * 100 : NaN));
    cell.acc = stat(acc);
    cell.err = stat(acc.map((a) => 100 - a));
  }
  return m;
}

function config(results: LabResults): Record<string, unknown> {
  return results.config && typeof results.config === "object" ? (results.config as Record<string, unknown>) : {};
}

// ---------------------------------------------------------------------------------------------------
// The charts.

function errorChart(arch: string, archRuns: LabRun[], allMethods: string[], byCell: Map<string, Cell>): string {
  const methods = sortMethods(archRuns.map((r) => r.method));
  const batches = [...new Set(archRuns.map((r) => r.batch_size))].sort((a, b) => a - b);
  const series: LineSeries[] = methods.map((m) => {
    const st = methodStyle(m, allMethods);
    const points: SeriesPoint[] = [];
    for (const b of batches) {
      const cell = byCell.get(`${arch}|${m}|${b}`);
      if (!cell || cell.err.n === 0) continue;
      const p: SeriesPoint = {
        x: b,
        y: cell.err.mean,
        tip: `${st.label}, batch ${b}: ${num(cell.err.mean, 2)}% error` + (cell.err.n > 1 ? ` (${cell.err.n} seeds, ${num(cell.err.min, 2)}–${num(cell.err.max, 2)})` : ""),
      };
      if (cell.err.n > 1) {
        p.lo = cell.err.min;
        p.hi = cell.err.max;
      }
      points.push(p);
    }
    return { key: m, label: st.label, color: st.color, marker: st.marker, points };
  });
  return lineChart({
    chart: `error-vs-batch-${arch}`,
    title: `${arch}: test error (%) vs batch size, per method`,
    data: { "data-kind": "methods", "data-arch": arch },
    xLabel: "batch size (log2 scale)",
    yLabel: "test error (%)",
    x: { kind: "log2", values: batches, reverse: true },
    yMin: 0,
    series,
    markers: true,
    dodge: true,
    legendTitle: "method",
  });
}

function referenceChart(): string {
  const series: LineSeries[] = (["batch_norm", "group_norm"] as const).map((m) => {
    const st = methodStyle(m, []);
    return {
      key: m,
      label: st.label,
      color: st.color,
      marker: st.marker,
      points: GN_PAPER_IMAGENET.imagesPerGpu.map((b, i) => ({
        x: b,
        y: GN_PAPER_IMAGENET[m][i]!,
        tip: `${st.label}, ${b} images/GPU: ${GN_PAPER_IMAGENET[m][i]}% (GN paper)`,
      })),
    };
  });
  return lineChart({
    chart: "imagenet-reference",
    title: "ImageNet ResNet-50 validation error vs images per GPU, from the GN paper — not measured here",
    data: { "data-kind": "reference", "data-arch": "resnet50-imagenet" },
    xLabel: "images per GPU (log2 scale)",
    yLabel: "ImageNet val error (%)",
    x: { kind: "log2", values: [...GN_PAPER_IMAGENET.imagesPerGpu], reverse: true },
    ySpan: [20, 36],
    series,
    markers: true,
    dodge: false,
    legendTitle: "from the paper",
    reference: true,
  });
}

function lossChart(arch: string, batch: number, runs: LabRun[], allMethods: string[], epochs: number | undefined, cfg: Record<string, unknown>): string {
  const methods = sortMethods(runs.map((r) => r.method));
  let maxY = 0;
  let maxX = 0;
  const series: LineSeries[] = methods.map((m) => {
    const st = methodStyle(m, allMethods);
    const mruns = runs.filter((r) => r.method === m && Array.isArray(r.train_loss_curve) && r.train_loss_curve.length > 0);
    const curves = mruns.map((r) => r.train_loss_curve as number[]);
    // mean over seeds, elementwise over the common length
    const len = curves.length ? Math.min(...curves.map((cv) => cv.length)) : 0;
    const mean: number[] = [];
    for (let i = 0; i < len; i++) mean.push(curves.reduce((a, cv) => a + cv[i]!, 0) / curves.length);
    // x of point i: where its window ends, in epochs, when the results say how many samples a point
    // covers (train_loss_curve_every) and an epoch holds (train_samples); else evenly spread.
    const r0 = mruns[0];
    const every = r0 && isFiniteNumber(r0.train_loss_curve_every) ? r0.train_loss_curve_every : isFiniteNumber(cfg.train_loss_curve_every) ? cfg.train_loss_curve_every : undefined;
    const perEpoch = r0 && isFiniteNumber(r0.train_samples) ? Math.floor(r0.train_samples / batch) * batch : undefined;
    const ep = r0 && isFiniteNumber(r0.epochs) ? r0.epochs : epochs;
    const xs = mean.map((_, i) =>
      every && perEpoch && ep ? Math.min((i + 1) * every, perEpoch * ep) / perEpoch : ((i + 1) / mean.length) * (ep ?? 1),
    );
    const pts = downsample(mean.map((y, i) => ({ x: xs[i]!, y })), 150);
    for (const p of pts) {
      maxY = Math.max(maxY, p.y);
      maxX = Math.max(maxX, p.x);
    }
    return { key: m, label: st.label, color: st.color, marker: st.marker, points: pts };
  });
  const xMax = epochs ?? (maxX > 0 ? maxX : 1);
  return lineChart({
    chart: `loss-${arch}-b${batch}`,
    title: `${arch}, batch ${batch}: training loss`,
    data: { "data-kind": "methods", "data-arch": arch, "data-batch-size": batch },
    xLabel: epochs ? "epoch" : "training progress",
    yLabel: "training loss (cross-entropy)",
    x: { kind: "linear", min: 0, max: xMax },
    ySpan: [0, maxY > 0 ? maxY : 1],
    series,
    markers: false,
    dodge: false,
    legendTitle: "method",
  });
}

interface ImportanceAvg {
  layer: string;
  mean: Record<string, number>;
  variance: Record<string, number>;
}

function averageImportance(runs: LabRun[]): ImportanceAvg[] {
  const lists = runs.map((r) => r.importance).filter((x): x is ImportanceEntry[] => Array.isArray(x) && x.length > 0);
  if (lists.length === 0) return [];
  const layers = Math.min(...lists.map((l) => l.length));
  const out: ImportanceAvg[] = [];
  for (let i = 0; i < layers; i++) {
    const avg = (key: "mean" | "variance") => {
      const acc: Record<string, number> = {};
      for (const l of lists) {
        const w = l[i]?.[key];
        if (!w || typeof w !== "object") continue;
        for (const [k, v] of Object.entries(w)) if (isFiniteNumber(v)) acc[k] = (acc[k] ?? 0) + v / lists.length;
      }
      return acc;
    };
    out.push({ layer: String(lists[0]![i]!.layer ?? i + 1), mean: avg("mean"), variance: avg("variance") });
  }
  return out;
}

function importanceChart(arch: string, batch: number, imp: ImportanceAvg[], seeds: number): string {
  const comps = [...new Set(imp.flatMap((l) => [...Object.keys(l.mean), ...Object.keys(l.variance)]))].sort((a, b) => {
    const ra = COMPONENT_ORDER.indexOf(a);
    const rb = COMPONENT_ORDER.indexOf(b);
    return (ra < 0 ? 9 : ra) - (rb < 0 ? 9 : rb) || a.localeCompare(b);
  });
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const groupW = pw / Math.max(1, imp.length);
  const barW = Math.min(44, groupW * 0.32);
  const sy = (v: number) => M.t + ph - v * ph;
  const compColor = (k: string, i: number) => COMPONENT_STYLE[k]?.color ?? EXTRA_COLORS[i % EXTRA_COLORS.length]!;
  const compLabel = (k: string) => COMPONENT_STYLE[k]?.label ?? k;

  let s = `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img"${attrs({
    "data-chart": `importance-${arch}-b${batch}`,
    "data-kind": "importance",
    "data-arch": arch,
    "data-batch-size": batch,
  })}><title>${esc(`${arch}, batch ${batch}: Switchable Norm importance weights per layer`)}</title>`;
  s += `<rect class="plot-bg" x="${M.l}" y="${M.t}" width="${pw}" height="${ph}"/>`;
  s += `<g class="axis y-axis">`;
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    s += `<line class="grid" x1="${M.l}" x2="${M.l + pw}" y1="${c(sy(t))}" y2="${c(sy(t))}"/>`;
    s += `<text x="${M.l - 7}" y="${c(sy(t) + 4)}" text-anchor="end">${t}</text>`;
  }
  s += `<text class="axis-label" transform="translate(15,${c(M.t + ph / 2)}) rotate(-90)" text-anchor="middle">importance weight (softmax)</text></g>`;

  // bars: for each component one <g>, holding its segment of every bar (so the legend maps to groups)
  const bars: { x: number; layer: ImportanceAvg; kind: "mean" | "variance" }[] = [];
  imp.forEach((l, i) => {
    const cx = M.l + groupW * (i + 0.5);
    bars.push({ x: cx - barW - 3, layer: l, kind: "mean" });
    bars.push({ x: cx + 3, layer: l, kind: "variance" });
  });
  const base = new Map<number, number>(); // bar index -> stacked height so far
  comps.forEach((k, ci) => {
    s += `<g class="component" data-component="${esc(k)}">`;
    bars.forEach((b, bi) => {
      const w = b.layer[b.kind];
      const total = Object.values(w).reduce((a, v) => a + v, 0) || 1;
      const v = (w[k] ?? 0) / total;
      const y0 = base.get(bi) ?? 0;
      base.set(bi, y0 + v);
      if (v <= 0) return;
      const top = sy(y0 + v);
      const hgt = sy(y0) - top;
      s += `<rect x="${c(b.x)}" y="${c(top)}" width="${c(barW)}" height="${c(hgt)}" fill="${compColor(k, ci)}"><title>${esc(
        `layer ${b.layer.layer}, ${b.kind}: ${compLabel(k)} ${num(v, 3)}`,
      )}</title></rect>`;
      if (hgt >= 15) s += `<text class="seg-label" x="${c(b.x + barW / 2)}" y="${c(top + hgt / 2 + 4)}" text-anchor="middle">${num(v, 2)}</text>`;
    });
    s += `</g>`;
  });
  // x labels
  s += `<g class="axis x-axis">`;
  imp.forEach((l, i) => {
    const cx = M.l + groupW * (i + 0.5);
    s += `<text class="bar-label" x="${c(cx - barW / 2 - 3)}" y="${M.t + ph + 14}" text-anchor="middle">μ</text>`;
    s += `<text class="bar-label" x="${c(cx + barW / 2 + 3)}" y="${M.t + ph + 14}" text-anchor="middle">σ²</text>`;
    s += `<text x="${c(cx)}" y="${M.t + ph + 30}" text-anchor="middle">${esc(l.layer)}</text>`;
  });
  s += `<text class="axis-label" x="${c(M.l + pw / 2)}" y="${H - 6}" text-anchor="middle">normalization layer (μ = mean weights, σ² = variance weights)</text></g>`;
  s += `<rect class="frame" x="${M.l}" y="${M.t}" width="${pw}" height="${ph}"/>`;
  s += legendSvg(
    comps.map((k, i) => ({ key: k, label: compLabel(k), color: compColor(k, i), swatch: "box" as const })),
    W - M.r + 16,
    M.t + 10,
    seeds > 1 ? `statistic (${seeds} seeds)` : "statistic",
  );
  return s + `</svg>`;
}

// ---------------------------------------------------------------------------------------------------
// Tables and text.

function resultsTable(arch: string, archRuns: LabRun[], byCell: Map<string, Cell>, allMethods: string[], showRef: boolean): string {
  const methods = sortMethods(archRuns.map((r) => r.method));
  const batches = [...new Set(archRuns.map((r) => r.batch_size))].sort((a, b) => a - b);
  let s = `<table class="results" data-arch="${esc(arch)}"><thead><tr><th>method</th>`;
  for (const b of batches) s += `<th>batch ${b}</th>`;
  s += `</tr></thead><tbody>`;
  for (const m of methods) {
    const st = methodStyle(m, allMethods);
    s += `<tr><th scope="row"><span class="swatch" style="background:${st.color}"></span>${esc(st.label)}</th>`;
    for (const b of batches) {
      const cell = byCell.get(`${arch}|${m}|${b}`);
      if (!cell || cell.acc.n === 0) {
        s += `<td class="empty">–</td>`;
        continue;
      }
      const half = (cell.acc.max - cell.acc.min) / 2;
      let td = `<span class="acc">${num(cell.acc.mean)}</span>`;
      if (cell.acc.n > 1) td += ` <span class="pm">± ${num(half)}</span>`;
      const ref = showRef ? PYTORCH_REFERENCE[arch]?.[m]?.[b] : undefined;
      if (ref) {
        const d = cell.acc.mean - ref[0];
        td += `<br><span class="ref">PyTorch ${num(ref[0])} ± ${num(ref[1])} · Δ ${d >= 0 ? "+" : "−"}${num(Math.abs(d))}</span>`;
      }
      s += `<td>${td}</td>`;
    }
    s += `</tr>`;
  }
  return s + `</tbody></table>`;
}

function runsTable(runs: LabRun[]): string {
  const sorted = [...runs].sort(
    (a, b) =>
      sortArchs([a.arch, b.arch]).indexOf(a.arch) - sortArchs([a.arch, b.arch]).indexOf(b.arch) ||
      methodRank(a.method) - methodRank(b.method) ||
      a.batch_size - b.batch_size ||
      (a.seed ?? 0) - (b.seed ?? 0),
  );
  let s = `<table class="runs"><thead><tr><th>arch</th><th>method</th><th>batch</th><th>seed</th><th>test acc. (%)</th><th>final train loss</th><th>seconds</th></tr></thead><tbody>`;
  for (const r of sorted) {
    const curve = Array.isArray(r.train_loss_curve) ? r.train_loss_curve : [];
    const tail = curve.slice(Math.max(0, curve.length - Math.max(1, Math.floor(curve.length / 20))));
    const final = tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : NaN;
    s += `<tr><td>${esc(r.arch)}</td><td>${esc(r.method)}</td><td>${esc(r.batch_size)}</td><td>${esc(r.seed ?? "")}</td>`;
    s += `<td>${num(isFiniteNumber(r.test_accuracy) ? r.test_accuracy * 100 : NaN, 2)}</td><td>${num(final, 3)}</td><td>${num(isFiniteNumber(r.seconds) ? r.seconds : NaN, 1)}</td></tr>`;
  }
  return s + `</tbody></table>`;
}

function flatten(v: unknown, prefix: string, out: [string, string][]): void {
  if (v === null || v === undefined) {
    if (prefix) out.push([prefix, String(v)]);
    return;
  }
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== "object")) out.push([prefix, v.map(String).join(", ")]);
    else out.push([prefix, JSON.stringify(v)]);
    return;
  }
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 0 && prefix) out.push([prefix, "{}"]);
    for (const [k, x] of entries) flatten(x, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  out.push([prefix || "value", String(v)]);
}

function kvTable(v: unknown, cls: string): string {
  const rows: [string, string][] = [];
  flatten(v, "", rows);
  if (rows.length === 0) return `<p class="muted">not recorded</p>`;
  let s = `<table class="kv ${cls}"><tbody>`;
  for (const [k, x] of rows) s += `<tr><th scope="row">${esc(k)}</th><td>${esc(x.length > 400 ? x.slice(0, 400) + "…" : x)}</td></tr>`;
  return s + `</tbody></table>`;
}

/** Sentences computed from the data: how each method's error moves from the largest to the smallest batch. */
function findings(archs: string[], runs: LabRun[], byCell: Map<string, Cell>, allMethods: string[]): string {
  const items: string[] = [];
  for (const arch of archs) {
    const archRuns = runs.filter((r) => r.arch === arch);
    const batches = [...new Set(archRuns.map((r) => r.batch_size))].sort((a, b) => a - b);
    if (batches.length < 2) continue;
    const small = batches[0]!;
    const large = batches[batches.length - 1]!;
    const parts: { m: string; d: number; text: string }[] = [];
    for (const m of sortMethods(archRuns.map((r) => r.method))) {
      const a = byCell.get(`${arch}|${m}|${large}`);
      const b = byCell.get(`${arch}|${m}|${small}`);
      if (!a || !b || a.err.n === 0 || b.err.n === 0) continue;
      const d = b.err.mean - a.err.mean;
      parts.push({
        m,
        d,
        text: `${esc(methodStyle(m, allMethods).label)} ${num(a.err.mean)}% → ${num(b.err.mean)}% (${d >= 0 ? "+" : "−"}${num(Math.abs(d))} points)`,
      });
    }
    if (parts.length === 0) continue;
    const worst = parts.reduce((p, q) => (q.d > p.d ? q : p));
    let li = `<li><strong>${esc(arch)}</strong>, test error from batch ${large} to batch ${small}: ${parts.map((p) => p.text).join("; ")}.`;
    if (worst.d > 2) li += ` The largest rise at small batches is ${esc(methodStyle(worst.m, allMethods).label)}'s.`;
    else li += ` No method's error rises by more than 2 points at small batches here.`;
    items.push(li + `</li>`);
  }
  return items.length ? `<ul class="findings">${items.join("")}</ul>` : `<p class="muted">Fewer than two batch sizes per architecture: no batch-size trend to report.</p>`;
}

/**
 * The report's style sheet. Written to work both as the page's own sheet and inside a shadow root
 * (the explorer's "Lab results" view): `:host` stands in for `:root` / `body` there.
 */
export const REPORT_CSS = `
:root,:host{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#fff;--panel:#f9fafb;--accent:#2563eb}
*{box-sizing:border-box}
body,:host{display:block;margin:0;background:var(--bg);color:var(--fg);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1260px;margin:0 auto;padding:28px 28px 60px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:22px 0 8px}
p{max-width:900px}
.subtitle{color:var(--muted);margin:0 0 18px}
.muted{color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
figure{margin:0;background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:12px 14px 8px}
figure.reference{background:#fffbeb;border-color:#fcd34d}
figcaption{font-size:14px;font-weight:600;margin-bottom:6px}
figcaption .note{display:block;font-weight:400;color:var(--muted);font-size:13px}
svg.chart{width:100%;height:auto;display:block}
svg.chart text{font-family:inherit;font-size:12px;fill:#374151}
svg.chart .axis-label{font-size:12.5px;fill:#111827}
svg.chart .legend text{font-size:12.5px}
svg.chart .legend-title{font-weight:600;fill:#111827}
svg.chart .plot-bg{fill:#fff}
svg.chart .frame{fill:none;stroke:#9ca3af;stroke-width:1}
svg.chart .grid{stroke:#eceef1;stroke-width:1}
svg.chart .seg-label{fill:#fff;font-size:11px;font-weight:600}
svg.chart .bar-label{font-size:11px;fill:var(--muted)}
svg.chart .watermark{font-size:13px;font-weight:600;fill:#b45309}
table{border-collapse:collapse;margin:8px 0 14px;font-size:14px}
th,td{padding:5px 12px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--panel);font-weight:600}
table.results th,table.results td{white-space:nowrap}
table.results td{font-variant-numeric:tabular-nums;min-width:170px}
table.results .pm{color:var(--muted)}
table.results .ref{color:var(--muted);font-size:12px}
table.runs td,table.kv td{font-variant-numeric:tabular-nums}
table.kv{width:100%;table-layout:fixed}
table.kv td{overflow-wrap:anywhere}
table.kv.config th{width:240px}
table.kv th{width:45%;overflow-wrap:anywhere;font-weight:500;color:#374151;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:7px;vertical-align:0}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:18px}
.callout{background:var(--panel);border-left:4px solid var(--accent);padding:10px 16px;border-radius:4px;max-width:980px}
.callout.warn{border-left-color:#d97706}
details summary{cursor:pointer;color:var(--accent)}
footer{margin-top:40px;color:var(--muted);font-size:13px}
`;

// ---------------------------------------------------------------------------------------------------
// The page.

/** The report's content: what goes inside `<body>` (a `<main>` element), styled by REPORT_CSS. */
export function renderReportBody(results: LabResults): string {
  const runs = validRuns(results);
  const byCell = cells(runs);
  const allMethods = sortMethods(runs.map((r) => r.method));
  const archs = sortArchs(runs.map((r) => r.arch));
  const cfg = config(results);
  const epochs = isFiniteNumber(cfg.epochs) && cfg.epochs > 0 ? cfg.epochs : undefined;
  const seeds = [...new Set(runs.map((r) => r.seed))];
  // The PyTorch reference applies to the default protocol (2 epochs); show it only then (or if unknown).
  const showRef = epochs === undefined || epochs === 2;
  const maxOf = (k: string) => {
    const v = runs.map((r) => r[k]).filter(isFiniteNumber);
    return v.length ? Math.max(...v) : undefined;
  };
  const trainN = maxOf("train_samples");
  const testN = maxOf("test_samples");
  const count = (n: number | undefined, dflt: string) => (n === undefined ? dflt : n.toLocaleString("en-US"));

  let body = `<h1>normkit lab — normalization across batch sizes</h1>`;
  body += `<p class="subtitle">${runs.length} training run${runs.length === 1 ? "" : "s"} · architectures ${esc(archs.join(", ") || "none")} · methods ${esc(
    allMethods.join(", ") || "none",
  )} · seed${seeds.length === 1 ? "" : "s"} ${esc(seeds.join(", "))}. Real MNIST digits, trained and evaluated by normkit on ${esc(deviceOfResults(results))}.</p>`;

  if (runs.length === 0) {
    body += `<p class="callout warn">results.json holds no runs: nothing to chart.</p>`;
  }

  // (a) error vs batch size
  body += `<h2>Test error vs batch size</h2>`;
  body += `<p>Test error (%) on the ${count(testN, "2,000")} held-out digits, evaluated in eval mode (BatchNorm with its running statistics), per method, as the batch size shrinks from left to right — the layout of the Group Normalization paper's Figure 1.${
    seeds.length > 1 ? ` Markers are the mean over ${seeds.length} seeds; bars span the lowest to the highest seed.` : " One seed: differences of about a point are within seed noise."
  }</p>`;
  body += `<div class="grid">`;
  for (const arch of archs) {
    const archRuns = runs.filter((r) => r.arch === arch);
    body += `<figure><figcaption>${esc(arch)} — test error (%) vs batch size<span class="note">measured here, MNIST</span></figcaption>${errorChart(arch, archRuns, allMethods, byCell)}</figure>`;
  }
  body += `<figure class="reference"><figcaption>ImageNet, from the GN paper — not measured here<span class="note">ResNet-50 validation error (%) vs images per GPU, as published by Wu &amp; He (Group Normalization, 2018), Figure 1. Shown for reference only.</span></figcaption>${referenceChart()}</figure>`;
  body += `</div>`;

  // results tables
  body += `<h2>Results</h2>`;
  body += `<p>Test accuracy (%)${seeds.length > 1 ? ", mean ± half the spread over seeds" : ""}.${
    showRef ? " Beneath each cell, where it exists: PyTorch's result for the same protocol (<code>shared/lab/PROTOCOL.md</code>, seeds 0 and 1) and our difference from it." : " This run's configuration differs from the default protocol, so PyTorch's reference table is not shown."
  }</p>`;
  for (const arch of archs) body += `<h3>${esc(arch)}</h3>${resultsTable(arch, runs.filter((r) => r.arch === arch), byCell, allMethods, showRef)}`;
  body += `<details><summary>Every run (${runs.length})</summary>${runsTable(runs)}</details>`;

  // (b) loss curves
  body += `<h2>Training loss</h2>`;
  body += `<p>Training loss over training (bucket-averaged for readability${seeds.length > 1 ? "; mean over seeds" : ""}). Every method sees the same number of samples at a given batch size.</p>`;
  for (const arch of archs) {
    const archRuns = runs.filter((r) => r.arch === arch);
    const batches = [...new Set(archRuns.map((r) => r.batch_size))].sort((a, b) => b - a);
    body += `<h3>${esc(arch)}</h3><div class="grid">`;
    for (const b of batches) {
      body += `<figure><figcaption>${esc(arch)}, batch ${esc(b)} — training loss</figcaption>${lossChart(arch, b, archRuns.filter((r) => r.batch_size === b), allMethods, epochs, cfg)}</figure>`;
    }
    body += `</div>`;
  }

  // (c) switchable norm importance
  const snRuns = runs.filter((r) => Array.isArray(r.importance) && r.importance.length > 0);
  body += `<h2>What Switchable Norm learned</h2>`;
  if (snRuns.length === 0) {
    body += `<p class="muted">No Switchable Norm importance weights in these results.</p>`;
  } else {
    body += `<p>Switchable Norm mixes instance (IN), layer (LN) and batch (BN) statistics with learned softmax weights, separately for the mean (μ) and the variance (σ²). Each bar shows the final weights of one normalization layer${
      seeds.length > 1 ? ", averaged over seeds" : ""
    }; a larger BN share means the layer came to rely on batch statistics.</p>`;
    for (const arch of sortArchs(snRuns.map((r) => r.arch))) {
      const archRuns = snRuns.filter((r) => r.arch === arch);
      const batches = [...new Set(archRuns.map((r) => r.batch_size))].sort((a, b) => b - a);
      body += `<h3>${esc(arch)}</h3><div class="grid">`;
      for (const b of batches) {
        const rs = archRuns.filter((r) => r.batch_size === b);
        const imp = averageImportance(rs);
        if (imp.length === 0) continue;
        body += `<figure><figcaption>${esc(arch)}, batch ${esc(b)} — Switchable Norm importance per layer</figcaption>${importanceChart(arch, b, imp, rs.length)}</figure>`;
      }
      body += `</div>`;
    }
  }

  // honest reading
  body += `<h2>What this shows, and what it cannot</h2>`;
  body += `<h3>Measured here</h3>${findings(archs, runs, byCell, allMethods)}`;
  body += `<p>BatchNorm normalizes each channel or feature with statistics of the current batch. In the MLP, each feature's mean and variance at batch 2 come from just 2 numbers, so the statistics seen in training are noisy and differ from the running averages used at test time; GroupNorm, LayerNorm and InstanceNorm compute statistics within one sample and do not depend on the batch. In the CNN, each channel's statistics pool N·H·W values (2·28·28 at batch 2), so BatchNorm's small-batch penalty can nearly vanish. Whatever the charts above show is what was measured: the setup was not tuned to make any method win (one learning-rate rule, lr = max(0.05·batch/64, 0.005), for every method).</p>`;
  body += `<div class="callout warn"><p><strong>What it cannot show: MNIST is not ImageNet.</strong> These are 28×28 grey digits, ${count(trainN, "8,000")} training images, networks with two normalization layers and a few thousand to a few hundred thousand parameters, trained for ${
    epochs ?? "a few"
  } epoch${epochs === 1 ? "" : "s"} on a CPU; trained fully, every method reaches about 93–96% here, so the differences between methods are small. The GN paper's curves come from ResNet-50 (dozens of normalization layers) trained for 100 epochs on 1.28 million ImageNet images with the batch split across GPUs; its numbers are reproduced above from the paper, not measured. Small differences here (about a point, or within the seed spread) are noise, not evidence; a method that wins on MNIST need not win on a large vision task, and vice versa.</p></div>`;

  // config, versions, machine
  body += `<h2>Configuration, versions, machine</h2>`;
  body += `<h3>config</h3>${kvTable(results.config, "config")}<div class="cols">`;
  body += `<div><h3>versions</h3>${kvTable(results.versions, "versions")}</div>`;
  body += `<div><h3>machine</h3>${kvTable(results.machine, "machine")}</div>`;
  const extra = Object.fromEntries(Object.entries(results).filter(([k]) => !["runs", "config", "versions", "machine", "summary"].includes(k)));
  if (Object.keys(extra).length) body += `<div><h3>this run</h3>${kvTable(extra, "run-info")}</div>`;
  body += `</div>`;
  body += `<footer>Generated by normkit's <code>normkit lab</code>. This page is self-contained: inline CSS and SVG, no scripts, no external requests.</footer>`;

  return `<main>
${body}
</main>`;
}

/** A self-contained HTML page around `body`: REPORT_CSS inline, a CSP that allows nothing else. */
export function reportPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>${body}</body>
</html>
`;
}

/** The whole report: one self-contained HTML page (reportPage around renderReportBody). */
export function renderReport(results: LabResults): string {
  return reportPage("normkit lab report", renderReportBody(results));
}
