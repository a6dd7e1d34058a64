/**
 * Host tensors resident in the WebAssembly memory (src/kernels/cpu.ts): the host device's float32
 * tensors live there, so the WebAssembly kernels run on them in place; the element-wise and pooling
 * kernels of assembly/elementwise.ts match the TypeScript kernels bit for bit (signed zeros, NaN,
 * ties, odd widths); Conv2d and Linear write into caller outputs, which ReuseOutputs reuses.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  Conv2d, Linear, MaxPool2d, ReLU, ReuseOutputs, Sequential, ShapeError, Tensor, WasmTensor, backend, cpu,
} from "../../src/index.js";
import { reluBackward, reluForward } from "../../src/kernels/ts/relu.js";
import { maxPool2dBackward, maxPool2dForward, pool2dGeometry } from "../../src/kernels/ts/pool.js";
import { hostOps } from "../../src/kernels/ts/ops_set.js";
import { wasmRuntime } from "../../src/kernels/wasm/wasm.js";
import { residentScope } from "../../src/kernels/wasm/wasm_tensor.js";

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 4;
  }
  return a;
}

/** Values with the awkward cases sprinkled in: ±0, ±NaN, ±Infinity, ties (rounded values). */
function awkward(n: number, seed: number): Float32Array {
  const a = rand(n, seed);
  const negNaN = new Float32Array(new Int32Array([0xffc00000 | 0]).buffer)[0]!;
  const specials = [0, -0, NaN, negNaN, Infinity, -Infinity, 1, 1, -1];
  for (let i = 0; i < n; i += 7) a[i] = specials[(i / 7) % specials.length]!;
  for (let i = 3; i < n; i += 5) a[i] = Math.round(a[i]!); // many equal values: ties
  return a;
}

function resident(values: Float32Array, shape: number[]): Tensor {
  const t = cpu.zeros(shape, "float32");
  t.data.set(values);
  return t;
}

const bitsOf = (a: Float32Array | Int32Array) => Array.from(new Int32Array(a.buffer, a.byteOffset, a.length));

async function wasmCallsDuring(f: () => void): Promise<number> {
  const before = backend.info().wasmCalls;
  f();
  return backend.info().wasmCalls - before;
}

