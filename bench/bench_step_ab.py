"""nnspec's training step against a three-line loop on the same model and batches, alternating.

    NNSPEC_MNIST_DIR=../shared/data/mnist-t10k .venv/bin/python bench/bench_step_ab.py \
        [--flush] [--as-shipped] [--batch-size 64] [--spec resnet18 --samples 128]

Both contenders update the same model, so any difference is the loop's own overhead; `--flush`
sets torch.set_flush_denormal(True) to show how much of the CPU's slowdown over training is
denormal arithmetic rather than anything either loop does.  `--as-shipped` keeps the example's
own settings (kaiming initialisation, Adam, the accuracy metric), and the hand loop does that
work too (the number of correct predictions summed on the device).  Besides samples/s of the
wall clock, each row gives the ratio of the process's CPU time per step, which a machine loaded
by other jobs disturbs far less than the wall clock.

`--spec resnet18` runs examples/resnet18_cifar.yaml instead (offline: the digits stand-in, its
first ``--samples`` images); as shipped it adds only the accuracy metric (its optimizer and
initialisation are what the same-work run uses too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    parser.add_argument("--as-shipped", action="store_true",
                        help="the example's own init, optimizer and accuracy metric")
    parser.add_argument("--spec", choices=["lenet", "resnet18"], default="lenet")
    parser.add_argument("--samples", type=int, default=128, help="resnet18: images an epoch")
    parser.add_argument("--per-batch", action="store_true",
                        help="alternate every batch (hand, nnspec, hand, ...), not every round")
    args = parser.parse_args()
    torch.set_flush_denormal(args.flush)
    if args.spec == "lenet":
        same_work = [] if args.as_shipped else [
            "train.metrics=[]", "optimizer={SGD: {lr: 0.01, momentum: 0.9}}",
            "train.monitor=val.loss", "init=[]"]
        spec = api.load_spec(ROOT / "examples" / "lenet_mnist_t10k.yaml", [
            f"data.batch_size={args.batch_size}", f"data.root={DATA}", *same_work])
    else:  # CIFAR-10 is not at this root: the digits stand-in
        same_work = [] if args.as_shipped else ["train.metrics=[]", "train.monitor=val.loss"]
        spec = api.load_spec(ROOT / "examples" / "resnet18_cifar.yaml", [
            f"data.batch_size={args.batch_size}", f"data.root={ROOT / 'no-cifar-here'}",
            f"data.fallback.train.range=[0, {args.samples}]", *same_work])
    parts = setup.build(spec, "cpu")
    stepper = Stepper(parts)
    batches = list(parts.batches["train"].epoch(0))
    samples = sum(len(b["target"]) for b in batches)
    model, optimizer, loss_fn = parts.model, parts.optimizer, torch.nn.CrossEntropyLoss()

    metric = bool(spec.train.metrics)

    correct = torch.zeros((), dtype=torch.long)

    def hand_step(b: dict[str, torch.Tensor]) -> None:
        optimizer.zero_grad(set_to_none=True)
        out = model(b["input"])
        loss_fn(out, b["target"]).backward()
        optimizer.step()
        if metric:
            correct.add_((out.detach().argmax(1) == b["target"]).sum())

    def hand() -> None:
        for b in batches:
            hand_step(b)

    def nnspec_step() -> None:
        meter = Meter(spec.train.metrics, spec.loss.name if spec.loss else "", parts.device)
        for i, b in enumerate(batches):
            stepper.train_batch(b, meter, i)
        meter.read()

    if args.per_batch:
        per_batch(batches, hand_step, stepper, Meter(spec.train.metrics, spec.loss.name
                                                      if spec.loss else "", parts.device),
                  args.rounds)
        return

    print(f"# {spec.name}, load {os.getloadavg()[0]:.2f}, {torch.get_num_threads()} threads, batch "
          f"{args.batch_size}, {'as shipped' if args.as_shipped else 'same work as the hand loop'}"
          f", flush denormals: {args.flush}")
    print("| round | hand, samples/s | nnspec Stepper, samples/s | CPU time per step, "
          "nnspec / hand |")
    print("| --- | --- | --- | --- |")
    ratios: list[float] = []
    for r in range(args.rounds):
        speeds, cpu = [], []
        for fn in (hand, nnspec_step):
            start, used = time.perf_counter(), time.process_time()
            fn()
            cpu.append(time.process_time() - used)
            speeds.append(samples / (time.perf_counter() - start))
        ratios.append(cpu[1] / cpu[0])
        print(f"| {r + 1} | {speeds[0]:,.0f} | {speeds[1]:,.0f} ({speeds[1] / speeds[0]:.2f}x) "
              f"| {ratios[-1]:.3f} |")
    print(f"median CPU time ratio {statistics.median(ratios):.3f}: nnspec at "
          f"{1 / statistics.median(ratios):.2f}x the hand loop's speed; load after "
          f"{os.getloadavg()[0]:.2f}")


def per_batch(batches: list[dict[str, torch.Tensor]], hand_step: Callable[[Any], None],
              stepper: Stepper, meter: Meter, rounds: int) -> None:
    """Hand step, nnspec step, next batch (which goes first alternates): each pair runs under
    the same load; the main thread's CPU time summed per contender, per round and overall."""
    print(f"# per batch, {len(batches)} pairs a round, load {os.getloadavg()[0]:.2f}")
    print("| round | hand, CPU s | nnspec, CPU s | nnspec / hand |")
    print("| --- | --- | --- | --- |")
    totals = [0.0, 0.0]
    for r in range(rounds):
        used = [0.0, 0.0]
        for i, b in enumerate(batches):
            for k in ((1, 0) if (i + r) % 2 else (0, 1)):  # each goes first half the time
                t = time.thread_time()
                if k == 0:
                    hand_step(b)
                else:
                    stepper.train_batch(b, meter, i)
                used[k] += time.thread_time() - t
        meter.read()
        totals = [totals[0] + used[0], totals[1] + used[1]]
        print(f"| {r + 1} | {used[0]:.2f} | {used[1]:.2f} | {used[1] / used[0]:.3f} |")
    print(f"all rounds: nnspec / hand CPU time {totals[1] / totals[0]:.3f}: nnspec at "
          f"{totals[0] / totals[1]:.2f}x the hand loop's speed; load after "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
