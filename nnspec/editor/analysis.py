"""What the language server knows about one document: its problems, and its layers' shapes.

``check(text, file)`` runs what ``nnspec validate --no-shapes`` runs (no torch); ``infer``
adds what ``nnspec validate`` adds (shapes and torch's word on the training values, importing
torch the first time) and indexes every layer's input and output shapes and parameter count
by where it is written, for hover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnspec.errors import Location, NnspecError, Problem, SpecError
from nnspec.lang.loader import Document, loads


@dataclass(frozen=True)
class LayerInfo:
    op: str
    inputs: str
    output: str
    params: int | None


@dataclass
class Analysis:
    file: str
    text: str
    doc: Document | None = None
    problems: list[Problem] = field(default_factory=list)
    shapes_checked: bool = False
    layers: dict[tuple[int, int], list[LayerInfo]] = field(default_factory=dict)

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)


def check(text: str, file: str) -> Analysis:
    """Load and check without shapes: fast, and never imports torch."""
    from nnspec.api import validate

    analysis = Analysis(file, text)
    try:
        analysis.doc = loads(text, file)
        graph = validate(analysis.doc, shapes=False)
        analysis.problems = list(graph.warnings)
    except SpecError as exc:
        analysis.problems = list(exc.problems)
    except NnspecError as exc:
        analysis.problems = [Problem(Location(file, 1, 1), (), str(exc))]
    return analysis


def infer(previous: Analysis) -> Analysis:
    """The full check (shapes included) of a document that passed ``check``."""
    from nnspec.api import validate

    analysis = Analysis(previous.file, previous.text, previous.doc, shapes_checked=True)
    try:
        graph = validate(previous.doc, shapes=True)
        analysis.problems = list(graph.warnings)
        analysis.layers = layer_index(graph)
    except SpecError as exc:
        analysis.problems = list(exc.problems)
    except NnspecError as exc:
        analysis.problems = [Problem(Location(previous.file, 1, 1), (), str(exc))]
    return analysis


def layer_index(graph: Any) -> dict[tuple[int, int], list[LayerInfo]]:
    """(line, column) of each layer's name -> what it is at each use (a block's layers are
    used once per instance)."""
    from nnspec.compiler.ir import Net, show
    from nnspec.views.summary import summarise

    params = {row.name: row.params for row in summarise(graph).rows}
    index: dict[tuple[int, int], list[LayerInfo]] = {}

    def record(node: Any, came: list[Any], name: str) -> None:
        where = node.source.location
        op = (node.body.block or node.body.kind) if isinstance(node.body, Net) else node.body.op
        shown = show(came[0]) if len(came) == 1 else show(tuple(came))
        index.setdefault((where.line, where.column), []).append(
            LayerInfo(op, shown, show(node.out), params.get(name)))
        if isinstance(node.body, Net):
            walk(node.body, came, name + ".")

    def walk(net: Net, inputs: list[Any], prefix: str) -> None:
        if net.chained:
            value = inputs[0]
            for node in net.forward_nodes():
                record(node, [value], prefix + node.name)
                value = node.out
            return
        env = dict(zip(net.inputs, inputs, strict=False))
        for node in net.topological():
            record(node, [env.get(ref) for ref in node.inputs], prefix + node.name)
            env[node.name] = node.out

    walk(graph.root, list(graph.inputs.values()), "")
    return index
