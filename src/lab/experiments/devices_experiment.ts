/**
 * The devices experiment (lab-protocol.md, "devices"): "(devices × images per device)" — BatchNorm's
 * statistics per device vs synchronised (SyncBatchNorm), GroupNorm and Switchable Norm, at a global
 * batch of 16 split as (1, 16), (4, 4), (8, 2); the run itself is devices.ts's runDevices.
 */
import type { Dataset } from "../data.js";
import type { Arch } from "../models.js";
import { escapeHtml as esc } from "../report.js";
import type { ProgressFn } from "../train.js";
import { type PairedGroup, pairedBarChart } from "./charts.js";
import { EPOCHS, QUICK_EPOCHS, QUICK_TRAIN_LIMIT, TWIN_NOTE, gridTableHtml, gridTableText, meanOf, twinMean, withTwin } from "./common.js";
import { DEVICES_BATCH, DEVICES_CONFIGS, DEVICES_LR, DEVICES_METHODS, type DevicesRecord, type DevicesSpec, devicesGrid, runDevices } from "./devices.js";
import type { Experiment, ExperimentConfig, ExperimentRecord } from "./types.js";

export type DevicesRunSpec = DevicesSpec & { batchSize: number };
/** runDevices' record, as an experiment record. */
export type DevicesRunRecord = ExperimentRecord & DevicesRecord;

const METHODS_BY_ARCH = { cnn: DEVICES_METHODS, mlp: DEVICES_METHODS };

export const devicesExperiment: Experiment<DevicesRunSpec, DevicesRunRecord> = {
  name: "devices",
  title: "(devices × images per device): BatchNorm's statistics per device vs synchronised",
  methods: METHODS_BY_ARCH,
  cellFields: ["workers", "per_worker_batch"],
  plan(cfg: ExperimentConfig): DevicesRunSpec[] {
    const archs = (["cnn", "mlp"] as Arch[]).filter((a) => cfg.archs.includes(a));
    const options: Parameters<typeof devicesGrid>[0] = { archs, seeds: cfg.seeds, epochs: cfg.quick ? QUICK_EPOCHS : EPOCHS };
    if (cfg.quick) options.trainLimit = QUICK_TRAIN_LIMIT;
    return devicesGrid(options)
      .filter((s) => cfg.methods === null || cfg.methods.includes(s.method))
      .map((s) => ({ ...s, batchSize: DEVICES_BATCH }));
  },
  samples: (spec, trainCount) => Math.floor(Math.min(spec.trainLimit ?? trainCount, trainCount) / DEVICES_BATCH) * DEVICES_BATCH * spec.epochs,
  label: (s) => `${s.arch} ${s.method} ${s.workers}×${s.perWorkerBatch} seed=${s.seed}`,
  async run(spec: DevicesRunSpec, data: Dataset, onProgress?: ProgressFn): Promise<DevicesRunRecord> {
    const { batchSize: _b, ...d } = spec;
    const total = devicesExperiment.samples(spec, data.train.count);
    const r = await runDevices(d, data);
    onProgress?.(total, total);
    return r as DevicesRunRecord;
  },
  report: (records) => devicesReport(records),
  summary: (records) => gridTableText(records, "workers", DEVICES_CONFIGS.map(([w]) => w), (w) => `${w}×${DEVICES_BATCH / Number(w)}`),
  protocol: (cfg) => ({
    global_batch: DEVICES_BATCH, lr: DEVICES_LR, configs: DEVICES_CONFIGS.map(([w, b]) => ({ workers: w, per_worker_batch: b })),
    epochs: cfg.quick ? QUICK_EPOCHS : EPOCHS,
    batch_norm: "each worker's statistics from its own images; running statistics of worker 0 (DDP's broadcast_buffers)",
    sync_batch_norm: "statistics over all 16 images (SyncBatchNorm); running statistics as BatchNorm on the 16",
    simulation: "the W workers in one thread (InProcessGroup): the same arithmetic as W replicas with an all-reduce",
  }),
};

function devicesReport(records: DevicesRunRecord[]): string {
  const seeds = [...new Set(records.map((r) => r.seed))];
  const variants = DEVICES_CONFIGS.map(([w, b]) => `${w}×${b}`);
  let s = `<section data-experiment="devices"><h2>Devices: BatchNorm's statistics per device vs synchronised (SyncBatchNorm)</h2>`;
  s += `<p>Data-parallel training with W workers of b images each, a global batch of ${DEVICES_BATCH} in all three settings (W × b = 1×16, 4×4, 8×2), lr ${DEVICES_LR}, the loss the mean over all ${DEVICES_BATCH} (the gradient DDP averages). <strong>batch_norm</strong> normalises each worker's b images by their own statistics; <strong>sync_batch_norm</strong> by the global batch's; group_norm does not depend on the split; switchable_norm's BN branch is per worker. Bars: test accuracy (%), the mean over seed${seeds.length === 1 ? "" : "s"} ${esc(seeds.join(", "))}.</p><div class="grid">`;
  for (const arch of [...new Set(records.map((r) => r.arch))]) {
    const rs = records.filter((r) => r.arch === arch);
    const groups: PairedGroup[] = DEVICES_METHODS.filter((m) => rs.some((r) => r.method === m)).map((m) => ({
      name: m,
      bars: DEVICES_CONFIGS.map(([w]) => {
        const g = rs.filter((r) => r.method === m && r.workers === w);
        return g.length ? withTwin({ values: g.map((r) => r.test_accuracy), diverged: g.filter((r) => r.diverged).length }, twinMean(g[0]!, ["workers", "per_worker_batch"])) : null;
      }),
    }));
    s += `<figure><figcaption>${esc(arch)} — test accuracy (%) per split of the batch of 16<span class="note">measured here, simulated workers</span></figcaption>${pairedBarChart(`devices-${arch}`, groups, variants, ["#2563eb", "#f59e0b", "#dc2626"], "test accuracy (%)")}</figure>`;
  }
  s += `</div><p class="note">${esc(TWIN_NOTE)}</p>`;
  s += gridTableHtml(records, "workers", DEVICES_CONFIGS.map(([w]) => w), (w) => `${w}×${DEVICES_BATCH / Number(w)}`);
  const items: string[] = [];
  for (const arch of [...new Set(records.map((r) => r.arch))]) {
    const at = (m: string, w: number) => meanOf(records, (r) => r.arch === arch && r.method === m && r.workers === w);
    const fmt = (v: number) => (Number.isFinite(v) ? (v * 100).toFixed(1) : "—");
    items.push(`<li>${esc(arch)}: batch_norm ${DEVICES_CONFIGS.map(([w, b]) => `${w}×${b} ${fmt(at("batch_norm", w))}`).join(", ")}; sync_batch_norm ${DEVICES_CONFIGS.map(([w, b]) => `${w}×${b} ${fmt(at("sync_batch_norm", w))}`).join(", ")}.</li>`);
  }
  s += `<h3>What this shows, and what it cannot</h3><ul class="findings">${items.join("")}</ul>`;
  s += `<div class="callout warn"><p><strong>What it cannot show.</strong> The workers are simulated in one thread: this is about the statistics, not about communication cost or speed. A global batch of 16 on MNIST, two small networks, 2 epochs; the MLP, whose per-feature statistics at b = 2 come from two numbers, shows the effect far more than the CNN, whose channels pool b·H·W values.</p></div>`;
  return s + `</section>`;
}
