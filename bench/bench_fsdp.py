"""FSDP demonstration: a spec one process cannot train under a memory limit trains on two.

    python bench/bench_fsdp.py [--hidden 2048] [--blocks 16] [--budget-x 4.25]

An MLP on scikit-learn's digits (64 -> hidden -> ``blocks`` x (hidden -> hidden) -> 10, Adam;
67 M parameters, 257 MiB, by default) trains for one short epoch twice, every process under
the same address-space limit (RLIMIT_AS, set with resource.setrlimit in each process once torch
and nnspec are imported): its address space at that moment plus ``budget-x`` times the
parameters' bytes.  Unsharded training with Adam needs about five times the parameters
(weights, gradients, two moments, and the temporary of Adam's foreach update); FSDP on two
processes needs half of that per process, plus one all-gathered unit at a time (and rank 0
holds the initial weights once while the run starts).  With the default 4.25x:

    1 process, unsharded       -> out of memory (exit 3)
    2 processes, strategy fsdp -> trains, writes sharded checkpoints

It prints both outcomes, each process's peak resident memory (ru_maxrss) and how far its
address space grew.  Two to three minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
nnspec: 1
name: wide_mlp
input: [64]
blocks:
  Wide:
    params: {{width: int}}
    sequential:
      fc: {{Linear: {{out_features: $width}}}}
      act: ReLU
model:
  inp: {{Linear: {{out_features: {hidden}}}}}
  act: ReLU
  body: {{Wide: {{width: {hidden}}}, repeat: {blocks}}}
  out: {{Linear: {{out_features: 10}}}}
data:
  dataset: {{SKLearn: {{name: digits}}}}
  standardize: true
  train: {{range: [0, 128]}}
  val: {{range: [128, 192]}}
  batch_size: 32
loss: CrossEntropyLoss
optimizer: {{Adam: {{lr: 0.0001}}}}
train: {{epochs: 1, device: cpu, strategy: {strategy}}}
log: {{tensorboard: false}}
"""


# glibc's allocator, told to give large blocks back to the system when they are freed (its
# default raises the threshold as blocks are freed, and then keeps freed all-gather buffers
# and gradients in its heap, which counts against the limit): the same for both runs.
MALLOC = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


def parameters(hidden: int, blocks: int) -> int:
    return 64 * hidden + hidden + blocks * (hidden * hidden + hidden) + hidden * 10 + 10


def _vm_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(field + r":\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def as_rank(budget: int, report: Path, argv: list[str]) -> None:
    """In each process: import what the run imports, cap the address space, run nnspec."""
    import atexit
    import resource

    import sklearn.datasets  # noqa: F401  (the data's import, before the limit)
    import torch.distributed.checkpoint
    import torch.distributed.fsdp  # noqa: F401

    import nnspec.cli
    import nnspec.run.api

    start = _vm_kib("VmSize")
    limit = start * 1024 + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def leave_peak() -> None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        rank = os.environ.get("RANK", "0")
        grown = (_vm_kib("VmPeak") - start) / 1024
        (report / f"rank{rank}.json").write_text(json.dumps(
            {"peak_rss_mib": peak / 1024, "vm_growth_mib": grown}))

    atexit.register(leave_peak)
    sys.argv = ["nnspec", *argv]
    nnspec.cli.main()


def _run(label: str, command: list[str], report: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **MALLOC)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=900)
    errors = [x for x in done.stderr.splitlines() if x.startswith(("error:", "done:"))]
    peaks = {p.stem: json.loads(p.read_text()) for p in sorted(report.glob("rank*.json"))}
    return {"label": label, "exit": done.returncode, "said": errors[:2], "peaks": peaks,
            "tail": done.stderr[-1500:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--budget-x", type=float, default=4.25,
                        help="each process's budget, in parameter bytes")
    parser.add_argument("--as-rank", nargs=2, metavar=("BUDGET", "REPORT"),
                        help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.as_rank:
        as_rank(int(args.as_rank[0]), Path(args.as_rank[1]), rest)
        return
    n = parameters(args.hidden, args.blocks)
    budget = int(args.budget_x * n * 4)
    print(f"model: {n:,} parameters ({n * 4 / 2**20:.0f} MiB); each process may grow its "
          f"address space by {budget / 2**20:.0f} MiB ({args.budget_x}x the parameters) "
          f"after importing torch")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fsdp-") as tmp:
        for strategy, nproc in (("auto", 1), ("fsdp", 2)):
            folder = Path(tmp) / strategy
            report = folder / "peaks"
            report.mkdir(parents=True)
            spec = folder / "spec.yaml"
            spec.write_text(SPEC.format(hidden=args.hidden, blocks=args.blocks,
                                        strategy=strategy))
            me = [str(Path(__file__).resolve()), "--as-rank", str(budget), str(report)]
            train = ["train", str(spec), "--run-dir", str(folder / "run")]
            command = [sys.executable, *me, *train] if nproc == 1 else [
                sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={nproc}", *me, *train]
            label = "1 process, unsharded" if nproc == 1 else f"{nproc} processes, fsdp"
            results.append(_run(label, command, report))
            checkpoints = folder / "run" / "checkpoints"
            results[-1]["checkpoints"] = sorted(p.name for p in checkpoints.iterdir()) \
                if checkpoints.is_dir() else []
    _print(results)


def _print(results: list[dict[str, object]]) -> None:
    print(f"{'run':<24} {'exit':>4}  {'peak RSS per process, MiB':<40} outcome")
    for r in results:
        peaks = r["peaks"]
        assert isinstance(peaks, dict)
        shown = ", ".join(f"{k} {v['peak_rss_mib']:.0f} (+{v['vm_growth_mib']:.0f} VM)"
                          for k, v in peaks.items()) or "-"
        said = r["said"]
        assert isinstance(said, list)
        outcome = said[-1] if said else "(no message)"
        print(f"{r['label']:<24} {r['exit']:>4}  {shown:<40} {outcome[:150]}")
        if r["checkpoints"]:
            print(f"{'':<24}       checkpoints: {r['checkpoints']}")
    for r in results:
        if r["exit"] not in (0, 3) or (r["label"].startswith("2") and r["exit"] != 0):  # type: ignore[union-attr]
            print(f"\n--- {r['label']} ended with {r['exit']}; its last lines:\n{r['tail']}")


if __name__ == "__main__":
    main()
