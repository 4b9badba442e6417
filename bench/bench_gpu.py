"""ResNet-18 and a GPT-style transformer on one GPU: nnspec's auto choices against the best
hand-written loops and Lightning's defaults, interleaved (issue 14's GPU targets).

    .venv/bin/python bench/bench_gpu.py --model resnet18 --device cuda [--rounds 2]
    .venv/bin/python bench/bench_gpu.py --model gpt --device cuda
    .venv/bin/python bench/bench_gpu.py --model resnet18 --device cpu --smoke   # a quick check

Every contender trains the same model from the same initial weights on the same resident
random data (ResNet-18 with the CIFAR stem on 3x32x32 images, 10 classes; or
examples/gpt_chars.yaml widened by its vars, on random ids of its 96 characters, 64 a window),
same batch size, epochs and optimizer (SGD with momentum; AdamW for the GPT).  Throughput is
samples/s over the epochs after the first two (which pay for warm-up, compilation and graph
capture; the first epoch's seconds are printed as the contender's start-up).  Contenders:

  hand/fp32             data on the device, index slicing, float32, eager
  hand/bf16             + bf16 autocast (and channels_last for ResNet-18)
  hand/bf16+compile     + torch.compile of the model (the default mode)
  nnspec                `nnspec.run.train`, every setting auto (its choices are printed)
  lightning             Lightning's Trainer with its defaults (float32, a shuffling DataLoader
                        over the device tensors, no logger/checkpoints/progress bar), if installed

Ratios are to the fastest hand-written loop.  Targets: nnspec >= 0.95x the best hand loop and
>= 2x Lightning.  --smoke shrinks everything and skips compilation so that the script's paths
run on a CPU in a minute or two (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from handwritten import GPTChars, cifar_resnet18, lightning_epoch_speed, lightning_missing_note
from torch import Tensor, nn

from nnspec import api

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT / "examples" / "resnet18_cifar.yaml"
GPT = ROOT / "examples" / "gpt_chars.yaml"
GPT_VARS = {"dim": 384, "heads": 6, "layers": 6}  # 10.7 M parameters: auto picks bf16
SGD = {"lr": 0.02, "momentum": 0.9}
ADAMW = {"lr": 0.0003, "weight_decay": 0.01}


class Work:
    """One workload: its model, data, loss, optimizer and nnspec's overrides."""

    def __init__(self, model: str, device: torch.device, batch: int, steps: int,
                 smoke: bool) -> None:
        self.name, self.device, self.batch = model, device, batch
        self.gpt = model == "gpt"
        self.vars = {"dim": 32, "heads": 2, "layers": 1} if smoke and self.gpt else GPT_VARS
        n = batch * steps
        gen = torch.Generator().manual_seed(1)
        if self.gpt:
            self.x = torch.randint(0, 96, (n, 64), generator=gen)
            self.y = torch.randint(0, 96, (n, 64), generator=gen)
        else:
            self.x = torch.randn(n, 3, 32, 32, generator=gen)
            self.y = torch.randint(0, 10, (n,), generator=gen)
        self.spec = GPT if self.gpt else RESNET
        self.var_overrides = [f"vars.{k}={v}" for k, v in self.vars.items()] if self.gpt else []
        torch.manual_seed(0)
        built = api.compile(api.load_spec(str(self.spec), self.var_overrides))
        self.weights = {k: v.clone() for k, v in built.state_dict().items()}

    def model(self) -> nn.Module:
        model = GPTChars(**self.vars) if self.gpt else cifar_resnet18()
        model.load_state_dict(self.weights)
        return model

    def loss(self, out: Tensor, target: Tensor) -> Tensor:
        if self.gpt:
            out = out.permute(0, 2, 1)
        return nn.functional.cross_entropy(out, target)

    def optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        if self.gpt:
            return torch.optim.AdamW(params, **ADAMW)  # type: ignore[arg-type]
        return torch.optim.SGD(params, **SGD)  # type: ignore[arg-type]

    def nnspec_overrides(self, data: Path, epochs: int) -> list[str]:
        optim = f"{{AdamW: {json.dumps(ADAMW)}}}" if self.gpt else f"{{SGD: {json.dumps(SGD)}}}"
        return [*self.var_overrides,
                f"data={{dataset: {{Tensors: {{path: {data}}}}}, batch_size: {self.batch}}}",
                f"train.epochs={epochs}", "train.monitor=train.loss", "train.metrics=[]",
                "train.grad_clip=null", f"optimizer={optim}", "log.tensorboard=false"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand(work: Work, epochs: int, bf16: bool, compiled: bool) -> tuple[float, float]:
    """(samples/s after two epochs, the first epoch's seconds) of a hand-written loop."""
    device = work.device
    model = work.model().to(device)
    fmt = torch.channels_last if bf16 and not work.gpt else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = work.optimizer(model.parameters())
    runner: Callable[[Tensor], Tensor] = torch.compile(model) if compiled else model
    x, y = work.x.to(device), work.y.to(device)
    if fmt is torch.channels_last:
        x = x.contiguous(memory_format=fmt)

    def autocast() -> AbstractContextManager[object]:
        return torch.autocast(device.type, torch.bfloat16) if bf16 else nullcontext()

    times = [time.perf_counter()]
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=torch.Generator(device).manual_seed(epoch),
                              device=device)
        for i in range(0, len(x), work.batch):
            idx = perm[i:i + work.batch]
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = work.loss(runner(x[idx]), y[idx])
            loss.backward()
            opt.step()
        sync(device)
        times.append(time.perf_counter())
    return len(x) * (epochs - 2) / (times[-1] - times[2]), times[1] - times[0]


