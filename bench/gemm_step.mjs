#!/usr/bin/env node
// Conv2d / Linear GEMMs on WebAssembly SIMD vs TypeScript: samples/s of one training step of the lab's
// CNN (src/lab/models.ts, buildModel("cnn", method)) at batch 64, the two kernel modes interleaved in
// one process (backend.configure({ kernels })), median of the windows and the median per-round ratio.
// Runs from dist/ (npm run build first).  usage: node bench/gemm_step.mjs [method=none] [rounds=7] [window_s=0.6]
import { buildModel } from "../dist/src/lab/models.js";
import { softmaxCrossEntropy } from "../dist/src/nn/loss.js";
import { SGD } from "../dist/src/nn/optim.js";
import { Tensor } from "../dist/src/tensor.js";
import { mulberry32 } from "../dist/src/rng.js";
import { backend } from "../dist/src/index.js";

const method = process.argv[2] ?? "none";
const rounds = Number(process.argv[3] ?? 7);
const windowS = Number(process.argv[4] ?? 0.6);
const batch = 64;
const model = buildModel("cnn", method, 0);
const opt = new SGD(model.net.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
const rng = mulberry32(1);
const data = [];
for (let i = 0; i < 8; i++) {
  const x = new Float32Array(batch * 784);
  for (let j = 0; j < x.length; j++) x[j] = Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-12))) * Math.cos(2 * Math.PI * rng());
  const y = new Uint8Array(batch);
  for (let j = 0; j < batch; j++) y[j] = Math.floor(rng() * 10);
  data.push([new Tensor(x, [batch, 1, 28, 28]), y]);
}
model.net.train();
const dlogits = Tensor.zeros([batch, 10]);
function window(seconds) {
  let steps = 0, el = 0;
  const t0 = performance.now();
  for (;;) {
    const [x, y] = data[steps % data.length];
    opt.zeroGrad();
    softmaxCrossEntropy(model.net.forward(x), y, dlogits);
    model.net.backward(dlogits);
    opt.step();
    steps++;
    el = (performance.now() - t0) / 1000;
    if (steps >= 2 && el >= seconds) break;
  }
  return (steps * batch) / el;
}
const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
const res = { ts: [], wasm: [] };
for (const m of ["ts", "wasm"]) { await backend.configure({ kernels: m }); window(0.3); } // warm-up
for (let r = 0; r < rounds; r++) {
  for (const m of r % 2 ? ["wasm", "ts"] : ["ts", "wasm"]) {
    await backend.configure({ kernels: m });
    res[m].push(window(windowS));
  }
}
const ratios = res.ts.map((t, i) => res.wasm[i] / t);
console.log(JSON.stringify({
  method, batch, rounds,
  ts_samples_per_s: Math.round(med(res.ts)), wasm_samples_per_s: Math.round(med(res.wasm)),
  speedup_median_ratio: +med(ratios).toFixed(2), ratios: ratios.map((r) => +r.toFixed(2)),
}));
