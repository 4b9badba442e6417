"""The runner's Python API: ``train`` and ``evaluate_checkpoint``, which the CLI commands wrap.

A notebook user calls ``nnspec.run.train(spec)`` with a loaded spec (or a path) and gets a
``Summary``; errors arrive as ``SpecError`` / ``RunError`` for the caller to show.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from nnspec.errors import COMMAND_LINE, RunError, SpecError, Stopped
from nnspec.lang.spec import DEVICE_HINT, Spec, device_problem
from nnspec.run import checkpoint, distributed, graphed, setup
from nnspec.run import choices as auto_choices
from nnspec.run.loop import Interrupted, Summary, Trainer
from nnspec.run.record import Board, Progress, new_run_dir, prepare_dir, write_summary
from nnspec.run.step import evaluate, out_of_memory
from nnspec.run.table import Table


def load(spec: Spec | str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    if isinstance(spec, Spec):
        if overrides:
            raise ValueError("overrides apply to a spec file; pass a path, or edit the Spec")
        return spec
    from nnspec import api

    loaded: Spec = api.load_spec(str(spec), list(overrides))
    return loaded


def resolved(spec: Spec, parts: setup.Parts) -> dict[str, Any]:
    """Every setting of the run after overrides and defaults, and the model as built."""
    def dump(value: Any) -> Any:
        return value.model_dump(mode="json") if value is not None else None

    settings = {
        "name": spec.name,
        "inputs": {k: dump(v) for k, v in spec.inputs.items()},
        "model": repr(parts.model),
        "parameters": sum(p.numel() for p in parts.model.parameters()),
        "data": dump(spec.data), "init": [dump(r) for r in spec.init], "loss": dump(spec.loss),
        **_finetune_settings(spec),
        "optimizer": spec.optimizer.model_dump(mode="json", exclude=None if spec.groups
                                               else {"groups"}) if spec.optimizer else None,
        "scheduler": dump(spec.scheduler),
        # train as it ran: what auto became (a resumed run must compute the same)
        "train": dump(parts.spec.train), "log": dump(spec.log),
        "run": {"device": str(parts.device),
                "data": {k: b.describe() for k, b in parts.batches.items()},
                **_stand_in(parts), "torch": str(torch.__version__), **run_path(spec, parts),
                **(parts.tuning.record() if parts.tuning is not None else {})},
    }
    # Plain JSON types only: the checkpoint that stores this must load with weights_only=True.
    plain: dict[str, Any] = json.loads(json.dumps(settings))
    return plain


def _stand_in(parts: setup.Parts) -> dict[str, str]:
    """Why the run trains on data.fallback's dataset, when it does."""
    why = next((b.split.stand_in for b in parts.batches.values() if b.split.stand_in), None)
    return {"stand_in": why} if why else {}


def _finetune_settings(spec: Spec) -> dict[str, Any]:
    """weights and freeze, where the spec has them (absent, a run's settings are as they were
    before these sections existed, so older checkpoints resume)."""
    return {
        **({"weights": spec.weights.model_dump(mode="json", by_alias=True)} if spec.weights
           else {}),
        **({"freeze": [r.model_dump(mode="json") for r in spec.freeze]} if spec.freeze else {}),
    }


def run_path(spec: Spec, parts: setup.Parts) -> dict[str, Any]:
    """Which path runs: data feed, step (CUDA graph, compiled, eager), precision, memory format,
    processes; each setting nnspec chose for an ``auto`` marked ``(auto)``."""
    step = graphed.describe(parts)
    dist, train, chosen = parts.dist, parts.spec.train, parts.choices
    flushed = ["denormals flushed"] if train.flush_denormal and parts.device.type == "cpu" \
        else []
    step_auto = chosen is not None and chosen.compile.auto and train.cuda_graph == "auto"
    shown = [f"{step['step']} (auto)" if step_auto else step["step"],
             f"precision {train.precision}", str(train.memory_format)]
    if chosen is not None:
        shown[1:] = [chosen.precision.shown(shown[1]), chosen.memory_format.shown(shown[2])]
    path = ", ".join([f"data {parts.batches['train'].describe()}", *shown, *flushed,
                      dist.describe()])
    return {"path": path, **step, "precision": str(train.precision),
            "memory_format": str(train.memory_format),
            **({"choices": chosen.record()} if chosen is not None else {}),
            "world_size": dist.world, "backend": dist.backend}


