/**
 * The lab: the data loaders (the mnist package split, IDX round trip, corrupt-file errors), the
 * models' shapes, deterministic training, and `normkit lab` end to end (--quick and bad input).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { DataError, encodeIdx, loadIdxDirectory, loadMnistPackage, MNIST_MEAN, MNIST_STD, numpyPermutation, parseIdx } from "../../src/lab/data.js";
import { ALL_METHODS, ARCHS, DEFAULT_METHODS, buildModel, methodApplies } from "../../src/lab/models.js";
import { learningRate, trainRun } from "../../src/lab/train.js";
import { splitThreads } from "../../src/cli/lab.js";
import { Tensor } from "../../src/tensor.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const BIN = join(ROOT, "bin", "normkit.js");
const tmp = mkdtempSync(join(tmpdir(), "normkit-lab-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe("data", () => {
  it("numpyPermutation reproduces numpy's RandomState(0).permutation(10000)", () => {
    const p = numpyPermutation(10000, 0);
    // python3 -c "import numpy as np; p = np.random.RandomState(0).permutation(10000); print(p[:10], p[-5:])"
    assert.deepEqual(Array.from(p.slice(0, 10)), [9394, 898, 2398, 5906, 2343, 8225, 5506, 6451, 2670, 3497]);
    assert.deepEqual(Array.from(p.slice(-5)), [9225, 4859, 3264, 9845, 2732]);
    assert.equal(new Set(p).size, 10000);
  });

  it("the mnist package: 8,000 / 2,000, normalised, labels as the permutation says", () => {
    const d = loadMnistPackage();
    assert.equal(d.train.count, 8000);
    assert.equal(d.test.count, 2000);
    assert.equal(d.train.x.length, 8000 * 784);
    // stacked digit counts 1001,1127,991,1032,980,863,1014,1070,944,978: index 9394 is a 9, 898 a 0
    assert.equal(d.train.y[0], 9);
    assert.equal(d.train.y[1], 0);
    const counts = new Array(10).fill(0);
    for (const y of [...d.train.y, ...d.test.y]) counts[y]++;
    assert.deepEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    let min = Infinity, max = -Infinity;
    for (const v of d.train.x) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(Math.abs(min - (0 - MNIST_MEAN) / MNIST_STD) < 1e-6);
    assert.ok(max <= (1 - MNIST_MEAN) / MNIST_STD + 1e-6 && max > 2.5);
  });

  it("IDX files round-trip, plain and gzipped", () => {
    const dir = join(tmp, "idx");
    const n = 5;
    const img = new Uint8Array(n * 784).map((_, i) => (i * 7) % 256);
    const lab = Uint8Array.from([3, 1, 4, 1, 5]);
    const write = (name: string, bytes: Uint8Array, gz: boolean) => writeFileSync(join(dir, gz ? name + ".gz" : name), gz ? gzipSync(bytes) : bytes);
    rmSync(dir, { recursive: true, force: true });
    spawnSync("mkdir", ["-p", dir]);
    write("train-images-idx3-ubyte", encodeIdx([n, 28, 28], img), true);
    write("train-labels-idx1-ubyte", encodeIdx([n], lab), false);
    write("t10k-images-idx3-ubyte", encodeIdx([2, 28, 28], img.subarray(0, 2 * 784)), false);
    write("t10k-labels-idx1-ubyte", encodeIdx([2], lab.subarray(0, 2)), true);
    const d = loadIdxDirectory(dir);
    assert.equal(d.train.count, 5);
    assert.equal(d.test.count, 2);
    assert.deepEqual(Array.from(d.train.y), [3, 1, 4, 1, 5]);
    assert.deepEqual(Array.from(d.test.y), [3, 1]);
    for (const i of [0, 1, 783, 784 * 4 + 5]) assert.ok(Math.abs(d.train.x[i]! - (img[i]! / 255 - MNIST_MEAN) / MNIST_STD) < 1e-6);
  });

  it("missing and corrupt files are DataErrors naming the file and the problem", () => {
    const good = encodeIdx([2], Uint8Array.from([1, 2]));
    const cases: [string, Uint8Array, RegExp][] = [
      ["truncated", good.subarray(0, good.length - 1), /10 bytes .*got 9 bytes \(truncated\)/],
      ["bad magic", Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]), /magic/],
      ["bad type", Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 0]), /type 0x08/],
      ["wrong rank", encodeIdx([1, 2], Uint8Array.from([1, 2])), /rank 1.*got rank 2/],
      ["corrupt gzip", Uint8Array.from([0x1f, 0x8b, 1, 2, 3]), /gzip/],
      ["empty", new Uint8Array(0), /IDX file/],
    ];
    for (const [what, bytes, re] of cases) {
      assert.throws(() => parseIdx(bytes, 1, `/data/${what}`), (e: unknown) => e instanceof DataError && e.param === `/data/${what}` && re.test(e.message), what);
    }
    assert.throws(() => loadIdxDirectory(join(tmp, "nowhere")), (e: unknown) => e instanceof DataError && /no such directory/.test(e.message));
    const dir = join(tmp, "partial");
    spawnSync("mkdir", ["-p", dir]);
    writeFileSync(join(dir, "train-images-idx3-ubyte"), encodeIdx([1, 28, 28], new Uint8Array(784)));
    assert.throws(() => loadIdxDirectory(dir), (e: unknown) => e instanceof DataError && /train-labels-idx1-ubyte/.test(e.message) && /no such file/.test(e.message));
    writeFileSync(join(dir, "train-labels-idx1-ubyte"), encodeIdx([2], Uint8Array.from([1, 2])));
    writeFileSync(join(dir, "t10k-images-idx3-ubyte"), encodeIdx([1, 28, 28], new Uint8Array(784)));
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte"), encodeIdx([1], Uint8Array.from([1])));
    assert.throws(() => loadIdxDirectory(dir), (e: unknown) => e instanceof DataError && /1 labels/.test(e.message) && e.param.endsWith("train-labels-idx1-ubyte"));
    writeFileSync(join(dir, "train-images-idx3-ubyte"), encodeIdx([1, 14, 14], new Uint8Array(196)));
    assert.throws(() => loadIdxDirectory(dir), (e: unknown) => e instanceof DataError && /28×28/.test(e.message));
  });
});

describe("models", () => {
  it("every architecture and method maps [N, 1, 28, 28] to [N, 10], in train and eval mode", () => {
    const x = new Tensor(Float32Array.from({ length: 3 * 784 }, (_, i) => Math.sin(i)), [3, 1, 28, 28]);
    for (const arch of ARCHS) {
      for (const method of ALL_METHODS) {
        if (!methodApplies(arch, method)) {
          assert.throws(() => buildModel(arch, method, 0), /method/);
          continue;
        }
        const { net, switchable } = buildModel(arch, method, 0);
        assert.deepEqual(net.forward(x).shape, [3, 10], `${arch} ${method}`);
        net.eval();
        assert.deepEqual(net.forward(x).shape, [3, 10], `${arch} ${method} eval`);
        assert.equal(switchable.length, method === "switchable_norm" ? 2 : 0);
      }
    }
  });
  it("init: same seed, same conv/linear weights for every method; PyTorch's U(±1/√fan_in)", () => {
    const a = buildModel("cnn", "none", 3).net.namedParameters();
    const b = buildModel("cnn", "batch_norm", 3).net.namedParameters();
    assert.deepEqual(Array.from(a["0.weight"]!.value.data), Array.from(b["0.weight"]!.value.data));
    assert.deepEqual(Array.from(a["7.weight"]!.value.data), Array.from(b["9.weight"]!.value.data));
    const w = a["7.weight"]!.value.data; // Linear(784 → 10)
    const bound = 1 / Math.sqrt(784);
    assert.ok(Math.max(...w) <= bound && Math.min(...w) >= -bound && Math.max(...w) > 0.9 * bound);
    assert.equal(b["1.weight"]!.value.data[0], 1);
    assert.equal(b["1.bias"]!.value.data[0], 0);
  });
  it("the learning-rate rule", () => {
    assert.equal(learningRate(64), 0.05);
    assert.equal(learningRate(8), 0.00625);
    assert.equal(learningRate(2), 0.005);
  });
});

describe("training", () => {
  const data = loadMnistPackage();
  it("is deterministic given the seed; another seed differs; Switchable Norm reports its importance", async () => {
    const spec = { arch: "cnn" as const, method: "switchable_norm" as const, batchSize: 8, seed: 5, epochs: 1, trainLimit: 160, curveEvery: 40 };
    const a = await trainRun(spec, data), b = await trainRun(spec, data), c = await trainRun({ ...spec, seed: 6 }, data);
    assert.deepEqual(a.train_loss_curve, b.train_loss_curve);
    assert.equal(a.test_accuracy, b.test_accuracy);
    assert.notDeepEqual(a.train_loss_curve, c.train_loss_curve);
    assert.equal(a.train_loss_curve.length, 4);
    assert.equal(a.steps, 20);
    assert.equal(a.importance?.length, 2);
    const imp = a.importance![0]!;
    assert.ok(Math.abs(imp.mean.in! + imp.mean.ln! + imp.mean.bn! - 1) < 1e-9);
  });
  it("learns: the mlp with batch norm beats chance after 1,000 samples", async () => {
    const r = await trainRun({ arch: "mlp", method: "batch_norm", batchSize: 16, seed: 0, epochs: 1, trainLimit: 1000 }, data);
    assert.ok(r.test_accuracy > 0.6, `accuracy ${r.test_accuracy}`);
    assert.ok(r.train_loss_curve[0]! > r.train_loss_curve[r.train_loss_curve.length - 1]!);
    assert.equal(r.steps, 62); // 1000 / 16, the incomplete last batch dropped
  });
});

describe("lab threads: runs in parallel and intra-op threads per run", () => {
  it("auto spends threads on parallel runs first, then inside a run; a fixed count divides them", () => {
    assert.deepEqual(splitThreads(2, "auto", 30), { parallel: 2, perRun: 1 });
    assert.deepEqual(splitThreads(2, "auto", 1), { parallel: 1, perRun: 2 });
    assert.deepEqual(splitThreads(8, "auto", 3), { parallel: 3, perRun: 2 });
    assert.deepEqual(splitThreads(1, "auto", 5), { parallel: 1, perRun: 1 });
    assert.deepEqual(splitThreads(4, 2, 30), { parallel: 2, perRun: 2 });
    assert.deepEqual(splitThreads(4, 2, 1), { parallel: 1, perRun: 2 });
    assert.deepEqual(splitThreads(3, 2, 30), { parallel: 1, perRun: 2 });
  });
});

describe("normkit lab (CLI)", () => {
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, "lab", ...args], { encoding: "utf8", cwd: tmp, timeout: 120_000 });

  it("--quick runs every default method at two batch sizes and writes results.json and report.html", () => {
    const out = join(tmp, "quick");
    const r = run(["--quick", "--out", out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const res = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { runs: { arch: string; method: string; batch_size: number; test_accuracy: number; train_loss_curve: number[] }[]; config: { batch_sizes: number[] } };
    assert.ok(res.config.batch_sizes.length >= 2);
    for (const arch of ARCHS) {
      for (const method of DEFAULT_METHODS) {
        if (!methodApplies(arch, method)) continue;
        for (const b of res.config.batch_sizes) {
          const x = res.runs.find((q) => q.arch === arch && q.method === method && q.batch_size === b);
          assert.ok(x, `${arch} ${method} batch ${b}`);
          assert.ok(x.test_accuracy >= 0 && x.test_accuracy <= 1);
          assert.ok(x.train_loss_curve.length > 0);
        }
      }
    }
    assert.ok(existsSync(join(out, "report.html")));
    assert.match(r.stdout, /peak memory \(RSS\) \d+ MiB/);
    assert.deepEqual(readdirSync(out).filter((f) => f.endsWith(".tmp")), []);
  });

  it("--device webgpu trains there and says so in results.json and the report (a subset of --quick)", (t) => {
    const out = join(tmp, "gpu");
    const r = spawnSync(process.execPath, [BIN, "lab", "--quick", "--device", "webgpu", "--arch", "cnn,mlp", "--methods", "batch_norm,switchable_norm", "--batch-sizes", "64", "--out", out], {
      encoding: "utf8", cwd: tmp, timeout: 600_000, env: { ...process.env, VK_ICD_FILENAMES: process.env["VK_ICD_FILENAMES"] ?? "/usr/lib/chromium/vk_swiftshader_icd.json" },
    });
    if (r.status === 2 && /no WebGPU adapter/.test(r.stderr) && process.env["CI"] !== "true") return t.skip("no WebGPU adapter");
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const res = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { runs: { device?: string; test_accuracy: number; train_loss_curve: number[]; importance?: unknown[] }[]; config: { device: string } };
    assert.match(res.config.device, /^webgpu/);
    assert.equal(res.runs.length, 4);
    for (const x of res.runs) {
      assert.match(x.device ?? "", /^webgpu/);
      assert.ok(x.test_accuracy > 0.1 && x.train_loss_curve.every(Number.isFinite));
    }
    assert.equal(res.runs.filter((x) => x.importance).length, 2);
    assert.match(readFileSync(join(out, "report.html"), "utf8"), /trained and evaluated by normkit on the GPU \(webgpu/);
    assert.match(r.stdout, /^device: webgpu/m);
  });

  it("--threads-per-run: one run with two intra-op threads trains and says so in results.json", () => {
    const out = join(tmp, "intra");
    const r = run(["--quick", "--arch", "cnn", "--methods", "batch_norm", "--batch-sizes", "64", "--threads", "2", "--out", out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /1 run at a time, 2 intra-op threads each/);
    const res = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { runs: { test_accuracy: number }[]; config: { threads: number; parallel_runs: number; threads_per_run: number } };
    assert.deepEqual([res.config.threads, res.config.parallel_runs, res.config.threads_per_run], [2, 1, 2]);
    assert.equal(res.runs.length, 1);
    assert.ok(res.runs[0]!.test_accuracy > 0.3, `accuracy ${res.runs[0]!.test_accuracy}`);
  });

  it("--save writes every trained model as safetensors (the PyTorch reference's keys) and ONNX, with results.json", async () => {
    const save = join(tmp, "saved"), out = join(tmp, "saved-out");
    const r = run(["--quick", "--methods", "none,batch_norm", "--batch-sizes", "8", "--save", save, "--out", out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const files = readdirSync(save).sort();
    assert.deepEqual(files, [
      "cnn-batch_norm-b8-s0.onnx", "cnn-batch_norm-b8-s0.safetensors", "cnn-none-b8-s0.onnx", "cnn-none-b8-s0.safetensors",
      "mlp-batch_norm-b8-s0.onnx", "mlp-batch_norm-b8-s0.safetensors", "mlp-none-b8-s0.onnx", "mlp-none-b8-s0.safetensors", "results.json",
    ]);
    const { loadSafetensors } = await import("../../src/io/safetensors.js");
    // the reference keeps nn.Identity in the norm slots: without a norm the second conv is still layer 4, the classifier 9
    assert.deepEqual(Object.keys(loadSafetensors(readFileSync(join(save, "cnn-none-b8-s0.safetensors")))).sort(), ["0.bias", "0.weight", "4.bias", "4.weight", "9.bias", "9.weight"]);
    assert.ok(Object.keys(loadSafetensors(readFileSync(join(save, "cnn-batch_norm-b8-s0.safetensors")))).includes("5.running_var"));
    const { decodeModel } = await import("../../src/onnx/index.js");
    const onnx = decodeModel(readFileSync(join(save, "cnn-batch_norm-b8-s0.onnx"))) as { graph: { node: { op_type: string }[] } };
    const ops = onnx.graph.node.map((n) => n.op_type);
    assert.deepEqual([...new Set(ops)], ["Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm"]);
    const res = JSON.parse(readFileSync(join(save, "results.json"), "utf8")) as { runs: unknown[] };
    assert.equal(res.runs.length, 4);
  });

  it("the default lab's saved models, evaluated by PyTorch (docs/pytorch-eval-saved.jsonl), give normkit's reported accuracy", () => {
    const rows = readFileSync(join(ROOT, "docs/pytorch-eval-saved.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { arch: string; method: string; batch_size: number; digits_apart: number; pytorch_test_accuracy: number; normkit_test_accuracy: number });
    assert.equal(rows.length, 33, "every default run (2 archs, their methods, 3 batch sizes)");
    for (const r of rows) {
      assert.equal(r.digits_apart, 0, `${r.arch} ${r.method} batch ${r.batch_size}: PyTorch ${r.pytorch_test_accuracy}, normkit ${r.normkit_test_accuracy}`);
      assert.ok(Math.abs(r.pytorch_test_accuracy - r.normkit_test_accuracy) < 1e-9);
    }
  });

  it("bad input: one line naming the problem, exit 2, nothing written", () => {
    const file = join(tmp, "a-file");
    writeFileSync(file, "");
    const cases: [string[], RegExp][] = [
      [["--methods", "batch_norm,fancy_norm"], /unknown method "fancy_norm"/],
      [["--batch-sizes", "0"], /--batch-sizes/],
      [["--batch-sizes", "8,9000"], /9000 is larger than the training set \(8000/],
      [["--arch", "resnet"], /unknown architecture/],
      [["--data", join(tmp, "no-such-dir")], /no such directory/],
      [["--out", join(file, "sub")], /--out .*not a writable directory/],
      ...(process.platform === "linux" ? [[["--out", "/proc/normkit-test/out"], /--out .*not a writable directory/] as [string[], RegExp]] : []),
      [["--epochs", "two"], /--epochs/],
      [["--bogus"], /bogus/],
      [["--device", "tpu"], /--device: expected cpu or webgpu, got "tpu"/],
      [["--threads-per-run", "0"], /--threads-per-run/],
      [["--threads-per-run", "many"], /--threads-per-run/],
      [["--threads", "1", "--threads-per-run", "2"], /--threads-per-run: 2 is more than --threads \(1\)/],
    ];
    for (const [args, re] of cases) {
      const out = args.includes("--out") ? [] : ["--out", join(tmp, "bad-out")];
      const r = run([...args, ...out]);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, re);
      assert.ok(!existsSync(join(tmp, "bad-out", "results.json")));
    }
  });
});
