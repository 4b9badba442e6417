"""Training throughput, side by side in one run: nnspec against the loops people write by hand.

    .venv/bin/python bench/bench_train.py [--batch-sizes 64 512] [--epochs 3] [--device auto]

Every contender trains the same LeNet-5 on the same data (MNIST t10k, first 8,000 images,
scaled to [0, 1] as the spec's transforms do) with the same batch size, epochs, seed, SGD
settings and, except Lightning, the same sample order, so that on the CPU nnspec and
hand/resident do the same arithmetic (the script checks their final weights).  Throughput is
samples/s over the epochs after the first (the first pays for warm-up, graph capture and
compilation); the table prints each contender's figure and its ratio to the fastest
hand-written loop.  Contenders:

  nnspec             `nnspec.train` of examples/lenet_mnist_t10k.yaml, default settings
  hand/dataloader    a DataLoader over tensors (pinned on CUDA)
  hand/resident      data resident on the device, batches by index slicing
  hand/cuda-graph    the whole step captured as one CUDA graph (CUDA only)
  lightning          PyTorch Lightning's Trainer with a DataLoader (if installed: .[bench])

With --as-shipped, two more: the example exactly as it ships (kaiming initialisation, Adam,
the accuracy metric) run by nnspec, and the hand-written resident loop doing that same work
(the same initialisation, optimizer and order, accuracy summed on the device each step);
their weights are compared, and their ratio is printed beside the plain loop's.

A second part (--startup) measures, in fresh processes, the time from launch to the first
finished step and the peak memory of `nnspec train` against an equivalent hand-written script.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("NNSPEC_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist-t10k"))
SPEC = ROOT / "examples" / "lenet_mnist_t10k.yaml"
TRAIN = 8000
LR, MOMENTUM = 0.01, 0.9
FINAL: dict[int, dict[str, torch.Tensor]] = {}  # hand/resident's trained weights, per batch size


def load_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    with gzip.open(DATA / "t10k-images-idx3-ubyte.gz") as fh:
        images = fh.read()
    with gzip.open(DATA / "t10k-labels-idx1-ubyte.gz") as fh:
        labels = fh.read()
    x = np.frombuffer(images, np.uint8, offset=16).reshape(-1, 1, 28, 28)[:TRAIN]
    y = np.frombuffer(labels, np.uint8, offset=8)[:TRAIN]
    # what the spec's transforms give (ToImage, then ToDtype with scale, as torchvision does it)
    return torch.from_numpy(x.copy()).float().mul_(1.0 / 255), torch.from_numpy(y.astype(np.int64))


def epoch_order(n: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The sample order nnspec draws for seed 0, so that every loop does the same arithmetic.

    On the CPU the speed of a step drifts as values reach the denormal range, at a pace set by
    the trajectory; with the same data, initialisation and order, nnspec and the hand loops
    follow one trajectory and their ratio measures only what each loop adds.
    """
    return torch.randperm(n, generator=torch.Generator(device).manual_seed(epoch), device=device)


def lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_epochs(device: torch.device, epochs: int, run_epoch: Callable[[], int]) -> float:
    """Samples/s over every epoch but the first."""
    run_epoch()
    sync(device)
    start, samples = time.perf_counter(), 0
    for _ in range(epochs - 1):
        samples += run_epoch()
    sync(device)
    return samples / (time.perf_counter() - start)


def hand_dataloader(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int,
                    device: torch.device) -> float:
    torch.manual_seed(0)
    model = lenet().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                         batch_size=batch, shuffle=True, generator=order,
                                         pin_memory=device.type == "cuda")
    done = [0]

    def epoch() -> int:
        order.manual_seed(done[0])  # the order of epoch_order on the CPU
        done[0] += 1
        for xb, yb in loader:
            xb = xb.to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            opt.step()
        return len(x)

    return timed_epochs(device, epochs, epoch)


def hand_resident(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int,
                  device: torch.device) -> float:
    torch.manual_seed(0)
    model = lenet().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    xd, yd = x.to(device), y.to(device)
    done = [0]

    def epoch() -> int:
        order = epoch_order(len(xd), done[0], device)
        done[0] += 1
        for i in range(0, len(xd), batch):
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xd[idx]), yd[idx]).backward()
            opt.step()
        return len(xd)

    speed = timed_epochs(device, epochs, epoch)
    FINAL[batch] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return speed


