// TensorFlow.js (cpu backend) side of `npm run bench:train`: the lab's default CNN trained with tfjs-core
// ops (NHWC), SGD momentum 0.9 + weight decay 1e-4 as an L2 term, on fixed synthetic batches.
// Same line protocol as torch_worker.py: {"cmd":"run", method, batch, threads, seconds, min_steps}.
// tfjs's cpu backend is single-threaded: `threads` is ignored (the orchestrator only asks for 1).
// The @tensorflow/tfjs bundle (core + cpu backend + the gradient registrations, which tfjs-core's Node
// bundle alone lacks). Not tfjs-node: the plain JavaScript cpu backend is what is measured.
import { serve } from "./worker_loop.mjs";
import * as tf from "@tensorflow/tfjs";

await tf.setBackend("cpu");
await tf.ready();

function uniform(shape, fanIn) {
  const b = 1 / Math.sqrt(fanIn);
  return tf.variable(tf.randomUniform(shape, -b, b, "float32", 7));
}

function makeNorm(kind, c) {
  if (kind === "none") return { vars: [], apply: (x) => x };
  const gamma = tf.variable(tf.ones([c]));
  const beta = tf.variable(tf.zeros([c]));
  const affine = (xhat) => tf.add(tf.mul(xhat, gamma), beta);
  const normalize = (x, axes) => {
    const { mean, variance } = tf.moments(x, axes, true);
    return { xhat: tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), mean, variance };
  };
  if (kind === "batch_norm") {
    const rm = tf.variable(tf.zeros([c]), false);
    const rv = tf.variable(tf.ones([c]), false);
    return {
      vars: [gamma, beta],
      apply: (x) => {
        const { xhat, mean, variance } = normalize(x, [0, 1, 2]);
        // running statistics, as BatchNorm does in training (not on the loss's path: no gradient flows)
        const n = x.shape[0] * x.shape[1] * x.shape[2];
        rm.assign(tf.tidy(() => tf.add(tf.mul(rm, 0.9), tf.mul(tf.reshape(mean, [c]), 0.1))));
        rv.assign(tf.tidy(() => tf.add(tf.mul(rv, 0.9), tf.mul(tf.reshape(variance, [c]), 0.1 * n / Math.max(1, n - 1)))));
        return affine(xhat);
      },
    };
  }
  if (kind === "instance_norm") return { vars: [gamma, beta], apply: (x) => affine(normalize(x, [1, 2]).xhat) };
  if (kind === "layer_norm") return { vars: [gamma, beta], apply: (x) => affine(normalize(x, [1, 2, 3]).xhat) };
  if (kind === "group_norm") {
    const g = 4;
    return {
      vars: [gamma, beta],
      apply: (x) => {
        const [n, h, w] = x.shape;
        const xg = tf.reshape(x, [n, h, w, g, c / g]);
        return affine(tf.reshape(normalize(xg, [1, 2, 4]).xhat, [n, h, w, c]));
      },
    };
  }
  throw new Error(`tfjs worker: method ${kind} not implemented`);
}

function makeModel(kind) {
  const w1 = uniform([3, 3, 1, 8], 9), b1 = uniform([8], 9);
  const w2 = uniform([3, 3, 8, 16], 72), b2 = uniform([16], 72);
  const w3 = uniform([784, 10], 784), b3 = uniform([10], 784);
  const n1 = makeNorm(kind, 8), n2 = makeNorm(kind, 16);
  const params = [w1, b1, w2, b2, w3, b3, ...n1.vars, ...n2.vars];
  const forward = (x) => {
    let h = tf.add(tf.conv2d(x, w1, 1, "same"), b1);
    h = tf.maxPool(tf.relu(n1.apply(h)), 2, 2, "valid");
    h = tf.add(tf.conv2d(h, w2, 1, "same"), b2);
    h = tf.maxPool(tf.relu(n2.apply(h)), 2, 2, "valid");
    return tf.add(tf.matMul(tf.reshape(h, [x.shape[0], 784]), w3), b3);
  };
  return { params, forward };
}

const cache = new Map();
function state(method, batch) {
  const key = `${method}|${batch}`;
  if (!cache.has(key)) {
    const model = makeModel(method);
    const opt = tf.train.momentum(0.01, 0.9);
    const data = [];
    for (let i = 0; i < 4; i++) {
      const x = tf.randomNormal([batch, 28, 28, 1], 0, 1, "float32", 100 + i);
      const y = tf.oneHot(tf.randomUniform([batch], 0, 10, "int32", 200 + i), 10);
      data.push([x, y]);
    }
    cache.set(key, { model, opt, data });
  }
  return cache.get(key);
}

function step({ model, opt }, x, y) {
  tf.tidy(() => {
    opt.minimize(() => {
      const loss = tf.losses.softmaxCrossEntropy(y, model.forward(x));
      let l2 = tf.scalar(0);
      for (const p of model.params) l2 = tf.add(l2, tf.sum(tf.square(p)));
      return tf.add(loss, tf.mul(l2, 0.5e-4));
    }, false, model.params);
  });
}

function run({ method, batch, seconds, min_steps }) {
  const st = state(method, batch);
  let steps = 0;
  const t0 = performance.now();
  let el = 0;
  for (;;) {
    const [x, y] = st.data[steps % st.data.length];
    step(st, x, y);
    steps++;
    el = (performance.now() - t0) / 1000;
    if (steps >= (min_steps ?? 1) && el >= seconds) break;
  }
  return { samples_per_s: (steps * batch) / el, steps, elapsed: el };
}

await serve({ version: tf.version.tfjs }, run);
