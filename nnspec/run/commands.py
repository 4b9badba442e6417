"""``nnspec train`` and ``nnspec eval`` as functions returning exit codes (cli.py calls these).

Every failure a user can cause is printed as compiler-style lines and mapped to its exit code
(2 invalid spec, 3 failed run, 128 + N stopped by signal N); nothing they caused shows a trace.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from nnspec import errors
from nnspec.errors import EXIT_OK, NnspecError, RunError, SpecError, one_line
from nnspec.run import api, init
from nnspec.run.loop import Interrupted


def _report(exc: NnspecError, err: TextIO) -> int:
    if isinstance(exc, SpecError):
        err.write(exc.render() + "\n")
    elif isinstance(exc, RunError):
        err.write(f"error: {one_line(exc.message)}\n")
        if exc.hint:
            err.write(f"  hint: {one_line(exc.hint)}\n")
    else:
        err.write(f"error: {exc}\n")
    return exc.exit_code


def _guard(body: Callable[[], int], err: TextIO) -> int:
    try:
        return body()
    except Interrupted as exc:
        err.write(f"stopped: checkpoint committed; continue with --resume ({exc})\n")
        return exc.exit_code
    except NnspecError as exc:
        return _report(exc, err)


def train_command(spec_path: str, overrides: list[str], run_dir: str | None = None,
                  resume: str | None = None, device: str | None = None,
                  explain_init: bool = False, *, out: TextIO | None = None,
                  err: TextIO | None = None) -> int:
    """``nnspec train SPEC [KEY=VALUE ...] [--run-dir] [--resume] [--device] [--explain-init]``.

    ``--explain-init`` prints which init rule decides each parameter and exits without training.
    """
    stdout, stderr = out or sys.stdout, err or sys.stderr

    def body() -> int:
        spec = api.load(spec_path, overrides)
        if explain_init:
            import torch

            from nnspec import api as nnspec_api

            torch.manual_seed(spec.train.seed)
            model = nnspec_api.compile(spec)
            init.check_rules(spec.init)
            stdout.write("\n".join(init.explain_lines(model, spec.init)) + "\n")
            return EXIT_OK
        api.train(spec, run_dir=run_dir, resume=resume, device=device, stream=stderr)
        return EXIT_OK

    return _guard(body, stderr)


def relaunch_command(nproc: int, spec_path: str, overrides: list[str],
                     run_dir: str | None = None, resume: str | None = None,
                     device: str | None = None, *, err: TextIO | None = None,
                     global_args: list[str] | None = None,
                     nodes: dict[str, Any] | None = None) -> int:
    """``nnspec train SPEC --nproc-per-node N``: become ``torchrun --standalone ... -m nnspec
    train SPEC`` (the same arguments without the option, ``global_args`` such as --plugin
    before ``train``), so signals and the exit code are torchrun's.  ``nodes``: torchrun's
    multi-node options (``distributed.Launch``), passed on in place of ``--standalone``."""
    from nnspec.run import distributed

    launch = distributed.Launch(**(nodes or {}))

    args = [spec_path, *overrides]
    for flag, value in (("--run-dir", run_dir), ("--resume", resume), ("--device", device)):
        if value is not None:
            args += [flag, value]

    def body() -> int:
        # the spec and its overrides are checked here, before any process starts: torchrun
        # would report a bad spec as every rank's failure
        from nnspec import api as nnspec_api

        problems = launch.problems()
        if problems:
            raise SpecError([errors.Problem(errors.COMMAND_LINE, (), message, hint or None)
                             for message, hint in problems])
        spec = api.load(spec_path, overrides)
        nnspec_api.validate(spec)
        if launch.nnodes in (None, "1", "1:1"):
            distributed.strategy_for(spec, nproc)  # fsdp on one process: refused here
        return distributed.relaunch(nproc, args, global_args or [], launch)

    return _guard(body, err or sys.stderr)


def eval_command(spec_path: str, checkpoint: str, split: str | None = None,
                 overrides: list[str] | None = None, device: str | None = None, *,
                 out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``nnspec eval SPEC --checkpoint PATH [--split SPLIT]``: print and write the metrics.

    Without ``--split``, the test split where the data has one, else val.  The metrics go to
    ``eval-SPLIT.json`` in the checkpoint's run directory (next to the checkpoint when it is not
    inside one).
    """
    stdout, stderr = out or sys.stdout, err or sys.stderr

    def body() -> int:
        chosen, metrics = api.evaluate_split(spec_path, checkpoint, split, overrides or [],
                                             device)
        stdout.write("  ".join(f"{chosen}.{k} {v:.4f}" for k, v in metrics.items()) + "\n")
        ckpt = Path(checkpoint)
        folder = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
        record = {"split": chosen, "checkpoint": str(ckpt), **metrics}
        (folder / f"eval-{chosen}.json").write_text(json.dumps(record, indent=2) + "\n")
        return EXIT_OK

    return _guard(body, stderr)


def predict_command(spec_path: str, checkpoint: str, inputs: list[str], top_k: int = 5,
                    fmt: str = "text", overrides: list[str] | None = None,
                    device: str | None = None, *, out: TextIO | None = None,
                    err: TextIO | None = None) -> int:
    """``nnspec predict SPEC --checkpoint PATH INPUT... [--top-k K] [--format text|json]``."""
    stdout, stderr = out or sys.stdout, err or sys.stderr

    def body() -> int:
        from nnspec.run.predict import predict, text_lines
        from nnspec.run.setup import resolve_device

        api.check_device_option(device)
        spec = api.load(spec_path, overrides or [])
        found = predict(spec, Path(checkpoint), inputs, top_k,
                        resolve_device(device or spec.train.device))
        text = json.dumps(found, indent=2) if fmt == "json" else "\n".join(text_lines(found))
        stdout.write(text + "\n")
        return EXIT_OK

    return _guard(body, stderr)


def export_command(spec_path: str, checkpoint: str, fmt: str, output: Path,
                   overrides: list[str] | None = None, *, force: bool = False,
                   err: TextIO | None = None) -> int:
    """``nnspec export SPEC --checkpoint PATH --format onnx|pt2|safetensors -o FILE``."""
    stderr = err or sys.stderr

    def body() -> int:
        from nnspec.run.export import check_packages, export
        from nnspec.run.predict import load_model

        check_packages(fmt)
        _check_output(output, force)
        spec = api.load(spec_path, overrides or [])
        export(spec, load_model(spec, Path(checkpoint)), fmt, output)
        stderr.write(f"wrote {output} ({output.stat().st_size:,} bytes)\n")
        return EXIT_OK

    return _guard(body, stderr)


def _check_output(output: Path, force: bool) -> None:
    from nnspec.errors import Location, Problem

    def refuse(message: str, hint: str) -> SpecError:
        return SpecError([Problem(Location("<command line>"), (), message, hint)])

    if output.is_dir():
        raise refuse(f"{output} is a folder", f"name a file in it: -o {output / 'NAME'}")
    if output.exists() and not force:
        raise refuse(f"{output} exists", "pass --force to overwrite it")
    if not output.parent.is_dir():
        raise refuse(f"cannot write {output}: there is no folder {output.parent}",
                     "create it first, or write elsewhere")


__all__ = ["eval_command", "export_command", "predict_command", "relaunch_command",
           "train_command"]
