"""nnspec's own small evaluator for ``$name`` and ``${expression}`` values.

The expression is parsed with ``ast`` (parsing runs nothing) and walked here: numbers, names,
``+ - * / // % **``, parentheses, comparisons and ``min/max/abs/int/round``.  Anything else is a
located error.  Results are bounded so ``${10**10**10}`` cannot hang the checker.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nnspec.lang.spec import EXPR_PATTERN

_EXPR = re.compile(EXPR_PATTERN)
LIMIT = 2**63
# Python's own parser recurses (and can run out of memory) on deeply nested text, and so does
# the walker below: both limits keep a hostile expression a located error, never a crash.
MAX_LENGTH = 500
MAX_DEPTH = 50

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "int": int, "round": round, "float": float,
}
TENSOR_ATTRIBUTES = ("shape", "channels", "features", "rank", "dtype")


# names format 2 defines in some places only: where they are known, for the hint
_WHERE_DEFINED = {
    "index": "in format 2, index is the copy's number: it is known only in an item with "
             "repeat: and in its name pattern",
    "input": "in format 2, input is the value a layer or block receives, as in "
             "${input.features}: it is known in model and blocks, not in vars",
}


@dataclass(frozen=True)
class TensorView:
    """What an expression may read of a tensor (format 2): ``input.shape[1]`` (one sample's
    shape, no batch), ``input.channels`` (its first dimension), ``input.features`` (its last),
    ``input.rank`` and ``input.dtype``."""

    sizes: tuple[int, ...]
    type: str = "float32"

    def read(self, attribute: str) -> Any:
        if attribute == "shape":
            return list(self.sizes)
        if attribute == "rank":
            return len(self.sizes)
        if attribute == "dtype":
            return self.type
        if not self.sizes:
            raise ExprError(f"a [N] tensor has no {attribute}", "it has no dimension per sample")
        return self.sizes[0] if attribute == "channels" else self.sizes[-1]


class ShapeNeeded(Exception):
    """An expression read a tensor whose shape is not known yet: resolve it during inference."""


@dataclass(frozen=True)
class PendingView:
    """A block's input before shape inference reaches it: reading it defers the block."""

    name: str

    def read(self, attribute: str) -> Any:
        raise ShapeNeeded(self.name)


class ExprError(ValueError):
    """An expression that cannot be evaluated; the message says why."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def is_expr(value: Any) -> bool:
    return isinstance(value, str) and bool(_EXPR.match(value))


def evaluate(text: str, names: Mapping[str, Any]) -> Any:
    """Evaluate ``$name`` or ``${expr}`` against ``names``."""
    body = text[2:-1] if text.startswith("${") else text[1:]
    if len(body) > MAX_LENGTH:
        raise ExprError(f"expression is {len(body)} characters long, over the limit of "
                        f"{MAX_LENGTH}", "split it into several vars")
    try:
        tree = ast.parse(body.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExprError(f"cannot parse expression '{body}'",
                        "use numbers, names and + - * / // % ** ( )") from None
    return _Walker(names).visit(tree.body)


def substitute(value: Any, names: Mapping[str, Any]) -> Any:
    """Replace every expression string inside ``value`` (lists and mappings included)."""
    if is_expr(value):
        return evaluate(value, names)
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


# A name pattern (format 2's ``repeat: {times, name}``): text with ``${expr}`` or ``$name`` parts.
_TEMPLATE_PART = re.compile(r"\$(?:\{([^{}]+)\}|([A-Za-z_][A-Za-z0-9_]*))")


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a name pattern (a ``$`` that starts no ``${expr}`` or
    ``$name``), or None."""
    rest = _TEMPLATE_PART.sub("", template)
    if "$" in rest:
        return (f"'{template}' has a $ that starts no ${{expression}} or $name; "
                "write ${index + 1}")
    return None


def interpolate(template: str, names: Mapping[str, Any]) -> str:
    """The text of a name pattern with each ``${expr}`` and ``$name`` replaced by its value,
    an integer or a string: ``denselayer${index + 1}`` -> ``denselayer3``."""
    problem = template_problem(template)
    if problem:
        raise ExprError(problem, "a $ in a name pattern starts ${expression} or $name")

    def part(match: re.Match[str]) -> str:
        value = evaluate(match.group(0), names)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ExprError(f"'{match.group(0)}' in the name pattern '{template}' gives "
                            f"{value!r}, not an integer or a string",
                            "a name is made of text and whole numbers: ${index // 2}")
        return str(value)

    return _TEMPLATE_PART.sub(part, template)