def train(spec: Spec | str | Path, *, overrides: list[str] | tuple[str, ...] = (),
          run_dir: str | Path | None = None, resume: str | Path | None = None,
          device: str | None = None, model: nn.Module | None = None,
          stream: TextIO | None = None) -> Summary:
    """Train a spec; returns the summary.  ``model`` replaces the compiled one (same seed rules).

    Under torchrun every process calls this; see ``distributed`` for what each rank does.
    """
    check_device_option(device)
    spec = load(spec, overrides)
    dist, device = distributed.init(device or spec.train.device, spec)
    try:
        summary = _train(spec, dist, run_dir, resume, device, model, stream)
    except OSError as exc:  # a file the run reads or writes: the run fails, with its name
        raise RunError(os_failure(exc)) from None
    except (MemoryError, RuntimeError) as exc:
        if not out_of_memory(exc):
            raise
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        detail = text[text.find("can't allocate"):] if "can't allocate" in text else text[:200]
        raise RunError(f"out of memory: {detail}", hint="lower data.batch_size, use precision "
                       "bf16-mixed, or shard the model over processes (train.strategy fsdp, "
                       "--nproc-per-node N)") from None
    distributed.finish(dist)  # not on an error: the process ends, and a peer may be gone
    return summary


def os_failure(exc: OSError) -> str:
    """``cannot use runs/x/metrics.jsonl: No space left on device`` (never the content)."""
    name = f" {exc.filename}" if exc.filename else ""
    if exc.strerror or name:
        return f"cannot use{name}: {exc.strerror or type(exc).__name__}"
    # no errno: an OSError raised by a reader, PIL's "cannot identify image file 'x.png'"
    lines = [line for line in str(exc).strip().splitlines() if line.strip()] or [""]
    # a DataLoader worker's: "Caught X in DataLoader worker process 0.", its trace, then X's
    said = lines[-1] if lines[0].startswith("Caught ") else lines[0]
    said = re.sub(r"^[\w.]+(Error|Exception): ", "", said.strip())
    said = re.sub(r"<_io\.\w+ name=('[^']*')>", r"\1", said)[:300]  # PIL's file object
    return f"cannot read the data: {said or type(exc).__name__}"


def check_device_option(device: str | None) -> None:
    """A malformed --device is a usage error (exit 2); an absent one is the run's (exit 3)."""
    problem = device_problem(device) if device is not None else None
    if problem:
        raise SpecError.at(COMMAND_LINE, (), f"{problem} given to --device",
                           DEVICE_HINT)


def _train(spec: Spec, dist: distributed.Dist, run_dir: str | Path | None,
           resume: str | Path | None, device: str, model: nn.Module | None,
           stream: TextIO | None) -> Summary:
    out = (stream or sys.stderr) if dist.writer else io.StringIO()  # rank 0 alone speaks
    state = last = None
    if resume is not None:
        _check_resume_option(Path(resume), run_dir)
        run_dir = Path(resume)
        state, last = _resume_state(run_dir, dist)
    parts = setup.build(spec, device, model, dist=dist, start_weights=state is None)
    if state is not None and last is not None:
        checkpoint.check_fits(state.get("model") or state["shapes"], parts.model, last)
    with setup.flushing_denormals(spec, parts.device):
        return _fit(spec, parts, dist, run_dir, state, out)


