"""Start-up to the first optimizer step, and peak memory: `nnspec train` against hand scripts.

    .venv/bin/python bench/bench_firststep.py [--rounds 5] [--only gpt_chars ...] [--device cuda]

Each workload runs as fresh processes, the hand-written script then `nnspec train`, round after
round (interleaved, so drift on a shared machine touches both).  nnspec runs as `python -c`
with a few lines that print the clocks at its first training record, then run `python -m nnspec
train` as usual.  Measured per process:

  first step   from just before the process is started (time.time() in this script) to the
               end of its first optimizer step: the time the hand script prints right after
               `opt.step()`, and the `time` of nnspec's first training record (the epoch is
               one batch, so that record is written right after the first step)
  first CPU    the process's CPU time (user + system) at that moment, which other jobs on a
               shared machine disturb less than the wall clock
  peak RSS     the child's ru_maxrss (os.wait4), the whole process
  whole CPU    the child's CPU time to its exit (nnspec's includes what follows its first
               step: validation, TensorBoard's writer and model graph, two checkpoints)

Both do the same work: load the data, build the model, one training step of one batch, one
validation batch, save the model and optimizer.  nnspec runs the spec as it ships (its
metrics, TensorBoard, two checkpoints), only with one batch per split.  Workloads:

  resnet18_cifar          examples/resnet18_cifar.yaml offline (the digits stand-in: sklearn's
                          digits resized to 32x32, 3 channels); the script uses torchvision's
                          ResNet-18 with the CIFAR stem and the same transforms
  transformer_classifier  specs/transformer_classifier.yaml with a Tensors file of token ids
                          (AdamW, accuracy); the script loads the same file
  gpt_chars               examples/gpt_chars.yaml (the character text, AdamW, grad clip)

Ratios are nnspec / hand, of the medians.  Targets (issue 14): first step <= 1.2x, peak
memory <= 1.10x.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent

PRELUDE = f"""
import sys, time
sys.path.insert(0, {str(BENCH)!r})
out, device = sys.argv[1], sys.argv[3]
import torch
from torch import nn
torch.manual_seed(0)
"""

# Each script ends its first step with `print(time.time(), time.process_time())`, then validates
# one batch and saves.
HAND = {
    "resnet18_cifar": """
from sklearn.datasets import load_digits
from torchvision.transforms import v2
from handwritten import cifar_resnet18
digits = load_digits()
x = torch.from_numpy(digits.images).float()[:, None]
y = torch.from_numpy(digits.target).long()
prep = v2.Compose([v2.Resize([32, 32]), v2.RGB(), v2.Normalize([4.88] * 3, [6.02] * 3)])
xt, yt, xv, yv = prep(x[:32]), y[:32], prep(x[1297:1329]), y[1297:1329]
model = cifar_resnet18()
opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4,
                      nesterov=True)
""",
    "transformer_classifier": """
from handwritten import TransformerClassifier
data = torch.load(sys.argv[2])
xt, yt = data["inputs"][:32], data["targets"][:32]
xv, yv = data["inputs"][32:64], data["targets"][32:64]
model = TransformerClassifier()
opt = torch.optim.AdamW(model.parameters(), lr=0.001)
""",
    "gpt_chars": """
from handwritten import GPTChars, char_blocks
x, y = char_blocks()
xt, yt, xv, yv = x[:32], y[:32], x[1100:1132], y[1100:1132]
model = GPTChars()
opt = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0.01)
""",
}

STEP = """
model.to(device)
xt, yt, xv, yv = xt.to(device), yt.to(device), xv.to(device), yv.to(device)
model.train()
out_t = model(xt)
loss = nn.functional.cross_entropy(out_t.transpose(1, 2) if out_t.dim() == 3 else out_t, yt)
opt.zero_grad(); loss.backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
opt.step()
if device == "cuda": torch.cuda.synchronize()
print(time.time(), time.process_time(), flush=True)  # the first step is done
model.eval()
with torch.no_grad():
    out_v = model(xv)
    print(float(nn.functional.cross_entropy(
        out_v.transpose(1, 2) if out_v.dim() == 3 else out_v, yv)))
torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, out + "/last.pt")
"""

TRANSFORMER_TRAINING = """
data:
  dataset: {{Tensors: {{path: {path}}}}}
  train: {{range: [0, 32]}}
  val: {{range: [32, 64]}}
  batch_size: 32
loss: CrossEntropyLoss
optimizer: {{AdamW: {{lr: 0.001}}}}
train: {{epochs: 1, seed: 0, metrics: [accuracy], grad_clip: 1.0}}
"""


# `python -m nnspec train ...`, printing the wall and CPU clocks when the first training record
# is written (the first step's end: the epoch is one batch); nothing else changes.
NNSPEC = """
import runpy, sys, time
import nnspec.run.loop as loop
write = loop.Trainer._write
def first(self, split, *args, **kwargs):
    if split == "train" and self.epoch == 0:
        print(time.time(), time.process_time(), flush=True)
    return write(self, split, *args, **kwargs)
