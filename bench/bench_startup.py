"""Start-up cost of the CLI, side by side with `import torch`, in fresh processes.

    .venv/bin/python bench/bench_startup.py [--runs 7] [--baseline DIR]

Each command runs --runs times in a new interpreter; the table shows the median wall time and
its ratio to `python -c "import torch"`.  With --baseline DIR (another checkout of nnspec, e.g.
`git worktree add /tmp/base 4c82cd8^`), each command also runs from DIR, interleaved run by run
with this checkout so that both see the same machine load, and the table adds its median and
the ratios this / baseline of the wall time and of the CPU time (user + system, which a loaded
machine inflates less).  A second pass runs each nnspec command under a small
wrapper that reports whether torch ended up in sys.modules: `nnspec --help` and
`nnspec validate --no-shapes` must not import it (DESIGN.md section 5; issue 2 targets both
under 0.3 s on a 2-core machine).  Exit status 1 when either promise is broken.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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


def run_once(argv: list[str], root: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh interpreter running ``argv`` with
    ``root``'s nnspec first on sys.path."""
    # bytecode caches on, as an installed package has them (a shell may have turned them off)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "PYTHONPATH": str(root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([PY, *argv], cwd=root, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def timings(argv: list[str], runs: int, baseline: Path | None) -> dict[str, list[float]]:
    """Wall and CPU times of ``runs`` runs, each followed by the baseline's run when given."""
    out: dict[str, list[float]] = {"wall": [], "cpu": [], "base wall": [], "base cpu": []}
    for _ in range(runs):
        for prefix, root in (("", ROOT), ("base ", baseline)):
            if root is not None:
                wall, cpu = run_once(argv, root)
                out[prefix + "wall"].append(wall)
                out[prefix + "cpu"].append(cpu)
    return out


def imports_torch(argv: list[str]) -> bool:
    args = argv[2:]  # drop "-m nnspec"
    result = subprocess.run([PY, "-c", _PROBE, *args], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    flag = [ln for ln in result.stderr.splitlines() if ln.startswith("TORCH ")]
    return flag[-1].endswith("True")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another nnspec checkout to run side by side (interleaved)")
    options = parser.parse_args()
    runs, baseline = options.runs, options.baseline
    for _, argv, _ in COMMANDS:  # warm the OS file cache and bytecode caches, unmeasured
        timings(argv, 1, baseline)
    found = {name: {k: statistics.median(v) for k, v in timings(argv, runs, baseline).items() if v}
             for name, argv, _ in COMMANDS}
    base = found["import torch"]["wall"]
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, median of {runs} fresh processes, load average "
          f"{os.getloadavg()[0]:.2f} at the end"
          + (f"; baseline {baseline}, run after each run of this checkout" if baseline else "")
          + "\n")
    extra = " baseline (s) | wall vs baseline | CPU vs baseline |" if baseline else ""
    print(f"| {'command':<30} | wall (s) | vs import torch | imports torch |{extra}")
    print(f"| {'-' * 30} | -------: | --------------: | ------------- |"
          + (" -----------: | ---------------: | --------------: |" if baseline else ""))
    failures = []
    for name, argv, torch_free in COMMANDS:
        uses_torch = name == "import torch" or imports_torch(argv)
        t = found[name]
        row = (f"| {name:<30} | {t['wall']:8.3f} | {t['wall'] / base:15.2f} | "
               f"{'yes' if uses_torch else 'no':<13} |")
        if baseline:
            row += (f" {t['base wall']:12.3f} | {t['wall'] / t['base wall']:15.2f}x | "
                    f"{t['cpu'] / t['base cpu']:14.2f}x |")
        print(row)
        if torch_free and uses_torch:
            failures.append(f"{name} imports torch")
        if torch_free and found[name]['wall'] > TARGET_S:
            failures.append(f"{name} takes {found[name]['wall']:.3f} s, over the {TARGET_S} s "
                            "target")
    print()
    for failure in failures:
        print(f"FAIL: {failure}")
    if not failures:
        print(f"OK: --help and --no-shapes stay torch-free and under {TARGET_S} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
