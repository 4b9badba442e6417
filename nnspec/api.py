"""The Python API: what the CLI calls, and what a notebook user calls directly.

    spec = nnspec.load_spec("specs/lenet.yaml")      # load + check
    graph = nnspec.infer(spec)                       # shapes on every edge (imports torch)
    model = nnspec.compile(spec)                     # an nn.Module
    source = nnspec.emit(spec)                       # standalone Python source
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.lang.checker import check
from nnspec.lang.loader import Document, load
from nnspec.lang.overrides import apply_overrides
from nnspec.lang.spec import Spec

if TYPE_CHECKING:
    from torch import nn

    from nnspec.compiler.ir import Graph


def load_spec(source: str | Path | Document | Spec, overrides: Sequence[str] = ()) -> Spec:
    """Load and check a spec from a path, '-', text, a Document or a Spec."""
    if isinstance(source, Spec):
        return source
    doc = source if isinstance(source, Document) else load(source)
    if overrides:
        doc = apply_overrides(doc, overrides)
    return check(doc)


def resolve(source: Any, overrides: Sequence[str] = ()) -> Graph:
    """The model as a graph of layers with evaluated arguments (no shapes yet)."""
    from nnspec.compiler.resolve import resolve as _resolve

    return _resolve(load_spec(source, overrides))


def infer(source: Any, overrides: Sequence[str] = ()) -> Graph:
    """The resolved graph with a shape on every edge and every ``auto`` argument filled."""
    from nnspec.compiler.shapes import infer as _infer

    return _infer(resolve(source, overrides))


def validate(source: Any, *, shapes: bool = True, overrides: Sequence[str] = ()) -> Graph:
    """Check a spec completely; raises SpecError listing every problem, from every pass."""
    from nnspec.compiler.resolve import resolve as _resolve
    from nnspec.errors import SpecError
    from nnspec.lang.checker import check_partial

    if isinstance(source, Spec):
        spec: Spec | None = source
        problems: list[Any] = []
    else:
        doc = source if isinstance(source, Document) else load(source)
        if overrides:
            doc = apply_overrides(doc, overrides)
        spec, problems = check_partial(doc)
    if spec is None:
        raise SpecError(problems)
    # a failing check already lists the spec's warnings; a passing one keeps them on the spec
    warnings = [] if problems else list(spec.warnings)
    try:
        graph = _resolve(spec)
        if shapes and not problems:
            from nnspec.compiler.shapes import infer as _infer

            graph = _infer(graph)
    except SpecError as exc:
        raise SpecError([*problems, *exc.problems, *warnings]) from None
    if shapes and (spec.loss is not None or spec.optimizer is not None or spec.init
                   or spec.freeze):
        from nnspec.run.preflight import problems as training_problems

        problems = [*problems, *training_problems(spec)]  # torch's word on the values
    if problems:
        raise SpecError([*problems, *warnings])
    return graph


def compile(source: Any, overrides: Sequence[str] = ()) -> nn.Module:
    """Build the model the spec describes, with freshly initialised weights.

    Refuses models over the spec's ``train.max_params`` (validation alone never allocates).
    """
    from nnspec.compiler.build import build
    from nnspec.compiler.shapes import infer as _infer

    spec = load_spec(source, overrides)
    return build(_infer(resolve(spec)), max_params=spec.train.max_params)


def emit(source: Any, overrides: Sequence[str] = ()) -> str:
    """The model as standalone Python source that imports only torch."""
    from nnspec.compiler.emit.emitter import emit as _emit

    return _emit(infer(source, overrides))


def lock(source: Any, overrides: Sequence[str] = ()) -> str:
    """The locked spec as YAML: every ``auto`` filled, variables evaluated, blocks expanded."""
    from nnspec.views.locked_yaml import locked_yaml

    spec = load_spec(source, overrides)
    return locked_yaml(infer(spec), spec, overrides)
