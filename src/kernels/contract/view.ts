/**
 * How a kernel sees an input: the `[N, C, S]` view and which values share one statistic.
 *
 * An input is viewed as `[N, C, S]` (NCHW: S = product of the spatial dims, contiguous per channel)
 * or `[N, S, C]` (channels-last). The methods differ only in the view, in which values share a
 * mean and variance ({@link StatsConfig}), in the affine shape and in the running policy:
 *
 * | method        | view          | perSample | groupSize | center | affine  |
 * |---------------|---------------|-----------|-----------|--------|---------|
 * | BatchNorm     | [N, C, S]     | false     | 1         | yes    | channel |
 * | InstanceNorm  | [N, C, S]     | true      | 1         | yes    | channel |
 * | GroupNorm     | [N, C, S]     | true      | C / G     | yes    | channel |
 * | LayerNorm     | [M, 1, K]     | true      | 1         | yes    | element |
 * | RMSNorm       | [M, 1, K]     | true      | 1         | no     | element |
 *
 * Statistic k of value (n, c) is `(perSample ? n * G : 0) + floor(c / groupSize)` with
 * `G = C / groupSize`.
 */

/** The memory view of an input: N samples, C channels, S positions per channel. */
export interface NormShape {
  readonly N: number;
  readonly C: number;
  readonly S: number;
  /** true: memory order [N, S, C] (NHWC); false: [N, C, S] (NCHW). */
  readonly channelsLast: boolean;
}

/** Which values share statistics, and whether they are centred. */
export interface StatsConfig {
  /** Statistics are separate per sample (LN, IN, GN) or shared across the batch (BN). */
  readonly perSample: boolean;
  /** Consecutive channels that share one statistic: 1 (BN, IN), C/G (GN), C (LN over C,H,W). */
  readonly groupSize: number;
  /** Subtract the mean (all but RMSNorm). Without centring the "variance" is mean(x^2). */
  readonly center: boolean;
}

/** Scale and shift: per channel (BN, IN, GN), per element of a sample (LN, RMS), or none. */
export type AffineKind = "channel" | "element" | "none";

/** How one input maps onto the kernels: its view and its statistics configuration. */
export interface NormPlan {
  readonly shape: NormShape;
  readonly cfg: StatsConfig;
}

export function numGroups(shape: NormShape, cfg: StatsConfig): number {
  return shape.C / cfg.groupSize;
}
export function numStats(shape: NormShape, cfg: StatsConfig): number {
  return (cfg.perSample ? shape.N : 1) * numGroups(shape, cfg);
}
/** How many values share one statistic. */
export function statCount(shape: NormShape, cfg: StatsConfig): number {
  return (cfg.perSample ? 1 : shape.N) * cfg.groupSize * shape.S;
}
