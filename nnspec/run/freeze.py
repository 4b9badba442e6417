"""Freeze by rules: the spec's ``freeze`` section.

A frozen parameter has ``requires_grad`` off, so backward skips it and no optimizer moves it;
parameters frozen for the whole run are also left out of the optimizer.  ``stats: true`` keeps
the matched BatchNorm layers in eval mode while training, so their running mean and variance
stay as loaded.  A rule with ``epochs: N`` holds for the first N epochs only (staged
unfreezing): ``begin_epoch`` sets every parameter's flag for the epoch about to run, from the
epoch number alone, so a resumed run freezes exactly what the uninterrupted run froze.

Eval mode is kept by the model's own ``train()``: the freezer replaces it on the model (the
pattern mmcv's ``norm_eval`` uses), so every caller that switches the model back to training,
evaluation's end included, leaves the frozen statistics alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MethodType

from torch import nn

from nnspec.errors import Location, Problem, SpecError
from nnspec.lang.spec import FreezeRule
from nnspec.run import select

FOREVER = 1 << 62


class Freezer:
    """Which parameters and statistics are frozen at each epoch, and setting it."""

    def __init__(self, model: nn.Module, rules: Sequence[FreezeRule], file: str) -> None:
        problems = _problems(model, rules)
        if problems:
            raise SpecError(problems)
        self.model, self.rules = model, list(rules)
        self.params = dict(model.named_parameters())
        self.until: dict[str, int] = {}  # parameter -> epochs it stays frozen
        self.stats_until: dict[str, int] = {}  # BatchNorm module -> epochs in eval mode
        all_ = select.entries(model)
        for rule in rules:
            until = rule.epochs or FOREVER
            for e in select.chosen(all_, rule):
                self.until[e.name] = max(self.until.get(e.name, 0), until)
            if rule.stats:
                for name, _ in _norms(model, rule):
                    self.stats_until[name] = max(self.stats_until.get(name, 0), until)
        if self.params and all(self.until.get(n) == FOREVER for n in self.params):
            raise SpecError([Problem(rules[0].location if rules else Location(file),
                                     ("freeze",), "every parameter is frozen: nothing trains",
                                     "leave the new layers out with unless: {name: ...}")])
        self.epoch = 0
        for name in self.frozen_for_good:
            self.params[name].requires_grad_(False)
        if self.stats_until:
            _keep_norms_in_eval(model, self)

    @property
    def frozen_for_good(self) -> list[str]:
        return [n for n, until in self.until.items() if until == FOREVER]

    @property
    def staged(self) -> bool:
        """Whether some parameters start to train mid-run (DDP and CUDA graphs care)."""
        return any(until != FOREVER for until in self.until.values())

    def trains(self, name: str) -> bool:
        """Whether the optimizer needs ``name`` at some epoch of the run."""
        return self.until.get(name) != FOREVER

    def begin_epoch(self, epoch: int) -> None:
        """Set requires_grad and the norms' modes for ``epoch`` (0-based)."""
        self.epoch = epoch
        for name, until in self.until.items():
            if until != FOREVER:
                self.params[name].requires_grad_(epoch >= until)
        if self.model.training:
            self.model.train()

    def eval_norms(self) -> list[str]:
        return [n for n, until in self.stats_until.items() if self.epoch < until]

    def lines(self) -> list[str]:
        if not self.rules:
            return []
        total = sum(p.numel() for p in self.params.values())
        training = sum(p.numel() for p in self.params.values() if p.requires_grad)
        when = f" in epoch {self.epoch + 1}" if self.staged else ""
        out = [f"freeze: {training:,} of {total:,} parameters train{when} "
               f"({total - training:,} frozen)"]
        all_ = select.entries(self.model)
        for i, rule in enumerate(self.rules):
            names = [e.name for e in select.chosen(all_, rule)]
            count = sum(self.params[n].numel() for n in names)
            when = f" until epoch {rule.epochs}, trained from epoch {rule.epochs + 1}" \
                if rule.epochs else ""
            norms = len(_norms(self.model, rule))
            stats = f"; running statistics of {norms} norm layer{'s' * (norms != 1)} frozen " \
                "too" if rule.stats else ""
            out.append(f"freeze[{i}]: {len(names)} tensors ({count:,} parameters) frozen"
                       f"{when}{stats}")
        return out

    def record(self) -> dict[str, object]:
        return {"frozen": {n: (None if u == FOREVER else u) for n, u in self.until.items()},
                "norms_in_eval": {n: (None if u == FOREVER else u)
                                  for n, u in self.stats_until.items()}}


def _norms(model: nn.Module, rule: FreezeRule) -> list[tuple[str, nn.Module]]:
    """The matched modules that keep running statistics."""
    return [(n, m) for n, m in select.modules_chosen(model, rule)
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats]


def _problems(model: nn.Module, rules: Sequence[FreezeRule]) -> list[Problem]:
    """The matcher's problems; a stats rule may match norm layers that have no parameters
    (affine: false), and must match some."""
    out = []
    for problem in select.problems(model, rules, ("freeze",)):
        rule = rules[int(problem.path[1])]
        if not (rule.stats and problem.path[2:] == ("match",) and _norms(model, rule)):
            out.append(problem)
    bad = {p.path[1] for p in out}
    return out + [Problem(rule.locate("stats"), ("freeze", i, "stats"),
                          "matches no layer with running statistics (BatchNorm)",
                          "match the norm layers, e.g. match: {type: BatchNorm2d}")
                  for i, rule in enumerate(rules)
                  if rule.stats and i not in bad and not _norms(model, rule)]


def _keep_norms_in_eval(model: nn.Module, freezer: Freezer) -> None:
    """Replace ``model.train`` so that switching to training leaves frozen norms in eval."""
    modules = dict(model.named_modules())
    plain_train = type(model).train

    def train(self: nn.Module, mode: bool = True) -> nn.Module:
        plain_train(self, mode)
        if mode:
            for name in freezer.eval_norms():
                modules[name].eval()
        return self

    setattr(model, "train", MethodType(train, model))  # noqa: B010 (a method, on purpose)
    model.train(model.training)