describe("host tensors resident in the WebAssembly memory", () => {
  after(async () => {
    await backend.configure({ kernels: "auto" });
  });

  it("cpu.zeros gives float32 tensors in the WebAssembly memory; float64 and kernel mode ts stay on the JS heap", async () => {
    await backend.configure({ kernels: "auto" });
    const t = cpu.zeros([3, 5], "float32");
    assert.ok(t instanceof WasmTensor && t.inWasm, "a float32 host tensor is resident");
    assert.deepEqual(t.shape, [3, 5]);
    assert.ok(t.data.every((v) => v === 0));
    const d = cpu.zeros([4], "float64");
    assert.ok(!(d instanceof WasmTensor) && d.data instanceof Float64Array);
    await backend.configure({ kernels: "ts" });
    assert.ok(!(cpu.zeros([4], "float32") instanceof WasmTensor), "kernel mode ts: ordinary memory");
    await backend.configure({ kernels: "auto" });
    assert.ok(!(cpu.zeros([0], "float32") instanceof WasmTensor), "an empty tensor needs no storage");
  });

  for (const n of [1, 3, 4, 17, 1001]) {
    it(`ReLU forward and backward on ${n} resident values equal the TypeScript kernels bit for bit`, async () => {
      const xv = awkward(n, n), dyv = awkward(n, n + 100);
      const x = resident(xv, [n]), dy = resident(dyv, [n]);
      const y = cpu.zeros([n], "float32"), dx = cpu.zeros([n], "float32");
      const calls = await wasmCallsDuring(() => {
        hostOps.relu({ y, x });
        hostOps.reluBackward({ dx, dy, x });
      });
      assert.equal(calls, 2, "both ran on the WebAssembly kernels");
      const yr = reluForward(new Float32Array(n), xv) as Float32Array;
      const dxr = reluBackward(new Float32Array(n), dyv, xv) as Float32Array;
      assert.deepEqual(bitsOf(y.data as Float32Array), bitsOf(yr));
      assert.deepEqual(bitsOf(dx.data as Float32Array), bitsOf(dxr));
    });
  }

  for (const [planes, H, W] of [[3, 28, 28], [2, 14, 14], [5, 7, 9], [1, 2, 2], [4, 3, 17], [2, 16, 8]] as const) {
    it(`2×2 max pooling of ${planes}×${H}×${W} resident planes equals the TypeScript kernels (values, argmax, dx)`, async () => {
      const g = pool2dGeometry(planes, H, W, 2, 2, 2, 2);
      const xv = awkward(planes * H * W, H * 31 + W);
      const x = resident(xv, [1, planes, H, W]);
      const out = planes * g.Ho * g.Wo;
      const y = cpu.zeros([1, planes, g.Ho, g.Wo], "float32");
      const argmax = hostOps.createIndices(out);
      const dyv = rand(out, 7);
      const dy = resident(dyv, [1, planes, g.Ho, g.Wo]);
      const dx = cpu.zeros([1, planes, H, W], "float32");
      dx.data.fill(5); // overwritten, not accumulated
      const calls = await wasmCallsDuring(() => {
        hostOps.maxPool2d({ y, x, argmax, geometry: g });
        hostOps.maxPool2dBackward({ dx, dy, argmax, geometry: g });
      });
      assert.equal(calls, 2);
      const yr = new Float32Array(out), ar = new Int32Array(out);
      maxPool2dForward(yr, ar, xv, g);
      assert.deepEqual(bitsOf(y.data as Float32Array), bitsOf(yr));
      assert.deepEqual(Array.from((argmax as unknown as { data: Int32Array }).data), Array.from(ar));
      const dxr = maxPool2dBackward(new Float32Array(planes * H * W), dyv, ar, out) as Float32Array;
      assert.deepEqual(bitsOf(dx.data as Float32Array), bitsOf(dxr));
      argmax.destroy();
    });
  }

  it("plain Float32Array operands run the TypeScript kernels (no copy into the memory)", async () => {
    const x = new Tensor(rand(64, 1), [64]), y = new Tensor(new Float32Array(64), [64]);
    const calls = await wasmCallsDuring(() => hostOps.relu({ y, x }));
    assert.equal(calls, 0);
    assert.deepEqual(bitsOf(y.data as Float32Array), bitsOf(reluForward(new Float32Array(64), x.data) as Float32Array));
  });
});

