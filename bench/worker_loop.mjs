// The JSON-lines protocol of bench:train's Node workers (bench/normkit_worker.mjs, bench/tfjs_worker.mjs):
// print `ready`, then answer each {"cmd": "run", ...} line on stdin with (await run(cmd))'s result (or {error}),
// until {"cmd": "exit"} or end of input.
import { createInterface } from "node:readline";

export async function serve(ready, run) {
  console.log(JSON.stringify({ ready: true, ...ready }));
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    if (cmd.cmd === "exit") break;
    let out;
    try {
      out = cmd.cmd === "run" ? await run(cmd) : { error: `unknown command ${cmd.cmd}` };
    } catch (e) {
      out = { error: String(e && e.message ? e.message : e) };
    }
    console.log(JSON.stringify(out));
  }
  process.exit(0);
}
