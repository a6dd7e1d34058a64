/**
 * The kernel backends: the fixtures through each path (WebAssembly forced on, forced off), the
 * WebAssembly kernels against the exact TypeScript kernels on inputs large enough to run on two
 * threads, in-place WasmTensors against plain arrays, the fallbacks (float64, channels-last), and
 * worker threads that never keep a process alive.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { getHeapSpaceStatistics } from "node:v8";
import type { FixtureCase } from "../../src/index.js";
import {
  BatchNorm2d, ConfigError, GroupNorm, InstanceNorm2d, LayerNorm, Module, Normalization, RMSNorm, SwitchableNorm2d, Tensor, WasmTensor,
  backend, runCase, validateFixture,
} from "../../src/index.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const fixtures = validateFixture(JSON.parse(readFileSync(join(root, "test/data/pytorch-fixtures.json"), "utf8")));

function rand(n: number, seed: number, offset = 0): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = offset + (s / 4294967296 - 0.5) * 4;
  }
  return a;
}
function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1, worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i]! - b[i]!);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst / scale;
}

after(async () => {
  await backend.configure({ kernels: "auto", threads: 1 });
  await backend.shutdown();
});

describe("kernel selection", () => {
  it("the WebAssembly kernels are available in Node", () => {
    const info = backend.info();
    assert.equal(info.wasm, true, String(info.wasmReason));
  });

  /** The cases run one after the other (the kernel mode is process-wide). */
  async function runAll(cases: FixtureCase[], dtype: "float32" | "float64") {
    const out = [];
    for (const c of cases) out.push(await runCase(c, dtype));
    return out;
  }
  for (const mode of ["wasm", "ts"] as const) {
    it(`every fixture case passes at float32 with kernels forced to "${mode}"`, async () => {
      await backend.configure({ kernels: mode });
      try {
        const before = backend.info().wasmCalls;
        const failed = (await runAll(fixtures.cases, "float32")).filter((r) => !r.pass);
        assert.deepEqual(failed.map((r) => `${r.name}: ${r.worst.output} ${r.worst.relError}`), []);
        const ran = backend.info().wasmCalls - before;
        if (mode === "wasm") assert.ok(ran > 40, `expected the WebAssembly kernels to run, ${ran} calls`);
        else assert.equal(ran, 0);
        // float64 is always the exact TypeScript path
        const before64 = backend.info().wasmCalls;
        const failed64 = (await runAll(fixtures.cases, "float64")).filter((r) => !r.pass);
        assert.deepEqual(failed64.map((r) => r.name), []);
        assert.equal(backend.info().wasmCalls, before64);
      } finally {
        await backend.configure({ kernels: "auto" });
      }
    });
  }

  it("rejects an unknown mode, bad thread counts and unknown options with a ConfigError, changing nothing", async () => {
    const before = backend.info();
    const bad: [unknown, RegExp][] = [
      [{ kernels: "gpu" }, /backend\.configure: kernels: expected "auto", "wasm" or "ts", got "gpu"/],
      [{ kernels: 3 }, /kernels: expected "auto", "wasm" or "ts", got 3/],
      [{ threads: 0 }, /threads: expected an integer from 1 to 33, got 0/],
      [{ threads: 1.5 }, /threads: expected an integer from 1 to 33, got 1\.5/],
      [{ threads: "x" }, /threads: expected an integer from 1 to 33, got "x"/],
      [{ threads: "2" }, /got "2"/],
      [{ threads: NaN }, /got NaN/],
      [{ threads: 99 }, /threads: expected an integer from 1 to 33, got 99/],
      [{ threads: backend.MAX_THREADS + 1 }, /got 34/],
      [{ kernels: "ts", threads: 0 }, /threads:/], // checked before anything is applied: the mode stays
      [{ thread: 2 }, /thread: expected only the options kernels and threads, got unknown option "thread"/],
      [null, /options: expected an object/],
    ];
    for (const [o, msg] of bad) {
      await assert.rejects(backend.configure(o as never), (e: unknown) => {
        assert.ok(e instanceof ConfigError, `${JSON.stringify(o)}: ${String(e)}`);
        assert.match((e as Error).message, msg);
        return true;
      });
    }
    assert.equal(backend.MAX_THREADS, 33);
    assert.deepEqual(backend.info(), before);
  });
});

