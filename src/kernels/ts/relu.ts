/**
 * ReLU kernels.   forward: y = max(x, 0)      backward: dx = dy where x > 0, else 0
 *
 * float32 runs branch-free on the IEEE bit patterns (a data-dependent branch mispredicts on
 * mixed signs and was ~10x slower here):
 *   y  = x & ~(x >> 31)          the sign bit set (x < 0, -0, -inf) → +0; x ≥ 0 and +NaN kept
 *   dx = dy & ((~x & -x) >> 31)  all ones exactly when x's int32 pattern is > 0, i.e. x > 0
 *                                (~x alone keeps -0 = 0x80000000 out, whose negation overflows)
 * The one difference from torch is at NaN inputs: a NaN with the sign bit set maps to 0 (torch: NaN),
 * and a positive NaN passes dy through in backward (torch: 0). Everything else is bit-identical.
 * float64 uses the plain comparison (NaN propagates, as torch.relu).
 */
import type { FloatArray } from "../../tensor.js";

function bits(a: Float32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

export function reluForward(y: FloatArray, x: Readonly<FloatArray>): FloatArray {
  if (x instanceof Float32Array && y instanceof Float32Array) {
    const xi = bits(x), yi = bits(y);
    for (let i = 0; i < xi.length; i++) {
      const b = xi[i]!;
      yi[i] = b & ~(b >> 31);
    }
    return y;
  }
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    y[i] = v < 0 ? 0 : v;
  }
  return y;
}

export function reluBackward(dx: FloatArray, dy: Readonly<FloatArray>, x: Readonly<FloatArray>): FloatArray {
  if (x instanceof Float32Array && dy instanceof Float32Array && dx instanceof Float32Array) {
    const xi = bits(x), di = bits(dy), oi = bits(dx);
    for (let i = 0; i < xi.length; i++) {
      const b = xi[i]!;
      oi[i] = di[i]! & ((~b & -b) >> 31);
    }
    return dx;
  }
  for (let i = 0; i < x.length; i++) dx[i] = x[i]! > 0 ? dy[i]! : 0;
  return dx;
}
