/**
 * The WebAssembly SIMD GEMM path of Conv2d and Linear (float32, f32 sums) against the TypeScript
 * path (float64 sums), both forced through backend.configure({ kernels }), on odd sizes that hit
 * every edge of the micro-kernels (rows mod 4, columns mod 16 / mod 4, reduction lengths mod 4),
 * strides, padding, accumulate and null outputs; WasmTensor operands in place; float64 unaffected.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { WasmTensor, backend } from "../../src/index.js";
import { conv2dBackward, conv2dForward, conv2dGeometry, conv2dScratchSize } from "../../src/kernels/ts/conv2d.js";
import { linearBackward, linearForward } from "../../src/kernels/ts/linear.js";
import { wasmRuntime } from "../../src/kernels/wasm/wasm.js";

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 4;
  }
  return a;
}
function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1, worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i]! - b[i]!);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst / scale;
}

/** Runs f under kernel mode m; returns whether WebAssembly calls happened. */
async function under(m: "ts" | "wasm", f: () => void): Promise<boolean> {
  await backend.configure({ kernels: m });
  const before = backend.info().wasmCalls;
  f();
  return backend.info().wasmCalls > before;
}

const TOL = 2e-5;
const available = backend.info().wasm;

describe("WebAssembly GEMM path (Conv2d, Linear) vs TypeScript", { skip: available ? false : "no WebAssembly SIMD here" }, () => {
  after(async () => {
    await backend.configure({ kernels: "auto" });
  });

  const linearSizes: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [4, 16, 4], [5, 17, 3], [7, 33, 19], [64, 10, 784], [9, 21, 13], [2, 3, 130]];
  for (const [N, inF, outF] of linearSizes) {
    for (const bias of [true, false]) {
      it(`linear N=${N} in=${inF} out=${outF} bias=${bias}`, async () => {
        const x = rand(N * inF, 1 + N), w = rand(outF * inF, 2 + inF), b = bias ? rand(outF, 3) : null;
        const dy = rand(N * outF, 4 + outF);
        const res: Record<string, Float32Array[]> = {};
        for (const m of ["ts", "wasm"] as const) {
          const y = new Float32Array(N * outF);
          const dx = rand(N * inF, 5), dw = rand(outF * inF, 6), db = rand(outF, 7); // accumulate onto these
          const dx2 = new Float32Array(N * inF), dw2 = new Float32Array(outF * inF);
          const ran = await under(m, () => {
            linearForward(y, x, w, b, N, inF, outF);
            linearBackward(dx, dw, db, dy, x, w, N, inF, outF, true);
            linearBackward(dx2, null, null, dy, x, w, N, inF, outF, false);
            linearBackward(null, dw2, null, dy, x, w, N, inF, outF, false);
          });
          assert.equal(ran, m === "wasm");
          res[m] = [y, dx, dw, db, dx2, dw2];
        }
        res["ts"]!.forEach((t, i) => assert.ok(maxRel(res["wasm"]![i]!, t) < TOL, `output ${i}: ${maxRel(res["wasm"]![i]!, t)}`));
      });
    }
  }

  const convCases: { N: number; C: number; H: number; W: number; O: number; k: [number, number]; s: [number, number]; p: [number, number] }[] = [
    { N: 2, C: 1, H: 28, W: 28, O: 8, k: [3, 3], s: [1, 1], p: [1, 1] },
    { N: 3, C: 8, H: 14, W: 14, O: 16, k: [3, 3], s: [1, 1], p: [1, 1] },
    { N: 2, C: 3, H: 7, W: 9, O: 5, k: [3, 2], s: [1, 1], p: [0, 1] },
    { N: 1, C: 2, H: 11, W: 10, O: 7, k: [3, 3], s: [2, 3], p: [1, 2] },
    { N: 3, C: 5, H: 5, W: 6, O: 3, k: [1, 1], s: [1, 1], p: [0, 0] },
    { N: 2, C: 2, H: 4, W: 4, O: 17, k: [5, 5], s: [1, 1], p: [2, 2] },
    { N: 1, C: 1, H: 3, W: 3, O: 1, k: [3, 3], s: [1, 1], p: [0, 0] },
  ];
  for (const c of convCases) {
    for (const bias of [true, false]) {
      it(`conv2d ${JSON.stringify(c)} bias=${bias}`, async () => {
        const g = conv2dGeometry([c.N, c.C, c.H, c.W], c.O, c.k, c.s, c.p);
        const scratch = new Float64Array(conv2dScratchSize(g));
        const x = rand(c.N * c.C * c.H * c.W, 11), w = rand(c.O * g.K, 12), b = bias ? rand(c.O, 13) : null;
        const dy = rand(c.N * c.O * g.P, 14);
        const res: Record<string, Float32Array[]> = {};
        for (const m of ["ts", "wasm"] as const) {
          const y = new Float32Array(c.N * c.O * g.P);
          const dx = rand(x.length, 15), dw = rand(w.length, 16), db = rand(c.O, 17);
          const dx2 = new Float32Array(x.length), dw2 = new Float32Array(w.length);
          const ran = await under(m, () => {
            conv2dForward(y, x, w, b, g, scratch);
            conv2dBackward(dx, dw, db, dy, x, w, g, scratch, true);
            conv2dBackward(dx2, null, null, dy, x, w, g, scratch, false);
            conv2dBackward(null, dw2, null, dy, x, w, g, scratch, false);
          });
          assert.equal(ran, m === "wasm");
          res[m] = [y, dx, dw, db, dx2, dw2];
        }
        res["ts"]!.forEach((t, i) => assert.ok(maxRel(res["wasm"]![i]!, t) < TOL, `output ${i}: ${maxRel(res["wasm"]![i]!, t)}`));
      });
    }
  }

  it("uses WasmTensor operands in place and gives the same result", async () => {
    const N = 5, inF = 23, outF = 6;
    const x = rand(N * inF, 21), w = rand(outF * inF, 22), b = rand(outF, 23);
    await backend.configure({ kernels: "wasm" });
    const y = new Float32Array(N * outF);
    linearForward(y, x, w, b, N, inF, outF);
    const xt = WasmTensor.from(x, [N, inF]), wt = WasmTensor.from(w, [outF, inF]), yt = WasmTensor.zeros([N, outF]);
    linearForward(yt.data, xt.data, wt.data, b, N, inF, outF);
    assert.deepEqual(Array.from(yt.data), Array.from(y));
    for (const t of [xt, wt, yt]) t.dispose();
  });

  it("leaves float64 on the TypeScript path", async () => {
    await backend.configure({ kernels: "wasm" });
    const N = 3, inF = 5, outF = 4;
    const before = backend.info().wasmCalls;
    linearForward(new Float64Array(N * outF), Float64Array.from(rand(N * inF, 31)), Float64Array.from(rand(outF * inF, 32)), null, N, inF, outF);
    assert.equal(backend.info().wasmCalls, before);
  });

  it("splits a convolution over two threads: the same results as one thread (f32 rounding), and the same bits run to run", async () => {
    const g = conv2dGeometry([16, 8, 14, 14], 16, [3, 3], [1, 1], [1, 1]);
    const scratch = new Float64Array(conv2dScratchSize(g));
    const x = WasmTensor.from(rand(16 * 8 * 196, 41), [16 * 8 * 196]).data;
    const w = WasmTensor.from(rand(16 * g.K, 42), [16 * g.K]).data;
    const b = rand(16, 43), dy = WasmTensor.from(rand(16 * 16 * g.P, 44), [16 * 16 * g.P]).data;
    const run = () => {
      const y = WasmTensor.zeros([16 * 16 * g.P]).data, dx = WasmTensor.zeros([x.length]).data, dw = rand(w.length, 45), db = new Float32Array(16);
      conv2dForward(y, x, w, b, g, scratch);
      conv2dBackward(dx, dw, db, dy, x, w, g, scratch, true);
      return [y, dx, dw, db].map((a) => Array.from(a));
    };
    await backend.configure({ kernels: "wasm", threads: 1 });
    const one = run();
    await backend.configure({ threads: 2 });
    try {
      assert.equal(backend.info().threads, 2, "a worker started");
      const rt = wasmRuntime()!;
      rt.maxJoined = 1;
      let two = run();
      for (let i = 0; i < 50 && rt.maxJoined < 2; i++) two = run(); // a worker that is not scheduled in time is not waited for
      assert.equal(rt.maxJoined, 2, "a call ran on two threads");
      one.forEach((t, i) => assert.ok(maxRel(two[i]!, t) < TOL, `output ${i}: ${maxRel(two[i]!, t)}`));
      const again = run();
      assert.deepEqual(again, two, "chunk-ordered dweight sums: no dependence on which thread ran which chunk");
    } finally {
      await backend.shutdown();
    }
  });

  it("splits a Linear over two threads by rows of the result: the single-thread bits", async () => {
    const N = 64, inF = 300, outF = 96;
    const x = WasmTensor.from(rand(N * inF, 51), [N * inF]).data, w = WasmTensor.from(rand(outF * inF, 52), [outF * inF]).data;
    const b = rand(outF, 53), dy = WasmTensor.from(rand(N * outF, 54), [N * outF]).data;
    const run = () => {
      const y = WasmTensor.zeros([N * outF]).data, dx = WasmTensor.zeros([N * inF]).data, dw = WasmTensor.from(rand(outF * inF, 55), [outF * inF]).data;
      linearForward(y, x, w, b, N, inF, outF);
      linearBackward(dx, dw, null, dy, x, w, N, inF, outF, true);
      return [y, dx, dw].map((a) => Array.from(a));
    };
    await backend.configure({ kernels: "wasm", threads: 1 });
    const one = run();
    await backend.configure({ threads: 2 });
    try {
      const rt = wasmRuntime()!;
      rt.maxJoined = 1;
      let two = run();
      for (let i = 0; i < 50 && rt.maxJoined < 2; i++) two = run();
      assert.equal(rt.maxJoined, 2, "a call ran on two threads");
      assert.deepEqual(two, one);
    } finally {
      await backend.shutdown();
    }
  });
});
