/** Small pure helpers shared by the layers and the kernel sets. */

/** softmax(z) into out[0 .. z.length); returns out. */
export function softmaxInto(out: Float64Array, z: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]!);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += out[i] = Math.exp(z[i]! - m);
  for (let i = 0; i < z.length; i++) out[i] /= s;
  return out;
}
