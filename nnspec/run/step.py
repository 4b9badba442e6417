"""One training step and one evaluation pass: what a hand-written loop does, and nothing more.

No step reads a value back to the host: the loss and metrics go into device accumulators
(``Meter``), and the non-finite check keeps the first bad step in a device tensor that the loop
reads at its logging interval (on the CPU, where reading costs nothing, every step).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from nnspec.errors import RunError
from nnspec.lang.loss_inputs import Expr
from nnspec.run import fsdp
from nnspec.run.batches import Batches
from nnspec.run.losses import loss_args
from nnspec.run.metrics import Meter, sum_dtype
from nnspec.run.setup import Parts
from nnspec.run.table import Batch

_OUTPUT = Expr("output")


def batch_size(batch: Batch) -> int:
    return int(next(iter(batch.values())).shape[0])


def forward_loss(parts: Parts, batch: Batch) -> tuple[Tensor, dict[str, Any]]:
    """The loss of one batch and the memo of everything computed for it."""
    memo: dict[str, Any] = {}
    with parts.autocast():
        values = [parts.evaluator(e, batch, memo) for e in parts.loss.inputs]
        loss: Tensor = parts.loss.module(*loss_args(parts.loss.name, values))
    return loss, memo


def record(parts: Parts, meter: Meter, loss: Tensor, memo: dict[str, Any], batch: Batch) -> None:
    """Add the batch to ``meter``, computing the plain output only if a metric needs it."""
    output = target = None
    if meter.metrics:
        if "output" not in memo and all(f in batch for f in parts.evaluator.input_names):
            with parts.autocast(), torch.no_grad():
                parts.evaluator(_OUTPUT, batch, memo)
        output, target = memo.get("output"), batch.get("target")
    meter.add(loss, batch_size(batch), output, target)


class Stepper:
    """Backward, accumulate, clip, step: the optimizer side of training."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.accumulate = parts.spec.train.accumulate
        self.clip = parts.spec.train.grad_clip
        self.global_step = 0  # optimizer steps taken
        self.pending = 0  # batches whose gradients wait for the next optimizer step
        self.first_bad = torch.full((), -1, dtype=torch.long, device=parts.device)
        # Under DDP the check is a collective, made where every rank makes it (log intervals).
        self.check_each_step = parts.device.type == "cpu" and not parts.dist.active
        self.host_bad: int | None = None  # the first bad step, when checked each step
        # Sum of the losses since the last log line, kept on the device (read at log intervals).
        self.interval_loss = torch.zeros((), dtype=sum_dtype(parts.device), device=parts.device)
        self.interval_batches = 0
        self.first_step = True
        self.notes: list[str] = []  # lines for the run's output (the compile time)
        self.lbfgs = isinstance(parts.optimizer, torch.optim.LBFGS)

    def epoch_batches(self, batches: Batches, epoch: int, start: int) -> Iterator[Batch]:
        """The batches this stepper trains on (graphed.py feeds static buffers instead)."""
        return batches.epoch(epoch, start)

    def train_batch(self, batch: Batch, meter: Meter, batch_index: int,
                    last: bool = False) -> None:
        """Forward, backward and, every ``accumulate`` batches or at the epoch's ``last``, the
        optimizer step.  Under DDP the batches whose gradients wait skip the all-reduce."""
        parts = self.parts
        waits = self.pending + 1 < self.accumulate and not last
        with parts.no_sync() if waits else contextlib.nullcontext():
            if self.first_step:
                start = time.perf_counter()
                loss, memo = _first(lambda: self._forward_backward(batch), parts)
                self.first_step = False
                if parts.spec.train.compile is True:
                    self.notes.append(_compile_note(parts, start))
            else:
                loss, memo = self._forward_backward(batch)
        self._watch(loss, batch_index)
        self.pending += 1
        if self.pending == self.accumulate:
            self.optimizer_step(batch)
        self.interval_loss += loss.detach()
        self.interval_batches += 1
        record(parts, meter, loss, memo, batch)

    def _forward_backward(self, batch: Batch) -> tuple[Tensor, dict[str, Any]]:
        loss, memo = forward_loss(self.parts, batch)
        scaled = loss / self.accumulate if self.accumulate > 1 else loss
        if self.parts.scaler is not None:
            self.parts.scaler.scale(scaled).backward()
        else:
            scaled.backward()
        return loss, memo

    def _closure(self, batch: Batch) -> Tensor:
        self.parts.optimizer.zero_grad()
        loss, _ = self._forward_backward(batch)
        return loss

    def take_interval_loss(self) -> float:
        """The mean loss of the batches since the last call (one host synchronisation)."""
        total = float(self.parts.dist.sum_(self.interval_loss))  # summed over the ranks
        mean = total / max(self.interval_batches * self.parts.dist.world, 1)
        self.interval_loss.zero_()
        self.interval_batches = 0
        return mean

    def _watch(self, loss: Tensor, batch_index: int) -> None:
        if self.check_each_step:  # reading a CPU tensor costs no synchronisation
            if self.host_bad is None and not math.isfinite(loss.item()):
                self.host_bad = batch_index
            return
        bad = ~torch.isfinite(loss.detach())
        self.first_bad = torch.where(bad & (self.first_bad < 0),
                                     torch.full_like(self.first_bad, batch_index),
                                     self.first_bad)

    def bad_step(self) -> int | None:
        """The first batch (counted over the run) whose loss was not finite, if any."""
        if self.check_each_step:
            return self.host_bad
        value = int(self.parts.dist.max_(self.first_bad.clone()))  # any rank's bad step
        return value if value >= 0 else None

    def optimizer_step(self, batch: Batch | None = None) -> None:
        """Apply the pending gradients (also at an epoch's end with fewer than accumulate).

        LBFGS re-evaluates the loss on the same batch as often as its line search needs.
        """
        if self.pending == 0:
            return
        parts = self.parts
        if self.clip is not None:
            if parts.scaler is not None:
                parts.scaler.unscale_(parts.optimizer)
            torch.nn.utils.clip_grad_norm_(parts.model.parameters(), self.clip)
        parts.warmup.begin(self.global_step)
        if parts.scaler is not None:
            parts.scaler.step(parts.optimizer)
            parts.scaler.update()
        elif self.lbfgs and batch is not None:
            parts.optimizer.step(lambda: float(self._closure(batch).detach()))
        else:
            parts.optimizer.step()
        parts.warmup.end()
        parts.optimizer.zero_grad(set_to_none=True)
        self.pending = 0
        self.global_step += 1
        sched = parts.spec.scheduler
        if parts.scheduler is not None and sched is not None and sched.interval == "step" \
                and self.global_step > sched.warmup_steps:
            parts.scheduler.step()


