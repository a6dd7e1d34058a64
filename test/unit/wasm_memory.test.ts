/**
 * The WebAssembly memory's limits: up to 4 GiB (addresses past 2 GiB work: a child process puts
 * tensors there), a full memory is a WasmMemoryError that the kernels answer by running the
 * TypeScript ones (same results, nothing thrown) and host tensors by living on the JS heap, and
 * staging copies of plain arrays above STAGING_KEEP_BYTES go back to the memory after their call.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Conv2d, GroupNorm, Linear, Tensor, WasmTensor, backend, cpu } from "../../src/index.js";
import { MAX_PAGES, STAGING_KEEP_BYTES, WasmMemoryError, wasmRuntime } from "../../src/kernels/wasm/wasm.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const rt = wasmRuntime();

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) a[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5) * 4;
  return a;
}

/** Runs f with the allocator's limit at what is in use now plus `headroom` bytes. */
function withLimit<T>(headroom: number, f: () => T): T {
  const r = rt!;
  const before = r.limitBytes;
  r.limitBytes = (r as unknown as { top: number }).top + headroom;
  try {
    return f();
  } finally {
    r.limitBytes = before;
  }
}

describe("the WebAssembly memory's limits", { skip: rt ? false : "no WebAssembly SIMD here" }, () => {
  after(async () => {
    await backend.configure({ kernels: "auto" });
    rt!.stagingKeepBytes = STAGING_KEEP_BYTES;
  });

  it("declares 4 GiB, all wasm32 allows", () => {
    assert.equal(MAX_PAGES * 65536, 2 ** 32);
    assert.equal(rt!.limitBytes, 2 ** 32);
  });

  it("a full memory: plain-array norm, conv and linear calls run on the TypeScript kernels with the same results", () => {
    const x = new Tensor(rand(4 * 16 * 12 * 12, 1), [4, 16, 12, 12]);
    const gn = new GroupNorm({ numGroups: 4, numChannels: 16 });
    const conv = new Conv2d({ inChannels: 16, outChannels: 8, kernelSize: 3, padding: 1, rng: () => 0.4 });
    const lin = new Linear({ inFeatures: 16 * 12 * 12, outFeatures: 5, rng: () => 0.6 });
    const run = () => {
      const y = gn.forward(x).clone();
      const c = conv.forward(x).clone();
      const l = lin.forward(x.reshape([4, 16 * 12 * 12])).clone();
      return [y, c, l].map((t) => Array.from(t.data));
    };
    const free = run(); // staging regions grown now; the limited run below must not reuse them
    (rt as unknown as { trimAll?: () => void }).trimAll?.();
    rt!.stagingKeepBytes = 0; // every staging region released after its call: the next call needs fresh ones
    run();
    const calls = rt!.calls;
    const full = withLimit(0, () => {
      assert.throws(() => rt!.alloc(1 << 20), (e: unknown) => e instanceof WasmMemoryError && e instanceof RangeError && /cannot take 1048576 more bytes/.test(e.message));
      return run();
    });
    rt!.stagingKeepBytes = STAGING_KEEP_BYTES;
    full.forEach((a, i) => {
      let worst = 0;
      for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k]! - free[i]![k]!));
      assert.ok(worst < 1e-4, `output ${i}: ${worst}`);
    });
    assert.ok(rt!.calls >= calls, "the WebAssembly kernels were tried first");
  });

  it("a full memory: host float32 tensors live on the JS heap", () => {
    const t = withLimit(0, () => cpu.zeros([1 << 16], "float32"));
    assert.ok(!(t instanceof WasmTensor), "an ordinary tensor");
    assert.equal(t.size, 1 << 16);
    assert.ok(t.data.every((v) => v === 0));
  });

  it("staging copies above the keep size go back to the memory after their call", () => {
    rt!.stagingKeepBytes = 1 << 20; // 1 MiB
    try {
      const gn = new GroupNorm({ numGroups: 4, numChannels: 16 });
      const x = new Tensor(rand(8 * 16 * 64 * 64, 2), [8, 16, 64, 64]); // 2 MiB of plain floats
      const out = new Tensor(new Float32Array(x.size), x.shape);
      gn.forward(x, out);
      const base = backend.info().wasmBytes;
      for (let i = 0; i < 3; i++) gn.forward(x, out);
      assert.equal(backend.info().wasmBytes, base, "no region kept past the call");
      assert.equal(rt!.oversized.size, 0);
    } finally {
      rt!.stagingKeepBytes = STAGING_KEEP_BYTES;
    }
  });

  it("tensors at addresses past 2 GiB: the kernels give the same results there (child process)", () => {
    const url = pathToFileURL(join(root, "dist/src/index.js")).href;
    const wurl = pathToFileURL(join(root, "dist/src/kernels/wasm/wasm.js")).href;
    const script = `
      import { GroupNorm, ReLU, Conv2d, Tensor, WasmTensor } from ${JSON.stringify(url)};
      import { wasmRuntime } from ${JSON.stringify(wurl)};
      const rt = wasmRuntime();
      const rand = (n, seed) => { const a = new Float32Array(n); let s = seed >>> 0; for (let i = 0; i < n; i++) a[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5) * 4; return a; };
      const xv = rand(2 * 8 * 10 * 10, 3);
      const gn = new GroupNorm({ numGroups: 2, numChannels: 8 }), conv = new Conv2d({ inChannels: 8, outChannels: 4, kernelSize: 3, padding: 1, rng: () => 0.3 }), relu = new ReLU();
      const compute = (x) => [gn.forward(x), relu.forward(x), conv.forward(x)].map((t) => Array.from(t.data));
      const low = compute(WasmTensor.from(xv, [2, 8, 10, 10]));
      rt.alloc(2 ** 31 + (64 << 20)); // a spacer (never touched): what comes next lies past 2 GiB
      // free blocks below it are taken first: keep allocating until a tensor lands past 2 GiB
      const held = [];
      let x = WasmTensor.from(xv, [2, 8, 10, 10]);
      while (x.address < 2 ** 31 && held.length < 10000) { held.push(x); x = WasmTensor.from(xv, [2, 8, 10, 10]); }
      if (x.address < 2 ** 31) throw new Error("not past 2 GiB: " + x.address);
      const high = compute(x);
      const same = high.every((a, i) => a.every((v, k) => Math.abs(v - low[i][k]) < 1e-6));
      console.log(JSON.stringify({ address: x.address, same }));
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { address: number; same: boolean };
    assert.ok(out.address >= 2 ** 31);
    assert.equal(out.same, true);
  });
});