def _resume_state(run_dir: Path, dist: distributed.Dist) -> tuple[dict[str, Any], Path]:
    """The last checkpoint of ``run_dir``, checked; leftovers of a killed write cleared."""
    from nnspec.run import sharded

    folder = run_dir / "checkpoints"
    last = checkpoint.last_of(run_dir)
    # a sharded one: every rank reads its state; its shards load into the model later
    state = sharded.read_state(last) if sharded.is_sharded(last) else checkpoint.load(last)
    checkpoint.check_complete(state, last)
    if dist.writer:  # a sharded checkpoint's leftovers go with its next write (sharded.save)
        checkpoint.clean_temporary(folder)  # left by a run killed mid-write
    return state, last


def _check_resume_option(resume: Path, run_dir: str | Path | None) -> None:
    """--resume names a run's folder, where the resumed run goes on; not a file, not elsewhere."""
    if run_dir is not None and Path(run_dir).resolve() != resume.resolve():
        raise SpecError.at(COMMAND_LINE, (),
                           f"--run-dir {run_dir} and --resume {resume} name different "
                           "folders", "a resumed run continues in its own folder: "
                           "leave --run-dir out")
    if resume.is_file():
        raise RunError(f"--resume {resume} is a file",
                       hint="give the run's folder, the one that holds checkpoints/last.pt")
    if not resume.is_dir():
        raise RunError(f"--resume {resume}: no such folder",
                       hint="give the folder of an earlier run (nnspec runs lists them)")
    if not checkpoint.last_of(resume).exists():
        raise RunError(f"--resume {resume}: the run has no checkpoints/last.pt to resume from",
                       hint=_no_last_hint(resume))


def _no_last_hint(resume: Path) -> str:
    folder = resume / "checkpoints"
    best = next((folder / n for n in ("best.pt", "best") if (folder / n).exists()), None)
    if best is not None:
        return (f"the run stopped before its first last.pt was written (it has {best}): start "
                "it again without --resume")
    if (resume / "resolved.json").is_file():
        return "the run stopped before its first epoch ended: start it again without --resume"
    return "this is not a run's folder: give the one nnspec train printed (nnspec runs lists them)"


def _fit(spec: Spec, parts: setup.Parts, dist: distributed.Dist, run_dir: str | Path | None,
         state: dict[str, Any] | None, out: TextIO) -> Summary:
    settings = resolved(spec, parts)
    if state is not None:
        notes = checkpoint.check_resume(state["spec"], settings, spec.file)
        if run_dir is not None and state["epoch"] >= spec.train.epochs:
            return _nothing_to_do(spec, parts, state, Path(run_dir), out)
        for note in notes:
            out.write(f"note: resuming with {note}\n")
    fresh = state is None and (run_dir is None or not Path(run_dir).exists())
    path = dist.from_writer(lambda: prepare_dir(  # rank 0 picks the directory, all use it
        Path(run_dir) if run_dir else new_run_dir(Path(spec.log.dir), spec.name),
        resume=state is not None))
    try:
        trainer = _start(spec, parts, dist, path, settings, state, out)
    except (Stopped, OSError, RunError):  # start-up ended: leave no half-made run behind
        if fresh and dist.writer:
            shutil.rmtree(path, ignore_errors=True)
        raise
    summary = _fit_recorded(trainer, spec, path, dist.writer, resumed=state is not None)
    summary.path = settings["run"]["path"]
    out.write(summary_text(summary) + "\n")
    return summary


def _nothing_to_do(spec: Spec, parts: setup.Parts, state: dict[str, Any], run_dir: Path,
                   out: TextIO) -> Summary:
    """A resume whose run already trained train.epochs epochs or more: say so, touch nothing."""
    done = state["epoch"]
    out.write(f"{run_dir}: already trained {done} epoch{'' if done == 1 else 's'} "
              f"(train.epochs: {spec.train.epochs}): nothing to do\n")
    split, metric = parts.monitor
    return Summary(run_dir, state.get("best"), state.get("best_epoch"), f"{split}.{metric}",
                   done, 0.0)


