/**
 * The learning-rate experiment (lab-protocol.md, "learning-rate"): "normalization permits higher
 * learning rates". Batch 64, shuffled, lr ∈ {0.01, 0.03, 0.1, 0.3, 1, 3}, every method; a run whose
 * training loss becomes non-finite stops there, is marked diverged and counts as 10%.
 */
import type { Device } from "../../kernels/contract/device.js";
import type { Dataset } from "../data.js";
import type { Arch, Method } from "../models.js";
import { escapeHtml as esc } from "../report.js";
import { type ProgressFn, type RunResult, type RunSpec, trainRun } from "../train.js";
import { type LinePoint, type LineSeries, logLineChart } from "./charts.js";
import { CNN_MLP_METHODS, EPOCHS, QUICK_EPOCHS, QUICK_TRAIN_LIMIT, TWIN_NOTE, archMethods, gridTableHtml, gridTableText, meanOf, twinMean } from "./common.js";
import { epochsText } from "./shuffle.js";
import type { Experiment, ExperimentConfig, ExperimentRecord } from "./types.js";

export const LR_BATCH = 64;
export const LEARNING_RATES = [0.01, 0.03, 0.1, 0.3, 1, 3] as const;
/** --quick: one safe and one extreme rate. */
export const QUICK_LEARNING_RATES = [0.1, 3] as const;

export type LearningRateSpec = RunSpec & { lr: number };
export type LearningRateRecord = ExperimentRecord & Omit<RunResult, "arch" | "method"> & { experiment: "learning-rate"; lr: number };

export const learningRateExperiment: Experiment<LearningRateSpec, LearningRateRecord> = {
  name: "learning-rate",
  title: "Normalization permits higher learning rates",
  methods: CNN_MLP_METHODS,
  cellFields: ["lr"],
  plan(cfg: ExperimentConfig): LearningRateSpec[] {
    const specs: LearningRateSpec[] = [];
    for (const [arch, method] of archMethods(CNN_MLP_METHODS, cfg)) {
      for (const lr of cfg.quick ? QUICK_LEARNING_RATES : LEARNING_RATES) {
        for (const seed of cfg.seeds) {
          const s: LearningRateSpec = {
            arch: arch as Arch, method: method as Method, batchSize: LR_BATCH, seed, epochs: cfg.quick ? QUICK_EPOCHS : EPOCHS,
            lr, ordering: "shuffled", stopOnDivergence: true,
          };
          if (cfg.quick) s.trainLimit = QUICK_TRAIN_LIMIT;
          specs.push(s);
        }
      }
    }
    return specs;
  },
  samples: (spec, trainCount) => Math.floor(Math.min(spec.trainLimit ?? trainCount, trainCount) / spec.batchSize) * spec.batchSize * spec.epochs,
  label: (s) => `${s.arch} ${s.method} lr=${s.lr} b=${s.batchSize} seed=${s.seed}`,
  async run(spec: LearningRateSpec, data: Dataset, onProgress?: ProgressFn, device?: Device): Promise<LearningRateRecord> {
    const r = await trainRun(spec, data, onProgress, device);
    return { experiment: "learning-rate", ...r, lr: spec.lr };
  },
  report: (records) => learningRateReport(records),
  summary: (records) => gridTableText(records, "lr", lrsOf(records), (v) => `lr ${v}`),
  protocol: (cfg) => ({
    batch_size: LR_BATCH, learning_rates: [...(cfg.quick ? QUICK_LEARNING_RATES : LEARNING_RATES)], epochs: cfg.quick ? QUICK_EPOCHS : EPOCHS, ordering: "shuffled",
    divergence: "a non-finite training loss stops the run: diverged, counted as 10% test accuracy",
  }),
};

function lrsOf(records: ExperimentRecord[]): number[] {
  return [...new Set(records.map((r) => r.lr as number))].sort((a, b) => a - b);
}

