/**
 * The experiments' SVG charts (browser-safe, no Node API), styled by the report's REPORT_CSS:
 * - {@link pairedBarChart}: per group (a method) one bar per variant (e.g. shuffled, two_class), the
 *   seeds' mean with a min–max whisker and each seed as a dot;
 * - {@link logLineChart}: accuracy against a log-scaled x (e.g. the learning rate), one line per
 *   series (a method), mean markers, min–max whiskers, diverged runs drawn as a ✕ at their 10%.
 * Every chart is `<svg class="chart" data-chart=ID data-kind=KIND>` with `<g class="series"
 * data-series=NAME>` per series, so tests can read what was drawn.
 */
import { METHOD_STYLE, escapeHtml as esc } from "../report.js";

const FALLBACK = ["#0f766e", "#7c3aed", "#b91c1c", "#4d7c0f", "#1d4ed8", "#be185d"];
export function colorOf(name: string, i = 0): string {
  return METHOD_STYLE[name]?.color ?? FALLBACK[i % FALLBACK.length]!;
}
export function labelOf(name: string): string {
  return METHOD_STYLE[name]?.label ?? name;
}
function r1(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

export interface BarValue {
  /** The seeds' accuracies (0..1); their mean is the bar. */
  values: number[];
  /** How many of them diverged. */
  diverged?: number;
  /** The PyTorch twin's mean accuracy for the cell (0..1), drawn as a hollow diamond: a reference. */
  reference?: number;
}

/** A hollow diamond at (cx, cy): the PyTorch twin's value (a reference, not a measurement of normkit). */
function twinMark(cx: number, cy: number, color: string, label: string): string {
  return `<path class="twin" d="M${r1(cx)},${r1(cy - 5.5)}L${r1(cx + 5.5)},${r1(cy)}L${r1(cx)},${r1(cy + 5.5)}L${r1(cx - 5.5)},${r1(cy)}Z" fill="#ffffff" fill-opacity="0.6" stroke="${color}" stroke-width="1.6"><title>${esc(label)}</title></path>`;
}
export interface PairedGroup {
  name: string;
  /** One entry per variant, in the order of `variants`; null where there is no run. */
  bars: (BarValue | null)[];
}

/** Accuracy (%) bars per group and variant. `variants` are drawn in `variantColors` (the first solid, the rest hatched lighter). */
export function pairedBarChart(id: string, groups: PairedGroup[], variants: string[], variantColors: string[], yLabel: string): string {
  const W = 640, H = 300, L = 52, R = 12, T = 30, B = 52;
  const pw = W - L - R, ph = H - T - B;
  const all = groups.flatMap((g) => g.bars.flatMap((b) => [...(b?.values ?? []), ...(b?.reference !== undefined ? [b.reference] : [])]));
  const lo = Math.max(0, Math.floor((Math.min(...all, 0.9) * 100) / 10) * 10);
  const y = (v: number) => T + ph - ((v * 100 - lo) / (100 - lo)) * ph;
  let s = `<svg class="chart" data-chart="${esc(id)}" data-kind="paired-bars" viewBox="0 0 ${W} ${H}" role="img">`;
  s += `<rect class="plot-bg" x="${L}" y="${T}" width="${pw}" height="${ph}"/>`;
  for (let t = lo; t <= 100; t += lo >= 80 ? 5 : 10) {
    s += `<line class="grid" x1="${L}" x2="${L + pw}" y1="${r1(y(t / 100))}" y2="${r1(y(t / 100))}"/><text x="${L - 6}" y="${r1(y(t / 100) + 4)}" text-anchor="end">${t}</text>`;
  }
  s += `<text class="axis-label" transform="translate(14 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`;
  const gw = pw / Math.max(1, groups.length), bw = Math.min(34, (gw * 0.75) / Math.max(1, variants.length));
  groups.forEach((g, gi) => {
    const x0 = L + gi * gw + (gw - bw * variants.length) / 2;
    s += `<g class="series" data-series="${esc(g.name)}">`;
    g.bars.forEach((b, vi) => {
      if (!b || b.values.length === 0) return;
      const m = b.values.reduce((a, v) => a + v, 0) / b.values.length;
      const x = x0 + vi * bw, col = variantColors[vi] ?? colorOf(g.name);
      s += `<rect data-variant="${esc(variants[vi]!)}" x="${r1(x + 1)}" y="${r1(y(m))}" width="${r1(bw - 2)}" height="${r1(Math.max(0, T + ph - y(m)))}" fill="${col}" fill-opacity="${vi === 0 ? 0.9 : 0.45}" stroke="${col}"><title>${esc(`${g.name} ${variants[vi]}: ${(m * 100).toFixed(1)}% (seeds ${b.values.map((v) => (v * 100).toFixed(1)).join(", ")})`)}</title></rect>`;
      const cx = x + bw / 2;
      if (b.values.length > 1) s += `<line x1="${r1(cx)}" x2="${r1(cx)}" y1="${r1(y(Math.max(...b.values)))}" y2="${r1(y(Math.min(...b.values)))}" stroke="#111827" stroke-width="1.2"/>`;
      for (const v of b.values) s += `<circle cx="${r1(cx)}" cy="${r1(y(v))}" r="2.2" fill="#111827"/>`;
      if (b.reference !== undefined) s += twinMark(cx, y(b.reference), "#111827", `PyTorch twin, ${g.name} ${variants[vi]}: ${(b.reference * 100).toFixed(1)}% (seeds 0, 1; a reference)`);
      const top = Math.max(m, ...b.values, b.reference ?? 0);
      s += `<text class="bar-label" x="${r1(cx)}" y="${r1(y(top) - 7)}" text-anchor="middle">${(m * 100).toFixed(1)}${b.diverged ? "✕" : ""}</text>`;
    });
    s += `<text x="${r1(L + gi * gw + gw / 2)}" y="${T + ph + 16}" text-anchor="middle">${esc(labelOf(g.name))}</text></g>`;
  });
  s += `<rect class="frame" x="${L}" y="${T}" width="${pw}" height="${ph}"/>`;
  s += `<g class="legend">`;
  variants.forEach((v, i) => {
    const lx = L + 8 + i * 130;
    s += `<rect x="${lx}" y="8" width="12" height="12" fill="${variantColors[i]}" fill-opacity="${i === 0 ? 0.9 : 0.45}" stroke="${variantColors[i]}"/><text x="${lx + 17}" y="18">${esc(v)}</text>`;
  });
  const twins = groups.some((g) => g.bars.some((b) => b?.reference !== undefined));
  s += `<text x="${L + pw}" y="18" text-anchor="end" class="bar-label">bars: mean over seeds; dots: seeds${twins ? "; ◇ PyTorch twin" : ""}${lo > 0 ? `; axis from ${lo}%` : ""}</text></g>`;
  return s + `</svg>`;
}

export interface LinePoint {
  x: number;
  /** Seeds' accuracies, 0..1. */
  values: number[];
  diverged: number;
  /** The PyTorch twin's mean accuracy there (0..1), drawn as a hollow diamond: a reference. */
  reference?: number;
}
export interface LineSeries {
  name: string;
  points: LinePoint[];
}

/** Accuracy (%) against a log10 x axis, one line per series; a diverged run is a ✕ at its value. */
export function logLineChart(id: string, series: LineSeries[], xLabel: string, yLabel: string): string {
  const W = 640, H = 320, L = 52, R = 130, T = 14, B = 44;
  const pw = W - L - R, ph = H - T - B;
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  if (xs.length === 0) return `<p class="muted">No runs to chart.</p>`;
  const lx0 = Math.log10(xs[0]!), lx1 = Math.log10(xs[xs.length - 1]!);
  const pad = (lx1 - lx0 || 1) * 0.06;
  const x = (v: number) => L + ((Math.log10(v) - lx0 + pad) / (lx1 - lx0 + 2 * pad)) * pw;
  const y = (v: number) => T + ph - v * ph;
  let s = `<svg class="chart" data-chart="${esc(id)}" data-kind="log-lines" viewBox="0 0 ${W} ${H}" role="img">`;
  s += `<rect class="plot-bg" x="${L}" y="${T}" width="${pw}" height="${ph}"/>`;
  for (let t = 0; t <= 100; t += 10) s += `<line class="grid" x1="${L}" x2="${L + pw}" y1="${r1(y(t / 100))}" y2="${r1(y(t / 100))}"/><text x="${L - 6}" y="${r1(y(t / 100) + 4)}" text-anchor="end">${t}</text>`;
  for (const v of xs) s += `<line class="grid" x1="${r1(x(v))}" x2="${r1(x(v))}" y1="${T}" y2="${T + ph}"/><text x="${r1(x(v))}" y="${T + ph + 16}" text-anchor="middle">${v}</text>`;
  s += `<text class="axis-label" x="${L + pw / 2}" y="${H - 6}" text-anchor="middle">${esc(xLabel)}</text>`;
  s += `<text class="axis-label" transform="translate(14 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`;
  series.forEach((sr, i) => {
    const col = colorOf(sr.name, i);
    const pts = sr.points.filter((p) => p.values.length > 0).sort((a, b) => a.x - b.x);
    const mean = (p: LinePoint) => p.values.reduce((a, v) => a + v, 0) / p.values.length;
    s += `<g class="series" data-series="${esc(sr.name)}">`;
    s += `<polyline fill="none" stroke="${col}" stroke-width="2" points="${pts.map((p) => `${r1(x(p.x))},${r1(y(mean(p)))}`).join(" ")}"/>`;
    for (const p of pts) {
      const cx = x(p.x), m = mean(p);
      if (p.values.length > 1) s += `<line x1="${r1(cx)}" x2="${r1(cx)}" y1="${r1(y(Math.max(...p.values)))}" y2="${r1(y(Math.min(...p.values)))}" stroke="${col}" stroke-width="1.2"/>`;
      const tip = `<title>${esc(`${sr.name} at ${p.x}: ${(m * 100).toFixed(1)}%${p.diverged ? ` (${p.diverged} of ${p.values.length} diverged)` : ""}`)}</title>`;
      if (p.diverged > 0) s += `<path class="diverged" data-x="${p.x}" d="M${r1(cx - 5)},${r1(y(m) - 5)}L${r1(cx + 5)},${r1(y(m) + 5)}M${r1(cx - 5)},${r1(y(m) + 5)}L${r1(cx + 5)},${r1(y(m) - 5)}" stroke="${col}" stroke-width="2.4">${tip}</path>`;
      else s += `<circle cx="${r1(cx)}" cy="${r1(y(m))}" r="3.6" fill="${col}">${tip}</circle>`;
      if (p.reference !== undefined) s += twinMark(cx, y(p.reference), col, `PyTorch twin, ${sr.name} at ${p.x}: ${(p.reference * 100).toFixed(1)}% (seeds 0, 1; a reference)`);
    }
    s += `</g>`;
  });
  s += `<rect class="frame" x="${L}" y="${T}" width="${pw}" height="${ph}"/><g class="legend">`;
  series.forEach((sr, i) => {
    const ly = T + 10 + i * 18;
    s += `<line x1="${L + pw + 12}" x2="${L + pw + 30}" y1="${ly}" y2="${ly}" stroke="${colorOf(sr.name, i)}" stroke-width="2.5"/><text x="${L + pw + 35}" y="${ly + 4}">${esc(labelOf(sr.name))}</text>`;
  });
  const twins = series.some((sr) => sr.points.some((p) => p.reference !== undefined));
  s += `<text x="${L + pw + 12}" y="${T + 16 + series.length * 18}" class="bar-label">✕ diverged (10%)</text>`;
  if (twins) s += `<text x="${L + pw + 12}" y="${T + 32 + series.length * 18}" class="bar-label">◇ PyTorch twin</text>`;
  s += `</g>`;
  return s + `</svg>`;
}
