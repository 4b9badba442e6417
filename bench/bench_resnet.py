"""ResNet-18 on 32x32 images, on the CPU: nnspec against the best hand-written loop, interleaved.

    .venv/bin/python bench/bench_resnet.py [--batch-size 32] [--steps 4] [--rounds 3]

Every contender trains examples/resnet18_cifar.yaml's network (ResNet-18 with the CIFAR stem)
from the same initial weights, on the same resident tensors (random 3x32x32 images, 10 classes),
in the same sample order, with the example's optimizer, for two epochs of ``--steps`` steps;
throughput is samples/s over the second epoch.  The hand-written loops are torchvision's
ResNet-18 with the CIFAR stem, given nnspec's initial weights, so that nnspec and hand/resident
do the same arithmetic (the script checks their final weights).  Contenders:

  hand/resident              data resident, index slicing, eager, contiguous
  hand/channels_last         the same with the model and each batch in channels_last
  nnspec                     `nnspec.run.train`, no metric beyond the loss (the hand loop's work)
  nnspec/as-shipped          the example's own settings (accuracy metric, auto everything)
  nnspec/channels_last       train.memory_format=channels_last
  lightning                  Lightning's Trainer with a shuffling DataLoader over the same
                             tensors, from the same weights (if installed: .[bench])

No contender compiles: on this CPU torch.compile measured 0.93x eager for ResNet-18 after a
first compile of 32-50 s, and nnspec's auto never compiles on the CPU.  Rounds run every
contender in turn, so drift on a shared machine touches all of them; the table gives medians
and ratios to the fastest hand-written loop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from handwritten import EpochClocks, cifar_resnet18, lightning_epoch_speed, lightning_missing_note
from torch import nn

from nnspec import api

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "resnet18_cifar.yaml"
OPTIM = {"lr": 0.02, "momentum": 0.9, "weight_decay": 0.0005, "nesterov": True}  # the example's
FINAL: dict[str, torch.Tensor] = {}  # hand/resident's trained weights
Speed = tuple[float, float]  # samples/s of the timed epoch: by the wall clock, by CPU time


def data(samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(samples, 3, 32, 32, generator=gen), torch.randint(0, 10, (samples,),
                                                                          generator=gen)


def initial_weights() -> dict[str, torch.Tensor]:
    """What nnspec starts from (seed 0, PyTorch's default initialisation, module order)."""
    torch.manual_seed(0)
    model: nn.Module = api.compile(api.load_spec(str(SPEC)))
    return {k: v.clone() for k, v in model.state_dict().items()}


def hand_model(weights: dict[str, torch.Tensor]) -> nn.Module:
    model = cifar_resnet18()
    model.load_state_dict(weights)
    return model


def order(n: int, epoch: int) -> torch.Tensor:
    """nnspec's sample order for seed 0 (batches.epoch_order)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch))


def hand(x: torch.Tensor, y: torch.Tensor, batch: int, weights: dict[str, torch.Tensor],
         channels_last: bool) -> Speed:
    model = hand_model(weights)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), **OPTIM)
    loss_fn = nn.CrossEntropyLoss()
    speed = (0.0, 0.0)
    for epoch in range(2):
        start, cpu = time.perf_counter(), time.thread_time()
        perm = order(len(x), epoch)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb = x[idx].contiguous(memory_format=fmt) if channels_last else x[idx]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), y[idx]).backward()
            opt.step()
        speed = len(x) / (time.perf_counter() - start), len(x) / (time.thread_time() - cpu)
    if not channels_last:
        FINAL.update({k: v.detach().clone() for k, v in model.state_dict().items()})
    return speed


def lightning(x: torch.Tensor, y: torch.Tensor, batch: int,
              weights: dict[str, torch.Tensor]) -> Speed:
    speed = lightning_epoch_speed(hand_model(weights), nn.functional.cross_entropy,
                                  lambda params: torch.optim.SGD(params, **OPTIM), x, y, batch)
    assert speed is not None
    return speed


def nnspec_run(tensors: Path, samples: int, batch: int, extra: list[str]) -> tuple[Speed, str]:
    import nnspec.run

    overrides = [f"data={{dataset: {{Tensors: {{path: {tensors}}}}}, batch_size: {batch}}}",
                 "train.epochs=2", "train.monitor=train.loss",
                 f"optimizer={{SGD: {json.dumps(OPTIM)}}}", "log.tensorboard=false", *extra]
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet, \
            EpochClocks() as clocks:
        nnspec.run.train(SPEC, overrides=overrides, run_dir=Path(tmp) / "run", device="cpu",
                         stream=quiet)
        run = Path(tmp) / "run"
        rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
        path = json.loads((run / "resolved.json").read_text())["run"]["path"]
        weights = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    last = [r for r in rows if r.get("split") == "train"][-1]
    cpu = clocks.epochs[-1][1]
    return (last["samples"] / last["seconds"], last["samples"] / cpu), \
        path + same_weights(weights)


def same_weights(got: dict[str, torch.Tensor]) -> str:
    if not FINAL:
        return ""
    diff = max(float((got[k].double() - v.double()).abs().max()) for k, v in FINAL.items())
    return "; final weights identical to hand/resident's" if diff == 0 else \
        f"; final weights differ from hand/resident's by up to {diff:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="steps per epoch (2 epochs)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="run only these contenders")
    args = parser.parse_args()
    samples = args.batch_size * args.steps
    x, y = data(samples)
    weights = initial_weights()
    print(f"# {platform.node()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, load {os.getloadavg()[0]:.2f}; ResNet-18 (CIFAR stem), "
          f"batch {args.batch_size}, {args.steps} steps timed, median of {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        tensors = Path(tmp) / "data.pt"
        torch.save({"inputs": x, "targets": y}, tensors)
        paths: dict[str, str] = {}

        def spec_run(extra: list[str], name: str) -> Callable[[], Speed]:
            def go() -> Speed:
                speed, paths[name] = nnspec_run(tensors, samples, args.batch_size, extra)
                return speed
            return go

        contenders: dict[str, Callable[[], Speed]] = {
            "hand/resident": lambda: hand(x, y, args.batch_size, weights, False),
            "hand/channels_last": lambda: hand(x, y, args.batch_size, weights, True),
            "nnspec": spec_run(["train.metrics=[]"], "nnspec"),
            "nnspec/as-shipped": spec_run([], "nnspec/as-shipped"),
            "nnspec/channels_last": spec_run(["train.metrics=[]",
                                              "train.memory_format=channels_last"],
                                             "nnspec/channels_last"),
        }
        note = lightning_missing_note()
        if note is None:
            contenders["lightning"] = lambda: lightning(x, y, args.batch_size, weights)
        else:
            print(note)
        if args.only:
            contenders = {k: v for k, v in contenders.items() if k in args.only}
        speeds: dict[str, list[Speed]] = {k: [] for k in contenders}
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                speeds[name].append(fn())
    report(speeds, paths)


def report(speeds: dict[str, list[Speed]], paths: dict[str, str]) -> None:
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in speeds.items()}
    hands = [v for k, v in med.items() if k.startswith("hand")] or [(1.0, 1.0)]
    best = (max(w for w, _ in hands), max(c for _, c in hands))
    print("| contender | samples/s (median) | vs best hand loop | samples per CPU s (median) "
          "| vs best hand loop | rounds, wall/CPU |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (wall, cpu) in med.items():
        rounds = ", ".join(f"{w:.1f}/{c:.1f}" for w, c in speeds[name])
        print(f"| {name} | {wall:.1f} | {wall / best[0]:.2f}x | {cpu:.1f} | "
              f"{cpu / best[1]:.2f}x | {rounds} |")
    if "lightning" in med and "nnspec" in med:
        print(f"nnspec / lightning: {med['nnspec'][0] / med['lightning'][0]:.2f}x wall, "
              f"{med['nnspec'][1] / med['lightning'][1]:.2f}x CPU")
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
