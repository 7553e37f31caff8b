"""The Nature CNN's three convolutions one at a time, rlkit against PyTorch CPU.

    python scripts/bench_conv_layers.py [--batch 32] [--threads 2] [--rounds 3]
                                        [--out results/bench/conv-layers.json]

bench_core.py times whole updates; this says which layer the difference comes from. Each
layer is timed twice on float32 input: a forward under no_grad (acting, target networks,
Double DQN's online pass on s'), and a forward + backward of the output's sum (the first layer
without an input gradient, as on data; the others with one). The second and third layers get
their input in the memory layout their own framework's network hands them: channels last
for rlkit (its convolutions' outputs are NCHW views of NHWC memory), NCHW for PyTorch. Each
framework runs in a child process of its own with the same thread count, alternating for
``--rounds`` rounds; a time is the lowest round's median milliseconds per call (bench_core's
timing). Prints a table and writes JSON with the CPU model.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from _bench_core_worker import time_step
from bench_core import alternate_children, cpu_line, cpu_model, write_report

# name -> (in channels, out channels, kernel, stride, input side)
LAYERS = {"conv1 8x8/4, 4 -> 32": (4, 32, 8, 4, 84),
          "conv2 4x4/2, 32 -> 64": (32, 64, 4, 2, 20),
          "conv3 3x3/1, 64 -> 64": (64, 64, 3, 1, 9)}


def layer_calls(framework: str, spec, batch: int, rng):
    """(no_grad forward, forward + backward) of one layer as zero-argument calls."""
    c, o, k, s, side = spec
    x = rng.random((batch, c, side, side), np.float32)
    input_grad = c != 4  # the first layer sees data, which needs no gradient
    if framework == "torch":
        import torch
        conv, data = torch.nn.Conv2d(c, o, k, s), torch.from_numpy(x)
        leaf = data.clone().requires_grad_(input_grad)
        no_grad = torch.no_grad
    else:
        import rlkit.nn as nn
        from rlkit.tensor import Tensor, no_grad
        if input_grad:  # as the convolution before leaves it
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        conv, data = nn.Conv2d(c, o, k, s), Tensor(x)
        leaf = Tensor(x.copy(order="K"), requires_grad=input_grad)

    def forward():
        with no_grad():
            conv(data)

    def forward_backward():
        conv.zero_grad()
        conv(leaf).sum().backward()
    return forward, forward_backward


def worker(framework: str, batch: int, threads: int, repeats: int) -> None:
    """Child process: print one JSON line {layer: [forward ms, forward + backward ms]}."""
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    times = {}
    for name, spec in LAYERS.items():
        forward, forward_backward = layer_calls(framework, spec, batch, rng)
        times[name] = [time_step(call, repeats, warmup=3)["median_ms"]
                       for call in (forward, forward_backward)]
    print(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7, help="timed samples per layer and round")
    parser.add_argument("--frameworks", default="rlkit,torch", help="comma-separated")
    parser.add_argument("--out", default="results/bench/conv-layers.json")
    parser.add_argument("--worker", choices=("rlkit", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.batch, args.threads, args.repeats)
        return
    frameworks = args.frameworks.split(",")
    rounds = alternate_children(__file__, frameworks, args.rounds, args.threads, lambda framework: [
        "--worker", framework, "--batch", str(args.batch), "--threads", str(args.threads),
        "--repeats", str(args.repeats)])
    best = {framework: {name: [min(r[name][i] for r in reports) for i in range(2)] for name in LAYERS}
            for framework, reports in rounds.items()}
    print(f"{cpu_line(cpu_model())}; threads: {args.threads}; batch {args.batch}; ms per call")
    header = f"{'layer':24}" + "".join(f" {f + ' fwd':>11} {f + ' f+b':>11}" for f in frameworks)
    print(header + ("   fwd ratio   f+b ratio" if frameworks == ["rlkit", "torch"] else ""))
    for name in LAYERS:
        line = f"{name:24}" + "".join(f" {best[f][name][0]:11.2f} {best[f][name][1]:11.2f}" for f in frameworks)
        if frameworks == ["rlkit", "torch"]:
            line += "".join(f" {best['rlkit'][name][i] / best['torch'][name][i]:11.2f}" for i in range(2))
        print(line)
    write_report(args.out, {"batch": args.batch, "best_ms_forward_and_forward_backward": best,
                            "rounds": rounds}, args.threads)


if __name__ == "__main__":
    main()