describe("Conv2d and Linear write into caller outputs; ReuseOutputs reuses them", () => {
  it("Conv2d.forward(x, out) and backward(dy, out) give the fresh-output results, in the given tensors", () => {
    const conv = new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, stride: 2, rng: () => 0.3 });
    const x = new Tensor(rand(2 * 2 * 9 * 7, 3), [2, 2, 9, 7]);
    const fresh = conv.forward(x).clone();
    assert.deepEqual(conv.outputShape(x.shape), fresh.shape);
    const out = cpu.zeros(fresh.shape, "float32");
    out.data.fill(9);
    assert.equal(conv.forward(x, out), out);
    assert.deepEqual(Array.from(out.data), Array.from(fresh.data));
    const dy = new Tensor(rand(fresh.size, 4), fresh.shape);
    conv.zeroGrad();
    const dxFresh = conv.backward(dy).clone();
    const gFresh = conv.weight.grad.clone();
    conv.zeroGrad();
    const dxOut = cpu.zeros(x.shape, "float32");
    dxOut.data.fill(9);
    assert.equal(conv.backward(dy, dxOut), dxOut);
    assert.deepEqual(Array.from(dxOut.data), Array.from(dxFresh.data));
    assert.deepEqual(Array.from(conv.weight.grad.data), Array.from(gFresh.data));
  });

  it("a wrong `out` is a ShapeError naming it, and changes nothing", () => {
    const lin = new Linear({ inFeatures: 4, outFeatures: 3, rng: () => 0.5 });
    const x = new Tensor(rand(8, 5), [2, 4]);
    const bad = cpu.zeros([2, 4], "float32");
    assert.throws(() => lin.forward(x, bad), (e: unknown) => e instanceof ShapeError && /out/.test(e.message) && /\[2, 3\]/.test(e.message));
    assert.ok(bad.data.every((v) => v === 0));
    const y = lin.forward(x, cpu.zeros([2, 3], "float32"));
    assert.deepEqual(y.shape, [2, 3]);
    assert.throws(() => lin.backward(new Tensor(rand(6, 6), [2, 3]), cpu.zeros([2, 3], "float32")), ShapeError);
    const conv = new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3 });
    assert.throws(() => conv.forward(new Tensor(rand(25, 1), [1, 1, 5, 5]), cpu.zeros([1, 2, 5, 5], "float32")), ShapeError);
  });

  it("ReuseOutputs around Conv2d and Linear: the same results as the bare layers, one output tensor reused per step", () => {
    const make = () => new Sequential([
      new Conv2d({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1, rng: mul(1) }), new ReLU(), new MaxPool2d({ kernelSize: 2 }),
    ]);
    const bare = make();
    const wrapped = new Sequential([new ReuseOutputs(make().layers[0] as Conv2d), new ReLU(), new MaxPool2d({ kernelSize: 2 })]);
    const x = new Tensor(rand(2 * 36, 9), [2, 1, 6, 6]);
    const a = bare.forward(x), b = wrapped.forward(x);
    assert.deepEqual(Array.from(b.data), Array.from(a.data));
    const dy = new Tensor(rand(a.size, 10), a.shape);
    bare.backward(dy);
    const inner0 = wrapped.layers[0] as ReuseOutputs;
    const y1 = inner0.forward(x);
    const y2 = inner0.forward(x);
    assert.equal(y1.data, y2.data, "the output storage is reused");
    wrapped.forward(x);
    wrapped.backward(dy);
    assert.deepEqual(Array.from((wrapped.layers[0] as ReuseOutputs).inner.namedParameters().weight!.grad.data),
      Array.from((bare.layers[0] as Conv2d).weight.grad.data));
    assert.deepEqual(Object.keys(wrapped.stateDict()), Object.keys(bare.stateDict()), "the wrapper adds no key");
  });

  it("ReuseOutputs.backwardParams runs the inner layer's (no dx), as Sequential.backwardParams expects", () => {
    const lin = new Linear({ inFeatures: 3, outFeatures: 2, rng: () => 0.2 });
    const net = new Sequential([new ReuseOutputs(lin)]);
    const x = new Tensor(rand(6, 2), [2, 3]);
    net.forward(x);
    net.backwardParams(new Tensor(new Float32Array([1, 0, 0, 1]), [2, 2]));
    assert.deepEqual(Array.from(lin.bias!.grad.data), [1, 1]);
  });
});

