/**
 * How an epoch's training digits are formed into batches (lab-protocol.md, "Seeded generators").
 *
 * Every permutation is a Fisher–Yates shuffle from the end, j = floor(rng() · (i + 1)), drawn from the
 * run's one shuffling stream (mulberry32(seed + 0x9e3779b9), see train.ts), in a fixed order:
 * - **shuffled**: one permutation of 0 … n−1 per epoch, cut into batches;
 * - **two_class**: per epoch, for c = 0 … 9 in turn, a permutation of class c's training indices (in
 *   training-set order) cut into consecutive groups of `groupSize` (a last incomplete group dropped);
 *   then a permutation of the list of all groups (class 0's groups first, each class's in its permuted
 *   order); consecutive pairs of groups form the batches (an odd last group dropped).
 *
 * Both fill `out` with sample indices, batch after batch, and return how many batches it holds.
 */

export const ORDERINGS = ["shuffled", "two_class"] as const;
export type Ordering = (typeof ORDERINGS)[number];

/** Fisher–Yates shuffle of `a` in place from `rng` (the lab's one shuffle convention). */
export function fisherYates(a: Int32Array | number[], rng: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}

/** A fresh permutation of 0 … n−1 into out[0, n); returns floor(n / batchSize) batches. */
export function shuffledOrder(n: number, batchSize: number, rng: () => number, out: Int32Array): number {
  const a = out.subarray(0, n);
  for (let i = 0; i < n; i++) a[i] = i;
  fisherYates(a, rng);
  return Math.floor(n / batchSize);
}

/** The number of two_class batches one epoch of `labels[0, n)` gives (the same every epoch). */
export function twoClassBatches(labels: Readonly<Uint8Array>, n: number, groupSize: number): number {
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < n; i++) counts[labels[i]!]!++;
  return Math.floor(counts.reduce((s, k) => s + Math.floor(k / groupSize), 0) / 2);
}

/**
 * The two_class ordering of `labels[0, n)` (digits 0 … 9) into `out`, batches of 2 · groupSize: each
 * batch is `groupSize` digits of one class then `groupSize` of another (now and then the same class).
 */
export function twoClassOrder(labels: Readonly<Uint8Array>, n: number, groupSize: number, rng: () => number, out: Int32Array): number {
  const groups: Int32Array[] = [];
  for (let c = 0; c < 10; c++) {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] === c) idx.push(i);
    const a = Int32Array.from(idx);
    fisherYates(a, rng);
    for (let k = 0; k + groupSize <= a.length; k += groupSize) groups.push(a.subarray(k, k + groupSize));
  }
  const p = new Int32Array(groups.length);
  for (let i = 0; i < p.length; i++) p[i] = i;
  fisherYates(p, rng);
  const batches = Math.floor(groups.length / 2);
  for (let b = 0; b < batches; b++) {
    out.set(groups[p[2 * b]!]!, 2 * b * groupSize);
    out.set(groups[p[2 * b + 1]!]!, (2 * b + 1) * groupSize);
  }
  return batches;
}
