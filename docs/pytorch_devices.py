"""PyTorch twin of the lab's `devices` experiment (/work/shared/lab/EXPERIMENTS.md "devices"; the rest of the
protocol as pytorch_reference.py beside this file): data-parallel training with W workers of b images each,
(W, b) in {(1, 16), (4, 4), (8, 2)}, global batch 16, lr 0.0125, SGD momentum 0.9, weight decay 1e-4,
2 epochs, eval-mode accuracy on the 2,000 test digits, seeds 0 and 1. Input normalisation rounded as normkit
rounds it (src/lab/data.ts gather()): x = float32(float64(pixel) * (1 / 0.3081) + (-0.1307 / 0.3081)), bit for
bit (not pytorch_reference.py's (x - 0.1307) / 0.3081 in float32, which differs in ~95% of the pixels by up to
2.4e-7; runs since 2026-12-01 16:33 UTC).

Run with Debian's PyTorch (/usr/bin/python3):
  /usr/bin/python3 pytorch_devices.py DIGITS_DIR --sn bench/switchnorm_ref.py [--arch cnn|mlp] [--streams normkit|torch] [--inputs normkit|float32] \
      > pytorch-devices.jsonl
Prints one JSON line per run with the record fields of EXPERIMENTS.md "Records" (and streams: normkit or torch).

Random streams (lab-protocol.md, "Seeded generators"). Default, --streams normkit: normkit's own, ported in
normkit_streams.py beside this file, so a seed's run starts from normkit's very weights and sees its very
batches: every Conv2d / Linear overwritten with normkit's draws from mulberry32(seed) (src/lab/models.ts's
buildModel, which src/lab/experiments/devices.ts builds on: layer by layer, weight then bias, rounded to
float32); each epoch's permutation of the training digits a Fisher-Yates shuffle from
mulberry32(seed + 0x9e3779b9) (src/lab/orderings.ts's shuffledOrder). --streams torch: PyTorch's own, as the
runs before 2026-12-01 drew them: torch.manual_seed(seed) before building the network, torch.randperm(n) with
a Generator seeded by the seed each epoch. --dump-streams: instead of training, print per run its initial
state dict and its first two epochs' permutations (scripts/check_normkit_streams.py compares them with
normkit's, bit for bit).

The W workers are simulated in one process without torch.distributed, as the statistics are the question:
every layer but the norms works per sample, so one network on the step's 16 digits (worker k's are rows
k*b .. (k+1)*b - 1) with the loss averaged over all 16 computes exactly what W DDP replicas with averaged
gradients compute, once the norms see what each worker would see:
- batch_norm, switchable_norm: the norm runs on each worker's b rows separately (its BN statistics per
  worker); only worker 0's call updates the running statistics (DDP's broadcast_buffers=True copies rank 0's
  buffers to every replica before each forward), the others' updates are undone;
- sync_batch_norm: BatchNorm on all 16 rows, which is torch.nn.SyncBatchNorm's computation (global mean, biased
  global variance to normalise, unbiased with the global count for running_var, momentum 0.1);
- group_norm, none: independent of the split.
"""
import argparse, base64, json, os, sys, time, importlib.util
import numpy as np, torch, torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import normkit_streams as ns

torch.set_num_threads(1)
ap = argparse.ArgumentParser()
ap.add_argument("digits")
ap.add_argument("--sn", required=True, help="path to the official SwitchNorm code (bench/switchnorm_ref.py)")
ap.add_argument("--arch", choices=["cnn", "mlp"], action="append")
ap.add_argument("--seeds", default="0,1")
ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--only", help="METHOD:W, e.g. batch_norm:8 — just that cell (extra seeds)")
ap.add_argument("--train-limit", type=int, default=8000, help="train on the first N training digits (a smoke test)")
ap.add_argument("--streams", choices=["normkit", "torch"], default="normkit")
ap.add_argument("--inputs", choices=list(ns.INPUT_ROUNDINGS), default="normkit",
                help="normkit: normkit's input rounding (the twin); float32: pytorch_reference.py's (the perturbed run)")
ap.add_argument("--dump-streams", action="store_true")
args = ap.parse_args()
spec = importlib.util.spec_from_file_location("sn", args.sn)
sn = importlib.util.module_from_spec(spec); spec.loader.exec_module(sn)

# the inputs as normkit computes them (normkit_streams.py load_digits: src/lab/data.ts gather()'s rounding, bit for
# bit), or with --inputs float32 as pytorch_reference.py rounds them (lab-protocol.md, "PyTorch against itself")
X, Y = ns.load_digits(args.digits, args.inputs)
Xtr, Ytr, Xte, Yte = map(torch.tensor, (X[:8000], Y[:8000], X[8000:], Y[8000:]))

BATCH, LR = 16, 0.0125
CONFIGS = [(1, 16), (4, 4), (8, 2)]


