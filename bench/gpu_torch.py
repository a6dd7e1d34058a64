#!/usr/bin/env python3
"""PyTorch side of bench/gpu.mjs: times the GPU table's cases with CUDA events, same shapes, same run.

usage: python3 bench/gpu_torch.py CASES_JSON [--device cuda|cpu] [--min-ms 25]
CASES_JSON: [{"id", "op", "shape", ...}]; prints one JSON object per case on stdout:
  {"id", "fwd_ms", "fwdbwd_ms"}  (median per call over trials) or {"id", "error"}.
Switchable Norm is the official code (switchablenorms/Switchable-Normalization, devkit/ops/switchable_norm.py,
SwitchNorm2d), composed from PyTorch ops, as in ../shared/anchors/PERFORMANCE.md.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn


from switchnorm_ref import SwitchNorm2d  # the official code, shared by the benchmarks


def build(case):
    op, shape = case["op"], case["shape"]
    if op == "batch_norm":
        return {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[len(shape)](shape[1])
    if op == "instance_norm":
        return {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}[len(shape)](shape[1])
    if op == "group_norm":
        return nn.GroupNorm(case["groups"], shape[1])
    if op == "layer_norm":
        return nn.LayerNorm(shape[-1])
    if op == "rms_norm":
        return nn.RMSNorm(shape[-1])
    if op == "switchable_norm":
        return SwitchNorm2d(shape[1])
    if op == "linear":
        return nn.Linear(shape[1], shape[1])
    if op == "conv2d":
        return nn.Conv2d(shape[1], shape[1], 3, padding=1)
    if op == "relu":
        return nn.ReLU()
    if op == "maxpool":
        return nn.MaxPool2d(2)
    raise ValueError(f"unknown op {op}")


def timer(device):
    if device == "cuda":
        def run(fn, reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(reps):
                fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / reps
    else:
        def run(fn, reps):
            t = time.perf_counter()
            for _ in range(reps):
                fn()
            return (time.perf_counter() - t) * 1e3 / reps
    return run


def measure(fn, run, min_ms, trials=7):
    for _ in range(3):
        fn()
    one = max(run(fn, 3), 1e-4)
    reps = int(min(5000, max(5, min_ms / one)))
    return statistics.median(run(fn, reps) for _ in range(trials))


def lab_cnn():
    """The lab's CNN (src/lab/models.ts) with BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def train_cnn(batch, device, run, min_ms):
    """One training step of the lab's CNN: forward, cross-entropy, backward, SGD (momentum 0.9, wd 1e-4)."""
    m = lab_cnn().to(device).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.arange(batch, device=device) % 10
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=False)
        loss_fn(m(x), y).backward()
        opt.step()

    return measure(step, run, min_ms)


def main():
    args = sys.argv[1:]
    cases = json.loads(args[0])
    device = args[args.index("--device") + 1] if "--device" in args else ("cuda" if torch.cuda.is_available() else "cpu")
    min_ms = float(args[args.index("--min-ms") + 1]) if "--min-ms" in args else 25.0
    run = timer(device)
    print(json.dumps({"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu"}), flush=True)
    if "--train-cnn" in args:
        try:
            print(json.dumps({"id": "cnn_step", "step_ms": train_cnn(int(args[args.index("--train-cnn") + 1]), device, run, min_ms)}), flush=True)
        except Exception as e:
            print(json.dumps({"id": "cnn_step", "error": f"{type(e).__name__}: {e}"}), flush=True)
    for case in cases:
        try:
            m = build(case).to(device).train()
            x = torch.randn(*case["shape"], device=device)
            with torch.no_grad():
                dy = torch.randn_like(m(x))  # the output's shape
            with torch.no_grad():
                fwd = measure(lambda: m(x), run, min_ms)
            xg = x.clone().requires_grad_(True)  # (ReLU / MaxPool have no parameters: dx is the backward)

            def step():
                y = m(xg)
                y.backward(dy)

            fb = measure(step, run, min_ms)
            print(json.dumps({"id": case["id"], "fwd_ms": fwd, "fwdbwd_ms": fb}), flush=True)
            del m, x, dy, xg
            if device == "cuda":
                torch.cuda.empty_cache()
        except Exception as e:  # one case failing (e.g. out of memory) must not lose the others
            print(json.dumps({"id": case["id"], "error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