def nnspec_run(work: Work, data: Path, epochs: int) -> tuple[float, float, str]:
    import nnspec.run

    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        nnspec.run.train(work.spec, overrides=work.nnspec_overrides(data, epochs),
                         run_dir=Path(tmp) / "run", device=str(work.device), stream=quiet)
        run = Path(tmp) / "run"
        rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
        path = json.loads((run / "resolved.json").read_text())["run"]["path"]
    train = [r for r in rows if r.get("split") == "train"]
    timed = train[2:]
    speed = sum(r["samples"] for r in timed) / sum(r["seconds"] for r in timed)
    return speed, train[0]["seconds"], path


def lightning(work: Work, epochs: int) -> tuple[float, float]:
    accelerator = "gpu" if work.device.type == "cuda" else "cpu"
    speed = lightning_epoch_speed(work.model(), work.loss, work.optimizer,
                                  work.x, work.y, work.batch,
                                  epochs, accelerator=accelerator)
    assert speed is not None
    return speed[0], float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["resnet18", "gpt"], default="resnet18")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int, help="steps per epoch")
    parser.add_argument("--epochs", type=int, help="at least 3; nnspec compiles (auto) from "
                        "500 steps in all")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no compile (CPU check)")
    parser.add_argument("--only", nargs="+", help="run only these contenders")
    args = parser.parse_args()
    device = torch.device(args.device)
    batch = args.batch_size or (8 if args.smoke else 256 if args.model == "resnet18" else 64)
    steps = args.steps or (2 if args.smoke else 100)
    epochs = args.epochs or (3 if args.smoke else 6)
    work = Work(args.model, device, batch, steps, args.smoke)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    print(f"# {platform.node()} {gpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load {os.getloadavg()[0]:.2f}; {args.model}, batch {batch}, {steps} steps x "
          f"{epochs} epochs ({steps * epochs} steps: nnspec's auto compiles from 500), "
          f"last {epochs - 2} timed, median of {args.rounds} rounds")
    contenders: dict[str, Callable[[], tuple[float, float]]] = {
        "hand/fp32": lambda: hand(work, epochs, False, False),
        "hand/bf16": lambda: hand(work, epochs, True, False),
    }
    if not args.smoke:
        contenders["hand/bf16+compile"] = lambda: hand(work, epochs, True, True)
    paths: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.pt"
        torch.save({"inputs": work.x, "targets": work.y}, data)

        def spec_run() -> tuple[float, float]:
            speed, first, paths["nnspec"] = nnspec_run(work, data, epochs)
            return speed, first

        contenders["nnspec"] = spec_run
        note = lightning_missing_note()
        if note is None:
            contenders["lightning"] = lambda: lightning(work, epochs)
        else:
            print(note)
        if args.only:
            contenders = {k: v for k, v in contenders.items() if k in args.only}
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                results[name].append(fn())
                speed, first = results[name][-1]  # as it goes: a part cut short keeps these
                print(f"# {name}: {speed:,.0f} samples/s, first epoch {first:.1f} s", flush=True)
    report(results, paths)


def report(results: dict[str, list[tuple[float, float]]], paths: dict[str, str]) -> None:
    speed = {k: statistics.median(s for s, _ in v) for k, v in results.items()}
    best = max((v for k, v in speed.items() if k.startswith("hand")), default=1.0)
    print("| contender | samples/s (median) | vs best hand loop | first epoch, s | rounds |")
    print("| --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        first = statistics.median(f for _, f in rows)
        rounds = ", ".join(f"{s:,.0f}" for s, _ in rows)
        print(f"| {name} | {speed[name]:,.0f} | {speed[name] / best:.2f}x | {first:.1f} | "
              f"{rounds} |")
    if "nnspec" in speed and "lightning" in speed:
        print(f"nnspec / lightning: {speed['nnspec'] / speed['lightning']:.2f}x")
    for name, path in paths.items():
        print(f"{name} chose: {path}")
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