function learningRateReport(records: LearningRateRecord[]): string {
  const seeds = [...new Set(records.map((r) => r.seed))];
  const lrs = lrsOf(records);
  let s = `<section data-experiment="learning-rate"><h2>Learning rate: “normalization permits higher learning rates”</h2>`;
  s += `<p>Batch 64, shuffled, SGD (momentum 0.9, weight decay 1e-4) at each learning rate in {${lrs.join(", ")}}, every method, ${epochsText(records[0]?.epochs)}. A run whose training loss becomes NaN or infinite stops there, is marked diverged (✕) and counts as 10% test accuracy. Lines: the mean over seed${seeds.length === 1 ? "" : "s"} ${esc(seeds.join(", "))}; whiskers: the seeds' range.</p><div class="grid">`;
  for (const arch of [...new Set(records.map((r) => r.arch))]) {
    const rs = records.filter((r) => r.arch === arch);
    const series: LineSeries[] = [...new Set(rs.map((r) => r.method))].map((m) => ({
      name: m,
      points: lrs.map((lr) => {
        const g = rs.filter((r) => r.method === m && r.lr === lr);
        const p: LinePoint = { x: lr, values: g.map((r) => r.test_accuracy), diverged: g.filter((r) => r.diverged).length };
        const ref = g[0] ? twinMean(g[0], ["lr"]) : undefined;
        if (ref !== undefined) p.reference = ref;
        return p;
      }),
    }));
    s += `<figure><figcaption>${esc(arch)} — test accuracy (%) vs learning rate<span class="note">measured here, MNIST, batch 64, log x axis</span></figcaption>${logLineChart(`learning-rate-${arch}`, series, "learning rate (log scale)", "test accuracy (%)")}</figure>`;
  }
  s += `</div><p class="note">${esc(TWIN_NOTE)}</p>`;
  s += gridTableHtml(records, "lr", lrs, (v) => `lr ${v}`);
  const items: string[] = [];
  for (const arch of [...new Set(records.map((r) => r.arch))]) {
    const methods = [...new Set(records.filter((r) => r.arch === arch).map((r) => r.method))];
    const parts = methods.map((m) => {
      // the largest lr whose mean accuracy is at least 90% (and no seed diverged)
      const ok = lrs.filter((lr) => {
        const g = records.filter((r) => r.arch === arch && r.method === m && r.lr === lr);
        return g.length > 0 && !g.some((r) => r.diverged) && meanOf(g, () => true) >= 0.9;
      });
      const div = lrs.filter((lr) => records.some((r) => r.arch === arch && r.method === m && r.lr === lr && r.diverged));
      // at chance without a non-finite loss: the network stopped learning (e.g. a constant prediction)
      const chance = lrs.filter((lr) => !div.includes(lr) && meanOf(records, (r) => r.arch === arch && r.method === m && r.lr === lr) <= 0.15);
      return `${esc(m)}: ≥ 90% up to lr ${ok.length ? Math.max(...ok) : "—"}${div.length ? `, diverged (non-finite loss) at ${div.join(", ")}` : ""}${chance.length ? `, at chance (≤ 15%, loss finite) at ${chance.join(", ")}` : ""}`;
    });
    items.push(`<li>${esc(arch)} — ${parts.join("; ")}.</li>`);
  }
  s += `<h3>What this shows, and what it cannot</h3><ul class="findings">${items.join("")}</ul>`;
  s += `<p>A normalization layer makes the layer's output invariant to the scale of the weights before it, so a large step that grows those weights is partly undone (the effective step shrinks as the weights grow); without normalization nothing stops the activations and the loss from blowing up. If the claim holds, the unnormalised network's accuracy falls off, or it diverges, at learning rates where the normalised ones still train.</p>`;
  s += `<div class="callout warn"><p><strong>What it cannot show.</strong> Six learning rates, SGD with momentum and no warm-up or schedule, 2 epochs on 8,000 digits, two tiny networks (the classifier Linear is never normalised, so at the largest rates every method can fail through it): the thresholds here are specific to this setup. “Trains at a higher rate” is not “trains better”: the best accuracy of each method may well be at a moderate rate. Nothing here is about large networks or ImageNet.</p></div>`;
  return s + `</section>`;
}
