/**
 * The training stack: float64 central-difference gradient checks of Conv2d, Linear, the pooling
 * layers, ReLU, Flatten, a small Sequential network and softmax cross-entropy; the GEMM against a
 * naive product on every kernel edge; SGD and Adam against PyTorch's update rules worked by hand.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Conv2d } from "../../src/nn/conv2d.js";
import { Linear } from "../../src/nn/linear.js";
import { AvgPool2d, Flatten, GlobalAvgPool2d, MaxPool2d, ReLU, Sequential } from "../../src/nn/basic.js";
import { softmaxCrossEntropy } from "../../src/nn/loss.js";
import { Adam, SGD } from "../../src/nn/optim.js";
import { gemm, rowMajor, transposed } from "../../src/kernels/ts/gemm.js";
import { mulberry32 } from "../../src/rng.js";
import { Tensor } from "../../src/tensor.js";
import { assertClose, finiteDiffCheck, randTensor } from "./helpers.js";

const F64 = { dtype: "float64" as const };

describe("gradients (float64 central differences)", () => {
  it("Conv2d: 3×3 pad 1, and 2 in-channels 3×2 kernel stride 2", () => {
    const a = new Conv2d({ inChannels: 1, outChannels: 3, kernelSize: 3, padding: 1, rng: mulberry32(1), ...F64 });
    finiteDiffCheck(a, randTensor([2, 1, 5, 5], "float64", 2), { dy: randTensor([2, 3, 5, 5], "float64", 3) });
    const b = new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: [3, 2], stride: 2, ...F64, rng: mulberry32(4) });
    finiteDiffCheck(b, randTensor([2, 2, 7, 6], "float64", 5), { dy: randTensor([2, 3, 3, 3], "float64", 6) });
  });
  it("Linear", () => {
    const l = new Linear({ inFeatures: 7, outFeatures: 5, rng: mulberry32(1), ...F64 });
    finiteDiffCheck(l, randTensor([3, 7], "float64", 2), { dy: randTensor([3, 5], "float64", 3) });
    finiteDiffCheck(l, randTensor([1, 7], "float64", 4), { dy: randTensor([1, 5], "float64", 5) });
  });
  it("MaxPool2d 2×2 (fast path) and 3×3 stride 2 (general path)", () => {
    finiteDiffCheck(new MaxPool2d({ kernelSize: 2, ...F64 }), randTensor([2, 3, 6, 4], "float64", 1), { dy: randTensor([2, 3, 3, 2], "float64", 2) });
    finiteDiffCheck(new MaxPool2d({ kernelSize: 3, stride: 2, ...F64 }), randTensor([1, 2, 7, 8], "float64", 3), { dy: randTensor([1, 2, 3, 3], "float64", 4) });
  });
  it("AvgPool2d and GlobalAvgPool2d", () => {
    finiteDiffCheck(new AvgPool2d({ kernelSize: [2, 3], stride: [2, 1], ...F64 }), randTensor([2, 2, 5, 5], "float64", 1), { dy: randTensor([2, 2, 2, 3], "float64", 2) });
    finiteDiffCheck(new GlobalAvgPool2d(F64), randTensor([2, 3, 4, 5], "float64", 3), { dy: randTensor([2, 3], "float64", 4) });
  });
  it("ReLU (inputs away from the kink) and Flatten", () => {
    const x = randTensor([2, 3, 4], "float64", 1);
    for (let i = 0; i < x.size; i++) if (Math.abs(x.data[i]!) < 0.01) x.data[i] = 0.5;
    finiteDiffCheck(new ReLU(F64), x);
    finiteDiffCheck(new Flatten(F64), x, { dy: randTensor([2, 12], "float64", 2) });
  });
  it("a Sequential conv → ReLU → max pool → flatten → linear network, and backwardParams = backward's grads", () => {
    const rng = mulberry32(7);
    const make = () =>
      new Sequential([
        new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3, padding: 1, rng, ...F64 }),
        new ReLU(F64), new MaxPool2d({ kernelSize: 2, ...F64 }), new Flatten(F64),
        new Linear({ inFeatures: 2 * 3 * 3, outFeatures: 4, rng, ...F64 }),
      ]);
    const net = make();
    const x = randTensor([2, 1, 6, 6], "float64", 8);
    const dy = randTensor([2, 4], "float64", 9);
    finiteDiffCheck(net, x, { dy, h: 1e-6, tol: 1e-5 });
    net.zeroGrad();
    net.forward(x);
    net.backward(dy);
    const full = Object.fromEntries(Object.entries(net.namedParameters()).map(([k, p]) => [k, Float64Array.from(p.grad.data)]));
    net.zeroGrad();
    net.forward(x);
    net.backwardParams(dy);
    for (const [k, p] of Object.entries(net.namedParameters())) assertClose(p.grad.data, full[k]!, 1e-12, k);
    assert.deepEqual(Object.keys(full), ["0.weight", "0.bias", "4.weight", "4.bias"]);
  });
  it("softmaxCrossEntropy: value and dlogits", () => {
    const z = randTensor([3, 5], "float64", 1, { scale: 3 });
    const labels = [4, 0, 2];
    const { loss, dlogits } = softmaxCrossEntropy(z, labels);
    const direct = (zz: Tensor) => {
      let s = 0;
      for (let n = 0; n < 3; n++) {
        let e = 0;
        for (let k = 0; k < 5; k++) e += Math.exp(zz.data[n * 5 + k]!);
        s += Math.log(e) - zz.data[n * 5 + labels[n]!]!;
      }
      return s / 3;
    };
    assert.ok(Math.abs(loss - direct(z)) < 1e-12);
    const h = 1e-6, num = new Float64Array(15), zp = z.clone();
    for (let i = 0; i < 15; i++) {
      const v = z.data[i]!;
      zp.data[i] = v + h;
      const a = direct(zp);
      zp.data[i] = v - h;
      const b = direct(zp);
      zp.data[i] = v;
      num[i] = (a - b) / (2 * h);
    }
    assertClose(dlogits.data, num, 1e-7, "dlogits");
    // stable with huge logits
    const big = Tensor.from([1000, 0, -1000, 0], [2, 2], "float64");
    assert.ok(Number.isFinite(softmaxCrossEntropy(big, [0, 1]).loss));
    assert.throws(() => softmaxCrossEntropy(z, [5, 0, 0]), /labels\[0\]/);
    assert.throws(() => softmaxCrossEntropy(z, [1, 0]), /labels/);
  });
});

describe("gemm", () => {
  const naive = (M: number, N: number, K: number, A: (i: number, k: number) => number, B: (k: number, j: number) => number) => {
    const c = new Float64Array(M * N);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) c[i * N + j] += A(i, k) * B(k, j);
    return c;
  };
  it("matches a naive product for every edge shape, transposed views and accumulation", () => {
    const rng = mulberry32(3);
    for (const [M, N, K] of [[1, 1, 1], [2, 9, 3], [4, 4, 4], [5, 7, 6], [9, 3, 1], [3, 2, 5], [8, 13, 0]] as const) {
      const a = Float64Array.from({ length: M * K }, () => rng() - 0.5);
      const b = Float64Array.from({ length: K * N }, () => rng() - 0.5);
      const want = naive(M, N, K, (i, k) => a[i * K + k]!, (k, j) => b[k * N + j]!);
      const c = new Float64Array(M * N).fill(NaN);
      gemm(M, N, K, rowMajor(a, 0, K), rowMajor(b, 0, N), rowMajor(c, 0, N), false);
      assertClose(c, want, 1e-14, `${M}x${N}x${K}`, 1);
      // Aᵀ stored [K, M] and Bᵀ stored [N, K], into a C at an offset, accumulating
      const at = new Float64Array(K * M), bt = new Float64Array(N * K);
      for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) at[k * M + i] = a[i * K + k]!;
      for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bt[j * K + k] = b[k * N + j]!;
      const c2 = new Float64Array(3 + M * N).fill(1);
      gemm(M, N, K, transposed(at, 0, M), transposed(bt, 0, K), rowMajor(c2, 3, N), true);
      assertClose(c2.subarray(3), want.map((v) => v + 1), 1e-14, `transposed ${M}x${N}x${K}`, 1);
    }
  });
});

describe("optimisers (PyTorch's rules, worked by hand)", () => {
  const param = (v: number) => ({ value: Tensor.from([v], [1], "float64"), grad: Tensor.from([0], [1], "float64") });
  it("SGD with momentum and weight decay: b = g on the first step, then μb + g", () => {
    const p = param(1);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    p.grad.data[0] = 0.5;
    opt.step(); // g' = 0.5 + 0.1·1 = 0.6, b = 0.6, p = 1 − 0.06
    assert.ok(Math.abs(p.value.data[0]! - 0.94) < 1e-15);
    opt.step(); // g' = 0.5 + 0.094 = 0.594, b = 0.54 + 0.594 = 1.134, p = 0.94 − 0.1134
    assert.ok(Math.abs(p.value.data[0]! - 0.8266) < 1e-15);
    opt.zeroGrad();
    assert.equal(p.grad.data[0], 0);
    const q = param(1);
    new SGD([q], { lr: 0.5 }).step();
    assert.equal(q.value.data[0], 1);
    assert.throws(() => new SGD([q], { lr: -1 }), /lr/);
  });
  it("Adam: the first step moves every parameter by lr·g/(|g| + eps)", () => {
    const p = param(1);
    const opt = new Adam([p], { lr: 0.01 });
    p.grad.data[0] = -3;
    opt.step();
    assert.ok(Math.abs(p.value.data[0]! - (1 + 0.01 * (3 / (3 + 1e-8)))) < 1e-12);
    p.grad.data[0] = 1;
    opt.step(); // m = 0.9·(−0.3) + 0.1 = −0.17, v = 0.999·0.009 + 0.001
    const m = -0.17 / (1 - 0.81), v = (0.999 * 0.009 + 0.001) / (1 - 0.999 ** 2);
    assert.ok(Math.abs(p.value.data[0]! - (1 + 0.01 * (3 / (3 + 1e-8)) - (0.01 * m) / (Math.sqrt(v) + 1e-8))) < 1e-9);
  });
});

describe("ReLU float32 bit-pattern kernels", () => {
  it("match max(x, 0) and the x > 0 mask on special values", async () => {
    const { reluForward, reluBackward } = await import("../../src/kernels/ts/relu.js");
    const xs = [0, -0, 1.5, -1.5, Infinity, -Infinity, NaN, 1e-45, -1e-45, 3.4e38, -3.4e38, 0.25, -7];
    const x = Float32Array.from(xs), y = new Float32Array(xs.length);
    reluForward(y, x);
    xs.forEach((v, i) => {
      const want = Math.fround(Number.isNaN(v) ? NaN : Math.max(v, 0));
      assert.ok(Object.is(y[i], want) || (want === 0 && y[i] === 0), `relu(${v}) = ${y[i]}, want ${want}`);
    });
    const dy = Float32Array.from(xs.map((_, i) => (i % 3 === 0 ? Infinity : i % 3 === 1 ? NaN : 2.5)));
    const dx = new Float32Array(xs.length);
    reluBackward(dx, dy, x);
    xs.forEach((v, i) => {
      const want = v > 0 || Number.isNaN(v) ? dy[i]! : 0; // documented: +NaN passes dy (src/kernels/ts/relu.ts)
      assert.ok(Object.is(dx[i], want), `drelu at ${v} with dy ${dy[i]}: ${dx[i]}, want ${want}`);
    });
  });
});
