"""Start-up cost of the CLI, side by side with `import torch`, in fresh processes.

    .venv/bin/python bench/bench_startup.py [--runs 7]

Each command runs --runs times in a new interpreter; the table shows the median wall time and
its ratio to `python -c "import torch"`.  A second pass runs each nnspec command under a small
wrapper that reports whether torch ended up in sys.modules: `nnspec --help` and
`nnspec validate --no-shapes` must not import it (DESIGN.md section 5; issue 2 targets both
under 0.3 s on a 2-core machine).  Exit status 1 when either promise is broken.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/lenet.yaml"
TARGET_S = 0.3
PY = sys.executable

# name, argv (after the interpreter), whether it must stay torch-free
COMMANDS: list[tuple[str, list[str], bool]] = [
    ("import torch", ["-c", "import torch"], False),
    ("nnspec --help", ["-m", "nnspec", "--help"], True),
    ("nnspec validate --no-shapes", ["-m", "nnspec", "validate", "--no-shapes", SPEC], True),
    ("nnspec validate (shapes)", ["-m", "nnspec", "validate", SPEC], False),
]

# Runs the CLI in-process, then says whether torch was imported along the way.
_PROBE = ("import sys\nsys.argv = ['nnspec', *sys.argv[1:]]\nfrom nnspec.cli import main\n"
          "try:\n    main()\nexcept SystemExit:\n    pass\n"
          "print('TORCH', 'torch' in sys.modules, file=sys.stderr)\n")


def wall_times(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([PY, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def imports_torch(argv: list[str]) -> bool:
    args = argv[2:]  # drop "-m nnspec"
    result = subprocess.run([PY, "-c", _PROBE, *args], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    flag = [ln for ln in result.stderr.splitlines() if ln.startswith("TORCH ")]
    return flag[-1].endswith("True")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    runs = parser.parse_args().runs
    for _, argv, _ in COMMANDS:  # warm the OS file cache once, unmeasured
        wall_times(argv, 1)
    medians = {name: statistics.median(wall_times(argv, runs)) for name, argv, _ in COMMANDS}
    base = medians["import torch"]
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, median of {runs} fresh processes\n")
    print(f"| {'command':<30} | wall (s) | vs import torch | imports torch |")
    print(f"| {'-' * 30} | -------: | --------------: | ------------- |")
    failures = []
    for name, argv, torch_free in COMMANDS:
        uses_torch = name == "import torch" or imports_torch(argv)
        print(f"| {name:<30} | {medians[name]:8.3f} | {medians[name] / base:15.2f} | "
              f"{'yes' if uses_torch else 'no':<13} |")
        if torch_free and uses_torch:
            failures.append(f"{name} imports torch")
        if torch_free and medians[name] > TARGET_S:
            failures.append(f"{name} takes {medians[name]:.3f} s, over the {TARGET_S} s target")
    print()
    for failure in failures:
        print(f"FAIL: {failure}")
    if not failures:
        print(f"OK: --help and --no-shapes stay torch-free and under {TARGET_S} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
