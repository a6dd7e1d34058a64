/**
 * The rnn experiment (lab-protocol.md, "rnn"): "LayerNorm suits recurrent networks; BatchNorm needs
 * statistics per time step". Row-sequential MNIST through one LSTM (H = 64) and a Linear on h_T —
 * no normalization, LayerNorm inside the recurrence (Ba et al.), per-step BatchNorm (Cooijmans et
 * al.) — at batch 8 and 64, Adam with clipping; the run itself is rnn.ts's runRnn.
 */
import type { Dataset } from "../data.js";
import { escapeHtml as esc } from "../report.js";
import type { ProgressFn } from "../train.js";
import { type PairedGroup, pairedBarChart } from "./charts.js";
import { EPOCHS, QUICK_EPOCHS, QUICK_TRAIN_LIMIT, TWIN_NOTE, meanOf, twinMean, withTwin } from "./common.js";
import { RNN_CLIP, RNN_HIDDEN, RNN_LR, RNN_METHODS, type RnnResult, type RnnSpec, runRnn } from "./rnn.js";
import type { Experiment, ExperimentConfig, ExperimentRecord } from "./types.js";

export const RNN_BATCHES = [8, 64] as const;

export type RnnRunSpec = RnnSpec & { arch: "lstm" };
/** runRnn's record, as an experiment record. */
export type RnnRecord = ExperimentRecord & RnnResult;

export const rnnExperiment: Experiment<RnnRunSpec, RnnRecord> = {
  name: "rnn",
  title: "LayerNorm suits recurrent networks; BatchNorm needs statistics per time step",
  methods: { lstm: RNN_METHODS },
  cellFields: [],
  plan(cfg: ExperimentConfig): RnnRunSpec[] {
    const specs: RnnRunSpec[] = [];
    for (const method of RNN_METHODS) {
      if (cfg.methods !== null && !cfg.methods.includes(method)) continue;
      for (const batchSize of RNN_BATCHES) {
        for (const seed of cfg.seeds) {
          const s: RnnRunSpec = { arch: "lstm", method, batchSize, seed, epochs: cfg.quick ? QUICK_EPOCHS : EPOCHS };
          if (cfg.quick) s.trainLimit = QUICK_TRAIN_LIMIT;
          specs.push(s);
        }
      }
    }
    return specs;
  },
  samples: (spec, trainCount) => Math.floor(Math.min(spec.trainLimit ?? trainCount, trainCount) / spec.batchSize) * spec.batchSize * spec.epochs,
  label: (s) => `lstm ${s.method} b=${s.batchSize} seed=${s.seed}`,
  async run(spec: RnnRunSpec, data: Dataset, onProgress?: ProgressFn): Promise<RnnRecord> {
    const { arch: _arch, ...rnn } = spec;
    const total = rnnExperiment.samples(spec, data.train.count);
    const r = await runRnn(rnn, data);
    onProgress?.(total, total);
    return r as RnnRecord;
  },
  report: (records) => rnnReport(records),
  summary(records) {
    const out = ["", "rnn, lstm: test accuracy % (mean over seeds)", `${"method".padEnd(16)} ${RNN_BATCHES.map((b) => `batch ${b}`.padStart(10)).join(" ")}`];
    for (const m of RNN_METHODS) {
      if (!records.some((r) => r.method === m)) continue;
      out.push(`${m.padEnd(16)} ${RNN_BATCHES.map((b) => {
        const v = meanOf(records, (r) => r.method === m && r.batch_size === b);
        return (Number.isFinite(v) ? (v * 100).toFixed(2) : "—").padStart(10);
      }).join(" ")}`);
    }
    return out;
  },
  protocol: (cfg) => ({
    network: `LSTM(28 → ${RNN_HIDDEN}) over the 28 rows of an image, one bias [4H]; Linear(${RNN_HIDDEN} → 10) on h_T`,
    methods: {
      none: "(i, f, g, o) = W_x x_t + W_h h_{t-1} + b",
      layer_norm: "LN_x(W_x x_t) + LN_h(W_h h_{t-1}) + b; h_t = σ(o) ⊙ tanh(LN_c(c_t)) (Ba et al. 2016)",
      batch_norm: "BN_{x,t}, BN_{h,t}, BN_{c,t} in place of the LayerNorms: one BatchNorm1d per time step (gains 0.1), eval on each step's running statistics (Cooijmans et al. 2016)",
    },
    optimizer: { name: "Adam", lr: RNN_LR, betas: [0.9, 0.999], eps: 1e-8, clip_grad_norm: RNN_CLIP },
    batch_sizes: [...RNN_BATCHES], epochs: cfg.quick ? QUICK_EPOCHS : EPOCHS,
  }),
};

function rnnReport(records: RnnRecord[]): string {
  const seeds = [...new Set(records.map((r) => r.seed))];
  let s = `<section data-experiment="rnn"><h2>RNN: “LayerNorm suits recurrent networks; BatchNorm needs statistics per time step”</h2>`;
  s += `<p>Row-sequential MNIST: each image is 28 time steps of 28 pixels, through one LSTM layer (hidden size ${RNN_HIDDEN}, gate order i, f, g, o) and a Linear on the last hidden state; Adam (lr ${RNN_LR}), gradients clipped to norm ${RNN_CLIP}, ${records[0]?.epochs ?? EPOCHS} epoch(s). <strong>none</strong>: the plain cell; <strong>layer_norm</strong>: LayerNorm on the input and recurrent pre-activations and on the cell before its tanh (Ba et al.); <strong>batch_norm</strong>: the same with a separate BatchNorm per time step (Cooijmans et al.), evaluated on each step's running statistics. Bars: test accuracy (%), the mean over seed${seeds.length === 1 ? "" : "s"} ${esc(seeds.join(", "))}; dots: the seeds.</p>`;
  const groups: PairedGroup[] = RNN_METHODS.filter((m) => records.some((r) => r.method === m)).map((m) => ({
    name: m,
    bars: RNN_BATCHES.map((b) => {
      const g = records.filter((r) => r.method === m && r.batch_size === b);
      return g.length ? withTwin({ values: g.map((r) => r.test_accuracy), diverged: g.filter((r) => r.diverged).length }, twinMean(g[0]!, [])) : null;
    }),
  }));
  s += `<div class="grid"><figure><figcaption>lstm — test accuracy (%), batch 8 vs 64<span class="note">measured here, row-sequential MNIST</span></figcaption>${pairedBarChart("rnn-lstm", groups, RNN_BATCHES.map((b) => `batch ${b}`), ["#2563eb", "#dc2626"], "test accuracy (%)")}</figure></div><p class="note">${esc(TWIN_NOTE)}</p>`;
  const items = RNN_BATCHES.map((b) => `<li>batch ${b}: ${RNN_METHODS.map((m) => {
    const v = meanOf(records, (r) => r.method === m && r.batch_size === b);
    return `${esc(m)} ${Number.isFinite(v) ? (v * 100).toFixed(1) : "—"}%`;
  }).join("; ")}.</li>`);
  s += `<h3>What this shows, and what it cannot</h3><ul class="findings">${items.join("")}</ul>`;
  s += `<div class="callout warn"><p><strong>What it cannot show.</strong> One short, fixed-length task (28 steps), one small layer, 2 epochs: LayerNorm's advantage on long or variable-length sequences (where per-step BatchNorm has no statistics for unseen lengths) is not tested; per-step BatchNorm here always has all 28 steps' statistics. Seeds vary a lot for the normalised cells at these budgets.</p></div>`;
  return s + `</section>`;
}
