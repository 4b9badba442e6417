"""What ``nnspec validate`` can learn from torch about the training sections, without data.

The checker types every section against the schema; torch has the last word on the values: a
loss's inputs against its ``forward`` and its arguments against its constructor, an optimizer's
arguments against its constructor (``betas`` out of range, a negative ``momentum``, ...), init
rules against the catalogue, freeze and optimizer group rules against the model's parameters
(built on the meta device: no memory, no weights; the weights file is read by the run).  Each
is built here as the runner would build it, so the same located errors come out of
``validate`` as out of ``train``, before any data is read.

Schedulers are left to the checker's rules (``spec.scheduler_problems``) and to ``train``: one
needs a real optimizer, and building one imports torch._dynamo, a second on every validate.
"""

from __future__ import annotations

from collections.abc import Callable

from nnspec.errors import Problem, SpecError
from nnspec.lang.spec import Spec
from nnspec.run import init as init_rules
from nnspec.run.losses import build_loss
from nnspec.run.optim import check_optimizer


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
    checks.append(lambda: check_optimizer(spec.optimizer))
    if spec.freeze or spec.groups:
        checks.append(lambda: _check_finetune(spec))
    return checks


def _check_finetune(spec: Spec) -> None:
    """Freeze and group rules against the model's parameters, built on the meta device."""
    import torch

    from nnspec import api
    from nnspec.run import finetune

    with torch.device("meta"):
        model = api.compile(spec)
    finetune.check(model, spec)