def hand_as_shipped(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int,
                    device: torch.device) -> float:
    """hand/resident doing the example's own work: kaiming initialisation, Adam(lr=0.002) and
    the number of correct predictions summed on the device (read once per epoch)."""
    torch.manual_seed(0)
    model = lenet()
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    loss_fn = nn.CrossEntropyLoss()
    xd, yd = x.to(device), y.to(device)
    done = [0]

    def epoch() -> int:
        order = epoch_order(len(xd), done[0], device)
        done[0] += 1
        correct = torch.zeros((), dtype=torch.long, device=device)
        for i in range(0, len(xd), batch):
            idx = order[i:i + batch]
            xb, yb = xd[idx], yd[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss_fn(out, yb).backward()
            opt.step()
            correct += (out.detach().argmax(1) == yb).sum()
        correct.item()
        return len(xd)

    speed = timed_epochs(device, epochs, epoch)
    FINAL[-batch] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return speed


def hand_cuda_graph(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int,
                    device: torch.device) -> float:
    """The whole step (forward, backward, optimizer) captured once and replayed."""
    torch.manual_seed(0)
    model = lenet().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)  # lr baked into the graph
    loss_fn = nn.CrossEntropyLoss()
    xd, yd = x.to(device), y.to(device)
    steps = len(xd) // batch  # static shapes: the last partial batch is dropped
    static_x, static_y = xd[:batch].clone(), yd[:batch].clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(static_x), static_y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = loss_fn(model(static_x), static_y)
        loss.backward()
        opt.step()

    done = [0]

    def epoch() -> int:
        order = epoch_order(len(xd), done[0], device)
        done[0] += 1
        for i in range(steps):
            idx = order[i * batch:(i + 1) * batch]
            torch.index_select(xd, 0, idx, out=static_x)
            torch.index_select(yd, 0, idx, out=static_y)
            graph.replay()
        return steps * batch

    return timed_epochs(device, epochs, epoch)


def lightning(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int,
              device: torch.device) -> float | None:
    try:
        import lightning as L
    except ImportError:
        return None

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = lenet()
            self.loss_fn = nn.CrossEntropyLoss()

        def training_step(self, b: tuple[torch.Tensor, torch.Tensor], i: int) -> torch.Tensor:
            return self.loss_fn(self.net(b[0]), b[1])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM)

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_epoch_end(self, *args: object) -> None:
            sync(device)
            self.times.append(time.perf_counter())

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                         batch_size=batch, shuffle=True,
                                         pin_memory=device.type == "cuda")
    clock = Clock()
    trainer = L.Trainer(max_epochs=epochs, accelerator="gpu" if device.type == "cuda" else "cpu",
                        devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[clock])
    trainer.fit(Module(), loader)
    return len(x) * (epochs - 1) / (clock.times[-1] - clock.times[0])


def nnspec_train(batch: int, epochs: int, device: torch.device,
                 as_shipped: bool = False) -> tuple[float, str]:
    """Samples/s of nnspec with default settings, from its own metrics.jsonl."""
    import nnspec.run

    with tempfile.TemporaryDirectory() as tmp:
        # The hand loops' work: their optimizer, PyTorch's default initialisation from the same
        # seed, no metric beyond the loss.  The initialisation matters on the CPU: as weights
        # train, values reach the denormal range, whose arithmetic is several times slower, at a
        # pace that depends on where training started.  As shipped: the example's own settings.
        overrides = [f"data.batch_size={batch}", f"train.epochs={epochs}", f"data.root={DATA}"]
        if not as_shipped:
            overrides += [f"optimizer={{SGD: {{lr: {LR}, momentum: {MOMENTUM}}}}}",
                          "train.metrics=[]", "train.monitor=val.loss", "init=[]"]
        with open(os.devnull, "w") as quiet:
            nnspec.run.train(SPEC, overrides=overrides, run_dir=Path(tmp) / "run",
                             device=str(device), stream=quiet)
        run = Path(tmp) / "run"
        rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
        path = json.loads((run / "resolved.json").read_text())["run"]["path"]
        weights = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    train = [r for r in rows if r.get("split") == "train"][1:]
    # the same measure as the hand loops: samples over the seconds of the timed epochs
    speed = sum(r["samples"] for r in train) / sum(r["seconds"] for r in train)
    hand = "hand/as-shipped" if as_shipped else "hand/resident"
    return speed, path + _same_weights(weights, FINAL.get(-batch if as_shipped else batch), hand)


