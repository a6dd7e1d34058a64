/**
 * SGD (momentum, dampening, Nesterov, weight decay), Adam (L2), AdamW (decoupled decay) and the
 * learning-rate schedules against PyTorch's own (test/data/optim.json, scripts/fixtures/gen_optim.py):
 * every parameter after every step within 1e-12 in float64, on the host; the float32 path too.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Adam, AdamW, ConfigError, CosineAnnealingLR, ExponentialLR, SGD, StepLR, Tensor } from "../../src/index.js";
import type { Parameter } from "../../src/index.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
interface OptCase { kind: "optimizer"; name: string; options: Record<string, unknown> & { name: string }; p0: number[]; grads: number[][]; after: number[][] }
interface SchedCase { kind: "schedule"; name: string; options: Record<string, unknown> & { name: string }; lr0: number; lrs: number[] }
const fixture = JSON.parse(readFileSync(join(root, "test/data/optim.json"), "utf8")) as { cases: (OptCase | SchedCase)[] };

function param(values: number[], dtype: "float32" | "float64"): Parameter {
  return { value: Tensor.from(values, [values.length], dtype), grad: Tensor.zeros([values.length], dtype) };
}

function makeOptimizer(c: OptCase, p: Parameter) {
  const { name, ...o } = c.options;
  if (name === "SGD") return new SGD([p], o as never);
  if (name === "Adam") return new Adam([p], o as never);
  if (name === "AdamW") return new AdamW([p], o as never);
  throw new Error(`unknown optimiser ${name}`);
}

describe("optimisers against PyTorch", () => {
  for (const c of fixture.cases.filter((x): x is OptCase => x.kind === "optimizer")) {
    for (const [dtype, tol] of [["float64", 1e-12], ["float32", 2e-6]] as const) {
      it(`${c.name} (${JSON.stringify(c.options)}), ${dtype}: every step within ${tol}`, () => {
        const p = param(c.p0, dtype);
        const opt = makeOptimizer(c, p);
        c.grads.forEach((g, s) => {
          opt.zeroGrad();
          p.grad.data.set(g);
          opt.step();
          const want = c.after[s]!;
          for (let i = 0; i < want.length; i++) {
            const err = Math.abs(p.value.data[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!));
            assert.ok(err <= tol, `step ${s + 1}, element ${i}: ${p.value.data[i]} vs ${want[i]} (${err})`);
          }
        });
      });
    }
  }
  it("AdamW's default weight decay is PyTorch's 1e-2, and it is decoupled (no L2 term in the moments)", () => {
    const w = new AdamW([param([1], "float64")]);
    assert.equal(w.weightDecay, 1e-2);
    assert.throws(() => new AdamW([param([1], "float64")], { weightDecay: -1 }), (e: unknown) => e instanceof ConfigError && /AdamW/.test(e.message));
  });
});

describe("learning-rate schedules against PyTorch", () => {
  for (const c of fixture.cases.filter((x): x is SchedCase => x.kind === "schedule")) {
    it(`${c.name} (${JSON.stringify(c.options)}): the lr after every epoch`, () => {
      const opt = new SGD([param([0], "float64")], { lr: c.lr0 });
      const { name, ...o } = c.options;
      const s = name === "StepLR" ? new StepLR(opt, o as never) : name === "ExponentialLR" ? new ExponentialLR(opt, o as never) : new CosineAnnealingLR(opt, o as never);
      const got = [opt.lr];
      for (let e = 0; e < c.lrs.length - 1; e++) {
        opt.step();
        s.step();
        got.push(s.lr);
      }
      got.forEach((lr, e) => assert.ok(Math.abs(lr - c.lrs[e]!) <= 1e-12 * Math.max(1, c.lrs[e]!), `epoch ${e}: ${lr} vs ${c.lrs[e]}`));
      assert.equal(s.lastEpoch, c.lrs.length - 1);
    });
  }
  it("bad options are ConfigErrors naming them", () => {
    const opt = new SGD([param([0], "float64")], { lr: 0.1 });
    assert.throws(() => new StepLR(opt, { stepSize: 0 }), (e: unknown) => e instanceof ConfigError && /stepSize/.test(e.message));
    assert.throws(() => new StepLR(opt, { stepSize: 2, gamma: -1 }), (e: unknown) => e instanceof ConfigError && /gamma/.test(e.message));
    assert.throws(() => new CosineAnnealingLR(opt, { tMax: 1.5 }), (e: unknown) => e instanceof ConfigError && /tMax/.test(e.message));
    assert.throws(() => new ExponentialLR(opt, {} as never), (e: unknown) => e instanceof ConfigError && /gamma/.test(e.message));
    assert.throws(() => new StepLR({} as never, { stepSize: 1 }), (e: unknown) => e instanceof ConfigError && /optimizer/.test(e.message));
  });
});