def _start(spec: Spec, parts: setup.Parts, dist: distributed.Dist, path: Path,
           settings: dict[str, Any], state: dict[str, Any] | None, out: TextIO) -> Trainer:
    if dist.writer:
        _write_spec(path, spec, settings)
    trainer = Trainer(parts, path, settings, state, Progress(out))
    # traced once the first epoch's training is done; not under FSDP, where rank 0 alone
    # cannot run a forward
    if state is None and spec.log.graph and not parts.dist.sharded:
        trainer.after_first_epoch = lambda: _graph(trainer.board, parts, out)
    out.write(f"training {spec.name} on {parts.device} ({settings['parameters']:,} parameters, "
              f"{settings['run']['path']}) -> {path}\n")
    for note in _monitor_notes(spec, parts):
        out.write(f"note: {note}\n")
    if parts.choices is not None:
        for caution in auto_choices.cautions(parts.choices, parts.device.type):
            out.write(f"warning: {caution}\n")
    if "stand_in" in settings["run"]:
        out.write(f"data: {settings['run']['stand_in']}\n")
    if spec.init and state is None:  # a resumed run's weights are the checkpoint's
        out.write(_init_line(len({m.param for m in parts.init_matches}),
                             len(list(parts.model.parameters()))))
    _tuning(parts, trainer, path, resuming=state is not None, out=out)
    return trainer


def _monitor_notes(spec: Spec, parts: setup.Parts) -> list[str]:
    """A val.* monitor without a validation split watches the training split instead: say so."""
    if "val" in parts.batches:
        return []
    early = spec.train.early_stopping
    said = [("train.monitor", spec.train.monitor),
            *([("train.early_stopping.monitor", early.monitor)]
              if early is not None and early.monitor else [])]
    return [f"no validation split: {key} {value} watches train.{value.partition('.')[2]} "
            "instead (set data.val_split or data.val to validate)"
            for key, value in said if value.startswith("val.")]


def _init_line(ruled: int, total: int) -> str:
    said = f"all {total}" if ruled == total else f"{ruled} of {total}"
    rest = "" if ruled == total else ", the rest PyTorch's defaults"
    return f"init: {said} parameter tensors set by init rules{rest} (--explain-init lists them)\n"


def _tuning(parts: setup.Parts, trainer: Trainer, path: Path, resuming: bool,
            out: TextIO) -> None:
    """The first lines about weights, freezing and groups; weights.json and TensorBoard."""
    tuning = parts.tuning
    if tuning is None:
        return
    tuning.begin_epoch(trainer.epoch)  # a resumed run's epoch: what trains now
    for line in tuning.lines(resuming):
        out.write(line + "\n")
    if tuning.report is not None and parts.dist.writer:
        (path / "weights.json").write_text(json.dumps(tuning.report.record(), indent=2) + "\n")
    if len(tuning.groups) > 1 and not resuming:
        rows = [f"| {i} | {g.name} | {len(g.params)} | {g.numel:,} | {json.dumps(g.settings)} |"
                for i, g in enumerate(tuning.groups)]
        trainer.board.text("optimizer/param_groups", "\n".join(
            ["| group | rules | tensors | parameters | settings |", "|---|---|---|---|---|",
             *rows]))


def _fit_recorded(trainer: Trainer, spec: Spec, path: Path, writer: bool,
                  resumed: bool) -> Summary:
    """``trainer.fit()``, with the run's status kept in summary.json (``nnspec runs``)."""
    def status(changes: dict[str, Any]) -> None:
        if writer:
            write_summary(path, {"epochs": trainer.epoch, "best": trainer.best,
                                 "best_epoch": trainer.best_epoch,
                                 "seconds": round(trainer.stops.elapsed(), 3), **changes})

    begin: dict[str, Any] = {"name": spec.name, "status": "running",
                             "epochs_planned": spec.train.epochs,
                             "monitor": ".".join(trainer.parts.monitor)}
    status(begin if resumed else {**begin, "started": time.time()})
    try:
        summary = trainer.fit()
    except Interrupted as exc:
        status({"status": "interrupted", "stopped": str(exc)})
        raise
    except RunError as exc:
        status({"status": "failed", "stopped": exc.message})
        raise
    kind = "completed" if summary.stopped is None else (
        "stopped early" if summary.stopped.startswith("stopped early") else "time limit")
    status({"status": kind, "stopped": summary.stopped})
    return summary


