/** The plain TypeScript kernels (exact, float64 accumulation, every dtype and layout): the fallback. */
import type { NormKernels } from "../contract/norm.js";
import { combineTS, forwardTrainTS, momentsTS, normalizeBackwardTS, normalizeForwardTS } from "./norm.js";

export const tsKernels: NormKernels = {
  name: "ts",
  supports: () => true,
  moments: momentsTS,
  normalizeForward: normalizeForwardTS,
  forwardTrain: forwardTrainTS,
  normalizeBackward: normalizeBackwardTS,
  combine: combineTS,
};
