"""The training step captured once as a CUDA graph and replayed: ``train.cuda_graph``.

At these model sizes a step is bound by kernel launches, and a replayed graph launches the whole
step (forward, loss, backward, clipping, optimizer step, the device accumulators) at once.  This
follows torch's documented whole-network capture (``torch.cuda.graphs``): a few eager steps on a
side stream first (they create the optimizer's state, cuBLAS handles and autocast's casts; they
are real training steps, so the run is the eager run's steps), gradients set to None before
capture so backward writes them into the graph's own memory, then ``graph.replay()`` per batch
after ``index_select(out=...)`` fills static input buffers.  The last partial batch of an epoch
(when ``data.drop_last`` is false) runs eagerly.

Checked on an H200 (torch 2.11, LeNet-5 on MNIST t10k): parameters after each of the first
eight steps within 1e-6 (SGD) and 7e-5 (capturable Adam) of the eager steps, meter sums and
counts equal, the non-finite step found at the same step, about 7x the eager step's speed.

``decide`` says whether a run may be graphed and why not; ``auto`` graphs only where it is safe,
``true`` where it is not is a located error naming the reason.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from nnspec.errors import Location, SpecError
from nnspec.run.batches import Batches
from nnspec.run.metrics import Meter
from nnspec.run.setup import Parts
from nnspec.run.step import Stepper, forward_loss, record
from nnspec.run.table import Batch

WARMUP_STEPS = 3  # eager steps on a side stream before capture, as torch's docs show
# Optimizers that hold no host-side state between steps, or that take capturable=True.
_PLAIN_OPTIMIZERS = (torch.optim.SGD,)


@dataclass(frozen=True)
class Decision:
    graph: bool
    reason: str  # why not (or, when graphed, what was checked)


def _capturable(optimizer: torch.optim.Optimizer) -> bool:
    return "capturable" in inspect.signature(type(optimizer).__init__).parameters


def unsafe_reasons(parts: Parts, device: torch.device | None = None) -> list[str]:
    """Why the training step of ``parts`` cannot be captured (empty: it can).

    ``device`` stands in for the run's device (the tests ask about CUDA on a CPU machine).
    """
    spec, train = parts.spec, parts.spec.train
    device = device or parts.device
    reasons = []
    if device.type != "cuda":
        reasons.append(f"the device is {device.type}, not CUDA")
    batches = parts.batches.get("train")
    if batches is None or not batches.resident or batches.plan.resident is False:
        reasons.append("the training data is not resident on the device (a DataLoader feeds it)")
    if batches is not None and not batches.plan.holds_full_batch(batches.samples):
        reasons.append("the training split holds no full batch")
    if str(train.precision) == "16-mixed":
        reasons.append("16-mixed uses a gradient scaler, whose step reads the scale on the host")
    if train.accumulate != 1:
        reasons.append("train.accumulate is not 1")
    if isinstance(parts.optimizer, torch.optim.LBFGS):
        reasons.append("LBFGS re-evaluates the loss in a host-side loop")
    elif not isinstance(parts.optimizer, _PLAIN_OPTIMIZERS) and not _capturable(parts.optimizer):
        reasons.append(f"{type(parts.optimizer).__name__} has no capturable mode")
    if spec.scheduler is not None:
        reasons.append("a scheduler (or warm-up) changes the learning rate, which the graph "
                       "bakes in")
    if parts.tuning is not None and parts.tuning.staged:
        reasons.append("freeze rules with epochs: change which parameters train mid-run")
    if train.compile is True:  # (auto is decided before: parts.spec holds what it became)
        reasons.append("train.compile is on (torch.compile and a captured step do not mix)")
    if parts.dist.active:
        reasons.append(f"the run is distributed ({parts.dist.world} processes)")
    if parts.loss.info.host_reads:
        reasons.append(parts.loss.info.host_reads)
    return reasons


def decide(parts: Parts, device: torch.device | None = None) -> Decision:
    """Graph or not, from ``train.cuda_graph`` and ``unsafe_reasons``; ``true`` where unsafe
    is a SpecError at train.cuda_graph."""
    setting = parts.spec.train.cuda_graph
    if setting is False:
        return Decision(False, "train.cuda_graph is false")
    reasons = unsafe_reasons(parts, device)
    if not reasons:
        return Decision(True, "CUDA, resident data, full batches, no host-side step state")
    if setting is True:
        raise SpecError.at(Location(parts.spec.file), ("train", "cuda_graph"),
                           "the training step cannot be captured as a CUDA graph: "
                           + "; ".join(reasons),
                           "set train.cuda_graph: auto (graph where safe) or false")
    return Decision(False, "; ".join(reasons))


def is_full_batch(parts: Parts, batch: Batch) -> bool:
    """Whether ``batch`` is a full training batch, by the training split's own plan (a step
    on one is what gets captured; data.train.batch_size counts, not data.batch_size)."""
    return parts.batches["train"].plan.is_full(_size(batch))


def stepper_for(parts: Parts) -> Stepper:
    """The loop's stepper: the captured one where ``decide`` allows it, else the eager one."""
    return GraphedStepper(parts) if decide(parts).graph else Stepper(parts)


