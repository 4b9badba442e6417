"""A spec's expressions (``$planes``, ``${2 * width}``) as Python expressions of a class's
``__init__`` arguments.

A block's class takes the block's parameters, and ``in_channels``, ``in_features`` or
``in_shape`` for what its expressions read of the input (``input.channels``, ...); the spec's
vars are module constants (``NUM_HEADS = (3, 6, 12, 24)``).  An expression that reads anything
else (``index``, another tensor, a name from the caller's scope) has no translation:
``translate`` returns None and the planner falls back on the values.  Every translation is
checked by evaluating it with nnspec's own evaluator against the values of each instance
(``holds``): emitted code never computes a value the builder did not.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnspec.compiler.emit.format import unparse
from nnspec.compiler.emit.names import literal
from nnspec.lang.exprs import ExprError, evaluate, is_expr

INPUT_PARAMS = {"channels": "in_channels", "features": "in_features", "shape": "in_shape"}
FUNCTIONS = frozenset({"min", "max", "abs", "int", "round", "float", "len"})


@dataclass(frozen=True)
class Code:
    """Python source of one value, and the class parameters it reads."""

    text: str
    names: frozenset[str] = frozenset()
    # a list's parts: (one part's code, where its value sits in the list's value)
    parts: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def holds(self, names: Mapping[str, Any], value: Any) -> bool:
        """Whether the code gives ``value`` when the parameters hold ``names``."""
        if not self.parts:
            return _same(_evaluate(self.text, names), value)
        for text, where in self.parts:
            wanted = value
            for i in where:
                if not isinstance(wanted, list | tuple) or i >= len(wanted):
                    return False
                wanted = wanted[i]
            if not _same(_evaluate(text, names), wanted):
                return False
        return True


def translate(raw: Any, value: Any, params: Mapping[str, str], variables: Mapping[str, str]
              ) -> Code | None:
    """``raw`` (the spec's text) as Python reading ``params`` (name -> Python name) and the
    module constants ``variables`` stand for (``vars.num_heads`` -> ``NUM_HEADS``), with
    ``value`` (what it evaluated to in one instance) to pair a list's parts; or None."""
    if isinstance(raw, list) and isinstance(value, list | tuple) and len(raw) == len(value):
        found = [translate(r, v, params, variables) for r, v in zip(raw, value, strict=True)]
        if any(p is None for p in found):
            return None
        done = [p for p in found if p is not None]
        texts = [p.text for p in done]
        text = f"({texts[0]},)" if len(texts) == 1 else "(" + ", ".join(texts) + ")"
        parts = tuple((t, (i, *where)) for i, p in enumerate(done)
                      for t, where in (p.parts or ((p.text, ()),)))
        return Code(text, frozenset().union(*(p.names for p in done)), parts)
    if not is_expr(raw):
        try:
            return Code(literal(raw))
        except ValueError:
            return None
    body = raw[2:-1] if raw.startswith("${") else raw[1:]
    try:
        tree = ast.parse(body.strip(), mode="eval").body
        done = _Rewrite(params, variables).visit(tree)
    except (SyntaxError, ValueError, RecursionError, _Untranslatable):
        return None
    names = frozenset(n.id for n in ast.walk(done) if isinstance(n, ast.Name)) - FUNCTIONS
    return Code(unparse(done), names - {"True", "False", "None"})


class _Untranslatable(Exception):
    pass


class _Rewrite(ast.NodeTransformer):
    def __init__(self, params: Mapping[str, str], variables: Mapping[str, str]) -> None:
        self.params, self.variables = params, variables

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.params:
            return ast.Name(self.params[node.id], ast.Load())
        if node.id in ("True", "False"):
            return ast.Constant(node.id == "True")
        if node.id in self.variables and node.id != "index":  # a module constant
            return ast.Name(self.variables[node.id], ast.Load())
        raise _Untranslatable(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if isinstance(node.value, ast.Name) and node.value.id == "input" and (
                node.attr in INPUT_PARAMS):
            return ast.Name(INPUT_PARAMS[node.attr], ast.Load())
        raise _Untranslatable(ast.unparse(node))

    def visit_Call(self, node: ast.Call) -> ast.expr:
        if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS) or node.keywords:
            raise _Untranslatable(ast.unparse(node))
        node.args = [self.visit(a) for a in node.args]
        inner = node.args[0] if len(node.args) == 1 else None
        if node.func.id == "int" and isinstance(inner, ast.Call) and isinstance(
                inner.func, ast.Name) and inner.func.id == "round" and len(inner.args) == 1:
            return inner  # round(x) is an int already (ruff's RUF046)
        return node


def _evaluate(text: str, names: Mapping[str, Any]) -> Any:
    try:
        return evaluate("${" + text + "}", names)
    except (ExprError, TypeError, ValueError):
        return _Missing


class _Missing:
    pass


def _same(found: Any, wanted: Any) -> bool:
    """Equal values of equal types (1, 1.0 and True differ), lists and tuples alike."""
    if isinstance(found, list | tuple) and isinstance(wanted, list | tuple):
        return len(found) == len(wanted) and all(
            _same(f, w) for f, w in zip(found, wanted, strict=True))
    return type(found) is type(wanted) and found == wanted
