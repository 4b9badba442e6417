"""Optimizer and learning-rate schedule from the spec: every torch.optim class and lr_scheduler.

Names are checked against the catalogue before any attribute of torch.optim is looked up.  Warm-up
is kept outside the scheduler: during the first ``warmup_steps`` optimizer steps the learning rate
is the scheduler's times (step + 1) / warmup_steps, a pure function of the step counter, so it needs
no state of its own and any scheduler can follow it.  Arguments a spec leaves out but the schedule
cannot do without (``T_max``, ``total_steps``) default to the length of the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer, lr_scheduler

from nnspec.errors import SpecError
from nnspec.lang.spec import Named, Scheduler, optimizer_problems, scheduler_problems
from nnspec.run.instantiate import construct, entry

_SEQUENCES = {"betas", "etas", "step_sizes", "ns_coefficients"}



def build_optimizer(named: Named | None, params: Iterable[nn.Parameter]) -> Optimizer:
    """The spec's optimizer (default: Adam with torch's defaults) over ``params``."""
    named = named or Named(name="Adam")
    entry("optimizer", named.name, named.location, ("optimizer",))
    for path, message, hint in optimizer_problems(named):  # validate's, for a Spec built in code
        raise SpecError.at(named.locate(*path[1:]), ("optimizer", *path), message, hint)
    args = {k: tuple(v) if k in _SEQUENCES and isinstance(v, list) else v
            for k, v in named.args.items()}
    params = list(params)
    cls = getattr(torch.optim, named.name)
    optimizer: Optimizer = construct(lambda a: cls(params, **a), args, named,
                                     ("optimizer", named.name), describe=torch_message,
                                     probe=lambda a: _construct(cls, params, a))
    return optimizer


EMPTY = "optimizer got an empty parameter list"  # torch's refusal of no parameters


def _construct(cls: type[Optimizer], params: list[nn.Parameter], args: dict[str, Any]) -> None:
    """Build, counting torch's refusal of an empty list as success (check_optimizer's case)."""
    try:
        cls(params, **args)
    except ValueError as exc:
        if params or str(exc) != EMPTY:
            raise


def check_optimizer(named: Named | None) -> None:
    """The optimizer's arguments as torch judges them, without building it.

    torch.optim checks its arguments before its parameters, and building one over a real
    parameter imports torch._dynamo (about a second), so it is built over none and that one
    refusal is expected.
    """
    try:
        build_optimizer(named, [])
    except SpecError as exc:
        if any(p.message != EMPTY for p in exc.problems):
            raise


def build_scheduler(sched: Scheduler | None, optimizer: Optimizer, epochs: int,
                    steps_per_epoch: int) -> lr_scheduler.LRScheduler | None:
    """The spec's scheduler, with run-length arguments filled in where left out."""
    if sched is None:
        return None
    entry("scheduler", sched.name, sched.location, ("scheduler",))
    for path, message, hint in scheduler_problems(sched):
        at = path[1:] if path[0] == sched.name else path
        raise SpecError.at(sched.locate(*at), ("scheduler", *path), message, hint)
    steps = epochs if sched.interval == "epoch" else max(
        1, epochs * steps_per_epoch - sched.warmup_steps)
    args: dict[str, Any] = dict(sched.args)
    if sched.name == "CosineAnnealingLR":
        args.setdefault("T_max", steps)
    if sched.name == "OneCycleLR":
        args.setdefault("total_steps", steps)
        args.setdefault("max_lr", [g["lr"] for g in optimizer.param_groups])
    if sched.name == "PolynomialLR":
        args.setdefault("total_iters", steps)
    cls = getattr(lr_scheduler, sched.name)
    # blame is tried on a stand-in optimizer: building a scheduler changes its optimizer's rates
    made: lr_scheduler.LRScheduler = construct(
        lambda a: cls(optimizer, **a), args, sched, ("scheduler", sched.name),
        refusals=(TypeError, ValueError, KeyError, ZeroDivisionError), suspects=sched.args,
        describe=torch_message, probe=lambda a: cls(_stand_in(optimizer), **a))
    return made


def torch_message(exc: BaseException) -> str:
    """The first line of what torch said (a KeyError's text without its quotes)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _stand_in(optimizer: Optimizer) -> Optimizer:
    """An SGD with momentum and the same groups' rates, over one scalar per group."""
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": g["lr"]}
              for g in optimizer.param_groups]
    return torch.optim.SGD(groups, momentum=0.9)


class Warmup:
    """Scale the learning rate linearly over the first optimizer steps, then stop touching it."""

    def __init__(self, optimizer: Optimizer, steps: int) -> None:
        self.optimizer = optimizer
        self.steps = steps
        self._saved: list[float] = []

    def active(self, step: int) -> bool:
        return step < self.steps

    def begin(self, step: int) -> None:
        """Before optimizer step ``step`` (0-based): scale each group's learning rate."""
        if not self.active(step):
            return
        factor = (step + 1) / self.steps
        self._saved = [g["lr"] for g in self.optimizer.param_groups]
        for g in self.optimizer.param_groups:
            g["lr"] = g["lr"] * factor

    def end(self) -> None:
        """After the step: restore the scheduler's learning rates."""
        for g, lr in zip(self.optimizer.param_groups, self._saved, strict=False):
            g["lr"] = lr
        self._saved = []


def current_lr(optimizer: Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
