// normkit side of `npm run bench:train`: the lab's default CNN (src/lab/models.ts, buildModel("cnn", …))
// trained with the same step as src/lab/train.ts — zeroGrad, forward, softmax cross-entropy, backward,
// SGD (momentum 0.9, weight decay 1e-4) — on fixed synthetic batches; method "lstm": the rnn experiment's
// LSTM network (Adam, gradient clipping). Runs from the compiled dist/.
// Same line protocol as torch_worker.py: {"cmd":"run", method, batch, threads, seconds, min_steps}.
import { serve } from "./worker_loop.mjs";
import { buildModel } from "../dist/src/lab/models.js";
import { softmaxCrossEntropy } from "../dist/src/nn/loss.js";
import { Adam, SGD, clipGradNorm } from "../dist/src/nn/optim.js";
import { buildRnn } from "../dist/src/lab/experiments/rnn.js";
import { cpu } from "../dist/src/kernels/cpu.js";
import { Tensor } from "../dist/src/tensor.js";
import { mulberry32 } from "../dist/src/rng.js";
import { backend } from "../dist/src/index.js";

// `threads`: one training run with that many intra-op threads (backend.configure({ threads }): Conv2d
// splits its batch over them, the norm layers their statistic groups), as PyTorch's torch.set_num_threads.
export const THREADS_SUPPORTED = [1, 2, 4, 8];

function normal(rng) {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

const cache = new Map();

/** "lstm": the rnn experiment's network (src/lab/experiments/rnn.ts): LSTM(28 → 64) over 28 rows, Linear(64 → 10) on h_T; Adam, clipped to norm 1. */
function lstmState(batch) {
  const { lstm, fc } = buildRnn("none", 0);
  const params = [...lstm.parameters(), ...fc.parameters()];
  const opt = new Adam(params, { lr: 1e-3 });
  const rng = mulberry32(1);
  const data = [];
  for (let i = 0; i < 8; i++) {
    const x = cpu.zeros([batch, 28, 28], "float32");
    for (let j = 0; j < x.size; j++) x.data[j] = normal(rng);
    const y = new Uint8Array(batch);
    for (let j = 0; j < batch; j++) y[j] = Math.floor(rng() * 10);
    data.push([x, y]);
  }
  const outs = { output: cpu.zeros([batch, 28, 64], "float32"), h: cpu.zeros([1, batch, 64], "float32"), c: cpu.zeros([1, batch, 64], "float32") };
  const logits = cpu.zeros([batch, 10], "float32"), dlogits = cpu.zeros([batch, 10], "float32"), dh = cpu.zeros([batch, 64], "float32");
  const grads = { dx: null, dh0: cpu.zeros([1, batch, 64], "float32"), dc0: cpu.zeros([1, batch, 64], "float32") };
  const step = (x, y) => {
    opt.zeroGrad();
    const { h } = lstm.forwardSequence(x, {}, outs);
    fc.forward(h.reshape([batch, 64]), logits);
    softmaxCrossEntropy(logits, y, dlogits);
    fc.backward(dlogits, dh);
    lstm.backwardSequence(null, { h: dh.reshape([1, batch, 64]) }, grads);
    clipGradNorm(params, 1);
    opt.step();
  };
  return { data, step };
}

function state(method, batch) {
  const key = `${method}|${batch}`;
  if (!cache.has(key) && method === "lstm") cache.set(key, lstmState(batch));
  if (!cache.has(key)) {
    const model = buildModel("cnn", method, 0);
    const opt = new SGD(model.net.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
    const rng = mulberry32(1);
    const data = [];
    for (let i = 0; i < 8; i++) {
      const x = new Float32Array(batch * 784);
      for (let j = 0; j < x.length; j++) x[j] = normal(rng);
      const y = new Uint8Array(batch);
      for (let j = 0; j < batch; j++) y[j] = Math.floor(rng() * 10);
      data.push([new Tensor(x, [batch, 1, 28, 28]), y]);
    }
    model.net.train();
    const dlogits = Tensor.zeros([batch, 10]);
    const net = model.net;
    const step = (x, y) => {
      opt.zeroGrad();
      const logits = net.forward(x);
      softmaxCrossEntropy(logits, y, dlogits);
      net.backwardParams(dlogits); // as src/lab/train.ts: no dx for the input layer
      opt.step();
    };
    cache.set(key, { data, step });
  }
  return cache.get(key);
}

async function run({ method, batch, threads, seconds, min_steps }) {
  if (backend.info().threads !== threads) await backend.configure({ threads });
  if (backend.info().threads !== threads) throw new Error(`could not start ${threads} threads (have ${backend.info().threads})`);
  const { data, step } = state(method, batch);
  let steps = 0;
  let el = 0;
  const t0 = performance.now();
  for (;;) {
    const [x, y] = data[steps % data.length];
    step(x, y);
    steps++;
    el = (performance.now() - t0) / 1000;
    if (steps >= (min_steps ?? 2) && el >= seconds) break;
  }
  return { samples_per_s: (steps * batch) / el, steps, elapsed: el };
}

await serve({ threads: THREADS_SUPPORTED }, run);
