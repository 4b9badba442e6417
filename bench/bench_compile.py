"""How long validate (with shapes), compile and emit take, against building the model in torch.

    .venv/bin/python bench/bench_compile.py [--runs 5]

Big specs: bench/transformer_64.yaml (64 encoder layers) and bench/resnet_repeat_1000.yaml (a
basic block repeated 1,000 times): validate and summary in a fresh process after `import torch`
(target: under 1 s each).

Two models: specs/resnet50.yaml (against torchvision.models.resnet50(weights=None)) and a
generated 1,000-layer spec (500 x Linear(64) + ReLU, against the same nn.Sequential written
directly).  In-process figures are medians after one warm-up call; the first shape check in a
fresh process (after `import torch`) is measured separately, since it pays for torch's lazy
imports.  Ratios are to building the model directly in torch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
RESNET50 = ROOT / "specs" / "resnet50.yaml"
LAYERS = 1000


def generated_spec() -> str:
    lines = ["nnspec: 1", "name: deep_mlp", "input: [64]", "model:"]
    for _ in range(LAYERS // 2):
        lines += ["  - Linear: {out_features: 64}", "  - ReLU"]
    return "\n".join(lines) + "\n"


def deep_mlp_in_torch() -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(LAYERS // 2):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    return nn.Sequential(*layers)


def resnet50_in_torch() -> nn.Module:
    import torchvision

    return torchvision.models.resnet50(weights=None)


def median_time(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up: lazy imports and caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


FIRST_CHECK = """
import time, torch
start = time.perf_counter()
import nnspec
nnspec.validate({spec!r})
print(time.perf_counter() - start)
"""


def first_shape_check(spec: Path | str) -> float:
    """Seconds from `import nnspec` to a validated spec, torch already imported (fresh process)."""
    out = subprocess.run([sys.executable, "-c", FIRST_CHECK.format(spec=str(spec))],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


BIG_SPECS = (ROOT / "bench" / "transformer_64.yaml", ROOT / "bench" / "resnet_repeat_1000.yaml",
             ROOT / "specs" / "vit_b_16.yaml", ROOT / "specs" / "swin_t.yaml")
BIG_CHECK = """
import time, torch
start = time.perf_counter()
import nnspec
from nnspec.views.summary import render_summary
nnspec.validate({spec!r})
middle = time.perf_counter()
render_summary(nnspec.infer({spec!r}))
print(middle - start, time.perf_counter() - middle)
"""


def big_spec_checks(spec: Path) -> tuple[float, float]:
    """validate, then summary, in a fresh process after `import torch` (seconds each)."""
    out = subprocess.run([sys.executable, "-c", BIG_CHECK.format(spec=str(spec))],
                         capture_output=True, text=True, check=True)
    first, second = out.stdout.strip().splitlines()[-1].split()
    return float(first), float(second)


def row(name: str, seconds: float, baseline: float) -> str:
    return f"| {name} | {seconds * 1000:,.1f} ms | {seconds / baseline:.2f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import nnspec

    torch.set_num_threads(1)
    deep = generated_spec()
    cases = [("resnet50", str(RESNET50), resnet50_in_torch),
             (f"generated {LAYERS}-layer MLP", deep, deep_mlp_in_torch)]
    print(f"# torch {torch.__version__}, python {sys.version.split()[0]}, runs {args.runs}")
    for name, spec, direct in cases:
        baseline = median_time(direct, args.runs)
        print(f"\n## {name}\n")
        print("| step | median | vs building in torch |")
        print("| --- | --- | --- |")
        print(row("build directly in torch", baseline, baseline))
        print(row("nnspec validate (schema, references, shapes)",
                  median_time(lambda s=spec: nnspec.validate(s), args.runs), baseline))
        print(row("nnspec compile (validate + build)",
                  median_time(lambda s=spec: nnspec.compile(s), args.runs), baseline))
        print(row("nnspec emit (validate + Python source)",
                  median_time(lambda s=spec: nnspec.emit(s), args.runs), baseline))
    print(f"\nfirst shape check of resnet50 in a fresh process, after import torch: "
          f"{first_shape_check(RESNET50):.2f} s (target: under 1 s)")
    print("\n## big specs, fresh process after import torch (target: under 1 s each)\n")
    print("| spec | validate | then summary |")
    print("| --- | --- | --- |")
    for spec in BIG_SPECS:
        validate_s, summary_s = big_spec_checks(spec)
        print(f"| {spec.name} | {validate_s:.2f} s | {summary_s:.2f} s |")


if __name__ == "__main__":
    main()