interface Case {
  name: string;
  make: () => Module;
  shape: number[];
  offset?: number;
}
const CASES: Case[] = [
  { name: "BatchNorm2d", make: () => new BatchNorm2d({ numFeatures: 16 }), shape: [8, 16, 24, 24] },
  { name: "BatchNorm2d odd sizes, offset 1e3", make: () => new BatchNorm2d({ numFeatures: 5 }), shape: [3, 5, 7, 11], offset: 1e3 },
  { name: "LayerNorm", make: () => new LayerNorm({ normalizedShape: 300 }), shape: [400, 300] },
  { name: "LayerNorm no affine", make: () => new LayerNorm({ normalizedShape: [3, 37], elementwiseAffine: false }), shape: [5, 3, 37] },
  { name: "InstanceNorm2d affine, offset 1e4", make: () => new InstanceNorm2d({ numFeatures: 8, affine: true }), shape: [4, 8, 45, 45], offset: 1e4 },
  { name: "GroupNorm", make: () => new GroupNorm({ numGroups: 4, numChannels: 32 }), shape: [4, 32, 17, 19] },
  { name: "GroupNorm small", make: () => new GroupNorm({ numGroups: 32, numChannels: 64 }), shape: [2, 64, 4, 4] },
  { name: "RMSNorm", make: () => new RMSNorm({ normalizedShape: 515 }), shape: [200, 515] },
  { name: "SwitchableNorm2d", make: () => new SwitchableNorm2d({ numFeatures: 6 }), shape: [4, 6, 30, 30] },
  { name: "BatchNorm2d channels-last (TypeScript fallback)", make: () => new BatchNorm2d({ numFeatures: 6, channelsLast: true }), shape: [4, 9, 9, 6] },
];

function setParams(m: Module, seed: number): void {
  let i = 0;
  for (const p of m.parameters()) {
    const r = rand(p.value.size, seed + i++);
    for (let j = 0; j < p.value.size; j++) p.value.data[j] = 1 + 0.25 * r[j]!;
  }
}

/** forward (training) + backward + eval forward; returns every output. */
function runAll(m: Module, x: Tensor, dy: Tensor, useOut: boolean): Float32Array[] {
  m.train();
  m.zeroGrad();
  let y: Tensor, dx: Tensor;
  if (useOut && m instanceof Normalization) {
    y = WasmTensor.zeros(x.shape);
    dx = WasmTensor.zeros(x.shape);
    m.forward(x, y);
    m.backward(dy, dx);
  } else {
    y = m.forward(x);
    dx = m.backward(dy);
  }
  const outs = [new Float32Array(y.data), new Float32Array(dx.data)];
  for (const p of m.parameters()) outs.push(new Float32Array(p.grad.data));
  m.eval();
  outs.push(new Float32Array(m.forward(x).data));
  for (const b of Object.values(m.namedBuffers())) outs.push(new Float32Array(b.data));
  return outs;
}

describe("WebAssembly kernels against the TypeScript kernels", () => {
  for (const threads of [1, 2]) {
    for (const c of CASES) {
      it(`${c.name} ${JSON.stringify(c.shape)}, ${threads} thread(s)`, async () => {
        const n = c.shape.reduce((a, b) => a * b, 1);
        const xd = rand(n, 7, c.offset ?? 0), dyd = rand(n, 8);
        await backend.configure({ kernels: "ts", threads: 1 });
        const ref = c.make();
        setParams(ref, 3);
        const want = runAll(ref, new Tensor(new Float32Array(xd), c.shape), new Tensor(new Float32Array(dyd), c.shape), false);
        await backend.configure({ kernels: "wasm", threads });
        try {
          for (const inWasm of [false, true]) {
            const m = c.make();
            setParams(m, 3);
            const x = inWasm ? WasmTensor.from(xd, c.shape) : new Tensor(new Float32Array(xd), c.shape);
            const dy = inWasm ? WasmTensor.from(dyd, c.shape) : new Tensor(new Float32Array(dyd), c.shape);
            const got = runAll(m, x, dy, inWasm);
            assert.equal(got.length, want.length);
            got.forEach((g, i) => {
              const e = maxRel(g, want[i]!);
              assert.ok(e <= 1e-4, `${c.name} output ${i} (${inWasm ? "WasmTensor" : "plain"}): rel err ${e}`);
            });
          }
        } finally {
          await backend.configure({ kernels: "auto", threads: 1 });
        }
      });
    }
  }
});

