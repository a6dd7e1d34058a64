// The measurements of bench/tfjs_norm.mjs, shared by Node (cpu, wasm) and the Chromium page (webgl):
// forward + backward (tf.variableGrads of Σ y·dy, every gradient read back) of
//   normkit   normkit/tfjs GroupNormalization (tf ops under tf.customGrad)
//   moments   a hand-written GroupNorm as a TensorFlow.js user writes it: reshape to [N, H, W, G, C/G],
//             tf.moments over (H, W, C/G), (x − mean) · rsqrt(var + eps) · γ + β, TensorFlow.js' autodiff
//   kernels   normkit/tfjs GroupNormalization with useNormkitKernels (normkit's own kernels; cpu only)
// interleaved round-robin (one step of each per round), median ms per implementation. No imports:
// the caller passes its TensorFlow.js and normkit/tfjs modules (one copy of each).

export function implementations(tf, GroupNormalization, backend) {
  const gnLayer = (shape, G, useNormkitKernels) => {
    const layer = new GroupNormalization({ groups: G, useNormkitKernels });
    layer.build(shape);
    layer.built = true;
    return { vars: layer.trainableWeights.map((w) => w.read()), f: (x) => layer.apply(x), dispose: () => layer.weights.forEach((w) => w.dispose()) };
  };
  const moments = (shape, G) => {
    const C = shape[3];
    const gamma = tf.variable(tf.ones([C])), beta = tf.variable(tf.zeros([C]));
    return {
      vars: [gamma, beta],
      f: (x) => {
        const [N, H, W] = x.shape;
        const xg = tf.reshape(x, [N, H, W, G, C / G]);
        const { mean, variance } = tf.moments(xg, [1, 2, 4], true);
        const xhat = tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, 1e-3)));
        return tf.add(tf.mul(tf.reshape(xhat, [N, H, W, C]), gamma), beta);
      },
      dispose: () => tf.dispose([gamma, beta]),
    };
  };
  const out = [
    { name: "normkit", make: (s, G) => gnLayer(s, G, false) },
    { name: "moments", make: moments },
  ];
  if (backend === "cpu") out.push({ name: "kernels", make: (s, G) => gnLayer(s, G, true) });
  return out;
}

/** One forward + backward; resolves once every gradient has been read back. */
async function step(tf, impl, x, dy) {
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(impl.f(x), dy)), [x, ...impl.vars]);
  const all = Object.values(grads);
  await Promise.all(all.map((g) => g.data()));
  tf.dispose(all);
}

const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Every shape on the current backend. shapes: [[N, H, W, C], G][]. Returns rows
 * { backend, shape, groups, ms: { normkit, moments, kernels? }, rounds, maxDiff } (maxDiff: the
 * largest |dx normkit − dx moments|, a check that both compute the same).
 */
export async function benchBackend(tf, GroupNormalization, { shapes, rounds = 15, budgetMs = 20000, now = () => performance.now() }) {
  const backend = tf.getBackend();
  const rows = [];
  for (const [shape, G] of shapes) {
    const impls = implementations(tf, GroupNormalization, backend).map((i) => ({ ...i, ...i.make(shape, G), times: [] }));
    const n = shape.reduce((a, b) => a * b, 1);
    const x = tf.variable(tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2 + 0.3), shape));
    const dy = tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.11)), shape);
    // the same dx from each (a check, not timed)
    const dxs = impls.map((im) => {
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(im.f(x), dy)), [x, ...im.vars]);
      const d = grads[x.name].dataSync().slice();
      tf.dispose(Object.values(grads));
      return d;
    });
    let maxDiff = 0;
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(dxs[0][i] - dxs[1][i]));
    for (const im of impls) for (let w = 0; w < 3; w++) await step(tf, im, x, dy); // warm-up (shader compiles, JIT)
    const start = now();
    let r = 0;
    for (; r < rounds && now() - start < budgetMs; r++) {
      for (const im of impls) {
        const t0 = now();
        await step(tf, im, x, dy);
        im.times.push(now() - t0);
      }
    }
    const ms = {};
    for (const im of impls) ms[im.name] = median(im.times);
    rows.push({ backend, shape, groups: G, ms, rounds: r, maxDiff });
    for (const im of impls) im.dispose();
    tf.dispose([x, dy]);
  }
  return rows;
}
