"""The generic training loop: epochs of steps, evaluation, logging, checkpoints, exact resume.

A checkpoint captures everything that shapes the rest of the run (weights, optimizer, scheduler,
scaler, the random state, epoch, batch position, step counter, the partial epoch's accumulators,
the best value so far), so a run resumed on the CPU ends bit-identical to one never stopped.
SIGINT and SIGTERM set a flag; the loop finishes the step (and any gradient accumulation in
flight), commits a checkpoint and exits with 128 + the signal number.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from nnspec.errors import RunError
from nnspec.run import checkpoint
from nnspec.run.distributed import SilentLog
from nnspec.run.graphed import stepper_for
from nnspec.run.metrics import Meter
from nnspec.run.optim import current_lr
from nnspec.run.record import Board, MetricsLog, Progress
from nnspec.run.setup import Parts
from nnspec.run.step import batch_size, evaluate
from nnspec.run.stopping import Stops

# What a metrics.jsonl record holds besides the split's metrics.
RECORD_FIELDS = frozenset({"epoch", "split", "samples", "samples_per_s", "seconds", "time", "lr"})


class _TimeUp(Exception):
    """train.max_time ran out mid-epoch; the checkpoint is committed."""


class Interrupted(Exception):
    """The run stopped on a signal after committing a checkpoint."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.exit_code = 128 + signum


@dataclass
class Summary:
    run_dir: Path
    best_value: float | None
    best_epoch: int | None
    monitor: str
    epochs: int
    seconds: float
    last: dict[str, dict[str, float]] = field(default_factory=dict)
    path: str = ""  # which path ran (run.path in resolved.json)
    stopped: str | None = None  # why the run ended before its last epoch


@contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """Collect SIGINT/SIGTERM into a list instead of dying mid-step (main thread only)."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield received
        return
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Trainer:
    def __init__(self, parts: Parts, run_dir: Path, resolved: dict[str, Any],
                 resume: dict[str, Any] | None, progress: Progress) -> None:
        self.parts = parts
        self.run_dir = run_dir
        self.resolved = resolved
        self.progress = progress
        self.stepper = stepper_for(parts)  # eager, or the step captured as a CUDA graph
        self.epoch, self.position = 0, 0
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.meter = self._meter()
        self.partial: dict[str, Any] | None = None
        self.stops = Stops(parts.spec.train, parts.monitor, list(parts.batches))
        if resume is not None:
            self._restore(resume)
        log = parts.spec.log
        writer = parts.dist.writer  # under DDP rank 0 alone writes the run directory
        self.metrics = MetricsLog(run_dir / "metrics.jsonl",
                                  resume["metrics_lines"] if resume else None) if writer \
            else SilentLog()
        self.board = Board(run_dir / "tensorboard" if log.tensorboard and writer else None,
                           self._run_batch(self.position - 1) + 1 if resume else None)
        self.signals: list[int] = []
        # Work that need not delay the first step (the TensorBoard graph), run after the first
        # epoch's training records, before its evaluation.
        self.after_first_epoch: Callable[[], None] | None = None

    def _meter(self) -> Meter:
        return Meter(self.parts.spec.train.metrics, self.parts.loss.name, self.parts.device,
                     self.parts.dist)

    # ---- the loop ------------------------------------------------------------------------------

    def fit(self) -> Summary:
        start = time.perf_counter()
        self.parts.model.train()
        with stop_on_signals() as self.signals:
            last = self._epochs()
        if self.stops.stopped:
            self.metrics.write(self.stops.record(self.epoch))
        if self.board.enabled:
            self.board.hparams(_hparams(self.resolved), self._best_metrics(last))
        self.board.close()
        split, metric = self.parts.monitor
        return Summary(self.run_dir, self.best, self.best_epoch, f"{split}.{metric}",
                       self.epoch, time.perf_counter() - start, last, stopped=self.stops.stopped)

    def _epochs(self) -> dict[str, dict[str, float]]:
        """Run the epochs left, or until a stopping rule or a signal ends the run."""
        last: dict[str, dict[str, float]] = {}
        if self.stops.before_start():
            return last
        while self.epoch < self.parts.spec.train.epochs:
            try:
                last = self._run_epoch()
            except _TimeUp:
                self.stops.time_up()
                break
            stop = self.stops.after_epoch(last, self.epoch + 1)
            self.epoch, self.position = self.epoch + 1, 0
            self.meter = self._meter()
            self._save("last")
            self._stop_if_signalled()
            if stop:
                break
        return last

    def _best_metrics(self, last: dict[str, dict[str, float]]) -> dict[str, float]:
        """SPLIT.METRIC of the best monitored epoch (what TensorBoard's hparams compare), read
        back from metrics.jsonl so that a resumed run finds epochs run before it."""
        found = {f"{r['split']}.{k}": v for r in self.metrics.records()
                 if r.get("epoch") == self.best_epoch and "split" in r  # not a stop event
                 for k, v in r.items() if k not in RECORD_FIELDS}
        return found or {f"{s}.{k}": v for s, m in last.items() for k, v in m.items()}

    def _run_epoch(self) -> dict[str, dict[str, float]]:
        parts, spec = self.parts, self.parts.spec
        batches = parts.batches["train"]
        if parts.tuning is not None:
            parts.tuning.begin_epoch(self.epoch)  # staged unfreezing
        self.progress.begin_epoch()
        tick, seen = time.perf_counter(), 0
        every, final = spec.log.every_n_steps, len(batches) - 1
        for index, batch in enumerate(self.stepper.epoch_batches(batches, self.epoch,
                                                                 self.position), self.position):
            self.stepper.train_batch(batch, self.meter, self._run_batch(index),
                                     last=index == final)
            self.position, seen = index + 1, seen + batch_size(batch)
            if self.stepper.notes:
                self._notes()
            at_interval = self._run_batch(index) % every == 0  # counted over the run, so
            if self.stepper.check_each_step or at_interval:  # epochs shorter than N still log
                self._check_finite()
            if at_interval:
                self._log_step(len(batches), seen)
            if self.stepper.pending == 0 and self._stop_requested():
                self._save("last")
                self._stop_if_signalled()
                raise _TimeUp  # no signal: the time limit asked
        self.stepper.optimizer_step()
        self._check_finite()
        seconds = time.perf_counter() - tick
        seen *= parts.dist.world  # every rank trains the same number of samples
        results = {"train": self.meter.read()}
        self._write("train", results["train"], seen, seconds)
        if self.after_first_epoch is not None:
            deferred, self.after_first_epoch = self.after_first_epoch, None
            deferred()
        for split in [s for s in parts.batches if s != "train"]:
            t0 = time.perf_counter()
            results[split] = evaluate(parts, split, self.epoch)
            self._write(split, results[split], len(parts.batches[split].split.source),
                        time.perf_counter() - t0)
        self._step_epoch_scheduler(results)
        self._track_best(results)
        self.progress.line(_epoch_line(self.epoch + 1, spec.train.epochs, results, seen,
                                       seconds))
        return results

    def _notes(self) -> None:
        for note in self.stepper.notes:
            self.progress.line(note)
        self.stepper.notes.clear()

    def _run_batch(self, index: int) -> int:
        """A batch's number counted over the whole run (what error messages call the step)."""
        return self.epoch * len(self.parts.batches["train"]) + index + 1

    def _check_finite(self) -> None:
        bad = self.stepper.bad_step()
        if bad is not None:
            raise RunError(f"the loss is not finite at step {bad} (epoch {self.epoch + 1})",
                           hint="lower the learning rate, clip gradients (train.grad_clip) or "
                           "check the data; no checkpoint was written for this state")

    def _log_step(self, total: int, seen: int) -> None:
        """TensorBoard's per-step curve: the mean loss over the last log interval of batches."""
        loss = self.stepper.take_interval_loss()
        step = self._run_batch(self.position - 1)
        self.board.scalar("train/loss_step", loss, step)
        self.board.scalar("train/lr", current_lr(self.parts.optimizer), step)
        self.progress.update(self.epoch + 1, self.parts.spec.train.epochs, self.position, total,
                             loss, seen)

    def _write(self, split: str, values: dict[str, float], samples: int, seconds: float) -> None:
        record = {"epoch": self.epoch + 1, "split": split, **values, "samples": samples,
                  "samples_per_s": round(samples / seconds, 1) if seconds > 0 else None,
                  "seconds": round(seconds, 4), "time": time.time(),
                  "lr": current_lr(self.parts.optimizer)}
        self.metrics.write(record)
        for k, v in values.items():
            self.board.scalar(f"{split}/{k}", v, self.epoch + 1)
        if split == "train":
            self.board.scalar("train/lr_epoch", current_lr(self.parts.optimizer), self.epoch + 1)
            groups = self.parts.optimizer.param_groups
            for i, group in enumerate(groups if len(groups) > 1 else []):
                self.board.scalar(f"train/lr_group{i}", float(group["lr"]), self.epoch + 1)

    def _step_epoch_scheduler(self, results: dict[str, dict[str, float]]) -> None:
        sched, cfg = self.parts.scheduler, self.parts.spec.scheduler
        if sched is None or cfg is None or cfg.interval != "epoch":
            return
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            split, metric = self.parts.monitor
            sched.step(results[split][metric])
        else:
            sched.step()

    def _track_best(self, results: dict[str, dict[str, float]]) -> None:
        split, metric = self.parts.monitor
        value = results[split][metric]
        better = self.best is None or (value > self.best if self.parts.maximize
                                       else value < self.best)
        if better:
            self.best, self.best_epoch = value, self.epoch + 1
            self._save("best", epoch=self.epoch + 1)

    def _stop_requested(self) -> bool:
        """A signal arrived or the time is up; under DDP on any rank, asked by all ranks at log
        intervals."""
        dist = self.parts.dist
        if not dist.active:
            return bool(self.signals) or self.stops.out_of_time()
        if self._run_batch(self.position - 1) % self.parts.spec.log.every_n_steps:
            return False
        flags = torch.tensor([self.signals[0] if self.signals else 0,
                              int(self.stops.out_of_time())], device=self.parts.device)
        return bool(dist.max_(flags).any())

    def _stop_if_signalled(self) -> None:
        signum = self.parts.dist.shared_signal(self.signals, self.parts.device)
        if signum:
            raise Interrupted(signum)

    # ---- checkpoints ---------------------------------------------------------------------------

    def _save(self, which: str, epoch: int | None = None) -> None:
        """``last``: everything resume needs; ``best``: what evaluation, prediction and export
        need (weights, metadata, the spec), no optimizer state, a third of an Adam run's last."""
        self._check_finite()
        parts = self.parts
        if parts.dist.sharded:
            self._save_sharded(which, epoch)
            return
        if which == "best":
            if parts.dist.writer:
                checkpoint.save(self.run_dir / "checkpoints" / "best.pt", checkpoint.weights_state(
                    parts.model.state_dict(), self.resolved, self._meta(),
                    epoch=epoch, best=self.best))
            return
        meter = self.meter.state()  # a collective under DDP: every rank saves, rank 0 writes
        if not parts.dist.writer:
            return
        state = {
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            **self._resume_state(meter, epoch),
        }
        checkpoint.save(self.run_dir / "checkpoints" / f"{which}.pt", state)

    def _resume_state(self, meter: dict[str, Any], epoch: int | None) -> dict[str, Any]:
        """What a resume restores besides the model and optimizer."""
        parts = self.parts
        return {
            "format": checkpoint.FORMAT,
            "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else None,
            "scaler": parts.scaler.state_dict() if parts.scaler is not None else None,
            "rng": _rng_state(),
            "epoch": self.epoch if epoch is None else epoch,
            "position": self.position if epoch is None else 0,
            "global_step": self.stepper.global_step,
            "meter": meter,
            "best": self.best, "best_epoch": self.best_epoch,
            "metrics_lines": self.metrics.lines if hasattr(self, "metrics") else 0,
            "spec": self.resolved,
            "stopping": self.stops.state(),
            "meta": self._meta(),
        }

    def _save_sharded(self, which: str, epoch: int | None) -> None:
        """Under FSDP every rank writes its shards into one folder (sharded.py)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

        from nnspec.run import fsdp, sharded

        parts = self.parts
        fsdp.sync_buffers(parts.model, parts.dist)
        tensors: dict[str, Any] = {}
        if which == "best":
            tensors["model"] = get_model_state_dict(parts.model)
            state = checkpoint.weights_state({}, self.resolved, self._meta(), epoch=epoch,
                                             best=self.best)
        else:
            tensors["model"], tensors["optim"] = get_state_dict(parts.model, parts.optimizer)
            state = self._resume_state(self.meter.state(), epoch)
        state.pop("model", None)
        sharded.save(self.run_dir / "checkpoints" / which, tensors, state, parts.dist.writer,
                     torch.distributed.barrier)

    def _meta(self) -> dict[str, Any]:
        """What prediction needs besides the spec (class names, statistics): metadata.py."""
        return self.parts.batches["train"].split.meta

    def _restore(self, state: dict[str, Any]) -> None:
        """Everything the checkpoint saved; a part that does not fit this run is refused."""
        try:
            self._restore_parts(state)
        except (ValueError, KeyError, RuntimeError, TypeError, IndexError) as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise checkpoint.not_of_this_spec(self.run_dir / "checkpoints" / "last.pt",
                                              [f"its optimizer or random state: {detail}"]) \
                from None

    def _restore_parts(self, state: dict[str, Any]) -> None:
        parts = self.parts
        if "sharded" in state:
            from nnspec.run import sharded

            sharded.load_into(state, parts.model, parts.optimizer)
        else:
            parts.model.load_state_dict(state["model"])
            parts.optimizer.load_state_dict(state["optimizer"])
        if parts.scheduler is not None and state["scheduler"] is not None:
            parts.scheduler.load_state_dict(state["scheduler"])
        if parts.scaler is not None and state["scaler"] is not None:
            parts.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.epoch, self.position = state["epoch"], state["position"]
        self.stepper.global_step = state["global_step"]
        self.meter.load(state["meter"])
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.stops.load(state.get("stopping"))


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _hparams(resolved: dict[str, Any]) -> dict[str, Any]:
    flat = checkpoint.flatten({k: resolved.get(k) for k in ("optimizer", "train", "scheduler")})
    flat["data.batch_size"] = resolved.get("data", {}).get("batch_size")
    return {k: v for k, v in flat.items() if v is not None and not isinstance(v, list | dict)}


def _epoch_line(epoch: int, epochs: int, results: dict[str, dict[str, float]], samples: int,
                seconds: float) -> str:
    parts = [f"epoch {epoch}/{epochs}"]
    for split, values in results.items():
        parts.append(" ".join(f"{split}.{k} {v:.4f}" for k, v in values.items()))
    rate = samples / seconds if seconds > 0 else 0.0
    parts.append(f"{rate:,.0f} samples/s")
    return "  ".join(parts)
