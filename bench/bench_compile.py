"""How long validate (with shapes), compile and emit take, against building the model in torch.

    .venv/bin/python bench/bench_compile.py [--runs 5]

Big specs: bench/transformer_64.yaml (64 encoder layers) and bench/resnet_repeat_1000.yaml (a
basic block repeated 1,000 times): validate and summary in a fresh process after `import torch`
(target: under 1 s each), wall and CPU seconds; ``--big-only --baseline DIR`` puts another
checkout's figures beside, run interleaved, with the CPU ratio (what a loaded machine distorts
least).

Two models: specs/resnet50.yaml (against torchvision.models.resnet50(weights=None)) and a
generated 1,000-layer spec (500 x Linear(64) + ReLU, against the same nn.Sequential written
directly).  In-process figures are medians after one warm-up call; the first shape check in a
fresh process (after `import torch`) is measured separately, since it pays for torch's lazy
imports.  Ratios are to building the model directly in torch.
"""

from __future__ import annotations

import argparse
import os
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
             ROOT / "specs" / "vit_b_16.yaml", ROOT / "specs" / "swin_t.yaml",
             ROOT / "specs" / "swin_v2_t.yaml", ROOT / "specs" / "maxvit_t.yaml")
BIG_CHECK = """
import time, torch
clocks = (time.perf_counter, time.process_time)
start = [c() for c in clocks]
import nnspec
from nnspec.views.summary import render_summary
nnspec.validate({spec!r})
middle = [c() for c in clocks]
render_summary(nnspec.infer({spec!r}))
end = [c() for c in clocks]
print(*(m - s for m, s in zip(middle, start)), *(e - m for e, m in zip(end, middle)))
"""


def big_spec_checks(spec: Path, root: Path = ROOT) -> tuple[float, float, float, float]:
    """validate, then summary, in a fresh process after `import torch`, with the nnspec of
    ``root``: (validate wall, validate CPU, summary wall, summary CPU) in seconds."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", BIG_CHECK.format(spec=str(spec))],
                         capture_output=True, text=True, check=True, env=env, cwd=root)
    a, b, c, d = map(float, out.stdout.strip().splitlines()[-1].split())
    return a, b, c, d


def big_specs(baseline: Path | None, repeats: int) -> None:
    """The big specs' table; with a baseline checkout, its figures beside, interleaved."""
    roots = [("this", ROOT)] + ([("baseline", baseline)] if baseline else [])
    print("\n## big specs: validate, then summary, each in a fresh process after import torch "
          "(target: under 1 s each)\n")
    print(f"median of {repeats}; wall s (CPU s); load average {os.getloadavg()[0]:.1f} at the "
          "start\n")
    head = " | ".join(f"{name} validate | {name} summary" for name, _ in roots)
    print(f"| spec | {head} |" + (" CPU ratio, baseline / this |" if baseline else ""))
    print("| --- " * (1 + 2 * len(roots) + bool(baseline)) + "|")
    for spec in BIG_SPECS:
        runs: dict[str, list[tuple[float, ...]]] = {name: [] for name, _ in roots}
        for _ in range(repeats):
            for name, root in roots:
                runs[name].append(big_spec_checks(spec, root))
        cells, cpu = [], {}
        for name, _ in roots:
            med = [statistics.median(r[i] for r in runs[name]) for i in range(4)]
            cells += [f"{med[0]:.2f} ({med[1]:.2f})", f"{med[2]:.2f} ({med[3]:.2f})"]
            cpu[name] = med[1] + med[3]
        ratio = f" {cpu['baseline'] / cpu['this']:.1f}x |" if baseline else ""
        print(f"| {spec.name} | " + " | ".join(cells) + " |" + ratio)


def row(name: str, seconds: float, baseline: float) -> str:
    return f"| {name} | {seconds * 1000:,.1f} ms | {seconds / baseline:.2f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big-only", action="store_true", help="only the big specs' table")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout: its big-spec figures beside, interleaved")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per figure")
    args = parser.parse_args()
    if args.big_only:
        big_specs(args.baseline, args.repeats)
        return
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
    big_specs(args.baseline, args.repeats)


if __name__ == "__main__":
    main()
