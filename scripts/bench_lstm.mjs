// Step time of the rnn experiment's network at a batch size (default 64): LSTM(28 → 64) over 28 steps,
// float32, forward (every step), backward through time (from h_T, no dx), clip and Adam; median of
// `--steps` steps (default 30) after 5 warm-up steps, per method.
//   npx tsc -p tsconfig.json && node scripts/bench_lstm.mjs [--batch 64] [--steps 30]
import { LSTM, Linear, Adam, clipGradNorm, cpu, mulberry32, softmaxCrossEntropy } from "../dist/src/index.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => Number(args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const bs = opt("--batch", 64), steps = opt("--steps", 30), T = 28, I = 28, H = 64;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const only = args.includes("--norm") ? [args[args.indexOf("--norm") + 1]] : ["none", "layer_norm", "batch_norm"];
for (const norm of only) {
  const rng = mulberry32(0);
  const lstm = new LSTM({ inputSize: I, hiddenSize: H, batchFirst: true, singleBias: true, norm, ...(norm === "batch_norm" ? { maxSteps: T } : {}), rng });
  const fc = new Linear({ inFeatures: H, outFeatures: 10, rng });
  const params = [...lstm.parameters(), ...fc.parameters()];
  const adam = new Adam(params, { lr: 1e-3 });
  const x = cpu.zeros([bs, T, I], "float32");
  for (let i = 0; i < x.size; i++) x.data[i] = rng() * 2 - 1;
  const y = Uint8Array.from({ length: bs }, (_, i) => i % 10);
  const outs = { output: cpu.zeros([bs, T, H], "float32"), h: cpu.zeros([1, bs, H], "float32"), c: cpu.zeros([1, bs, H], "float32") };
  const logits = cpu.zeros([bs, 10], "float32"), dlogits = cpu.zeros([bs, 10], "float32"), dh = cpu.zeros([bs, H], "float32");
  const grads = { dx: null, dh0: cpu.zeros([1, bs, H], "float32"), dc0: cpu.zeros([1, bs, H], "float32") };
  const fwd = [], bwd = [], all = [];
  for (let s = 0; s < steps + 5; s++) {
    const t0 = performance.now();
    adam.zeroGrad();
    const { h } = lstm.forwardSequence(x, {}, outs);
    fc.forward(h.reshape([bs, H]), logits);
    softmaxCrossEntropy(logits, y, dlogits);
    const t1 = performance.now();
    fc.backward(dlogits, dh);
    lstm.backwardSequence(null, { h: dh.reshape([1, bs, H]) }, grads);
    const t2 = performance.now();
    clipGradNorm(params, 1);
    adam.step();
    const t3 = performance.now();
    if (s >= 5) { fwd.push(t1 - t0); bwd.push(t2 - t1); all.push(t3 - t0); }
  }
  console.log(JSON.stringify({ norm, batch: bs, step_ms: +median(all).toFixed(2), forward_ms: +median(fwd).toFixed(2), backward_ms: +median(bwd).toFixed(2) }));
}