loop.Trainer._write = first
sys.argv = ["nnspec", *sys.argv[1:]]
runpy.run_module("nnspec", run_name="__main__")
"""


def nnspec_command(name: str, tmp: Path, run: Path) -> list[str]:
    base = [sys.executable, "-c", NNSPEC, "train"]
    if name == "resnet18_cifar":  # run from tmp: no CIFAR-10 there, so the digits stand-in
        return [*base, str(ROOT / "examples" / "resnet18_cifar.yaml"),
                "data.fallback.train.range=[0, 32]", "data.fallback.val.range=[1297, 1329]",
                "--run-dir", str(run)]
    if name == "transformer_classifier":
        return [*base, str(tmp / "transformer_classifier.yaml"), "--run-dir", str(run)]
    return [*base, str(ROOT / "examples" / "gpt_chars.yaml"), "train.epochs=1",
            "data.val_split=0", "data.train.range=[0, 32]", "data.val.range=[1100, 1132]",
            f"data.dataset.TextChars.path={ROOT / 'examples' / 'data' / 'public_domain.txt'}",
            "--run-dir", str(run)]


def prepare(tmp: Path) -> None:
    import torch

    gen = torch.Generator().manual_seed(1)
    tokens = tmp / "tokens.pt"
    torch.save({"inputs": torch.randint(0, 1000, (64, 32), generator=gen),
                "targets": torch.randint(0, 4, (64,), generator=gen)}, tokens)
    spec = (ROOT / "specs" / "transformer_classifier.yaml").read_text()
    (tmp / "transformer_classifier.yaml").write_text(
        spec + TRANSFORMER_TRAINING.format(path=tokens))
    for name, body in HAND.items():
        (tmp / f"hand_{name}.py").write_text(PRELUDE + body + STEP)


def run_child(cmd: list[str], cwd: Path) -> tuple[str, float, float]:
    """Run ``cmd``, wait for it with os.wait4: (stdout, its peak RSS in MiB, its CPU s)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()[-3000:]}")
        return out.read(), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


Measure = tuple[float, float, float, float]  # first step: wall s, CPU s; peak RSS MiB; CPU s


def one(name: str, tmp: Path, contender: str, i: int, device: str) -> Measure:
    """(launch to first step, CPU time at the first step, peak RSS, whole-process CPU time)."""
    cmd = ([sys.executable, str(tmp / f"hand_{name}.py"), str(tmp), str(tmp / "tokens.pt"),
            device] if contender == "hand" else
           [*nnspec_command(name, tmp, tmp / f"run_{name}_{i}"), "--device", device])
    launch = time.time()
    out, peak, cpu = run_child(cmd, tmp)
    wall, first_cpu = (float(v) for v in out.split()[:2])
    return wall - launch, first_cpu, peak, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=list(HAND), help="run only these workloads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both contenders)")
    args = parser.parse_args()
    names = args.only or list(HAND)
    print(f"# {platform.node()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load {os.getloadavg()[0]:.2f}, device {args.device}; fresh processes, {args.rounds} "
          "rounds interleaved")
    results: dict[tuple[str, str], list[Measure]] = {}
    # bytecode caches, as an installed package has them (PYTHONDONTWRITEBYTECODE would make
    # every process compile nnspec's sources again: about 0.4 s of each start-up)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "nnspec"), str(BENCH)],
                   check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        prepare(tmp)
        for i in range(args.rounds):
            for name in names:
                for contender in ("hand", "nnspec"):
                    got = one(name, tmp, contender, i, args.device)
                    results.setdefault((name, contender), []).append(got)
                    print(f"# {name} {contender}: first step {got[0]:.2f} s wall, "
                          f"{got[1]:.2f} s CPU; peak RSS {got[2]:,.0f} MiB", flush=True)
    report(names, results)


def report(names: list[str], results: dict[tuple[str, str], list[Measure]]) -> None:
    print("| workload | process | first step, wall s | vs hand | first step, CPU s | vs hand "
          "| peak RSS, MiB | vs hand | whole process, CPU s | vs hand |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        hand = [statistics.median(r[i] for r in results[(name, "hand")]) for i in range(4)]
        for contender in ("hand", "nnspec"):
            med = [statistics.median(r[i] for r in results[(name, contender)]) for i in range(4)]
            cells = [f"{v:,.2f} | {v / h:.2f}x" if i != 2 else f"{v:,.0f} | {v / h:.2f}x"
                     for i, (v, h) in enumerate(zip(med, hand, strict=True))]
            print(f"| {name} | {contender} | " + " | ".join(cells) + " |")
    print("medians of the rounds; each round, first step wall s / CPU s:")
    for (name, contender), rows in results.items():
        print(f"  {name} {contender}: " + ", ".join(f"{r[0]:.2f}/{r[1]:.2f}" for r in rows))
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
