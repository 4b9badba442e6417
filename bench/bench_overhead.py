"""What nnspec's training loop adds to each step, in microseconds, against a hand-written loop.

    .venv/bin/python bench/bench_overhead.py [--rounds 5] [--batch-size 8]

Throughput on a 2-core shared machine moves by 5-10% from run to run, more than the loop's own
cost, so this script measures that cost directly: both loops train a one-layer model (a step of
about 80 us, nearly all of it fixed per-step work) on the same 8,000 random samples in the same
order, and the difference of their per-step times is what nnspec adds (its progress, metric and
non-finite bookkeeping, the loss plan, the batch dictionary).  Rounds alternate; medians.  The
last line relates that cost to a LeNet-5 step measured in the same process.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import nnspec.run

SAMPLES = 8000
SPEC = """nnspec: 1
name: tiny
input: [4]
model: [{Linear: {out_features: 2}}]
data:
  dataset: {Tensors: {path: DATA}}
  batch_size: 8
loss: CrossEntropyLoss
optimizer: {SGD: {lr: 0.01}}
train: {epochs: 3, metrics: [], monitor: train.loss}
log: {tensorboard: false}
"""


def hand(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int = 3) -> float:
    """Seconds per step over the epochs after the first: the loop a user writes."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return sum(seconds[1:]) / ((epochs - 1) * -(-len(x) // batch))


def with_nnspec(folder: Path, batch: int) -> float:
    """Seconds per step of `nnspec.train` over the same epochs, from its metrics.jsonl."""
    with tempfile.TemporaryDirectory() as tmp:
        nnspec.run.train(folder / "tiny.yaml", overrides=[f"data.batch_size={batch}"],
                         run_dir=Path(tmp) / "run", device="cpu", stream=io.StringIO())
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").open()]
    train = [r for r in rows if r["split"] == "train"][1:]
    return sum(r["seconds"] for r in train) / (len(train) * -(-SAMPLES // batch))


def lenet_step(batch: int, repeats: int = 50) -> float:
    """Seconds of one LeNet-5 training step at ``batch`` on random digits, for scale."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[5:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(1)
    x, y = torch.randn(SAMPLES, 4), torch.randint(0, 2, (SAMPLES,))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        torch.save({"inputs": x, "targets": y}, folder / "data.pt")
        (folder / "tiny.yaml").write_text(SPEC.replace("DATA", str(folder / "data.pt")))
        print("| round | hand loop, us/step | nnspec train, us/step | nnspec adds, us/step |")
        print("| --- | --- | --- | --- |")
        added = []
        for r in range(args.rounds):
            h, n = hand(x, y, args.batch_size), with_nnspec(folder, args.batch_size)
            added.append((n - h) * 1e6)
            print(f"| {r + 1} | {h * 1e6:.1f} | {n * 1e6:.1f} | {added[-1]:.1f} |")
    median = statistics.median(added)
    print(f"median: nnspec adds {median:.1f} us per step")
    for batch in (64, 512):
        step = lenet_step(batch) * 1e6
        print(f"LeNet-5 step at batch {batch}: {step:,.0f} us; with nnspec's {median:.1f} us: "
              f"{step / (step + median):.3f}x the hand loop's throughput")


if __name__ == "__main__":
    main()
