"""PyTorch CPU peer of `npm run bench` (bench/norm.mjs): one JSON request per stdin line, one JSON
answer per stdout line.
  {"op": "setup", "case": NAME, "shape": [...]}            builds the module and tensors
  {"op": "time", "pass": "forward"|"forward+backward", "threads": T, "reps": R}
      -> {"times": [ms, ...]}   (forward under no_grad; forward+backward = y = m(x); y.backward(dy))
Switchable Norm is the official code (switchablenorms/Switchable-Normalization, SwitchNorm2d,
training mode); RMSNorm is composed (torch 1.13 has no nn.RMSNorm)."""
import json
import sys
import time

import torch
import torch.nn as nn


class RMSNorm(nn.Module):
    def __init__(self, k, eps=2.0 ** -23):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(k))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


from switchnorm_ref import SwitchNorm2d  # the official code, shared by the benchmarks


def build(case, shape):
    c = shape[1] if len(shape) > 1 else shape[0]
    if case == "batch_norm":
        return nn.BatchNorm2d(c)
    if case == "layer_norm":
        return nn.LayerNorm(shape[-1])
    if case == "instance_norm":
        return nn.InstanceNorm2d(c, affine=True)
    if case in ("group_norm", "group_norm_small"):
        return nn.GroupNorm(32, c)
    if case == "rms_norm":
        return RMSNorm(shape[-1])
    if case == "switchable_norm":
        return SwitchNorm2d(c)
    raise ValueError(case)


def main():
    state = {}
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "setup":
            state.clear()
            torch.manual_seed(0)
            shape = req["shape"]
            state["m"] = build(req["case"], shape).train()
            state["x"] = torch.randn(*shape)
            state["xg"] = state["x"].clone().requires_grad_(True)
            state["dy"] = torch.randn(*shape)
            print(json.dumps({"ok": True, "torch": torch.__version__}), flush=True)
        elif req["op"] == "time":
            torch.set_num_threads(int(req["threads"]))
            m, times = state["m"], []
            for _ in range(int(req["reps"])):
                if req["pass"] == "forward":
                    t0 = time.perf_counter()
                    with torch.no_grad():
                        m(state["x"])
                    times.append((time.perf_counter() - t0) * 1e3)
                else:
                    xg = state["xg"]
                    xg.grad = None
                    t0 = time.perf_counter()
                    y = m(xg)
                    y.backward(state["dy"])
                    times.append((time.perf_counter() - t0) * 1e3)
            print(json.dumps({"times": times}), flush=True)
        elif req["op"] == "quit":
            break


if __name__ == "__main__":
    main()
