"""Fine-tuning in one place for the runner: weights from a file, freezing, parameter groups.

``prepare`` runs after the init rules, on the plain module on the CPU: it loads the weights
``weights.read`` found (a parameter the file does not fill keeps its initial value), freezes by
the ``freeze`` rules, and plans the optimizer's parameter groups.  ``setup.build`` calls it and
keeps the result in ``Parts.tuning``; the loop calls ``begin_epoch`` before every epoch (staged
unfreezing).  Evaluation, prediction and resume do not read the weights file: their weights
come from a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from nnspec.errors import SpecError
from nnspec.lang.spec import Spec
from nnspec.run import param_groups, weights
from nnspec.run.freeze import Freezer


@dataclass
class Tuning:
    """What fine-tuning settings did to a run's model and optimizer."""

    spec: Spec
    freezer: Freezer
    groups: list[param_groups.Group]
    report: weights.Report | None = None
    _plain: bool = field(default=False, repr=False)  # no groups, nothing frozen

    @property
    def staged(self) -> bool:
        return self.freezer.staged

    def begin_epoch(self, epoch: int) -> None:
        self.freezer.begin_epoch(epoch)

    def optimizer_params(self, model: nn.Module) -> Any:
        """What the optimizer is built over: plain parameters, or the planned groups."""
        if self._plain:
            return model.parameters()
        return param_groups.torch_groups(model, self.groups)

    def lines(self, resuming: bool = False) -> list[str]:
        out = []
        if self.report is not None:
            out += self.report.lines()
        elif resuming and self.spec.weights is not None:
            out.append("weights: restored from the checkpoint (the weights file is not read)")
        return out + self.freezer.lines() + param_groups.lines(self.groups, self.spec)

    def record(self) -> dict[str, Any]:
        """For resolved.json: the groups and what is frozen (the same on every resume); nothing
        for a run without these settings."""
        if self._plain:
            return {}
        return {"param_groups": [g.record() for g in self.groups],
                **({"freeze": self.freezer.record()} if self.spec.freeze else {})}


def check(model: nn.Module, spec: Spec) -> None:
    """validate's question, on a model built on the meta device: do the freeze and group
    rules match, and do the groups' expressions evaluate?  Every problem at once."""
    problems = []
    freezer = None
    try:
        freezer = Freezer(model, spec.freeze, spec.file)
    except SpecError as exc:
        problems += exc.problems
    try:
        param_groups.plan(model, spec, freezer.trains if freezer else lambda _: True)
    except SpecError as exc:
        problems += exc.problems
    if problems:
        raise SpecError(problems)


def prepare(model: nn.Module, spec: Spec, source: weights.Source | None) -> Tuning:
    """Load ``source`` into ``model``, freeze, and plan the groups (in that order)."""
    report = weights.apply(model, source, spec.weights) \
        if source is not None and spec.weights is not None else None
    freezer = Freezer(model, spec.freeze, spec.file)
    groups = param_groups.plan(model, spec, freezer.trains)
    plain = not freezer.until and not spec.groups
    return Tuning(spec, freezer, groups, report, plain)
