"""PyTorch CPU side of `npm run bench:train` (bench/train.mjs starts it with Debian's /usr/bin/python3).

Reads one JSON command per line on stdin, answers one JSON line on stdout:
  {"cmd": "run", "method", "batch", "threads", "seconds", "min_steps"} -> {"samples_per_s", "steps", "elapsed"}
Trains the lab's default CNN (conv 1->8 3x3 pad 1, norm, ReLU, maxpool 2; conv 8->16, norm, ReLU, maxpool 2;
linear 784->10) with SGD (momentum 0.9, weight decay 1e-4) on fixed synthetic batches, for at least
`seconds` and `min_steps` steps. Models and optimisers are cached per (method, batch).
Switchable Norm follows the official SwitchNorm2d code (using_bn, moving average, momentum 0.9).
Method "lstm": the rnn experiment's network (nn.LSTM(28, 64) over an image's rows, Linear(64, 10) on h_T),
Adam (lr 1e-3), gradients clipped to norm 1."""
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F


from switchnorm_ref import SwitchNorm2d  # the official code, shared by the benchmarks


def norm(kind, c):
    if kind == "none": return nn.Identity()
    if kind == "batch_norm": return nn.BatchNorm2d(c)
    if kind == "group_norm": return nn.GroupNorm(4, c)
    if kind == "layer_norm": return nn.GroupNorm(1, c)
    if kind == "instance_norm": return nn.InstanceNorm2d(c, affine=True)
    if kind == "switchable_norm": return SwitchNorm2d(c)
    raise ValueError(f"unknown method {kind}")


def net(kind):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), norm(kind, 8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), norm(kind, 16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


class LstmNet(nn.Module):
    """The rnn experiment's network: LSTM(28 -> 64) over the 28 rows of an image, Linear(64 -> 10) on h_T."""
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 64, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.fc(h[0])


cache = {}


def state(method, batch):
    key = (method, batch)
    if key not in cache and method == "lstm":
        torch.manual_seed(0)
        m = LstmNet().train()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(1)
        data = [(torch.randn(batch, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)) for _ in range(8)]
        cache[key] = (m, opt, data)
    if key not in cache:
        torch.manual_seed(0)
        m = net(method).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        g = torch.Generator().manual_seed(1)
        data = [(torch.randn(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)) for _ in range(8)]
        cache[key] = (m, opt, data)
    return cache[key]


def run(method, batch, threads, seconds, min_steps):
    torch.set_num_threads(threads)
    m, opt, data = state(method, batch)
    steps = 0
    t0 = time.perf_counter()
    while True:
        x, y = data[steps % len(data)]
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        if method == "lstm":
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        steps += 1
        el = time.perf_counter() - t0
        if steps >= min_steps and el >= seconds:
            break
    return {"samples_per_s": steps * batch / el, "steps": steps, "elapsed": el}


print(json.dumps({"ready": True, "version": torch.__version__}), flush=True)
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    cmd = json.loads(line)
    try:
        if cmd["cmd"] == "run":
            out = run(cmd["method"], cmd["batch"], cmd["threads"], cmd["seconds"], cmd.get("min_steps", 2))
        elif cmd["cmd"] == "exit":
            break
        else:
            out = {"error": f"unknown command {cmd['cmd']}"}
    except Exception as e:  # report, keep serving
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)
