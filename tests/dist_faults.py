"""Fault injection and parameter dumps for the DDP tests, from the test side.

    python tests/dist_faults.py ARGS...     # runs `nnspec ARGS...` with these patched in

nnspec carries no test hooks; this script patches its classes before calling its entry point,
in the launching process and (through ``relaunch_args``) in every rank torchrun starts:

    FAULT_CRASH=RANK:STEP[:hang]   rank RANK fails (or sleeps) after optimizer step STEP
    FAULT_DUMP=FOLDER              each rank writes FOLDER/rank{R}.json: its parameters' hash
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _crash_after_steps(step_class: Any, raw: str) -> None:
    fields = raw.split(":")
    if int(fields[0]) != _rank():
        return
    crash_step, hang = int(fields[1]), len(fields) > 2 and fields[2] == "hang"
    original = step_class.train_batch

    def train_batch(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.global_step >= crash_step:
            if hang:
                time.sleep(3600)
            raise RuntimeError(f"rank {_rank()}: injected failure after step {self.global_step}")

    step_class.train_batch = train_batch


def _dump_after_fit(trainer_class: Any, folder: str) -> None:
    original = trainer_class.fit

    def fit(self: Any) -> Any:
        summary = original(self)
        digest, total = hashlib.sha256(), 0.0
        for name, p in sorted(self.parts.model.state_dict().items()):
            data = p.detach().cpu().contiguous()
            digest.update(name.encode())
            digest.update(data.numpy().tobytes())
            total += float(data.double().sum())
        dist = self.parts.dist
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"rank{dist.rank}.json").write_text(json.dumps(
            {"rank": dist.rank, "world": dist.world, "sha256": digest.hexdigest(),
             "sum": total}))
        return summary

    trainer_class.fit = fit


def _relaunch_through_this_script(distributed: Any) -> None:
    original = distributed.relaunch_args

    def relaunch_args(*args: Any, **kwargs: Any) -> list[str]:
        argv: list[str] = original(*args, **kwargs)
        at = argv.index("-m", argv.index("torch.distributed.run") + 1)
        return [*argv[:at], __file__, *argv[at + 2:]]  # this script instead of `-m nnspec`

    distributed.relaunch_args = relaunch_args


def install() -> None:
    from nnspec.run import distributed, loop, step

    if os.environ.get("FAULT_CRASH"):
        _crash_after_steps(step.Stepper, os.environ["FAULT_CRASH"])
    if os.environ.get("FAULT_DUMP"):
        _dump_after_fit(loop.Trainer, os.environ["FAULT_DUMP"])
    _relaunch_through_this_script(distributed)


if __name__ == "__main__":
    install()
    from nnspec.cli import main

    sys.argv[0] = "nnspec"
    main()
