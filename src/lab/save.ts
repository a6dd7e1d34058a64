/**
 * `normkit lab --save DIR`: each trained model as `<arch>-<method>-b<batch>-s<seed>.safetensors`
 * (the state dict under the PyTorch reference network's key names: models.ts referenceStateDict, so
 * `docs/pytorch_reference.py --eval-saved DIR` loads it into its own nn.Sequential) and `.onnx` (its
 * eval forward, normkit/onnx; skipped with a note where protobufjs, that entry's optional peer, is not
 * installed). Written in the run's own thread, right after its evaluation.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveSafetensors } from "../io/safetensors.js";
import { INPUT_SHAPE, type Model, referenceStateDict } from "./models.js";

/** The file stem of a run's saved model. */
export function savedName(arch: string, method: string, batchSize: number, seed: number): string {
  return `${arch}-${method}-b${batchSize}-s${seed}`;
}

/** Writes the model's files into dir (which exists); returns the names written and a note on what was not. */
export async function saveModel(model: Model, dir: string, batchSize: number, seed: number): Promise<{ files: string[]; note: string | null }> {
  const stem = savedName(model.arch, model.method, batchSize, seed);
  const files: string[] = [];
  const metadata = { format: "pt", arch: model.arch, method: model.method, batch_size: String(batchSize), seed: String(seed), writer: "normkit lab --save" };
  writeFileSync(join(dir, `${stem}.safetensors`), saveSafetensors(referenceStateDict(model), { metadata }));
  files.push(`${stem}.safetensors`);
  let note: string | null = null;
  try {
    const { exportOnnx } = await import("../onnx/index.js");
    writeFileSync(join(dir, `${stem}.onnx`), exportOnnx(model.net, { inputShape: [1, ...INPUT_SHAPE], dynamicBatch: true }));
    files.push(`${stem}.onnx`);
  } catch (e) {
    const missing = e instanceof Error && /protobufjs/.test(e.message);
    if (!missing) throw e;
    note = "no .onnx: normkit/onnx needs protobufjs (npm install protobufjs)";
  }
  return { files, note };
}
