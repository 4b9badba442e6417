"""The names of a repeat's copies: ``0..N-1``, or (format 2) a pattern's.

``repeat: {times: 6, name: "denselayer${index + 1}"}`` names its copies ``denselayer1`` to
``denselayer6``, as torchvision's DenseNet does; ``name: "block1-${index}"`` gives RegNet's
``block1-0``, ``block1-1``, ...  Each name is the pattern evaluated in its copy's scope
(``index`` is the copy's number) and must be a module name that the copies' container (an
``nn.Sequential(OrderedDict)``) takes, different from the others'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nnspec.errors import Collector
from nnspec.lang.exprs import ExprError, interpolate
from nnspec.lang.model_ast import Call, Container, name_problem


def copy_names(item: Call | Container, scopes: Sequence[Mapping[str, Any]],
               errors: Collector) -> list[str]:
    """One name per copy (a scope per copy); the first problem is reported, and the copies
    are then numbered so that the rest of the spec can still be checked."""
    numbers = [str(i) for i in range(len(scopes))]
    if item.names is None:
        return numbers
    where = item.names_location or item.source.location
    path = (*item.source.path[:-1], "repeat", "name")
    first: dict[str, int] = {}
    for i, scope in enumerate(scopes):
        try:
            name = interpolate(item.names, scope)
        except ExprError as exc:
            errors.add(where, path, str(exc), exc.hint)
            return numbers
        problem = name_problem(name, "ordered")
        if problem:
            message, hint = problem
            errors.add(where, path, f"copy {i}: {message}", hint)
            return numbers
        if name in first:
            errors.add(where, path, f"the name pattern gives copies {first[name]} and {i} the "
                       f"same name, '{name}'", "each copy needs a name of its own: a "
                       f"pattern that differs for each index (0 to {len(scopes) - 1}), "
                       "e.g. layer${index + 1}")
            return numbers
        first[name] = i
    return [*first]
