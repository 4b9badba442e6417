"""Parameters chosen by a rule's ``match`` (and not its ``unless``): freeze and optimizer groups.

The matcher is the init rules' (layer type, module-name glob, parameter-name glob), so a
pattern means the same thing in every section.  ``problems`` is what ``validate`` asks (on a
model built on the meta device) and what the run asks again before it trains: an unknown
layer type, or a pattern that matches nothing, is a located error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from nnspec.catalogue import layers
from nnspec.errors import Problem, SpecPath, did_you_mean
from nnspec.lang.spec import InitMatch, Selection
from nnspec.run.init import _matches, _params


@dataclass(frozen=True)
class Entry:
    """One parameter, with what a rule can match it by."""

    name: str  # full name, as in the state_dict: layer1.0.conv1.weight
    module: str  # its module's name: layer1.0.conv1
    layer: str  # its module's type: Conv2d
    param: str  # its own name: weight
    tensor: nn.Parameter


def entries(model: nn.Module) -> list[Entry]:
    return [Entry(f"{m}.{p}" if m else p, m, t, p, tensor)
            for m, t, p, tensor in _params(model)]


def fits(match: InitMatch, e: Entry) -> bool:
    return _matches(match, e.module, e.layer, e.param)


def chosen(all_: Sequence[Entry], rule: Selection) -> list[Entry]:
    return [e for e in all_ if fits(rule.match, e)
            and not (rule.unless is not None and fits(rule.unless, e))]


def modules_chosen(model: nn.Module, rule: Selection) -> list[tuple[str, nn.Module]]:
    """Modules whose type and name fit the rule (its parameter glob aside)."""
    def fit(match: InitMatch, name: str, module: nn.Module) -> bool:
        return _matches(InitMatch(type=match.type, name=match.name), name,
                        type(module).__name__, "")

    return [(n, m) for n, m in model.named_modules() if fit(rule.match, n, m)
            and not (rule.unless is not None and fit(rule.unless, n, m))]


def problems(model: nn.Module, rules: Sequence[Selection], section: SpecPath) -> list[Problem]:
    """Unknown layer types, and rules (or their ``unless``) that match no parameter."""
    found: list[Problem] = []
    all_ = entries(model)
    for i, rule in enumerate(rules):
        at = (*section, i)
        bad = _unknown_types(rule, at)
        found += bad
        if bad:
            continue
        matched = [e for e in all_ if fits(rule.match, e)]
        if not matched:
            found.append(Problem(rule.locate("match"), (*at, "match"),
                                 "matches no parameter of the model", _hint(rule.match, all_)))
        elif rule.unless is not None and not any(fits(rule.unless, e) for e in matched):
            found.append(Problem(rule.locate("unless"), (*at, "unless"),
                                 "matches none of the parameters that match chose",
                                 _hint(rule.unless, matched)))
    return found


def _unknown_types(rule: Selection, at: SpecPath) -> list[Problem]:
    known = layers()
    out = []
    for key, match in (("match", rule.match), ("unless", rule.unless)):
        types = [] if match is None or match.type is None else (
            [match.type] if isinstance(match.type, str) else match.type)
        out += [Problem(rule.locate(key, "type"), (*at, key, "type"),
                        f"unknown layer type '{t}'", did_you_mean(t, known))
                for t in types if t not in known]
    return out


def _hint(match: InitMatch, among: Sequence[Entry]) -> str:
    """Did-you-mean over the module and parameter names, else what there is to match."""
    for globs, names in ((match.name, {e.module for e in among}),
                         (match.param, {e.param for e in among})):
        for glob in [globs] if isinstance(globs, str) else globs or []:
            close = did_you_mean(glob.split("*")[0].rstrip("."), sorted(names))
            if close:
                return close
    tops = list(dict.fromkeys(e.module.split(".")[0] for e in among))
    types = list(dict.fromkeys(e.layer for e in among))
    return (f"module names begin with {', '.join(tops[:8])}; layer types: "
            f"{', '.join(types[:8])}")
