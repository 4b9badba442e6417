"""Optimizer settings per parameter: the rules of ``optimizer.groups``.

Every parameter starts from the optimizer's own arguments; each group rule that matches it, in
the order written, overrides the settings it names (as init rules do), so ``weight_decay: 0``
for biases and a smaller ``lr`` for the backbone combine.  Parameters that end with equal
settings form one torch parameter group (named after the rules that set them), in the order
of their first parameter, so a scheduler, warm-up and checkpoints see ordinary groups.

A setting may be an expression of ``depth`` (the parameter's unit: a top-level layer, or one
item of a top-level list or repeat, numbered from 0 in model order) and ``max_depth`` (the
last unit's, usually the head's): layer-wise decay is ``lr: ${0.001 * 0.75 ** (max_depth -
depth)}``.  The spec's plain numeric vars can be used too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from nnspec.errors import Problem, SpecError
from nnspec.lang.exprs import ExprError, evaluate, is_expr
from nnspec.lang.spec import OPTIMIZER_NONNEGATIVE_ARGS, GroupRule, Spec
from nnspec.run import select


@dataclass
class Group:
    """One torch parameter group: its settings and the parameters that share them."""

    name: str
    rules: tuple[int, ...]
    settings: dict[str, Any]
    params: list[str] = field(default_factory=list)
    numel: int = 0

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "rules": list(self.rules), "settings": self.settings,
                "tensors": len(self.params), "parameters": self.numel, "params": self.params}


def depths(model: nn.Module, repeated: frozenset[str] = frozenset()) -> dict[str, int]:
    """Each parameter's depth: the number of its unit in model order.  A top-level child whose
    children are numbered (a list), or that is a repeat (``repeated``: its copies may be named
    by a pattern, ``denselayer1``...), counts each child as a unit."""
    units: dict[str, int] = {}
    out = {}
    for name, _ in model.named_parameters():
        parts = name.split(".")
        split = len(parts) > 2 and (parts[1].isdigit() or parts[0] in repeated)
        unit = ".".join(parts[:2]) if split else parts[0]
        out[name] = units.setdefault(unit, len(units))
    return out


def repeats(spec: Spec) -> frozenset[str]:
    """The names of the model's top-level items that repeat (their copies are units)."""
    items = getattr(spec.model, "items", ())
    return frozenset(name for name, item in items if getattr(item, "repeat", None) is not None)


def plan(model: nn.Module, spec: Spec, trains: Callable[[str], bool] = lambda _: True) -> \
        list[Group]:
    """The parameter groups of ``model`` that the optimizer gets (``trains`` says which
    parameters it needs at all); located errors for rules that match nothing or bad values."""
    rules = spec.groups
    problems = select.problems(model, rules, ("optimizer", "groups"))
    all_ = select.entries(model)
    chosen = [{e.name for e in select.chosen(all_, rule)} for rule in rules]
    depth = depths(model, repeats(spec))
    names = _numeric_vars(spec) | {"max_depth": max(depth.values(), default=0)}
    groups: dict[tuple[Any, ...], Group] = {}
    for e in all_:
        if not trains(e.name):
            continue
        hits = tuple(i for i, c in enumerate(chosen) if e.name in c)
        settings: dict[str, Any] = {}
        for i in hits:
            settings.update(_values(rules[i], i, {**names, "depth": depth[e.name]}, problems))
        key = tuple(sorted((k, repr(v)) for k, v in settings.items()))
        group = groups.setdefault(key, Group("", (), settings))
        group.rules = tuple(sorted(set(group.rules) | set(hits)))
        group.params.append(e.name)
        group.numel += e.tensor.numel()
    if problems:
        raise SpecError(problems)
    return _named_uniquely(list(groups.values()), depth)


def torch_groups(model: nn.Module, groups: list[Group]) -> list[dict[str, Any]]:
    """What a torch.optim optimizer takes: dicts of params and their settings."""
    params = dict(model.named_parameters())
    return [{"params": [params[n] for n in g.params], "name": g.name,
             **{k: tuple(v) if isinstance(v, list) else v for k, v in g.settings.items()}}
            for g in groups]


def check(model: nn.Module, spec: Spec) -> None:
    """validate's question: do the rules match, and do their expressions evaluate?"""
    plan(model, spec)


def _name(hits: tuple[int, ...]) -> str:
    return "+".join(f"groups[{i}]" for i in hits) if hits else "default"


def _named_uniquely(groups: list[Group], depth: Mapping[str, int]) -> list[Group]:
    """Groups made by the same rules (values that vary with depth) get their depth in the
    name."""
    seen: dict[str, int] = {}
    for g in groups:
        g.name = _name(g.rules)
        seen[g.name] = seen.get(g.name, 0) + 1
    for g in groups:
        if seen[g.name] > 1:
            g.name = f"{g.name} depth {depth[g.params[0]]}"
    return groups


def _numeric_vars(spec: Spec) -> dict[str, Any]:
    return {k: v for k, v in spec.vars.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def _values(rule: GroupRule, index: int, names: Mapping[str, Any],
            problems: list[Problem]) -> dict[str, Any]:
    """The rule's settings for one parameter; a bad value is added to ``problems`` once."""
    out = {}
    for key, value in rule.args.items():
        at = ("optimizer", "groups", index, key)
        if any(p.path == at for p in problems):
            continue
        if is_expr(value):
            try:
                value = evaluate(value, names)
            except ExprError as exc:
                problems.append(Problem(rule.locate(key), at, str(exc), exc.hint or
                                        "the names are depth, max_depth and the spec's "
                                        "numeric vars"))
                continue
        if key in OPTIMIZER_NONNEGATIVE_ARGS and isinstance(value, int | float) and value < 0:
            problems.append(Problem(rule.locate(key), at, f"{key} must not be negative, found "
                                    f"{value} at depth {names['depth']}", "torch.optim refuses "
                                    f"a negative {OPTIMIZER_NONNEGATIVE_ARGS[key]}"))
            continue
        out[key] = value
    return out


def lines(groups: list[Group], spec: Spec) -> list[str]:
    """The run's first lines about groups (none for a single, default group)."""
    if len(groups) <= 1 and not spec.groups:
        return []
    defaults = dict(spec.optimizer.args) if spec.optimizer is not None else {}
    out = [f"optimizer: {len(groups)} parameter group{'s' * (len(groups) != 1)}"]
    for i, g in enumerate(groups):
        settings = {**defaults, **g.settings}
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in settings.items())
        tensors = f"{len(g.params)} tensor{'s' * (len(g.params) != 1)}"
        out.append(f"  group {i} {g.name}: {tensors} ({g.numel:,} parameters)"
                   f"{'; ' + shown if shown else ''}")
    return out


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