def _same_weights(got: dict[str, torch.Tensor], hand: dict[str, torch.Tensor] | None,
                  name: str = "hand/resident") -> str:
    """Whether nnspec ended with the hand loop's weights: proof that both did the same work."""
    if hand is None:
        return ""
    diff = max(float((got[k].cpu().double() - v.double()).abs().max()) for k, v in hand.items())
    return (f"; final weights identical to {name}'s" if diff == 0 else
            f"; final weights differ from {name}'s by up to {diff:.2e}")


def throughput(batch_sizes: list[int], epochs: int, device: torch.device,
               only: list[str] | None = None, rounds: int = 1,
               as_shipped: bool = False) -> None:
    x, y = load_mnist()
    print(f"# LeNet-5, MNIST t10k first {TRAIN} images, {epochs} epochs (first excluded), "
          f"device {device}, median of {rounds} round(s)")
    print("| contender | " + " | ".join(f"batch {b}, samples/s" for b in batch_sizes) + " |")
    print("| --- |" + " --- |" * len(batch_sizes))
    contenders: dict[str, Callable[..., Any]] = {
        "hand/dataloader": hand_dataloader, "hand/resident": hand_resident,
    }
    if device.type == "cuda":
        contenders["hand/cuda-graph"] = hand_cuda_graph
    contenders["lightning"] = lightning
    if only:
        contenders = {k: v for k, v in contenders.items() if k in only}
    contenders["nnspec"] = lambda x, y, b, e, d: nnspec_train(b, e, d)
    if as_shipped:
        contenders["hand/as-shipped"] = hand_as_shipped
        contenders["nnspec/as-shipped"] = lambda x, y, b, e, d: nnspec_train(b, e, d, True)
    # Round-robin rounds, median per contender: a shared machine drifts, and every contender
    # sees the same drift.
    samples: dict[str, list[list[float]]] = {k: [[] for _ in batch_sizes] for k in contenders}
    paths: dict[str, list[str]] = {"nnspec": ["" for _ in batch_sizes],
                                   "nnspec/as-shipped": ["" for _ in batch_sizes]}
    for _ in range(rounds):
        for name, fn in contenders.items():
            for i, b in enumerate(batch_sizes):
                value = fn(x, y, b, epochs, device)
                if isinstance(value, tuple):
                    value, paths[name][i] = value
                if value is not None:
                    samples[name][i].append(value)
    results = {k: [statistics.median(v) if v else None for v in per_batch]
               for k, per_batch in samples.items()}
    plain = {k: v for k, v in results.items() if k.startswith("hand") and "as-shipped" not in k}
    hand = [max([v[i] or 0 for v in plain.values()] or [0]) or 1.0
            for i in range(len(batch_sizes))]
    for name, values in results.items():
        cells = [("n/a" if v is None else f"{v:,.0f} ({v / hand[i]:.2f}x)")
                 for i, v in enumerate(values)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("ratios are to the fastest hand-written loop at the same batch size")
    light = results.get("lightning")
    if light:
        for i, b in enumerate(batch_sizes):
            if light[i]:
                print(f"nnspec / lightning at batch {b}: {results['nnspec'][i] / light[i]:.2f}x")
    shipped, own = results.get("nnspec/as-shipped"), results.get("hand/as-shipped")
    for i, b in enumerate(batch_sizes):
        if shipped and own and shipped[i] and own[i]:
            print(f"as shipped at batch {b}: nnspec / hand loop doing the same work "
                  f"{shipped[i] / own[i]:.2f}x; / the plain hand loop {shipped[i] / hand[i]:.2f}x")
    for name, per_batch in paths.items():
        for b, path in zip(batch_sizes, per_batch, strict=True):
            if path:
                print(f"{name} path at batch {b}: {path}")


HAND_SCRIPT = """
import time, gzip, sys, numpy as np, torch, torch.nn as nn
root = sys.argv[2]; device = torch.device(sys.argv[3])
x = np.frombuffer(gzip.open(root + '/t10k-images-idx3-ubyte.gz').read(), np.uint8, offset=16)
y = np.frombuffer(gzip.open(root + '/t10k-labels-idx1-ubyte.gz').read(), np.uint8, offset=8)
x = torch.from_numpy(x.reshape(-1, 1, 28, 28)[:8000].copy()).float().mul_(1.0 / 255)
y = torch.from_numpy(y[:8000].astype(np.int64))
torch.manual_seed(0)
m = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
    nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
    nn.ReLU(), nn.Linear(84, 10)).to(device)
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
xd, yd = x.to(device), y.to(device)
loss = nn.functional.cross_entropy(m(xd[:64]), yd[:64]); loss.backward(); opt.step()
if device.type == 'cuda': torch.cuda.synchronize()
print(time.time())  # the first step is done
"""


MEASURE = """
import resource, subprocess, sys, time
t0 = time.time()
out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(t0, time.time() - t0, peak / 1024)
print(out)
"""


def measured(cmd: list[str], run_dir: Path | None = None) -> tuple[float, float, float]:
    """(launch to first step, whole process, peak RSS in MiB) of ``cmd`` in a fresh process.

    The first step's end is the time the hand script prints after it, or the time nnspec writes
    on its first training record (in ``run_dir``'s metrics.jsonl: the epoch is one batch).
    """
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    launch, wall, peak = (float(v) for v in out[0].split())
    if run_dir is None:
        first = float(out[1])
    else:
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
        first = next(r["time"] for r in rows if r["split"] == "train")
    return first - launch, wall, peak


def startup(device: torch.device, runs: int = 3) -> None:
    """Launch to first finished step, whole process and peak memory; fresh processes, medians.

    The hand-written script loads the data, builds LeNet and takes one SGD step.  nnspec is given
    the same work through overrides (one epoch of one batch with the same optimizer and
    initialisation), so its first step also pays for what the script skips: checking the spec,
    the run directory and TensorBoard's writer and model graph.  The whole process adds, for
    nnspec, a one-batch validation pass, two checkpoints and closing TensorBoard.
    """
    hand, spec = [], []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "hand.py"
        script.write_text(HAND_SCRIPT)
        for i in range(runs):
            hand.append(measured([sys.executable, str(script), "0", str(DATA), str(device)]))
            run = Path(tmp) / f"run{i}"
            spec.append(measured([
                sys.executable, "-m", "nnspec", "train", str(SPEC), f"data.root={DATA}",
                "train.epochs=1", "data.train.range=[0, 64]", "data.val.range=[8000, 8064]",
                f"optimizer={{SGD: {{lr: {LR}, momentum: {MOMENTUM}}}}}", "init=[]",
                "--run-dir", str(run), "--device", str(device)], run))
    (hf, hw, hm), (sf, sw, sm) = (tuple(statistics.median(v) for v in zip(*runs_, strict=True))
                                  for runs_ in (hand, spec))
    print("| process | launch to first step, s | whole process, s | peak RSS, MiB |")
    print("| --- | --- | --- | --- |")
    print(f"| hand-written script | {hf:.2f} | {hw:.2f} | {hm:,.0f} |")
    print(f"| nnspec train | {sf:.2f} ({sf / hf:.2f}x) | {sw:.2f} ({sw / hw:.2f}x) | "
          f"{sm:,.0f} ({sm / hm:.2f}x) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--startup", action="store_true", help="also measure start-up")
    parser.add_argument("--startup-runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every contender this many times, round-robin; medians")
    parser.add_argument("--only", nargs="+", help="run only these contenders")
    parser.add_argument("--as-shipped", action="store_true",
                        help="also the example as it ships, and a hand loop doing its work")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, python {platform.python_version()}"
          + (f", {torch.cuda.get_device_name()}" if device.type == "cuda" else ""))
    print(f"# load average {os.getloadavg()[0]:.2f}, {torch.get_num_threads()} threads")
    throughput(args.batch_sizes, args.epochs, device, args.only, args.rounds, args.as_shipped)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    if args.startup:
        startup(device, args.startup_runs)


if __name__ == "__main__":
    main()
