/**
 * Learning-rate schedules with torch.optim.lr_scheduler's semantics, for any optimiser with a
 * writable `lr` (SGD, Adam, AdamW). The schedule is fixed at construction from the optimiser's lr then
 * (PyTorch's `base_lrs`); `step()` advances one epoch (call it after the epoch's optimiser steps, as
 * PyTorch), `lastEpoch` counts those calls and `lr` is what the optimiser now uses.
 */
import { ConfigError } from "../errors.js";

/** What a schedule drives. */
export interface HasLearningRate {
  lr: number;
}

abstract class LRScheduler {
  readonly optimizer: HasLearningRate;
  /** The lr at epoch 0 (the optimiser's when the schedule was made). */
  readonly baseLr: number;
  /** Epochs stepped so far. */
  lastEpoch = 0;

  constructor(optimizer: HasLearningRate, ctx: string) {
    if (optimizer === null || typeof optimizer !== "object" || typeof optimizer.lr !== "number" || !Number.isFinite(optimizer.lr)) {
      throw new ConfigError("optimizer", "an optimiser with a numeric lr (SGD, Adam, AdamW)", String(optimizer), ctx);
    }
    this.optimizer = optimizer;
    this.baseLr = optimizer.lr;
  }

  /** The lr of epoch e. */
  protected abstract lrAt(epoch: number): number;

  /** The optimiser's current lr. */
  get lr(): number {
    return this.optimizer.lr;
  }

  /** Advances one epoch and sets the optimiser's lr to that epoch's. */
  step(): void {
    this.lastEpoch++;
    this.optimizer.lr = this.lrAt(this.lastEpoch);
  }
}

function positiveInt(v: unknown, name: string, ctx: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new ConfigError(name, "an integer ≥ 1", String(v), ctx);
  return v;
}
function finite(v: unknown, name: string, ok: (x: number) => boolean, want: string, ctx: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new ConfigError(name, want, String(v), ctx);
  return v;
}

export interface StepLROptions {
  /** Epochs between decays. Required. */
  stepSize: number;
  /** Factor per decay. Default 0.1. */
  gamma?: number;
}

/** StepLR: lr_e = base · γ^⌊e / stepSize⌋. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: HasLearningRate, options: StepLROptions) {
    super(optimizer, "StepLR");
    this.stepSize = positiveInt(options?.stepSize, "stepSize", "StepLR");
    this.gamma = finite(options.gamma ?? 0.1, "gamma", (x) => x > 0, "a number > 0", "StepLR");
  }
  protected lrAt(e: number): number {
    return this.baseLr * this.gamma ** Math.floor(e / this.stepSize);
  }
}

export interface ExponentialLROptions {
  /** Factor per epoch. Required. */
  gamma: number;
}

/** ExponentialLR: lr_e = base · γ^e. */
export class ExponentialLR extends LRScheduler {
  readonly gamma: number;
  constructor(optimizer: HasLearningRate, options: ExponentialLROptions) {
    super(optimizer, "ExponentialLR");
    this.gamma = finite(options?.gamma, "gamma", (x) => x > 0, "a number > 0", "ExponentialLR");
  }
  protected lrAt(e: number): number {
    return this.baseLr * this.gamma ** e;
  }
}

export interface CosineAnnealingLROptions {
  /** Epochs of the half cosine. Required. */
  tMax: number;
  /** The lr at e = tMax. Default 0. */
  etaMin?: number;
}

/**
 * CosineAnnealingLR (without restarts): lr_e = etaMin + (base − etaMin)·(1 + cos(π·e / tMax)) / 2 —
 * PyTorch's closed form; its step-by-step recursion gives the same values to rounding (and past tMax
 * the cosine goes on rising, as there).
 */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: HasLearningRate, options: CosineAnnealingLROptions) {
    super(optimizer, "CosineAnnealingLR");
    this.tMax = positiveInt(options?.tMax, "tMax", "CosineAnnealingLR");
    this.etaMin = finite(options.etaMin ?? 0, "etaMin", (x) => x >= 0, "a number ≥ 0", "CosineAnnealingLR");
  }
  protected lrAt(e: number): number {
    return this.etaMin + ((this.baseLr - this.etaMin) * (1 + Math.cos((Math.PI * e) / this.tMax))) / 2;
  }
}
