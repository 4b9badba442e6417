"""Just enough of ruff format's (black's) layout for the expressions the emitter writes.

Emitted code must be what ``ruff format`` would leave alone, without ruff being installed.  The
emitter only writes calls, lists, tuples and dicts of literals, so three of black's rules
suffice: a bracket that fits stays on one line; one that does not puts its body on one indented
line if that fits ("hug"); otherwise one item per line with a trailing comma.  A bracket marked
``explode`` always takes one item per line: its trailing comma keeps ruff from joining it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

LINE_LENGTH = 88
INDENT = "    "


@dataclass(frozen=True)
class Atom:
    """Code that is never split: a name, a literal, ``self.conv1``."""

    text: str


@dataclass(frozen=True)
class Keyword:
    """``name=value`` inside a call, or ``"key": value`` in a dict (``sep=": "``)."""

    name: str
    value: Expr
    sep: str = "="


@dataclass(frozen=True)
class Bracket:
    """A call (``head`` is the callee), or a list/tuple/dict display (``head`` empty)."""

    head: str
    items: tuple[Expr, ...]
    open: str = "("
    close: str = ")"
    explode: bool = False
    bare: bool = False  # a tuple written without its parentheses while it fits: return a, b


@dataclass(frozen=True)
class Operators:
    """``a + b + c``: split before each operator, inside parentheses, when too long."""

    op: str
    items: tuple[Expr, ...]


Expr = Atom | Keyword | Bracket | Operators


def call(head: str, *items: Expr, explode: bool = False) -> Bracket:
    return Bracket(head, tuple(items), explode=explode)


def flat(expr: Expr) -> str:
    """The expression on one line."""
    if isinstance(expr, Atom):
        return expr.text
    if isinstance(expr, Keyword):
        return f"{expr.name}{expr.sep}{flat(expr.value)}"
    if isinstance(expr, Operators):
        return f" {expr.op} ".join(flat(item) for item in expr.items)
    body = ", ".join(flat(item) for item in expr.items)
    if expr.bare:
        return body
    if not expr.head and expr.open == "(" and len(expr.items) == 1:
        body += ","  # a one-element tuple
    return f"{expr.head}{expr.open}{body}{expr.close}"


def forced(expr: Expr) -> bool:
    """Whether a magic trailing comma somewhere inside forces the expression to split."""
    if isinstance(expr, Keyword):
        return forced(expr.value)
    if isinstance(expr, Atom):
        return False
    if isinstance(expr, Operators):
        return any(forced(item) for item in expr.items)
    return expr.explode or any(forced(item) for item in expr.items)


def layout(expr: Expr, depth: int, prefix: str = "", suffix: str = "") -> list[str]:
    """The lines of ``prefix + expr + suffix`` at indentation ``depth``, as ruff lays them out."""
    pad = INDENT * depth
    if isinstance(expr, Keyword):
        return layout(expr.value, depth, f"{prefix}{expr.name}{expr.sep}", suffix)
    one_line = f"{pad}{prefix}{flat(expr)}{suffix}"
    if isinstance(expr, Operators) and (forced(expr) or len(one_line) > LINE_LENGTH):
        lines = layout(expr.items[0], depth, prefix)
        for item in expr.items[1:-1]:
            lines += layout(item, depth, f"{expr.op} ")
        return lines + layout(expr.items[-1], depth, f"{expr.op} ", suffix)
    if isinstance(expr, Atom | Operators) or not expr.items or (
            not forced(expr) and len(one_line) <= LINE_LENGTH):
        return [one_line]
    head = f"{pad}{prefix}{expr.head}{expr.open}"
    tail = f"{pad}{expr.close}{suffix}"
    inner = INDENT * (depth + 1)
    body = ", ".join(flat(item) for item in expr.items)
    single_tuple = not expr.head and expr.open == "(" and len(expr.items) == 1
    if not forced(expr) and not single_tuple and len(inner + body) <= LINE_LENGTH:
        return [head, inner + body, tail]
    if len(expr.items) == 1 and not expr.explode and not single_tuple:
        return [head, *layout(expr.items[0], depth + 1), tail]
    lines = [head]
    for item in expr.items:
        lines += layout(item, depth + 1, "", ",")
    return [*lines, tail]


def statement(expr: Expr, depth: int, prefix: str, suffix: str = "") -> list[str]:
    """``target = expr`` or ``return expr``: when the expression cannot be split after its
    head, ruff wraps it in parentheses and lays it out one level deeper."""
    pad = INDENT * depth
    if len(f"{pad}{prefix}{flat(expr)}{suffix}") <= LINE_LENGTH and not forced(expr):
        return [f"{pad}{prefix}{flat(expr)}{suffix}"]
    if isinstance(expr, Bracket) and (expr.bare or len(
            f"{pad}{prefix}{expr.head}{expr.open}") <= LINE_LENGTH or len(
            f"{pad}{INDENT}{expr.head}{expr.open}") > LINE_LENGTH):
        return layout(expr, depth, prefix, suffix)  # parentheses would not fit it either
    if isinstance(expr, Atom):
        return [f"{pad}{prefix}{expr.text}{suffix}"]  # nothing to split
    return [f"{pad}{prefix}(", *layout(expr, depth + 1), f"{pad}){suffix}"]


def from_source(text: str) -> Expr:
    """An expression's source as an ``Expr``, so that it is laid out like the rest.

    Used for the one-line expressions ``ops.source`` writes; calls, lists and chains of ``+``
    or ``*`` can split, everything else is kept whole (as ``ast.unparse`` writes it).
    """
    return _convert(ast.parse(text, mode="eval").body)


def _convert(node: ast.expr) -> Expr:
    if isinstance(node, ast.Call):
        args: list[Expr] = [_convert(a) for a in node.args]
        args += [Keyword(k.arg, _convert(k.value)) if k.arg else Atom(ast.unparse(k))
                 for k in node.keywords]
        return Bracket(ast.unparse(node.func), tuple(args))
    if isinstance(node, ast.List):
        return Bracket("", tuple(_convert(e) for e in node.elts), "[", "]")
    if isinstance(node, ast.Tuple) and node.elts:
        return Bracket("", tuple(_convert(e) for e in node.elts))
    if isinstance(node, ast.Starred) and isinstance(node.value, ast.Tuple) and len(
            node.value.elts) > 1:
        return Bracket("*", tuple(_convert(e) for e in node.value.elts))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        symbol = _OPERATORS[type(node.op)]
        left = _operand(node.left, node, right=False)
        items = left.items if isinstance(left, Operators) and left.op == symbol else (left,)
        return Operators(symbol, (*items, _operand(node.right, node, right=True)))
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # as ruff format quotes
        text = repr(node.value)
        return Atom(f'"{text[1:-1]}"' if text[0] == "'" and '"' not in node.value else text)
    return Atom(unparse(node))


def unparse(node: ast.expr) -> str:
    """``ast.unparse`` as ruff format writes it: simple powers hug (``x**2``, ``a**-0.5``)."""
    return ast.unparse(_Hug().visit(node))


class _Hug(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow) and _simple(node.left, False) and _simple(
                node.right, True):
            return ast.Name(f"{ast.unparse(node.left)}**{ast.unparse(node.right)}", ast.Load())
        return node


def _simple(node: ast.expr, signed: bool) -> bool:
    """black's simple power operand: a name, a number or an attribute chain (the exponent
    may carry a minus)."""
    if signed and isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) or (isinstance(node, ast.Constant) and isinstance(
        node.value, int | float) and not isinstance(node.value, bool))


_OPERATORS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Mult: "*"}
_PRECEDENCE: dict[type[ast.operator], int] = {
    ast.BitOr: 0, ast.BitXor: 1, ast.BitAnd: 2, ast.LShift: 3, ast.RShift: 3, ast.Add: 4,
    ast.Sub: 4, ast.Mult: 5, ast.MatMult: 5, ast.Div: 5, ast.FloorDiv: 5, ast.Mod: 5,
    ast.Pow: 7}


def _operand(node: ast.expr, parent: ast.BinOp, right: bool) -> Expr:
    """An operand of ``+`` or ``*``, in parentheses where the operators would otherwise
    regroup it: ``(a + b) * 3``, ``a + (b + c)``."""
    if isinstance(node, ast.BinOp):
        inner, outer = _PRECEDENCE[type(node.op)], _PRECEDENCE[type(parent.op)]
        if inner < outer or (right and inner == outer):
            return Atom(f"({unparse(node)})")
    if isinstance(node, ast.IfExp | ast.BoolOp | ast.Compare | ast.Lambda | ast.NamedExpr):
        return Atom(f"({unparse(node)})")  # binds more loosely than + and *
    return _convert(node)
