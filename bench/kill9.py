"""kill -9 campaign: train, SIGKILL at a random instant, resume; count what breaks.

    .venv/bin/python bench/kill9.py --trials 30 [--seed 0]

A digits MLP with dropout (so resume must restore the random state) trains on the CPU, once
uninterrupted for reference, then once per trial killed with SIGKILL after a random delay (any
instant of the run: reading data, mid-epoch, while writing a checkpoint) and resumed with
``--resume`` (started afresh in the same folder if the kill came before the first checkpoint).
Each run is a child forked from this process after ``import torch``, so that a trial costs the
training, not the interpreter's start-up; the child runs ``nnspec train`` as the CLI does.
Counts: checkpoints that do not load after the kill, resumes that fail, temporary files left
after the resume, and final weights that are not bit-identical to the reference run's.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPEC = """
nnspec: 1
name: digits_kill9
input: [64]
model:
  - Linear: {out_features: 32}
  - ReLU
  - Dropout: {p: 0.2}
  - Linear: {out_features: 10}
data:
  dataset: {SKLearn: {name: digits}}
  standardize: true
  val_split: 0.2
  batch_size: 32
loss: CrossEntropyLoss
optimizer: {SGD: {lr: 0.05, momentum: 0.9}}
train: {epochs: 8, device: cpu, seed: 0, metrics: [accuracy], monitor: val.accuracy}
log: {tensorboard: false, every_n_steps: 5}
"""


def start(spec: Path, *args: str) -> int:
    """Fork a child that runs ``nnspec train SPEC ARGS``; its pid."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        code = 1
        try:
            from nnspec.cli import app

            app(["train", str(spec), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            os._exit(code)
    return pid


def wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run(spec: Path, *args: str) -> int:
    return wait(start(spec, *args))


def weights(run: Path) -> dict[str, object]:
    import torch

    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    return dict(state["model"])


def loads(path: Path) -> bool:
    from nnspec.errors import NnspecError
    from nnspec.run import checkpoint

    try:
        checkpoint.check_complete(checkpoint.load(path), path)
        return True
    except NnspecError:
        return False


def temporary(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    return [p for p in folder.iterdir() if ".tmp" in p.name] if folder.is_dir() else []


def trial(spec: Path, folder: Path, delay: float,
          reference: dict[str, object]) -> dict[str, object]:
    import torch

    pid = start(spec, "--run-dir", str(folder))
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)  # a child that already ended is a zombie: the kill is harmless
    finished = wait(pid) != -signal.SIGKILL
    last = folder / "checkpoints" / "last.pt"
    result: dict[str, object] = {"delay": delay, "finished_first": finished,
                                 "had_checkpoint": last.exists(),
                                 "tmp_after_kill": len(temporary(folder))}
    result["unloadable"] = last.exists() and not loads(last)
    args = ["--resume", str(folder)] if last.exists() else ["--run-dir", str(folder)]
    code = run(spec, *args)
    result["resume_failed"] = code != 0
    result["tmp_after_resume"] = len(temporary(folder))
    same = False
    if code == 0:
        final = weights(folder)
        same = final.keys() == reference.keys() and all(
            torch.equal(final[k], reference[k]) for k in final)  # type: ignore[arg-type]
    result["identical"] = same
    return result


def main() -> int:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    import nnspec.run.commands  # noqa: F401  (imported once, before the children fork)

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC)
        began = time.perf_counter()
        assert run(spec, "--run-dir", str(Path(tmp) / "reference")) == 0
        span = time.perf_counter() - began
        reference = weights(Path(tmp) / "reference")
        print(f"reference run: {span:.1f} s; kills drawn uniformly in [0, {span:.1f}) s")
        results = []
        for i in range(args.trials):
            r = trial(spec, Path(tmp) / f"trial{i}", rng.uniform(0, span), reference)
            results.append(r)
            print(f"trial {i:2d}: killed at {r['delay']:5.2f} s, checkpoint "
                  f"{'yes' if r['had_checkpoint'] else 'no '}, tmp after kill "
                  f"{r['tmp_after_kill']}, unloadable {r['unloadable']}, resume failed "
                  f"{r['resume_failed']}, tmp after resume {r['tmp_after_resume']}, identical "
                  f"{r['identical']}", flush=True)
    n = len(results)
    print(f"\n{n} kill -9 trials: {sum(bool(r['unloadable']) for r in results)} unloadable "
          f"checkpoints, {sum(bool(r['resume_failed']) for r in results)} failed resumes, "
          f"{sum(int(r['tmp_after_resume']) > 0 for r in results)} runs with stale temporary "
          f"files after resume ({sum(int(r['tmp_after_kill']) > 0 for r in results)} right after"
          f" the kill), {sum(bool(r['identical']) for r in results)}/{n} resumes bit-identical "
          f"to the uninterrupted run; {sum(bool(r['had_checkpoint']) for r in results)} kills "
          "came after the first checkpoint")
    bad = any(r["unloadable"] or r["resume_failed"] or r["tmp_after_resume"] or
              not r["identical"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
