"""When a run ends before its last epoch: early stopping and the time limit.

Both keep their state in the checkpoint (``stopping``), so ``--resume`` goes on counting: the
epochs without improvement, and the training time spent.  Raising ``train.max_time`` or
``train.early_stopping.patience`` and resuming continues a run that stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nnspec.lang.spec import Train
from nnspec.run.metrics import higher_is_better


@dataclass
class EarlyStop:
    """Epochs without an improvement of more than ``min_delta`` in ``split.metric``."""

    split: str
    metric: str
    maximize: bool
    patience: int
    min_delta: float
    best: float | None = None
    best_epoch: int | None = None
    wait: int = 0

    @property
    def monitor(self) -> str:
        return f"{self.split}.{self.metric}"

    def update(self, results: dict[str, dict[str, float]], epoch: int) -> bool:
        """Record an epoch's results; True when the run should stop."""
        value = results[self.split][self.metric]
        gain = (value - self.best if self.maximize else self.best - value) \
            if self.best is not None else float("inf")
        if gain > self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
        return self.done

    @property
    def done(self) -> bool:
        return self.wait >= self.patience

    def reason(self) -> str:
        return (f"{self.monitor} did not improve by more than {self.min_delta:g} for "
                f"{self.wait} epochs (best {self.best:.4f} at epoch {self.best_epoch})")


class Stops:
    """The run's stopping rules and what they have seen; ``stopped`` says why it ended early."""

    def __init__(self, train: Train, monitor: tuple[str, str], splits: list[str]) -> None:
        self.max_time = train.max_time
        self.spent = 0.0  # training seconds of earlier processes of this run (resumes)
        self.started = time.perf_counter()
        self.stopped: str | None = None
        self.early: EarlyStop | None = None
        rule = train.early_stopping
        if rule is not None:
            split, metric = monitor
            if rule.monitor is not None:
                split, _, metric = rule.monitor.partition(".")
                split = split if split in splits else "train"  # no val: the training loss
            mode = rule.mode or train.mode
            maximize = higher_is_better(metric) if mode == "auto" else mode == "max"
            self.early = EarlyStop(split, metric, maximize, rule.patience, rule.min_delta)

    def elapsed(self) -> float:
        return self.spent + time.perf_counter() - self.started

    def out_of_time(self) -> bool:
        return self.max_time is not None and self.elapsed() >= self.max_time

    def after_epoch(self, results: dict[str, dict[str, float]], epoch: int) -> bool:
        """Whether the run ends after this epoch; sets ``stopped``."""
        if self.early is not None and self.early.update(results, epoch):
            self.stopped = f"stopped early: {self.early.reason()}"
        elif self.out_of_time():
            self.time_up()
        return self.stopped is not None

    def time_up(self) -> None:
        self.stopped = f"stopped at the time limit: train.max_time {self.max_time:g}s reached " \
            f"after {self.elapsed():.1f}s"

    def before_start(self) -> bool:
        """A resumed run that already met its rules stops at once (raise them to go on)."""
        if self.early is not None and self.early.done:
            self.stopped = f"stopped early: {self.early.reason()}; raise " \
                "train.early_stopping.patience to continue"
        elif self.max_time is not None and self.spent >= self.max_time:  # resumed, spent
            self.stopped = f"stopped at the time limit: {self.spent:.1f}s spent of " \
                f"train.max_time {self.max_time:g}s; raise it to continue"
        return self.stopped is not None

    def record(self, epoch: int) -> dict[str, Any]:
        """The metrics.jsonl record of an early end."""
        early = self.early
        kind = "early_stopping" if early is not None and early.done else "max_time"
        out: dict[str, Any] = {"event": "stop", "reason": kind, "epoch": epoch,
                               "message": self.stopped, "elapsed": round(self.elapsed(), 3),
                               "time": time.time()}
        if kind == "early_stopping" and early is not None:
            out.update(monitor=early.monitor, best=early.best, best_epoch=early.best_epoch,
                       patience=early.patience, min_delta=early.min_delta)
        return out

    def state(self) -> dict[str, Any]:
        early = self.early
        return {"elapsed": self.elapsed(),
                "early": None if early is None else
                {"best": early.best, "best_epoch": early.best_epoch, "wait": early.wait,
                 "monitor": early.monitor}}

    def load(self, state: dict[str, Any] | None) -> None:
        if not state:
            return
        self.spent, self.started = float(state.get("elapsed", 0.0)), time.perf_counter()
        saved = state.get("early")
        if self.early is not None and saved and saved.get("monitor") == self.early.monitor:
            self.early.best, self.early.best_epoch = saved["best"], saved["best_epoch"]
            self.early.wait = int(saved["wait"])
