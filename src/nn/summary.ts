/**
 * `summary(model, inputShape?)`: one line per module of the tree (PyTorch-style dotted names, as
 * `namedModules()`), its class, its output shape and its parameter count, then the totals — the table
 * torchinfo's `summary(model, input_size)` prints. Output shapes come from one eval-mode forward of a
 * zero input through a Sequential's layers (the model's training mode is restored after; running
 * statistics are not touched in eval mode); without `inputShape`, or for other models, the column is
 * left empty.
 */
import { ConfigError } from "../errors.js";
import { fmtShape } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { Sequential } from "./basic.js";
import type { Module } from "./module.js";

export interface SummaryRow {
  /** Dotted name ("" for the model itself). */
  name: string;
  /** The module's class. */
  type: string;
  /** Output shape of the module (a Sequential's direct layers, with an input shape), else null. */
  outputShape: number[] | null;
  /** Parameters the module holds itself (not its children's). */
  params: number;
}

export interface Summary {
  rows: SummaryRow[];
  totalParams: number;
  /** The table as text. */
  text: string;
}

function countOwn(m: Module, seen: Set<unknown>): number {
  // a module's own parameters: those not reached through a child (wrappers pass theirs through)
  let n = 0;
  for (const p of Object.values(m.namedParameters())) {
    if (seen.has(p)) continue;
    seen.add(p);
    n += p.value.size;
  }
  return n;
}

export function summary(model: Module, inputShape?: readonly number[]): Summary {
  if (inputShape !== undefined && (!Array.isArray(inputShape) || inputShape.some((d) => !Number.isInteger(d) || d < 0))) {
    throw new ConfigError("inputShape", "an array of integers ≥ 0 (batch first)", String(inputShape), "summary");
  }
  const shapes = new Map<Module, number[]>();
  if (inputShape && model instanceof Sequential) {
    const wasTraining = model.training;
    model.eval();
    try {
      let h: Tensor = model.device.zeros(inputShape, model.dtype);
      for (const l of model.layers) {
        h = l.forward(h);
        shapes.set(l, [...h.shape]);
      }
      shapes.set(model, [...h.shape]);
    } finally {
      model.train(wasTraining);
    }
  }
  // parameters counted once, deepest holder first: walk the tree bottom-up
  const named = model.namedModules();
  const seen = new Set<unknown>();
  const counts = new Map<Module, number>();
  for (const [, m] of [...named].reverse()) if (!counts.has(m)) counts.set(m, countOwn(m, seen));
  const rows: SummaryRow[] = named.map(([name, m]) => ({ name, type: m.constructor.name, outputShape: shapes.get(m) ?? null, params: counts.get(m) ?? 0 }));
  const totalParams = rows.reduce((a, r) => a + r.params, 0);
  const cells = rows.map((r) => [r.name === "" ? "(model)" : r.name, r.type, r.outputShape ? fmtShape(r.outputShape) : "", r.params.toLocaleString("en-US")]);
  const head = ["name", "type", "output shape", "params"];
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((s, i) => (i === 3 ? s.padStart(w[i]!) : s.padEnd(w[i]!))).join("  ").trimEnd();
  const text = [line(head), w.map((n) => "-".repeat(n)).join("  "), ...cells.map(line), `total parameters: ${totalParams.toLocaleString("en-US")}`].join("\n");
  return { rows, totalParams, text };
}
