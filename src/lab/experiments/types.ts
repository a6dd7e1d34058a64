/**
 * The lab's survey-claim experiments (lab-protocol.md, "Experiments"): each is one module under
 * src/lab/experiments/ exporting an {@link Experiment} — a plan (its list of run specs from the
 * config), a run function (one spec and the data set → one record) and a report section — plus one
 * line in registry.ts. The CLI (`normkit lab --experiment NAME`), the worker threads (runner.ts,
 * worker.ts) and the report (experiments/report.ts) reach every experiment through the registry only.
 */
import type { Device } from "../../kernels/contract/device.js";
import type { Dataset } from "../data.js";
import type { ProgressFn } from "../train.js";

/** What an experiment's plan is made from: the command line, checked. */
export interface ExperimentConfig {
  /** --arch (default both). An experiment plans only the archs it has (rnn: lstm, whatever this says). */
  archs: readonly string[];
  /** --methods, or null when not given (then the experiment's own methods). */
  methods: readonly string[] | null;
  /** --seeds (default 0; the protocol's runs are --seeds 0,1). */
  seeds: readonly number[];
  /** --quick: a smoke run of the experiment in well under a minute. */
  quick: boolean;
}

/**
 * One run's record, in results.json's `runs` and in the PyTorch twin's JSON lines (EXPERIMENTS.md,
 * "Records"). The experiment's own fields (`ordering`, `lr`, `workers`, `per_worker_batch`, …) come
 * on top and are named by {@link Experiment.cellFields}.
 */
export interface ExperimentRecord {
  experiment: string;
  arch: string;
  method: string;
  /** The global batch. */
  batch_size: number;
  seed: number;
  /** 0..1; 0.1 for a diverged run. */
  test_accuracy: number;
  diverged: boolean;
  [field: string]: unknown;
}

/**
 * What a trained run's record carries besides its cell and seed (train.ts's bookkeeping): the
 * experiments' own run functions (devices.ts, rnn.ts) write these fields as trainRun does.
 */
export interface TrainedRunFields {
  /** Fraction of the test digits classified correctly, 0..1 (0.1 for a diverged run). */
  test_accuracy: number;
  diverged: boolean;
  /** Wall time of training plus evaluation, seconds. */
  seconds: number;
  /** Mean training loss per sample over windows of `train_loss_curve_every` samples (as train.ts). */
  train_loss_curve: number[];
  train_loss_curve_every: number;
  epochs: number;
  steps: number;
  train_samples: number;
  test_samples: number;
}

/** The minimum a spec carries, for progress lines and for ordering the runs. */
export interface ExperimentSpec {
  arch: string;
  method: string;
  batchSize: number;
  seed: number;
}

export interface Experiment<S extends ExperimentSpec = ExperimentSpec, R extends ExperimentRecord = ExperimentRecord> {
  /** The --experiment value and the records' `experiment`. */
  readonly name: string;
  /** A heading: the claim under test. */
  readonly title: string;
  /** The methods per arch this experiment runs by default (--methods filters them). */
  readonly methods: Readonly<Record<string, readonly string[]>>;
  /** The record fields that, with experiment, arch, method and batch_size, make a cell. */
  readonly cellFields: readonly string[];
  /** Every run of the protocol for this config, in results order. Specs must survive structured cloning (worker threads). */
  plan(cfg: ExperimentConfig): S[];
  /** Training samples the run will process (progress bar, longest-first ordering). */
  samples(spec: S, trainCount: number): number;
  /** One line naming the run, e.g. "cnn batch_norm two_class seed=1". */
  label(spec: S): string;
  /** Trains and evaluates one run. `device` is the host unless --device says otherwise. */
  run(spec: S, data: Dataset, onProgress?: ProgressFn, device?: Device): Promise<R>;
  /** The experiment's report section: HTML (a `<section data-experiment=NAME>`), SVG charts inline, browser-safe. */
  report(records: R[]): string;
  /** Text lines for the terminal summary. */
  summary(records: R[]): string[];
  /** A description of the protocol for results.json's config. */
  protocol(cfg: ExperimentConfig): Record<string, unknown>;
}
