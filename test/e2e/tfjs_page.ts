/**
 * The page of test/e2e/tfjs_browser.test.ts, bundled by esbuild with @tensorflow/tfjs: the
 * normkit/tfjs cases of test/unit/tfjs_cases.ts (each layer's output and gradients against normkit's
 * own layer, computed on the page) on the WebGL backend. Sets `window.__result`.
 */
import * as tf from "@tensorflow/tfjs";
import { runTfjsCases } from "../unit/tfjs_cases.js";

async function run() {
  const ok = await tf.setBackend("webgl");
  if (!ok) throw new Error("tf.setBackend('webgl') failed");
  await tf.ready();
  const env = tf.env();
  const info = {
    backend: tf.getBackend(),
    webglVersion: env.getNumber("WEBGL_VERSION"),
    float32Render: env.getBool("WEBGL_RENDER_FLOAT32_ENABLED"),
    float32Capable: env.getBool("WEBGL_RENDER_FLOAT32_CAPABLE"),
  };
  const t0 = performance.now();
  // useNormkitKernels: true is ignored off the cpu backend: the same tf ops run
  const cases = [...runTfjsCases(false), ...runTfjsCases(true).map((c) => ({ ...c, name: `${c.name} (useNormkitKernels, ignored on webgl)` }))];
  return { info, cases, ms: performance.now() - t0, leaked: tf.memory().numTensors };
}
run().then(
  (r) => ((globalThis as unknown as { __result: unknown }).__result = r),
  (e: unknown) => ((globalThis as unknown as { __result: unknown }).__result = { error: String((e as Error)?.stack ?? e) }),
);