def _write_spec(path: Path, spec: Spec, settings: dict[str, Any]) -> None:
    if spec.source_text and not (path / "spec.yaml").exists():
        (path / "spec.yaml").write_text(spec.source_text)
    (path / "resolved.json").write_text(json.dumps(settings, indent=2) + "\n")


def _graph(board: Board, parts: setup.Parts, out: TextIO) -> None:
    """Trace the model on two training samples, in eval mode so no random state is used."""
    source = parts.batches["train"].table
    if not board.enabled or source is None:
        return
    names = parts.evaluator.input_names
    if not all(n in source.fields for n in names):
        return
    xs = tuple(source.fields[n][:2].to(parts.device, parts.evaluator.dtype) for n in names)
    parts.model.eval()
    problem = board.graph(parts.model, xs[0] if len(xs) == 1 else xs)
    parts.model.train()
    if problem:
        out.write(f"note: the model graph was not written to TensorBoard ({problem})\n")


def summary_text(s: Summary) -> str:
    best = (f"best {s.monitor} {s.best_value:.4f} at epoch {s.best_epoch}"
            if s.best_value is not None else "no epochs run")
    path = f" ({s.path})" if s.path else ""
    epochs = f"{s.epochs} epoch{'' if s.epochs == 1 else 's'}"
    stopped = f"{s.stopped}; " if s.stopped else ""
    return f"done: {best}; {stopped}{epochs} in {s.seconds:.1f}s{path}; run in {s.run_dir}"


def evaluate_checkpoint(spec: Spec | str | Path, checkpoint_path: str | Path,
                        split: str | None = None, overrides: list[str] | tuple[str, ...] = (),
                        device: str | None = None) -> dict[str, float]:
    """Load the weights of a checkpoint into the spec's model and measure one split (default:
    test where the data has one, else val)."""
    return evaluate_split(spec, checkpoint_path, split, overrides, device)[1]


def evaluate_split(spec: Spec | str | Path, checkpoint_path: str | Path,
                   split: str | None = None, overrides: list[str] | tuple[str, ...] = (),
                   device: str | None = None) -> tuple[str, dict[str, float]]:
    """``evaluate_checkpoint`` that also says which split it measured."""
    if split not in (None, "train", "val", "test"):  # else a KeyError deep in setup
        raise SpecError.at(COMMAND_LINE, (), f"unknown split {split!r}",
                           "use --split train, val or test")
    check_device_option(device)
    spec = load(spec, overrides)
    state = checkpoint.load(Path(checkpoint_path))
    split, parts = _eval_parts(spec, device, split)
    if split not in parts.batches:
        raise RunError(f"the data section defines no {split} split")
    checkpoint.check_fits(checkpoint.model_weights(state), parts.model, checkpoint_path)
    parts.model.load_state_dict(checkpoint.model_weights(state))
    return split, evaluate(parts, split)


def _eval_parts(spec: Spec, device: str | None, split: str | None) -> tuple[str, setup.Parts]:
    """The split to measure and the parts that measure it.  Without a split: the test split
    where the data has one (its own, or the dataset's test part when the files are there),
    else val."""
    if split is not None:
        return split, setup.build(spec, device, splits=[split])
    from nnspec.run.data import split_names

    names = split_names(spec.data) if spec.data is not None else ["test"]
    implicit = spec.data is not None and spec.data.test is None
    for name in [n for n in ("test", "val") if n in names]:
        try:
            return name, setup.build(spec, device, splits=[name])
        except RunError:
            if not (name == "test" and implicit and "val" in names):
                raise
    return "val", setup.build(spec, device, splits=["val"])


__all__ = ["Summary", "Table", "evaluate_checkpoint", "evaluate_split", "resolved", "summary_text",
           "train"]