class PerWorker(nn.Module):
    """Runs `inner` on each worker's rows separately (training), keeping worker 0's running-statistics update
    only. Its state-dict keys are the inner norm's under `inner.`; eval runs inner on the whole input."""

    def __init__(self, inner, workers):
        super().__init__()
        self.inner, self.workers = inner, workers

    def forward(self, x):
        if not self.training or self.workers == 1:
            return self.inner(x)
        outs = []
        for k, xk in enumerate(x.chunk(self.workers, 0)):
            if k == 0:
                outs.append(self.inner(xk))
                continue
            # worker k's replica updates a copy of the buffers, dropped after (rank 0's are kept)
            saved = dict(self.inner._buffers)
            self.inner._buffers.update({n: b.clone() for n, b in saved.items() if b is not None})
            outs.append(self.inner(xk))
            self.inner._buffers.update(saved)
        return torch.cat(outs, 0)


def norm(kind, c, spatial, workers):
    if kind == "none": return nn.Identity()
    if kind == "group_norm": return nn.GroupNorm(4 if spatial else 16, c)
    if kind == "sync_batch_norm": return nn.BatchNorm2d(c) if spatial else nn.BatchNorm1d(c)
    if kind == "batch_norm": return PerWorker(nn.BatchNorm2d(c) if spatial else nn.BatchNorm1d(c), workers)
    if kind == "switchable_norm": return PerWorker(sn.SwitchNorm2d(c) if spatial else sn.SwitchNorm1d(c), workers)
    raise ValueError(kind)


def net(arch, kind, workers):
    if arch == "cnn":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), norm(kind, 8, True, workers), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), norm(kind, 16, True, workers), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), norm(kind, 256, False, workers), nn.ReLU(),
                         nn.Linear(256, 256), norm(kind, 256, False, workers), nn.ReLU(), nn.Linear(256, 10))


def grid():
    for arch in args.arch or ["cnn", "mlp"]:
        for (W, b) in CONFIGS:
            for kind in ["none", "batch_norm", "sync_batch_norm", "group_norm", "switchable_norm"]:
                if kind == "none" and W != 1: continue
                if args.only and args.only != f"{kind}:{W}": continue
                for seed in map(int, args.seeds.split(",")):
                    yield arch, kind, W, b, seed


for arch, kind, W, b, seed in grid():
    n = args.train_limit
    if args.streams == "normkit":
        m = net(arch, kind, W); ns.init_torch_like_normkit(m, seed); g = ns.shuffle_stream(seed)
        perm = lambda: torch.from_numpy(ns.shuffled_order(n, g))
    else:
        torch.manual_seed(seed); m = net(arch, kind, W); g = torch.Generator().manual_seed(seed)
        perm = lambda: torch.randperm(n, generator=g)
    if args.dump_streams:
        b64 = lambda a: base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()
        state = {k: [str(v.dtype).replace("torch.", ""), list(v.shape), b64(v.numpy())] for k, v in m.state_dict().items()}
        print(json.dumps({"experiment": "devices", "arch": arch, "method": kind, "batch_size": BATCH, "seed": seed, "workers": W,
                          "per_worker_batch": b, "state": state,
                          "orders": [b64(perm()[:n // BATCH * BATCH].numpy().astype(np.int32)) for _ in range(2)]}), flush=True)
        continue
    opt = torch.optim.SGD(m.parameters(), lr=LR, momentum=0.9, weight_decay=1e-4)
    lossf = nn.CrossEntropyLoss(); t0 = time.time()
    total = (n // BATCH) * BATCH * args.epochs
    curve, win, wn, seen, diverged = [], 0.0, 0, 0, False
    for ep in range(args.epochs):
        m.train(); idx = perm()
        for i in range(0, n - BATCH + 1, BATCH):
            j = idx[i:i + BATCH]; opt.zero_grad(); loss = lossf(m(Xtr[j]), Ytr[j])
            if not torch.isfinite(loss):
                diverged = True; break
            loss.backward(); opt.step()
            win += loss.item() * BATCH; wn += BATCH; seen += BATCH
            # a loss-curve point per 500 samples, closed as src/lab/train.ts closes them
            if seen % 500 < BATCH or seen == total: curve.append(round(win / wn, 5)); win, wn = 0.0, 0
        if diverged: break
    if wn: curve.append(round(win / wn, 5))
    m.eval()
    with torch.no_grad(): acc = 0.1 if diverged else (m(Xte).argmax(1) == Yte).float().mean().item()
    print(json.dumps({"experiment": "devices", "arch": arch, "method": kind, "batch_size": BATCH, "seed": seed,
                      "workers": W, "per_worker_batch": b, "test_accuracy": round(acc, 4), "diverged": diverged,
                      "seconds": round(time.time() - t0, 1), "train_loss_curve": curve, "streams": args.streams, "inputs": args.inputs}), flush=True)
