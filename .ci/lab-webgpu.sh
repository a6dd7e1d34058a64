#!/usr/bin/env bash
# `normkit lab --quick --device webgpu` on SwiftShader (Dawn for Node on a CPU Vulkan driver): the
# lab's quick protocol trained on the GPU path end to end, then its results.json and report checked.
# Slow on a CPU (about 8 minutes on 2 cores): a correctness run, not a benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)/lab-webgpu"
export VK_ICD_FILENAMES="${VK_ICD_FILENAMES:-/usr/lib/chromium/vk_swiftshader_icd.json}"
node bin/normkit.js lab --quick --device webgpu --out "$out"
node - "$out" <<'JS'
const { readFileSync, existsSync } = require("node:fs");
const out = process.argv[2];
const res = JSON.parse(readFileSync(`${out}/results.json`, "utf8"));
const fail = (m) => { console.error(`lab-webgpu: ${m}`); process.exit(1); };
if (!/^webgpu/.test(res.config.device)) fail(`config.device is ${res.config.device}`);
if (res.runs.length !== 22) fail(`${res.runs.length} runs, expected 22 (11 arch x method, 2 batch sizes)`);
for (const r of res.runs) {
  if (!/^webgpu/.test(r.device ?? "")) fail(`${r.arch} ${r.method} b=${r.batch_size}: device ${r.device}`);
  if (!(r.test_accuracy > 0.1) || r.diverged || !r.train_loss_curve.every(Number.isFinite)) fail(`${r.arch} ${r.method} b=${r.batch_size}: accuracy ${r.test_accuracy}, diverged ${r.diverged}`);
}
const html = readFileSync(`${out}/report.html`, "utf8");
if (!/trained and evaluated by normkit on the GPU \(webgpu/.test(html)) fail("report.html does not say the GPU trained");
console.log(`lab-webgpu: ${res.runs.length} runs on ${res.config.device}, accuracy ${Math.min(...res.runs.map((r) => r.test_accuracy)).toFixed(3)}–${Math.max(...res.runs.map((r) => r.test_accuracy)).toFixed(3)}, ${res.wall_seconds} s`);
JS
