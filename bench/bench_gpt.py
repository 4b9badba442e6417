"""The GPT-style character model: nnspec against a hand-written loop and Lightning, interleaved.

    .venv/bin/python bench/bench_gpt.py [--rounds 3] [--epochs 2] [--batch-size 32]

Every contender trains examples/gpt_chars.yaml's model (2 pre-norm decoder blocks of causal
self-attention, width 64, 4 heads, a head tied to the token embedding) on the same windows of
examples/data/public_domain.txt (64 characters, stride 16, the spec's vocabulary), with the
spec's AdamW and gradient clipping, at the same batch size and sequence length, from the same
initial weights, on every window (no validation split: `data.val_split=0` for nnspec, so that
its epochs hold only training).  Throughput is over the last epoch (the first pays for
warm-up), by the wall clock and by the main thread's CPU time (which other jobs on a shared
machine disturb far less); samples/s and steps/s give the same ratio, the batch being the same.
Contenders:

  hand/resident   handwritten.GPTChars (the spec's model written in PyTorch, nnspec's initial
                  weights), the windows resident, nnspec's sample order
  nnspec          `nnspec.run.train` of the spec as it ships (no metric but the loss),
                  without its validation split, TensorBoard off
  lightning       Lightning's Trainer with a shuffling DataLoader (if installed: .[bench])

nnspec and hand/resident do the same arithmetic; the script compares their final weights.
Rounds run every contender in turn; the table gives medians and ratios to the hand loop.
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
from handwritten import (
    EpochClocks,
    GPTChars,
    char_blocks,
    lightning_epoch_speed,
    lightning_missing_note,
)
from torch import Tensor, nn

from nnspec import api

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "gpt_chars.yaml"
LR, WEIGHT_DECAY, CLIP = 0.003, 0.01, 1.0  # the spec's
FINAL: dict[str, Tensor] = {}  # hand/resident's trained weights
Speed = tuple[float, float]  # samples/s of the timed epoch: by the wall clock, by CPU time


def initial_weights() -> dict[str, Tensor]:
    """What nnspec starts from (seed 0, the spec's init, module order)."""
    torch.manual_seed(0)
    model: nn.Module = api.compile(api.load_spec(str(SPEC)))
    return {k: v.clone() for k, v in model.state_dict().items()}


def loss_fn(out: Tensor, target: Tensor) -> Tensor:
    return nn.functional.cross_entropy(out.permute(0, 2, 1), target)


def model_from(weights: dict[str, Tensor]) -> nn.Module:
    model = GPTChars()
    model.load_state_dict(weights)
    return model


def optimizer(params: object) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY)  # type: ignore[arg-type]


def hand(x: Tensor, y: Tensor, batch: int, epochs: int, weights: dict[str, Tensor]) -> Speed:
    model = model_from(weights)
    opt = optimizer(model.parameters())
    speed = (0.0, 0.0)
    for epoch in range(epochs):
        start, cpu = time.perf_counter(), time.thread_time()
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))  # seed 0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
        speed = len(x) / (time.perf_counter() - start), len(x) / (time.thread_time() - cpu)
    FINAL.update({k: v.detach().clone() for k, v in model.state_dict().items()})
    return speed


def nnspec_run(batch: int, epochs: int) -> tuple[Speed, str]:
    import nnspec.run

    overrides = [f"data.batch_size={batch}", f"train.epochs={epochs}", "log.tensorboard=false",
                 f"data.dataset.TextChars.path={ROOT / 'examples' / 'data' / 'public_domain.txt'}",
                 "data.val_split=0", "train.monitor=train.loss"]  # no validation pass
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet, \
            EpochClocks() as clocks:
        nnspec.run.train(SPEC, overrides=overrides, run_dir=Path(tmp) / "run", device="cpu",
                         stream=quiet)
        run = Path(tmp) / "run"
        rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
        path = json.loads((run / "resolved.json").read_text())["run"]["path"]
        weights = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    last = [r for r in rows if r.get("split") == "train"][-1]
    return (last["samples"] / last["seconds"], last["samples"] / clocks.epochs[-1][1]), \
        path + same_weights(weights)


def same_weights(got: dict[str, Tensor]) -> str:
    if not FINAL:
        return ""
    diff = max(float((got[k].double() - v.double()).abs().max()) for k, v in FINAL.items())
    return "; final weights identical to hand/resident's" if diff == 0 else \
        f"; final weights differ from hand/resident's by up to {diff:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="run only these contenders")
    args = parser.parse_args()
    x, y = char_blocks()
    weights = initial_weights()
    steps = -(-len(x) // args.batch_size)
    print(f"# {platform.node()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, load {os.getloadavg()[0]:.2f}; gpt_chars, "
          f"{len(x)} training windows of 64, batch {args.batch_size} ({steps} steps an epoch), "
          f"last of {args.epochs} epochs timed, median of {args.rounds} rounds")
    note = lightning_missing_note()
    paths: dict[str, str] = {}

    def spec_run() -> Speed:
        speed, paths["nnspec"] = nnspec_run(args.batch_size, args.epochs)
        return speed

    def light() -> Speed:
        got = lightning_epoch_speed(model_from(weights), loss_fn, optimizer, x, y,
                                    args.batch_size, args.epochs, clip=CLIP)
        assert got is not None
        return got

    contenders: dict[str, Callable[[], Speed]] = {
        "hand/resident": lambda: hand(x, y, args.batch_size, args.epochs, weights),
        "nnspec": spec_run,
    }
    if note is None:
        contenders["lightning"] = light
    else:
        print(note)
    if args.only:
        contenders = {k: v for k, v in contenders.items() if k in args.only}
    speeds: dict[str, list[Speed]] = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            speeds[name].append(fn())
    report(speeds, paths, args.batch_size)


def report(speeds: dict[str, list[Speed]], paths: dict[str, str], batch: int) -> None:
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in speeds.items()}
    base = med.get("hand/resident", (1.0, 1.0))
    print("| contender | samples/s (median) | steps/s | vs hand loop | samples per CPU s "
          "(median) | vs hand loop | rounds, wall/CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (wall, cpu) in med.items():
        rounds = ", ".join(f"{w:,.0f}/{c:,.0f}" for w, c in speeds[name])
        print(f"| {name} | {wall:,.0f} | {wall / batch:.1f} | {wall / base[0]:.2f}x | "
              f"{cpu:,.0f} | {cpu / base[1]:.2f}x | {rounds} |")
    if "lightning" in med and "nnspec" in med:
        print(f"nnspec / lightning: {med['nnspec'][0] / med['lightning'][0]:.2f}x wall, "
              f"{med['nnspec'][1] / med['lightning'][1]:.2f}x CPU")
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
