"""Weight initialisation by rules: match layers by type, module name and parameter name (globs).

Rules run in the order written, each over all its matching parameters in module order, so the
random numbers each draws are well defined; a later rule overrides an earlier one on the same
parameter; parameters no rule matches keep PyTorch's defaults.  ``explain`` says which rules
matched each parameter, for ``--explain-init`` and the run summary.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

import torch
from torch import nn

from nnspec.catalogue import layers
from nnspec.errors import Problem, SpecError, did_you_mean
from nnspec.lang.spec import InitMatch, InitRule
from nnspec.run.instantiate import entry


@dataclass(frozen=True)
class Match:
    """One parameter a rule matched."""

    param: str  # full name, e.g. "0.weight"
    layer: str  # the module's type name
    rule: int  # index of the rule in spec.init


def _types(match: InitMatch) -> list[str] | None:
    if match.type is None:
        return None
    return [match.type] if isinstance(match.type, str) else list(match.type)


def _params(model: nn.Module) -> Iterator[tuple[str, str, str, nn.Parameter]]:
    """(module name, type name, parameter name, parameter) for every direct parameter."""
    for mod_name, module in model.named_modules():
        for p_name, param in module.named_parameters(recurse=False):
            yield mod_name, type(module).__name__, p_name, param


def _matches(match: InitMatch, mod_name: str, type_name: str, p_name: str) -> bool:
    types = _types(match)
    return ((types is None or type_name in types)
            and _fits(mod_name, match.name) and _fits(p_name, match.param))


def _fits(name: str, globs: list[str] | str | None) -> bool:
    """No globs, or ``name`` fits one of them."""
    if globs is None:
        return True
    return any(fnmatchcase(name, g) for g in ([globs] if isinstance(globs, str) else globs))


def check_rules(rules: Sequence[InitRule]) -> None:
    """Unknown init functions and layer types are located errors, before anything runs."""
    problems = []
    known = layers()
    for i, rule in enumerate(rules):
        try:
            entry("init", rule.fn, rule.location, ("init", i, "fn"))
        except SpecError as exc:
            problems.extend(exc.problems)
        for t in _types(rule.match) or []:
            if t not in known:
                problems.append(Problem(rule.location, ("init", i, "match", "type"),
                                        f"unknown layer type '{t}'", did_you_mean(t, known)))
    if problems:
        raise SpecError(problems)


def explain(model: nn.Module, rules: Sequence[InitRule]) -> list[Match]:
    """Every (parameter, rule) match, in the order the rules will apply them."""
    found = []
    for i, rule in enumerate(rules):
        for mod_name, type_name, p_name, _ in _params(model):
            if _matches(rule.match, mod_name, type_name, p_name):
                full = f"{mod_name}.{p_name}" if mod_name else p_name
                found.append(Match(full, type_name, i))
    return found


def apply(model: nn.Module, rules: Sequence[InitRule]) -> list[Match]:
    """Initialise ``model`` in place by ``rules``; returns what matched."""
    check_rules(rules)
    by_name = dict(model.named_parameters())
    matches = explain(model, rules)
    with torch.no_grad():
        for m in matches:
            rule = rules[m.rule]
            fn = getattr(nn.init, rule.fn)  # checked against the catalogue above
            try:
                fn(by_name[m.param], **rule.args)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise SpecError.at(rule.location, ("init", m.rule),
                                   f"{rule.fn} cannot initialise {m.param} "
                                   f"(shape {list(by_name[m.param].shape)}): {exc}",
                                   "narrow match: e.g. param: weight") from None
    return matches


def explain_lines(model: nn.Module, rules: Sequence[InitRule]) -> list[str]:
    """One line per parameter: the rule that decides its values, or PyTorch's default."""
    matches = explain(model, rules)
    last = {m.param: m for m in matches}
    lines = []
    for name, param in model.named_parameters():
        m = last.get(name)
        how = (f"init[{m.rule}] {rules[m.rule].fn}({_args(rules[m.rule])})" if m
               else "PyTorch default")
        lines.append(f"{name:<32} {list(param.shape)!s:<18} {how}")
    unused = set(range(len(rules))) - {m.rule for m in matches}
    lines += [f"init[{i}] ({rules[i].fn}) matches no parameter" for i in sorted(unused)]
    return lines


def _args(rule: InitRule) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in rule.args.items())