def _compile_note(parts: Parts, start: float) -> str:
    """How long the first compiled step took (nearly all of it compiling), and the cache."""
    if parts.device.type == "cuda":
        torch.cuda.synchronize(parts.device)
    seconds = time.perf_counter() - start
    from nnspec.run.setup import compile_cache

    return (f"torch.compile: first step {seconds:.1f}s (compiling forward and backward; "
            f"inductor cache {compile_cache()}, reused by later runs)")


@contextlib.contextmanager
def fx_trace_silenced() -> Iterator[None]:
    """torch.fx prints a traceback of its generated forward to stderr before it re-raises an
    error from inside a graph model: keep what stderr got, and drop it if the call fails (the
    caller says what failed, in one line)."""
    import io
    import sys

    caught, real = io.StringIO(), sys.stderr
    sys.stderr = caught
    try:
        yield
    except BaseException:
        sys.stderr = real
        raise
    sys.stderr = real
    real.write(caught.getvalue())


def _first(step: Callable[[], tuple[Tensor, dict[str, Any]]],
           parts: Parts) -> tuple[Tensor, dict[str, Any]]:
    """Run the first step, turning what a mismatched spec raises into a run error that says so.

    Later steps are not wrapped: a failure there is not the spec's shape or wiring.
    """
    try:
        with fx_trace_silenced():
            return step()
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        if out_of_memory(exc):
            raise  # not the spec's wiring: the run's memory (api.train says so)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"the first training step failed in the model or {parts.loss.name}: "
                       f"{message}", hint=_first_hint(message)) from exc


def _first_hint(message: str) -> str:
    """A fix for what a first step's failure most often means."""
    if "out of bounds" in message and "Target" in message:
        return ("a class index is not below the model's number of outputs: the last layer "
                "needs out_features equal to the number of classes (targets 0 to K-1)")
    if "expected target dtype" in message or "expected scalar type Long" in message:
        return ("the loss takes class indices (integers), the targets are numbers of another "
                "type: give integer class labels, or use a loss for real-valued targets")
    return ("check that input: matches the data's samples, and loss.inputs and "
            "data.target_encoding match the loss")


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation that failed (host or device)."""
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def evaluate(parts: Parts, split: str, epoch: int = 0) -> dict[str, float]:
    """Loss and metrics of a whole split, in eval mode and without gradients."""
    meter = Meter(parts.spec.train.metrics, parts.loss.name, parts.device, parts.dist)
    fsdp.sync_buffers(parts.model, parts.dist)  # rank 0's statistics, as DDP would have them
    parts.model.eval()
    stepped = parts.evaluator.model
    parts.evaluator.model = parts.eval_model or stepped  # the plain module under DDP
    try:
        with torch.no_grad():
            done, batch = 0, None
            for batch in parts.batches[split].epoch(epoch):
                loss, memo = forward_loss(parts, batch)
                record(parts, meter, loss, memo, batch)
                done += 1
            _pad_forwards(parts, split, done, batch)
    finally:
        parts.evaluator.model = stepped
    parts.model.train()
    return meter.read()


def _pad_forwards(parts: Parts, split: str, done: int, last: Batch | None) -> None:
    """Under FSDP every forward is a collective, so a rank whose share of the split has fewer
    batches than another's repeats its last batch's first sample until both have run as many
    batches (the same forwards as a counted batch: the loss's, and a metric's); nothing of them
    is counted.  Every rank has a batch: setup refuses a split smaller than the processes."""
    most = getattr(parts.batches[split], "most_batches", None)
    if not parts.dist.sharded or most is None or last is None:
        return
    spare = Meter(parts.spec.train.metrics, parts.loss.name, parts.device)
    one = {k: v[:1] for k, v in last.items()}
    for _ in range(most() - done):
        loss, memo = forward_loss(parts, one)
        record(parts, spare, loss, memo, one)