function mul(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

describe("the SGD step on resident parameters", () => {
  for (const [name, momentum, first, keep] of [
    ["plain", 0, false, 1], ["first momentum step", 0.9, true, 1], ["momentum, dampening 0", 0.9, false, 1], ["momentum, dampening 0.25", 0.9, false, 0.75],
  ] as const) {
    it(`${name}: the WebAssembly kernel gives the TypeScript kernel's bits`, async () => {
      const n = 1003;
      const pv = rand(n, 1), gv = rand(n, 2), bv = rand(n, 3);
      const p = resident(pv, [n]), g = resident(gv, [n]), buf = momentum ? resident(bv, [n]) : null;
      const o = { param: p, grad: g, buffer: buf, lr: 0.05, momentum, keep, weightDecay: 1e-4, nesterov: false, first };
      const calls = await wasmCallsDuring(() => hostOps.sgdStep(o));
      assert.equal(calls, 1);
      const pr = new Tensor(Float32Array.from(pv), [n]), br = momentum ? new Tensor(Float32Array.from(bv), [n]) : null;
      const plainCalls = await wasmCallsDuring(() => hostOps.sgdStep({ ...o, param: pr, grad: new Tensor(Float32Array.from(gv), [n]), buffer: br }));
      assert.equal(plainCalls, 0, "plain arrays: the TypeScript kernel");
      assert.deepEqual(bitsOf(p.data as Float32Array), bitsOf(pr.data as Float32Array));
      if (buf) assert.deepEqual(bitsOf(buf.data as Float32Array), bitsOf(br!.data as Float32Array));
    });
  }
});

describe("element-wise kernels split over two threads", () => {
  after(async () => {
    await backend.shutdown();
  });
  it("ReLU and 2×2 max pooling on 2 threads give the single-thread bits (a call really ran on 2)", async () => {
    const planes = 128, H = 28, W = 28, n = planes * H * W; // ≥ PARALLEL_MIN_ELEMENTS
    const g = pool2dGeometry(planes, H, W, 2, 2, 2, 2);
    const xv = awkward(n, 5), dyv = awkward(n, 6), dpv = rand(planes * g.Ho * g.Wo, 8);
    const run = () => {
      const x = resident(xv, [n]), dy = resident(dyv, [n]), y = cpu.zeros([n], "float32"), dx = cpu.zeros([n], "float32");
      hostOps.relu({ y, x });
      hostOps.reluBackward({ dx, dy, x });
      const py = cpu.zeros([planes * g.Ho * g.Wo], "float32"), argmax = hostOps.createIndices(py.size);
      hostOps.maxPool2d({ y: py, x, argmax, geometry: g });
      const pdx = cpu.zeros([n], "float32");
      hostOps.maxPool2dBackward({ dx: pdx, dy: resident(dpv, [py.size]), argmax, geometry: g });
      const out = [y, dx, py, pdx].map((t) => bitsOf(t.data as Float32Array));
      out.push(Array.from((argmax as unknown as { data: Int32Array }).data));
      argmax.destroy();
      return out;
    };
    await backend.configure({ kernels: "auto", threads: 1 });
    const one = run();
    await backend.configure({ threads: 2 });
    const rt = wasmRuntime()!;
    rt.maxJoined = 1;
    let two = run();
    for (let i = 0; i < 50 && rt.maxJoined < 2; i++) two = run();
    assert.equal(rt.maxJoined, 2, "a call ran on two threads");
    assert.deepEqual(two, one);
  });
});

describe("residentScope", () => {
  it("returns the resident storage allocated inside to the memory at its end (nested scopes too); what was allocated before stays", async () => {
    const before = cpu.zeros([1000], "float32");
    const base = backend.info().wasmBytes;
    let inner: Tensor | null = null;
    const value = await residentScope(async () => {
      const a = cpu.zeros([4096], "float32");
      const idx = hostOps.createIndices(2048);
      await residentScope(() => {
        inner = cpu.zeros([8192], "float32");
      });
      assert.equal(backend.info().wasmBytes, base + 4096 * 4 + 2048 * 4, "the inner scope released its tensor");
      assert.ok(inner);
      a.data[0] = 1;
      void idx;
      return 42;
    });
    assert.equal(value, 42);
    assert.equal(backend.info().wasmBytes, base, "everything allocated in the scope was released");
    before.data[999] = 3;
    assert.equal(before.data[999], 3);
    (before as WasmTensor).dispose();
  });

  it("releases on a throw too, and a tensor disposed inside is not released twice", async () => {
    const base = backend.info().wasmBytes;
    await assert.rejects(residentScope(() => {
      const t = cpu.zeros([100], "float32") as WasmTensor;
      t.dispose();
      cpu.zeros([300], "float32");
      throw new Error("boom");
    }), /boom/);
    assert.equal(backend.info().wasmBytes, base);
  });
});
