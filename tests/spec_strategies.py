"""Hypothesis strategies for small random specs: every container form, features or images,
blocks with parameters, repeats, and graphs with add, mul and cat (shared by the emit and lock
tests)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import strategies as st

from nnspec.compiler.emit.names import is_attribute

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(is_attribute).filter(
    lambda n: n not in ("sequential", "graph", "module_list", "module_dict", "in", "repeat",
                        "input"))
WIDTH = st.integers(1, 6)
BLOCKS = {"Dense": {"params": {"width": "int"},
                    "sequential": [{"Linear": {"out_features": "$width"}}, "ReLU"]},
          "ConvBn": {"params": {"width": "int"},
                     "sequential": [{"Conv2d": {"out_channels": "$width", "kernel_size": 3,
                                                "padding": 1, "bias": False}}, "BatchNorm2d"]}}


def _width_keeping(width: int, image: bool) -> st.SearchStrategy[Any]:
    """Layers whose output has ``width`` features (or channels, keeping the image size)."""
    if image:
        return st.sampled_from(["ReLU", "BatchNorm2d", {"Dropout": {"p": 0.5}},
                                {"Conv2d": {"out_channels": width, "kernel_size": 1}},
                                {"Conv2d": {"out_channels": width, "kernel_size": 3,
                                            "padding": 1}},
                                {"ConvBn": {"width": width}}])
    return st.sampled_from(["ReLU", "Tanh", "BatchNorm1d", "LayerNorm", {"Dropout": {"p": 0.5}},
                            {"Linear": {"out_features": width}}, {"Dense": {"width": width}}])


def _restore(width: int, image: bool) -> dict[str, Any]:
    """A layer that brings any number of features (channels) back to ``width``."""
    if image:
        return {"Conv2d": {"out_channels": width, "kernel_size": 1}}
    return {"Linear": {"out_features": width}}


@st.composite
def _chain_items(draw: st.DrawFn, image: bool) -> list[Any]:
    items: list[Any] = []
    for _ in range(draw(st.integers(1, 5))):
        item = draw(_width_keeping(draw(WIDTH), image))
        if draw(st.booleans()) and isinstance(item, dict):
            item = {**item, "repeat": draw(st.integers(2, 3))}
        items.append(item)
    return items


@st.composite
def _graph(draw: st.DrawFn, width: int, image: bool) -> dict[str, Any]:
    names = draw(st.lists(NAMES, min_size=2, max_size=6, unique=True))
    nodes: dict[str, Any] = {}
    for i, name in enumerate(names):
        earlier = ["input", *names[:i]]
        kind = draw(st.sampled_from(["layer", "add", "mul", "cat"] if i else ["layer"]))
        if kind == "layer":
            layer = draw(_width_keeping(width, image))
            layer = {layer: None} if isinstance(layer, str) else layer
            nodes[name] = {**layer, "in": draw(st.sampled_from(earlier))} if draw(
                st.booleans()) else layer
        elif kind == "cat":
            pair = draw(st.lists(st.sampled_from(earlier), min_size=2, max_size=3))
            nodes[f"joined_{i}_{name}"] = {"cat": pair}  # longer than NAMES: no clash
            nodes[name] = _restore(width, image)
        else:
            nodes[name] = {kind: draw(st.lists(st.sampled_from(earlier), min_size=2,
                                               max_size=3))}
    used = {ref for node in nodes.values() if isinstance(node, dict)
            for ref in _refs(node)} | _chained(list(nodes.items()))
    outputs = [n for n in nodes if n not in used]
    return {"graph": nodes, "outputs": outputs}


def _refs(node: dict[str, Any]) -> list[str]:
    value = node.get("in")
    refs = [value] if isinstance(value, str) else list(value or [])
    for op in ("add", "mul", "cat"):
        if isinstance(node.get(op), list):
            refs += node[op]
    return refs


def _chained(items: list[tuple[str, object]]) -> set[str]:
    """Nodes without ``in`` (and not ops naming inputs) take the previous node."""
    used = set()
    for (prev, _), (_, node) in itertools.pairwise(items):
        if not (isinstance(node, dict) and _refs(node)):
            used.add(prev)
    return used


@st.composite
def specs(draw: st.DrawFn) -> str:
    """Small random models: every container form, features or images, blocks and repeats."""
    width, image = draw(WIDTH), draw(st.booleans())
    form = draw(st.sampled_from(["list", "named", "graph", "module_list", "module_dict"]))
    items = draw(_chain_items(image))
    names = draw(st.lists(NAMES, min_size=len(items), max_size=len(items), unique=True))
    model = {"list": items, "named": dict(zip(names, items, strict=True)),
             "module_list": {"module_list": items},
             "module_dict": {"module_dict": dict(zip(names, items, strict=True))},
             }.get(form) or draw(_graph(width, image))
    spec = {"nnspec": 1, "name": "generated", "input": [width, 4, 4] if image else [width],
            "blocks": BLOCKS, "model": model}
    return json.dumps(spec, indent=1)
