"""What ``nnspec validate`` can learn from torch about the training sections, without data.

The checker types every section against the schema; torch has the last word on the values: a
loss's inputs against its ``forward``, an optimizer's or scheduler's arguments against its
constructor (``betas`` of the wrong length, a negative ``momentum``, ...), init rules against the
catalogue.  Each is built here as the runner would build it, over a throwaway parameter, so the
same located errors come out of ``validate`` as out of ``train``, before any data is read.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nnspec.errors import Problem, SpecError
from nnspec.run import init as init_rules
from nnspec.run.losses import build_loss
from nnspec.run.optim import build_optimizer, build_scheduler
from nnspec.spec import Spec


def problems(spec: Spec) -> list[Problem]:
    """Every problem torch finds in the spec's loss, optimizer, scheduler and init rules."""
    found: list[Problem] = []
    for check in _checks(spec):
        try:
            check()
        except SpecError as exc:
            found.extend(exc.problems)
    return found


def _checks(spec: Spec) -> list[Callable[[], object]]:
    checks: list[Callable[[], object]] = [lambda: init_rules.check_rules(spec.init)]
    if spec.loss is not None:
        loss = spec.loss
        checks.append(lambda: build_loss(loss))
    checks.append(lambda: build_optimizer(spec.optimizer, [_parameter()]))
    if spec.scheduler is not None:
        scheduler = spec.scheduler
        checks.append(lambda: build_scheduler(
            scheduler, torch.optim.SGD([_parameter()], lr=0.1), spec.train.epochs, 1))
    return checks


def _parameter() -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.zeros(1))
