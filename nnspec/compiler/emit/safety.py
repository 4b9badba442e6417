"""The last gate before emitted code leaves nnspec: parse it back and allow only what we write.

Defence in depth behind ``names``: even if a hostile name or value slipped through, the code
must still be a docstring, the known imports and classes whose methods build torch modules and
call them.  Anything else (another import, a call to a builtin, a dunder, a lambda, a loop) is
an nnspec bug, raised as ``EmitCheckError`` (exit code 1), never written.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping

from nnspec import catalogue
from nnspec.compiler.ir import CONTAINERS

IMPORTS = {("collections", "OrderedDict"), ("typing", "Any"), ("torch", "nn")}
BASES = {"Module", *(kind.base for kind in CONTAINERS.values())}
METHODS = {"__init__", "forward"}
# Tensor methods that the ops' code writes (x.reshape(...), x.mean(...), ...).
TENSOR_METHODS = {method for entry in catalogue.ops().values() if entry.traits.code
                  for method in entry.traits.code.methods}
# what a spec's expressions may call (nnspec.lang.exprs), written into __init__ as they are
FUNCTIONS = {"min", "max", "abs", "int", "round", "float", "len"}
GLOBALS = {"torch", "nn", "OrderedDict", "Any", "super", "self", "tuple", "int", "float", "bool",
           "str", "getattr", "list", "type", "range", *FUNCTIONS}
NODES = (ast.Module, ast.Expr, ast.Constant, ast.Import, ast.ImportFrom, ast.alias,
         ast.ClassDef, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign,
         ast.Name, ast.Load, ast.Store, ast.Attribute, ast.Call, ast.keyword, ast.Tuple,
         ast.List, ast.Dict, ast.Subscript, ast.BinOp, ast.Add, ast.Mult, ast.MatMult, ast.BitOr,
         ast.Slice,
         ast.Starred, ast.UnaryOp, ast.USub, ast.UAdd, ast.Not,
         # a spec's expressions and conditions (``if stride == 1 and in_channels == out:``)
         ast.If, ast.AnnAssign, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt,
         ast.GtE, ast.Is, ast.IsNot, ast.BoolOp, ast.And, ast.Or, ast.IfExp, ast.Sub, ast.Div,
         ast.FloorDiv, ast.Mod, ast.Pow, ast.For)


class EmitCheckError(ValueError):
    """Emitted code failed its safety check: a bug in nnspec, never a user error."""


def check_source(text: str, class_names: Iterable[str],
                 imported: Mapping[str, str] | None = None,
                 constants: Iterable[str] = ()) -> None:
    """Raise EmitCheckError unless ``text`` is the kind of module the emitter writes.

    ``imported`` maps the layers outside torch.nn the model uses (torchvision.ops, custom
    layers) to their modules: the only names beyond torch's that the code may import and call.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise EmitCheckError(f"emitted code does not parse: {exc}") from None
    classes = set(class_names)
    allowed = IMPORTS | {(module, name) for name, module in (imported or {}).items()}
    body = tree.body
    if not body or not _is_docstring(body[0]):
        raise EmitCheckError("emitted code must start with its docstring")
    names = set(constants)
    for stmt in body[1:]:
        if _is_constant(stmt, names):
            continue
        _top_level(stmt, classes, allowed, set(imported or {}) | names)
    for node in ast.walk(tree):
        _node(node)


