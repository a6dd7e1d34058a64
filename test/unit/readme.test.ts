// Runs every ```js example of README.md as an ES module inside the package (so `import "normkit"`
// resolves to this build through the package's self-reference) and checks what it prints.
import { it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);

// What each example must print (a fragment per example, in order).
const expected: RegExp[] = [
  /^loss 2\.003 -> 0\.009\npredicted 0 1 2 0 1 2\n0\.bias 0\.weight 1\.bias 1\.num_batches_tracked 1\.running_mean 1\.running_var 1\.weight 5\.bias 5\.weight$/m,
  /^loss 1\.67 -> 0\.06, lr 0\.00125\n[\s\S]*\n4        Linear      \[32, 1\]           65\ntotal parameters: 1,537$/m,
  /\[ 4, 6, 3, 3 \] 36\n\[\s*'weight',\s*'bias',\s*'running_mean',\s*'running_var',\s*'num_batches_tracked'\s*\] 1/,
  /mean: \{\s*in: 0\.333\d+,\s*ln: 0\.333\d+,\s*bn: 0\.333\d+\s*\}/,
  /^2 8 16 \{ perSample: true, groupSize: 2, center: true \}\n8 8\n16 2 8 \{\s*in: 0\.333\d+,\s*ln: 0\.333\d+,\s*bn: 0\.333\d+\s*\}/,
  /\[ 2\.5, 25 \][\s\S]*\ntrue\n\[ 0\.55, 1\.1, 1\.65, 2\.2 \]/,
  /^true BatchNorm1d\.loadStateDict: running_var: expected shape \[3\], got shape \[4\]$/m,
  /^webgpu webgpu \[ 2, 3, 2, 2 \]\ntrue BatchNorm2d\.forward: x: expected a tensor on webgpu.* \(the layer's device\), got a tensor on cpu\ntrue 0\.1875$/m,
  /^0\.bias 0\.weight 1\.bias 1\.num_batches_tracked 1\.running_mean 1\.running_var 1\.weight\n\{ missingKeys: \[\], unexpectedKeys: \[\] \}\ntrue Sequential\.loadStateDict: 1\.running_var, 2\.weight: expected exactly the keys of Sequential, got Missing key\(s\) in state_dict: "1\.running_var"\. Unexpected key\(s\) in state_dict: "2\.weight"\.\n\{ missingKeys: \[ '1\.running_var' \], unexpectedKeys: \[\] \}$/m,
  /^Conv BatchNormalization Relu MaxPool Flatten Gemm\ntrue exportOnnx: model\.0 \(Conv2d\): x: expected 1 channels \(axis 1\), got shape \[1, 3, 28, 28\]$/m,
  /^2 Conv2D GroupNormalization ReLU SwitchableNormalization GlobalAveragePooling2D RMSNormalization Dense\ntrue$/m,
  /^true true\ntrue true\ntrue$/m,
];

it("README has the API tour examples", () => assert.equal(blocks.length, expected.length));

blocks.forEach((code, i) => {
  it(`README example ${i + 1} runs and prints what it says`, (t) => {
    const dir = join(root, "dist", "readme-examples");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `example${i + 1}.mjs`);
    writeFileSync(file, code);
    const r = spawnSync(process.execPath, [file], { encoding: "utf8", cwd: root });
    // the WebGPU example needs an adapter (SwiftShader: libvulkan1 + chromium): skipped without one, except in CI
    if (r.status !== 0 && /no WebGPU adapter/.test(r.stderr) && process.env["CI"] !== "true") return t.skip("no WebGPU adapter");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, expected[i]!);
  });
});