describe("WasmTensor", () => {
  it("lives in the WebAssembly memory, is an ordinary Tensor, and frees on dispose", () => {
    const before = backend.info().wasmBytes;
    const t = WasmTensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    assert.equal(t.inWasm, true);
    assert.ok(t instanceof Tensor);
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(t.toArray(), [1, 2, 3, 4, 5, 6]);
    assert.ok(backend.info().wasmBytes > before);
    const z = WasmTensor.zeros([4]);
    assert.deepEqual(z.toArray(), [0, 0, 0, 0]);
    t.dispose();
    z.dispose();
    t.dispose(); // twice is harmless
    assert.equal(backend.info().wasmBytes, before);
  });

  it("checks sizes", () => {
    assert.throws(() => WasmTensor.from([1, 2, 3], [2, 2]), /4 values/);
  });

  const ALLOC: [string, () => Module & { forward(x: Tensor, out?: Tensor): Tensor; backward(dy: Tensor, out?: Tensor): Tensor }, number[]][] = [
    ["GroupNorm", () => new GroupNorm({ numGroups: 4, numChannels: 16 }), [2, 16, 8, 8]],
    ["BatchNorm2d", () => new BatchNorm2d({ numFeatures: 16 }), [2, 16, 8, 8]],
    ["LayerNorm", () => new LayerNorm({ normalizedShape: 64 }), [32, 64]],
    ["SwitchableNorm2d", () => new SwitchableNorm2d({ numFeatures: 16 }), [2, 16, 8, 8]],
  ];
  for (const [name, make, shape] of ALLOC) {
    it(`${name}: a forward and a backward with provided outputs allocate (next to) nothing on the JS heap`, () => {
      const m = make();
      const n = shape.reduce((a, b) => a * b, 1);
      const x = WasmTensor.from(rand(n, 1), shape), y = WasmTensor.zeros(shape), dy = WasmTensor.from(rand(n, 2), shape), dx = WasmTensor.zeros(shape);
      // warm-up long enough for the optimising compiler to finish even on a loaded machine (the test
      // files run in parallel): unoptimised code boxes numbers that optimised code keeps in registers
      for (let i = 0; i < 6000; i++) {
        m.forward(x, y);
        m.backward(dy, dx);
      }
      // the V8 heap's object spaces and ArrayBuffer backing stores (typed arrays). Code spaces are
      // left out: optimised code that V8 installs mid-loop is the JIT's, not an allocation of the call.
      const used = (): number => {
        let objects = 0;
        for (const sp of getHeapSpaceStatistics()) if (!sp.space_name.startsWith("code")) objects += sp.space_used_size;
        return objects + process.memoryUsage().arrayBuffers;
      };
      // The least growth over windows in which no garbage collection ran (a collection shrinks the
      // heap and would hide an allocation behind a negative delta). A real allocation shows in every
      // window; a window counts only once the optimising compiler has caught up, which on a loaded
      // machine (the test files run in parallel, the GPU ones on the CPU) can take a while: 25 windows.
      let best = Infinity;
      for (let rep = 0; rep < 25 && !(best < 16); rep++) {
        const h0 = used();
        for (let i = 0; i < 500; i++) {
          m.forward(x, y);
          m.backward(dy, dx);
        }
        const perCall = (used() - h0) / 500;
        if (perCall >= 0) best = Math.min(best, perCall);
      }
      assert.ok(best < 16, `${best} bytes per forward + backward (Infinity: a collection ran in every window)`);
    });
  }
});

