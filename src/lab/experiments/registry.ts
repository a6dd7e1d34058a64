/**
 * The registry of `normkit lab --experiment` values. Adding an experiment: write its module under
 * src/lab/experiments/ exporting an {@link Experiment} (types.ts), then put it on its line below in
 * place of `null`. `null` means "not available yet": the CLI answers exit 2 and says so.
 * "batch-size" is the original lab run (src/cli/lab.ts's planRuns, trainRun, report.ts), kept apart so
 * its output stays exactly as it was.
 */
import { devicesExperiment } from "./devices_experiment.js";
import { learningRateExperiment } from "./learning_rate.js";
import { rnnExperiment } from "./rnn_experiment.js";
import { shuffleExperiment } from "./shuffle.js";
import type { Experiment, ExperimentRecord, ExperimentSpec } from "./types.js";

/** Any experiment (its spec and record types widened; Experiment's methods take them bivariantly). */
type AnyExperiment = Experiment<ExperimentSpec, ExperimentRecord>;

export const EXPERIMENTS: Readonly<Record<string, AnyExperiment | null>> = {
  shuffle: shuffleExperiment,
  "learning-rate": learningRateExperiment,
  rnn: rnnExperiment,
  devices: devicesExperiment,
};

/** Every --experiment value, in the order `all` runs them. */
export const EXPERIMENT_NAMES = ["batch-size", ...Object.keys(EXPERIMENTS)] as const;

/** The registered experiments that exist (not null), in registry order. */
export function availableExperiments(): AnyExperiment[] {
  return Object.values(EXPERIMENTS).filter((e): e is AnyExperiment => e !== null);
}

/** The experiment named `name`; throws if it is not registered or not available. */
export function experimentNamed(name: string): Experiment<ExperimentSpec, ExperimentRecord> {
  const e = EXPERIMENTS[name];
  if (!e) throw new Error(`no experiment "${name}" is available (available: ${availableExperiments().map((x) => x.name).join(", ")})`);
  return e;
}