def _is_constant(stmt: ast.stmt, names: set[str]) -> bool:
    """``NUM_HEADS = (3, 6, 12, 24)``: one of the spec's vars, a literal."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id in names):
        return False
    try:
        ast.literal_eval(stmt.value)
    except ValueError:
        raise _fail(stmt, "a constant must be a literal") from None
    return True


def _fail(node: ast.AST, why: str) -> EmitCheckError:
    line = getattr(node, "lineno", "?")
    return EmitCheckError(f"emitted code, line {line}: {why}")


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(
        stmt.value.value, str)


def _top_level(stmt: ast.stmt, classes: set[str], allowed: set[tuple[str, str]],
               layers: set[str]) -> None:
    if isinstance(stmt, ast.Import):
        if [a.name for a in stmt.names] != ["torch"] or stmt.names[0].asname:
            raise _fail(stmt, "unexpected import")
        return
    if isinstance(stmt, ast.ImportFrom):
        if stmt.level or any((stmt.module, a.name) not in allowed or a.asname
                             for a in stmt.names):
            raise _fail(stmt, "unexpected import")
        return
    if not isinstance(stmt, ast.ClassDef) or stmt.name not in classes:
        raise _fail(stmt, "only the model's classes may be defined")
    _class(stmt, classes, layers)


def _class(cls: ast.ClassDef, classes: set[str], layers: set[str]) -> None:
    if cls.decorator_list or cls.keywords or len(cls.bases) != 1:
        raise _fail(cls, "unexpected class form")
    base = cls.bases[0]
    if not (isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name)
            and base.value.id == "nn" and base.attr in BASES):
        raise _fail(cls, "a class must subclass an nn container or nn.Module")
    for i, stmt in enumerate(cls.body):
        if i == 0 and _is_docstring(stmt):
            continue
        if not isinstance(stmt, ast.FunctionDef) or stmt.name not in METHODS or (
                stmt.decorator_list):
            raise _fail(stmt, "a class may define only __init__ and forward")
        _function(stmt, classes, layers)


def _function(fn: ast.FunctionDef, classes: set[str], layers: set[str]) -> None:
    local = {a.arg for a in fn.args.args}
    # parameters that take a layer class (``act: type[nn.Module] = nn.ReLU``) may be called
    takes_class = {a.arg for a in fn.args.args if a.annotation is not None
                   and ast.unparse(a.annotation) == "type[nn.Module]"}
    _statements(fn.body, local)
    known = local | GLOBALS | classes | layers
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id not in known:
            raise _fail(node, f"unknown name {node.id!r}")
        if isinstance(node, ast.Call):
            _call(node, local, classes | layers | takes_class)


def _statements(body: list[ast.stmt], local: set[str]) -> None:
    """Expressions, assignments (to locals and self's attributes), ``if`` and ``return``."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            _statements(stmt.body, local)
            _statements(stmt.orelse, local)
            continue
        if isinstance(stmt, ast.For):  # for index in range(n): a repeat, nothing else
            if not (isinstance(stmt.target, ast.Name) and isinstance(stmt.iter, ast.Call)
                    and _is_name(stmt.iter.func, "range") and not stmt.orelse):
                raise _fail(stmt, "a loop must run over range(...)")
            local.add(stmt.target.id)
            _statements(stmt.body, local)
            continue
        if not isinstance(stmt, ast.Expr | ast.Assign | ast.AnnAssign | ast.Return):
            raise _fail(stmt, "unexpected statement")
        targets = stmt.targets if isinstance(stmt, ast.Assign) else (
            [stmt.target] if isinstance(stmt, ast.AnnAssign) else [])
        for target in targets:
            if isinstance(target, ast.Name):
                local.add(target.id)
            elif not (isinstance(target, ast.Attribute) and _is_name(target.value, "self")):
                raise _fail(stmt, "only locals and self attributes may be assigned")


def _call(node: ast.Call, local: set[str], classes: set[str]) -> None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in ({"super", "OrderedDict", "range"} | FUNCTIONS
                                                  | classes):
        return
    if isinstance(func, ast.Subscript) and _is_name(func.value, "self"):
        return  # self[0](x), self["head"](x)
    if _child_by_name(node) or (isinstance(func, ast.Call) and _child_by_name(func)):
        return  # getattr(self, "block1-0") and its call: a child whose name has a -
    if isinstance(func, ast.Attribute):
        root = func.value
        if isinstance(root, ast.Call) and _is_name(root.func, "super") and func.attr == "__init__":
            return
        if isinstance(root, ast.Name) and root.id in ("torch", "nn", "self"):
            return
        if _is_attribute_of(root, "nn", "init") or _is_attribute_of(root, "nn", "functional"):
            return  # nn.init.normal_(torch.empty(...)), nn.functional.scaled_dot_product_...
        if isinstance(root, ast.Name) and root.id in local and func.attr in TENSOR_METHODS:
            return
        if isinstance(root, ast.Name) and root.id in local and func.attr == "append":
            return  # layers.append(...): a list of children built item by item
    raise _fail(node, "unexpected call")


def _is_attribute_of(node: ast.AST, module: str, attribute: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == attribute and _is_name(
        node.value, module)


def _child_by_name(node: ast.Call) -> bool:
    """``getattr(self, "NAME")`` with a constant name: a child named like ``block1-0``."""
    return (_is_name(node.func, "getattr") and len(node.args) == 2 and not node.keywords
            and _is_name(node.args[0], "self") and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str) and not node.args[1].value.startswith("_"))


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _node(node: ast.AST) -> None:
    if not isinstance(node, NODES):
        raise _fail(node, f"unexpected {type(node).__name__}")
    if isinstance(node, ast.Attribute) and node.attr.startswith("_") and node.attr != "__init__":
        raise _fail(node, f"private attribute {node.attr!r}")
    name = _name_of(node)
    if name is not None and name.startswith("__") and name != "__init__":
        raise _fail(node, f"dunder name {name!r}")


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.arg):
        return node.arg
    return None