describe("worker threads", () => {
  it("a process that used two threads exits by itself", () => {
    const script = `
      import { GroupNorm, WasmTensor, backend } from ${JSON.stringify(pathToFileURL(join(root, "dist/src/index.js")).href)};
      await backend.configure({ threads: 2 });
      if (backend.info().threads !== 2) throw new Error("no worker started");
      const m = new GroupNorm({ numGroups: 8, numChannels: 32 });
      const x = WasmTensor.zeros([4, 32, 32, 32]);
      for (let i = 0; i < x.size; i++) x.data[i] = Math.sin(i);
      const y = m.forward(x);
      m.backward(y);
      console.log("done", backend.info().wasmCalls);
    `;
    const file = join(mkdtempSync(join(tmpdir(), "nk-threads-")), "exit.mjs");
    writeFileSync(file, script);
    const r = spawnSync(process.execPath, [file], { encoding: "utf8", timeout: 20000 });
    assert.equal(r.error, undefined, "the process did not exit by itself");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^done \d+/);
  });
});

describe("without SharedArrayBuffer (web pages that are not cross-origin isolated)", () => {
  it("the WebAssembly kernels run on an unshared memory, one thread, and every fixture passes", () => {
    // node --no-harmony-sharedarraybuffer removes the SharedArrayBuffer global, as such pages lack it
    const conf = spawnSync(process.execPath, ["--no-harmony-sharedarraybuffer", join(root, "bin/normkit.js"), "conformance", join(root, "test/data/pytorch-fixtures.json"), "--dtype", "float32"], {
      encoding: "utf8", timeout: 60000, env: { ...process.env, NORMKIT_KERNELS: "wasm" },
    });
    assert.equal(conf.status, 0, conf.stdout + conf.stderr);
    assert.match(conf.stdout, new RegExp(`\\b${fixtures.cases.length} passed, 0 failed`));
    // Growing an unshared memory detaches its old views: a convolution then BatchNorm forward and
    // backward at batch sizes that grow the memory between and within calls, WebAssembly against the
    // TypeScript kernels; and WasmTensor keeps its data in ordinary memory there.
    const script = `
      import { BatchNorm2d, Conv2d, Tensor, WasmTensor, backend } from ${JSON.stringify(pathToFileURL(join(root, "dist/src/index.js")).href)};
      if (typeof SharedArrayBuffer !== "undefined") throw new Error("SharedArrayBuffer still there");
      const run = async (kernels) => {
        await backend.configure({ kernels, threads: 2 });
        const conv = new Conv2d({ inChannels: 1, outChannels: 8, kernelSize: 3, padding: 1, bias: false });
        for (let i = 0; i < conv.weight.value.size; i++) conv.weight.value.data[i] = Math.sin(i + 1);
        const bn = new BatchNorm2d({ numFeatures: 8 });
        const out = [];
        for (const N of [2, 9, 33, 3, 64]) {
          const x = Tensor.from(Array.from({ length: N * 784 }, (_, i) => Math.cos(i * 0.37)), [N, 1, 28, 28]);
          const y = bn.forward(conv.forward(x));
          const dx = conv.backward(bn.backward(y));
          out.push(...bn.lastStatistics().mean, y.data[5], y.data[y.size - 1], dx.data[7], dx.data[dx.size - 1]);
        }
        return out;
      };
      const a = await run("wasm"), info = backend.info(), b = await run("ts");
      let worst = 0;
      a.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b[i]) / Math.max(1, Math.abs(b[i]))); });
      const t = WasmTensor.zeros([4]);
      console.log(JSON.stringify({ ...info, worst, wasmTensorInWasm: t.inWasm }));
    `;
    const file = join(mkdtempSync(join(tmpdir(), "nk-unshared-")), "unshared.mjs");
    writeFileSync(file, script);
    const r = spawnSync(process.execPath, ["--no-harmony-sharedarraybuffer", file], { encoding: "utf8", timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout) as ReturnType<typeof backend.info>;
    assert.equal(info.wasm, true);
    assert.equal(info.wasmShared, false);
    assert.equal(info.threads, 1, "no worker threads without a shared memory");
    assert.ok(info.wasmCalls > 0, "the WebAssembly kernels ran");
    const more = info as unknown as { worst: number; wasmTensorInWasm: boolean };
    assert.ok(more.worst < 1e-4, `WebAssembly against TypeScript kernels across memory growth: ${more.worst}`);
    assert.equal(more.wasmTensorInWasm, false, "WasmTensor uses ordinary memory where the WebAssembly memory is unshared");
  });

  it("in this process (SharedArrayBuffer present) the memory is shared", () => {
    assert.equal(backend.info().wasmShared, true);
  });
});
