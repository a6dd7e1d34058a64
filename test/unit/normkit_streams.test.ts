/**
 * The PyTorch twins draw normkit's random streams (docs/normkit_streams.py: initial weights and batch
 * orderings), checked bit for bit against normkit by scripts/check_normkit_streams.py, which needs PyTorch.
 * After a passing check it wrote the SHA-256 of every line of scripts/dump-streams.mjs's dump
 * (test/data/normkit-streams-digests.json); this test recomputes them from today's normkit, so a change
 * to buildModel's, buildRnn's or the orderings' draws fails here until the port follows and the check is
 * rerun (it cannot see a change to the port itself: that is the check's job).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

it("normkit's initial weights and batch orderings are those the twins' port was last checked against", () => {
  const fixture = JSON.parse(readFileSync(join(ROOT, "test/data/normkit-streams-digests.json"), "utf8")) as { seeds: number[]; digests: Record<string, string> };
  const r = spawnSync(process.execPath, [join(ROOT, "scripts/dump-streams.mjs"), "--seeds", fixture.seeds.join(","), "--digest"], { encoding: "utf8", cwd: ROOT, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const now: Record<string, string> = {};
  for (const line of r.stdout.trim().split("\n")) {
    const { key, sha256 } = JSON.parse(line) as { key: string; sha256: string };
    now[key] = sha256;
  }
  // every experiment's runs are there: shuffle and learning-rate (11 arch × method), rnn (3 × 2 batches), devices (26)
  assert.equal(Object.keys(now).length, fixture.seeds.length * (11 * 3 + 6 + 26));
  const changed = Object.keys({ ...now, ...fixture.digests }).filter((k) => now[k] !== fixture.digests[k]);
  assert.deepEqual(changed, [], "normkit's draws changed for these runs: make docs/normkit_streams.py follow, then run "
    + "/usr/bin/python3 scripts/check_normkit_streams.py --write-digests test/data/normkit-streams-digests.json");
});
