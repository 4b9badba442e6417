"""nnspec's training step against a three-line loop on the same model and batches, alternating.

    NNSPEC_MNIST_DIR=../shared/data/mnist-t10k .venv/bin/python bench/bench_step_ab.py [--flush]

Both contenders update the same model, so any difference is the loop's own overhead; `--flush`
sets torch.set_flush_denormal(True) to show how much of the CPU's slowdown over training is
denormal arithmetic rather than anything either loop does.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from nnspec import api
from nnspec.run import setup
from nnspec.run.metrics import Meter
from nnspec.run.step import Stepper

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("NNSPEC_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist-t10k"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flush", action="store_true", help="flush denormals to zero")
    args = parser.parse_args()
    torch.set_flush_denormal(args.flush)
    spec = api.load_spec(ROOT / "examples" / "lenet_mnist_t10k.yaml", [
        f"data.batch_size={args.batch_size}", f"data.root={DATA}", "train.metrics=[]",
        "optimizer={SGD: {lr: 0.01, momentum: 0.9}}", "train.monitor=val.loss", "init=[]"])
    parts = setup.build(spec, "cpu")
    stepper = Stepper(parts)
    batches = list(parts.batches["train"].epoch(0))
    samples = sum(len(b["target"]) for b in batches)
    model, optimizer, loss_fn = parts.model, parts.optimizer, torch.nn.CrossEntropyLoss()

    def hand() -> None:
        for b in batches:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(b["input"]), b["target"]).backward()
            optimizer.step()

    def nnspec_step() -> None:
        meter = Meter([], spec.loss.name if spec.loss else "", parts.device)
        for i, b in enumerate(batches):
            stepper.train_batch(b, meter, i)

    print(f"| round | hand, samples/s | nnspec Stepper, samples/s |  (flush denormals: "
          f"{args.flush})")
    print("| --- | --- | --- |")
    for r in range(args.rounds):
        speeds = []
        for fn in (hand, nnspec_step):
            start = time.perf_counter()
            fn()
            speeds.append(samples / (time.perf_counter() - start))
        print(f"| {r + 1} | {speeds[0]:,.0f} | {speeds[1]:,.0f} ({speeds[1] / speeds[0]:.2f}x) |")


if __name__ == "__main__":
    main()
