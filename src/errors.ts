/**
 * Typed errors. Every error normkit throws for bad input names the offending parameter and says
 * what was expected and what was given, so a caller can act on it (or a test can assert on it).
 *
 * A layer validates *everything* before it mutates anything: after any of these errors its
 * parameters, gradients and running statistics are exactly as they were.
 */
export class NormkitError extends Error {
  /** The parameter (option, argument or state-dict key) that was wrong. */
  readonly param: string;
  /** What was expected, in words. */
  readonly expected: string;
  /** What was given, in words. */
  readonly actual: string;

  constructor(param: string, expected: string, actual: string, context?: string) {
    super(`${context ? context + ": " : ""}${param}: expected ${expected}, got ${actual}`);
    this.name = new.target.name;
    this.param = param;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A tensor had the wrong rank or shape (including dy of the wrong shape in backward). */
export class ShapeError extends NormkitError {}

/** An option or argument had an invalid value (non-positive eps, NaN momentum, C % G != 0 ...). */
export class ConfigError extends NormkitError {}

/**
 * A state dict had a missing, unexpected or mis-shaped key, or an entry that is not a numeric
 * tensor. A strict load's key mismatch lists every key at once (`param` is them joined by ", ") and
 * carries them as `missingKeys` and `unexpectedKeys`, as PyTorch's message does.
 */
export class StateDictError extends NormkitError {
  /** The module's keys the dict lacked (a strict load's key mismatch; empty otherwise). */
  readonly missingKeys: readonly string[];
  /** The dict's keys the module does not have (a strict load's key mismatch; empty otherwise). */
  readonly unexpectedKeys: readonly string[];
  constructor(param: string, expected: string, actual: string, context?: string, missingKeys: readonly string[] = [], unexpectedKeys: readonly string[] = []) {
    super(param, expected, actual, context);
    this.missingKeys = Object.freeze([...missingKeys]);
    this.unexpectedKeys = Object.freeze([...unexpectedKeys]);
  }
}

/**
 * A safetensors file (or the tensors given to write one) was malformed: `param` names the part
 * (header length, header, a tensor's dtype, shape or data_offsets, the buffer), with what the format
 * expects and what the bytes held.
 */
export class SafetensorsError extends NormkitError {}

/** An operation was called in a state that does not allow it (backward before forward, ...). */
export class StateError extends NormkitError {}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * A tensor was on another device than the layer or operation that received it (a host tensor
 * handed to a layer on the GPU, or host data read from a GPU tensor without a download).
 */
export class DeviceError extends NormkitError {}
