/**
 * The TypeScript kernel set: exact (float64 accumulation, two-pass variance), float32 and float64,
 * every layout. The reference the other sets are tested against, and the fallback for any call
 * they do not take.
 */
import type { NormKernels } from "../contract/kernels.js";
import type { HostPrimitives } from "../contract/host.js";
import { hostKernelSet } from "./host_set.js";
import { combineTS, forwardTrainTS, momentsTS, normalizeBackwardTS, normalizeForwardTS } from "./norm.js";

/** The array-level TypeScript kernels (positional, allocation-free). */
export const tsPrimitives: HostPrimitives = {
  name: "ts",
  supports: () => true,
  moments: momentsTS,
  normalizeForward: normalizeForwardTS,
  forwardTrain: forwardTrainTS,
  normalizeBackward: normalizeBackwardTS,
  combine: combineTS,
};

/** The TypeScript kernel set (host tensors of either dtype). */
export const tsKernels: NormKernels = hostKernelSet("ts", tsPrimitives, (x) => x.isHost);
