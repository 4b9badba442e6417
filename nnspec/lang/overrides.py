"""``KEY=VALUE`` overrides from the command line, applied to a Document before checking.

Keys are dotted paths (``train.epochs``, ``model.3.out_features``).  A key may skip the name of
a named thing: ``optimizer.lr=0.1`` reaches ``optimizer: {SGD: {lr: ...}}``, and
``model.3.out_features`` reaches ``model: [..., {Linear: {out_features: ...}}]``.  Values are read
with the same safe loader as spec files, so ``3`` is an integer and ``[1, 2]`` a list.  The
checker then types them against the schema like the rest of the spec.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from typing import Any

from nnspec.errors import Location, Problem, SpecError, SpecPath, did_you_mean
from nnspec.lang.loader import Document, loads


def apply_overrides(doc: Document, overrides: Sequence[str]) -> Document:
    data = copy.deepcopy(doc.data)
    values, keys = dict(doc.value_locations), dict(doc.key_locations)
    problems: list[Problem] = []
    for i, text in enumerate(overrides, 1):
        where = Location(f"<override {i}: {text}>", 1, 1)
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            problems.append(Problem(where, (), "an override is KEY=VALUE",
                                    "for example train.epochs=3"))
            continue
        try:
            value = loads(f"v: {raw}\n", where.file).data["v"] if raw.strip() else None
        except SpecError as exc:
            problems.extend(Problem(where, (key,), p.message, p.hint) for p in exc.problems)
            continue
        parts = _INDEX.sub(r".\1", key.strip()).split(".")  # model[3].x: as errors write it
        if not all(parts):
            problems.append(Problem(where, (), f"the key '{key.strip()}' has an empty part",
                                    "keys are names joined by single dots, e.g. "
                                    "train.epochs=3 or model.3.out_features=10"))
            continue
        unknown = _unknown_var(data, parts)
        if unknown is not None:
            problems.append(Problem(where, ("vars", parts[1]), *unknown))
            continue
        result = _set(data, parts, value, where)
        if isinstance(result, Problem):
            problems.append(result)
        else:
            _relocate(values, keys, result, where)
    if problems:
        raise SpecError(problems)
    return Document(data, doc.file, values, keys, doc.text, (*doc.overrides, *overrides))


_INDEX = re.compile(r"\[(\d+)\]")


def _unknown_var(data: Any, parts: list[str]) -> tuple[str, str] | None:
    """``vars.X=...`` where the spec has no var X: it would change nothing (a misspelling)."""
    if len(parts) < 2 or parts[0] != "vars":
        return None
    known = data.get("vars") if isinstance(data, dict) else None
    names = [str(k) for k in known] if isinstance(known, dict) else []
    if parts[1] in names:
        return None
    return (f"the spec has no var '{parts[1]}': setting it would change nothing",
            did_you_mean(parts[1], names) or (f"its vars: {', '.join(names)}" if names else
                                              "this spec has no vars"))


# Sections written {Name: {args}}: a key may skip the name (optimizer.lr=0.1).
_NAMED = ("optimizer", "loss", "scheduler", "dataset")
# Keys written beside the name, not among its arguments: scheduler.interval=step.
_SIBLINGS = {"scheduler": ("interval", "warmup_steps"), "loss": ("inputs",),
             "optimizer": ("groups",)}
_EXAMPLES = {"optimizer": "'{SGD: {lr: 0.1}}'", "loss": "CrossEntropyLoss",
             "scheduler": "'{StepLR: {step_size: 5}}'", "dataset": "'{MNIST: {root: data}}'"}


# Keys beside a layer's name in a model item (a graph node's inputs, a repeat, a condition).
_LAYER_SIBLINGS = ("in", "repeat", "if")


def _in_model(path: list[str | int]) -> bool:
    return bool(path) and path[0] in ("model", "blocks")


def _container(path: list[str | int]) -> bool:
    """Whether the mapping at ``path`` holds named layers or blocks (not a layer's arguments)."""
    return path in (["model"], ["blocks"]) or (
        _in_model(path) and path[-1] in ("graph", "sequential", "module_dict"))


def _layer_name(value: Any, path: list[str | int]) -> bool:
    """A bare layer or block name in a model (``- ReLU``), which an override may open."""
    return _in_model(path) and isinstance(value, str) and value[:1].isupper() and \
        value.isidentifier()


def _layer_key(node: dict[str, Any], path: list[str | int], part: str) -> str | None:
    """The layer name a model key may skip: ``model.0.out_features`` reaches
    ``model.0.Linear.out_features`` when the item holds one layer and no key ``out_features``."""
    if not _in_model(path) or part in node or part in _LAYER_SIBLINGS:
        return None
    names = [k for k in node if k not in _LAYER_SIBLINGS]
    if len(names) != 1 or not _layer_name(names[0], path):
        return None
    return names[0] if node[names[0]] is None or isinstance(node[names[0]], dict) else None


def _relocate(values: dict[SpecPath, Location], keys: dict[SpecPath, Location],
              path: SpecPath, where: Location) -> None:
    """Errors about an overridden value point at the override, not at the file's old value."""
    for table in (values, keys):
        for old in [p for p in table if p[:len(path)] == path]:
            del table[old]
        table[path] = where


def _set(data: Any, parts: list[str], value: Any, where: Location) -> Problem | SpecPath:
    """Set ``value`` at the dotted ``parts``; the path actually set, or the problem."""
    node, path = data, list[str | int]()
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return Problem(where, tuple(path), f"no item {part} in this list of {len(node)}")
            index = int(part)
            if last:
                node[index] = value
                return (*path, index)
            if _layer_name(node[index], path):  # model.1.inplace=true on "- ReLU"
                node[index] = {node[index]: {}}
            node, path = node[index], [*path, index]
            continue
        if not isinstance(node, dict):
            return Problem(where, tuple(path), f"cannot set '{part}' inside a plain value")
        if part not in node and _container(path):  # a typo would add a layer silently
            named, kind = [str(k) for k in node], "block" if path == ["blocks"] else "item"
            shown = ", ".join(named[:8]) + (", ..." if len(named) > 8 else "")
            return Problem(where, (*path, part), f"{'.'.join(map(str, path))} has no {kind} "
                           f"'{part}'", did_you_mean(part, named) or
                           f"an override changes the spec's own {kind}s: {shown}")
        layer = _layer_key(node, path, part)
        if layer is not None:  # model.0.out_features -> model.0.Linear.out_features
            if node[layer] is None:
                node[layer] = {}
            path, node = [*path, layer], node[layer]
        siblings = _SIBLINGS.get(str(path[-1]), ()) if path else ()
        names = [k for k in node if k not in siblings] if isinstance(node, dict) else []
        if (path and path[-1] in _NAMED and part not in node and part not in siblings
                and len(names) == 1 and isinstance(node[names[0]], dict)):
            if not last and part[:1].isupper():  # optimizer.SGD.lr=0.1 on an Adam spec
                key, rest = ".".join(map(str, path)), ".".join(parts[depth + 1:])
                return Problem(where, tuple(path), f"the spec's {path[-1]} is {names[0]}, not "
                               f"{part}", f"to use {part}, give the {path[-1]} whole: {key}="
                               f"'{{{part}: {{{rest}: {json.dumps(value)}}}}}'")
            path = [*path, names[0]]
            node = node[names[0]]  # optimizer.lr -> optimizer.SGD.lr
        if last:
            node[part] = value
            return (*path, part)
        if part not in node:
            from nnspec.lang.checker import TOP_KEYS

            if depth == 0 and part not in TOP_KEYS:  # a known section may be absent: add it
                return Problem(where, (part,), f"unknown section '{part}'",
                               did_you_mean(part, TOP_KEYS))
            if part in _NAMED:  # scheduler.name=StepLR: there is no name to go under
                return Problem(where, (*path, part), f"the spec has no '{part}' to change",
                               f"give it whole, e.g. {part}={_EXAMPLES[part]}")
            node[part] = {}
        if isinstance(node[part], str):  # optimizer: Adam  ->  {Adam: {}}
            node[part] = {node[part]: {}}
        node, path = node[part], [*path, part]
    return tuple(path)
