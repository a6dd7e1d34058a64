/** Option validation shared by the layers. Each check throws a ConfigError naming the option. */
import { ConfigError, ShapeError, fmtShape } from "../errors.js";
import { DType, Tensor, sameShape } from "../tensor.js";

export function checkEps(eps: number, ctx: string): number {
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps <= 0) {
    throw new ConfigError("eps", "a finite number > 0", String(eps), ctx);
  }
  return eps;
}

export function checkMomentum(momentum: number | null, ctx: string): number | null {
  if (momentum === null) return null;
  if (typeof momentum !== "number" || !Number.isFinite(momentum) || momentum < 0 || momentum > 1) {
    throw new ConfigError("momentum", "a number in [0, 1] or null", String(momentum), ctx);
  }
  return momentum;
}

export function checkPositiveInt(value: unknown, name: string, ctx: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(name, "a positive integer", String(value), ctx);
  }
  return value;
}

export function checkBool(value: unknown, name: string, ctx: string): boolean {
  if (typeof value !== "boolean") throw new ConfigError(name, "true or false", String(value), ctx);
  return value;
}

export function checkDType(dtype: unknown, ctx: string): DType {
  if (dtype !== "float32" && dtype !== "float64") throw new ConfigError("dtype", '"float32" or "float64"', String(dtype), ctx);
  return dtype;
}

export function checkShapeList(shape: unknown, name: string, ctx: string): number[] {
  const list = typeof shape === "number" ? [shape] : shape;
  if (!Array.isArray(list) || list.length === 0 || !list.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ConfigError(name, "a positive integer or a non-empty list of positive integers", JSON.stringify(shape), ctx);
  }
  return [...list];
}

/** The input must be a Tensor of the layer's dtype, with a rank in [lo, hi]. */
export function checkInput(x: Tensor, dtype: DType, lo: number, hi: number, ctx: string, name = "x"): void {
  if (x.dtype !== dtype) throw new ConfigError(`${name}.dtype`, `${dtype} (the layer's dtype)`, x.dtype, ctx);
  if (x.rank < lo || x.rank > hi) {
    const want = lo === hi ? `rank ${lo}` : `rank ${lo} to ${hi}`;
    throw new ShapeError(name, want, `rank ${x.rank} (shape ${fmtShape(x.shape)})`, ctx);
  }
}

/** x must be a Tensor of the layer's dtype (ConfigError naming `${name}.dtype` otherwise). */
export function checkDTypeOf(x: Tensor, dtype: DType, ctx: string, name = "x"): void {
  if (x.dtype !== dtype) throw new ConfigError(`${name}.dtype`, `${dtype} (the layer's dtype)`, x.dtype, ctx);
}

/** dy must have exactly the shape of the forward output. */
export function checkGradShape(dy: Tensor, shape: readonly number[], dtype: DType, ctx: string): void {
  checkDTypeOf(dy, dtype, ctx, "dy");
  if (!sameShape(dy.shape, shape)) throw new ShapeError("dy", `shape ${fmtShape(shape)} (the output's)`, `shape ${fmtShape(dy.shape)}`, ctx);
}