class _Walker:
    def __init__(self, names: Mapping[str, Any]) -> None:
        self.names = names
        self.depth = 0

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression",
                            "use numbers, names and + - * / // % ** ( )")
        if self.depth >= MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            result = method(node)
        finally:
            self.depth -= 1
        if isinstance(result, complex):
            raise ExprError(f"'{ast.unparse(node)}' is not a real number")
        if isinstance(result, int | float) and not isinstance(result, bool):
            if isinstance(result, float) and not math.isfinite(result):
                raise ExprError(f"'{ast.unparse(node)}' is not a finite number")
            if abs(result) >= LIMIT:
                raise ExprError(f"'{ast.unparse(node)}' is out of range")
        return result

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, bool | int | float | str):
            return node.value
        raise ExprError(f"constant {node.value!r} is not allowed")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in ("True", "False", "true", "false") and node.id not in self.names:
            return node.id in ("True", "true")  # YAML's spelling too: users write it
        if node.id not in self.names:
            from nnspec.errors import did_you_mean

            raise ExprError(f"unknown variable '{node.id}'", _WHERE_DEFINED.get(node.id) or
                            did_you_mean(node.id, self.names) or
                            f"known: {', '.join(sorted(self.names)) or 'none'}")
        return self.names[node.id]

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        if isinstance(node.op, ast.Not):
            return not self.visit(node.operand)
        value = self._number(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        raise ExprError(f"operator in '{ast.unparse(node)}' is not allowed")

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self._number(node.left), self._number(node.right)
        fn = _BINARY.get(type(node.op))
        if fn is None:
            raise ExprError(f"operator in '{ast.unparse(node)}' is not allowed")
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > LIMIT):
            raise ExprError(f"'{ast.unparse(node)}' is too large")
        try:
            return fn(left, right)
        except ZeroDivisionError:
            raise ExprError(f"division by zero in '{ast.unparse(node)}'") from None

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise ExprError(f"comparison in '{ast.unparse(node)}' is not allowed")
            try:
                holds = fn(left, right)
            except TypeError:
                raise ExprError(f"cannot compare {left!r} with {right!r} in "
                                f"'{ast.unparse(node)}'") from None
            if not holds:
                return False
            left = right
        return True

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr not in TENSOR_ATTRIBUTES:
            from nnspec.errors import did_you_mean

            raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression",
                            did_you_mean(node.attr, TENSOR_ATTRIBUTES) or
                            f"a tensor such as input has {', '.join(TENSOR_ATTRIBUTES)}")
        value = self.visit(node.value)
        if not isinstance(value, TensorView | PendingView):
            raise ExprError(f"'{ast.unparse(node)}': {ast.unparse(node.value)} is not a tensor",
                            "only a tensor (input) has a shape")
        return value.read(node.attr)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        value = self.visit(node.value)
        index = self._number(node.slice)
        if not isinstance(value, list | tuple):
            raise ExprError(f"'{ast.unparse(node)}': {ast.unparse(node.value)} is not a list")
        if not isinstance(index, int) or not -len(value) <= index < len(value):
            raise ExprError(f"'{ast.unparse(node)}': index {index} is out of range for a list "
                            f"of {len(value)}")
        return value[index]

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        want = isinstance(node.op, ast.Or)
        for value in node.values:
            if bool(self.visit(value)) is want:
                return want
        return not want

    def visit_Call(self, node: ast.Call) -> Any:
        known = (*_FUNCTIONS, "len")
        if not isinstance(node.func, ast.Name) or node.func.id not in known or node.keywords:
            raise ExprError(f"call '{ast.unparse(node)}' is not allowed",
                            f"allowed functions: {', '.join(known)}")
        if node.func.id == "len":
            items = [self.visit(a) for a in node.args]
            if len(items) != 1 or not isinstance(items[0], list | tuple):
                raise ExprError(f"'{ast.unparse(node)}': len takes one list")
            return len(items[0])
        args = [self._number(a) for a in node.args]
        try:
            return _FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise ExprError(f"'{ast.unparse(node)}': {exc}") from None

    def _number(self, node: ast.AST) -> Any:
        value = self.visit(node)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ExprError(f"'{ast.unparse(node)}' is not a number (found {value!r})")
        return value