class GraphedStepper(Stepper):
    """A Stepper whose full batches replay one captured step (CUDA only)."""

    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: Batch | None = None
        self.eager_full = 0  # full-size eager steps run so far (the warm-up)
        self.sums: Tensor | None = None  # the meter sums the graph adds into
        self.step_counts: list[float] = []  # host-side counts one step adds to a meter
        self.bound: Meter | None = None
        self.step_no = torch.zeros((), dtype=torch.long, device=parts.device)
        self.next_index = -1  # the batch index the device counter expects next
        self.prepared = False
        self.side = torch.cuda.Stream(parts.device)
        self.static_bad: Tensor = self.first_bad

    # ---- batches -------------------------------------------------------------------------------

    def epoch_batches(self, batches: Batches, epoch: int, start: int) -> Iterator[Batch]:
        """Full batches gathered into the static buffers once captured; others as usual."""
        table = batches.table
        assert table is not None and batches.resident
        size, full = batches.plan.batch_size, batches.samples // batches.plan.batch_size
        order = batches._order(epoch, self.parts.device)
        for b in range(start, len(batches)):
            index: Tensor | slice = (slice(b * size, (b + 1) * size) if order is None
                                     else order[b * size:(b + 1) * size])
            if self.static is None or b >= full:
                yield {k: v[index] for k, v in table.fields.items()}
                continue
            for k, v in table.fields.items():
                if isinstance(index, slice):
                    self.static[k].copy_(v[index])
                else:
                    torch.index_select(v, 0, index, out=self.static[k])
            yield self.static

    # ---- steps ---------------------------------------------------------------------------------

    def train_batch(self, batch: Batch, meter: Meter, batch_index: int,
                    last: bool = False) -> None:
        if not self.prepared:
            self._prepare()
        if self.static is not None and batch is self.static:
            self._replay(meter, batch_index)
            return
        full = is_full_batch(self.parts, batch)
        if self.graph is None and full and self.eager_full >= WARMUP_STEPS:
            self._capture(batch, meter, batch_index)
            return
        if self.graph is None:
            self.side.wait_stream(torch.cuda.current_stream(self.parts.device))
            with torch.cuda.stream(self.side):
                super().train_batch(batch, meter, batch_index)
            torch.cuda.current_stream(self.parts.device).wait_stream(self.side)
            self.eager_full += int(full)
        else:
            self._bind(meter)
            super().train_batch(batch, meter, batch_index)

    def _prepare(self) -> None:
        """Capturable optimizer state on the device (after any resume has loaded it)."""
        optimizer = self.parts.optimizer
        if _capturable(optimizer):
            for group in optimizer.param_groups:
                group["capturable"] = True
            for state in optimizer.state.values():
                step = state.get("step")
                if isinstance(step, Tensor) and step.device != self.parts.device:
                    state["step"] = step.to(self.parts.device, torch.float32)
        self.prepared = True

    def _bind(self, meter: Meter) -> None:
        """Make ``meter`` (new each epoch) and the non-finite watch use the graph's tensors."""
        if self.sums is not None and meter is not self.bound:
            self.sums.copy_(meter.sums)
            meter.sums = self.sums
            self.bound = meter
        if self.static_bad is not self.first_bad:
            self.static_bad.copy_(self.first_bad)  # an eager step replaced the tensor
            self.first_bad = self.static_bad

    def _replay(self, meter: Meter, batch_index: int) -> None:
        assert self.graph is not None
        self._bind(meter)
        if batch_index != self.next_index:
            self.step_no.fill_(batch_index - 1)
        self.graph.replay()
        self.next_index = batch_index + 1
        for i, count in enumerate(self.step_counts):
            meter.counts[i] += count
        self.interval_batches += 1
        self.global_step += 1

    def _capture(self, batch: Batch, meter: Meter, batch_index: int) -> None:
        parts = self.parts
        self.static = {k: v.clone() for k, v in batch.items()}
        self.static_bad = self.first_bad.clone()
        self.first_bad = self.static_bad
        self.sums = meter.sums.clone()
        self.bound = None
        self._bind(meter)
        capture_meter = Meter(parts.spec.train.metrics, parts.loss.name, parts.device)
        capture_meter.sums = self.sums
        parts.optimizer.zero_grad(set_to_none=True)  # backward allocates in the graph's pool
        graph = torch.cuda.CUDAGraph()
        autocast = parts.autocast
        if str(parts.spec.train.precision) == "bf16-mixed":  # no cast cache across a capture
            parts.autocast = lambda: torch.autocast("cuda", torch.bfloat16, cache_enabled=False)
        try:
            torch.cuda.synchronize(parts.device)
            with torch.cuda.graph(graph):
                self._step_body(capture_meter)
        except RuntimeError as exc:
            self._give_up(exc, batch, meter, batch_index)
            return
        finally:
            parts.autocast = autocast
        self.step_counts = capture_meter.counts
        self.graph = graph
        parts.optimizer.zero_grad(set_to_none=True)  # eager steps must not add to the graph's
        self.next_index = -1
        self._replay(meter, batch_index)  # capture records; this runs the step

    def _step_body(self, meter: Meter) -> None:
        """What the graph holds: one whole training step and its accumulation."""
        parts, static = self.parts, self.static
        assert static is not None
        loss, memo = forward_loss(parts, static)
        loss.backward()
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(parts.model.parameters(), self.clip)
        parts.optimizer.step()
        self.interval_loss.add_(loss.detach())
        self.step_no.add_(1)
        bad = ~torch.isfinite(loss.detach()) & (self.static_bad < 0)
        self.static_bad.copy_(torch.where(bad, self.step_no, self.static_bad))
        record(parts, meter, loss, memo, static)

    def _give_up(self, exc: Exception, batch: Batch, meter: Meter, batch_index: int) -> None:
        """``auto`` falls back to eager steps where capture fails; ``true`` says why."""
        if self.parts.spec.train.cuda_graph is True:
            raise SpecError.at(Location(self.parts.spec.file), ("train", "cuda_graph"),
                               f"capturing the training step failed: "
                               f"{str(exc).splitlines()[0] if str(exc) else exc!r}",
                               "set train.cuda_graph: auto or false") from exc
        sys.stderr.write(f"note: the training step could not be captured as a CUDA graph "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                         "training eagerly\n")
        self.static, self.graph, self.sums = None, None, None
        self.eager_full = -(1 << 62)  # never try again
        self.parts.optimizer.zero_grad(set_to_none=True)
        Stepper.train_batch(self, batch, meter, batch_index)


def _size(batch: Batch) -> int:
    return len(next(iter(batch.values())))


def describe(parts: Parts) -> dict[str, Any]:
    """The step path for the run directory and the start line."""
    decision = decide(parts)
    step = "cuda graph" if decision.graph else ("torch.compile" if parts.spec.train.compile
                                                 is True else "eager")
    return {"step": step, "cuda_graph": decision.graph, "cuda_graph_reason": decision.reason}
