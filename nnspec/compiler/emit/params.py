"""A class's constructor: which parameters it takes and what code each argument becomes.

Every argument of every layer inside the class (and every argument passed to a child class, a
layer's class, an item's ``if:``) is a position; across the uses of the class it takes one
value per use.  Its code is, in this order: the spec's expression translated to Python over
the class's parameters (``translate``), when that gives every use's value; the value, when all
uses agree; a parameter that holds the same values (the block's own, or ``in_channels``,
``in_features``, ``in_shape`` of its input); else a new parameter, named after the argument it
feeds, shared by the positions whose values always vary together.  A block's parameters keep
the spec's defaults: literal ones in the signature, computed ones (``${num_heads[stage]}``)
in ``__init__`` when the argument is None.  Parameters no code reads are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnspec import catalogue
from nnspec.catalogue.layer_traits import INFERRED_ARGS
from nnspec.compiler.emit.merge import CALL, CLASS, IF, LOOP, REPEAT, Pos, needs_class
from nnspec.compiler.emit.names import MODULE_NAMES, Namer, literal, module_attributes
from nnspec.compiler.emit.translate import Code, translate
from nnspec.compiler.ir import Layer, Net, Node, TensorInfo
from nnspec.lang.exprs import is_expr

if TYPE_CHECKING:
    from nnspec.compiler.emit.plan import ClassPlan, Plan

NORAW = object()  # the spec wrote nothing here (an inferred argument)
DEFAULT = object()  # a child's parameter the call leaves to its default
_ABSENT = ("", "<absent>")
SIZES = frozenset({"out_channels", "out_features", *INFERRED_ARGS})  # what a later size reads
LONGEST = 64  # a longer formula is passed as a value: it would not read as one line anyway
TYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str",
         "layer": "type[nn.Module]"}


def parametrise(plan: Plan, cls: ClassPlan, optional: list[Pos]) -> None:
    rows = [leaves(plan, cls.net, use, (), {p: u[i] for p, u in cls.inline_uses.items()})
            for i, use in enumerate(cls.uses)]
    for path in optional:
        node = _node_at(cls.net, path)
        for i, (row, use) in enumerate(zip(rows, cls.uses, strict=True)):
            there = use if len(path) == 1 else cls.inline_uses[path[:-1]][i]
            if there is not None:
                row[(*path, IF)] = (path[-1] in there, node.condition or NORAW)
    chooser = _Chooser(plan, cls, rows)
    seen = list(dict.fromkeys(p for row in rows for p in row))
    for pos in sorted(seen, key=lambda p: _rank(cls.net, p)):  # in the template's order
        chooser.choose(pos, [row.get(pos, _MISSING) for row in rows])
    chooser.loops()
    chooser.derive()
    chooser.finish()
    cls.optional = {path: code for path in optional
                    if (code := cls.where[(*path, IF)]) is not None}
    _forward_attributes(cls)


class NoLoop(Exception):
    """A repeat's copies differ in a way a loop over ``index`` cannot write."""


class _Missing:
    pass


_MISSING = _Missing()


def _rank(net: Net, pos: Pos) -> tuple[int, ...]:
    """Where a position's node sits in the template: node by node down its path."""
    names = [n.name for n in net.nodes]
    if not pos or pos[0] not in names:
        return ()
    node = net.nodes[names.index(pos[0])]
    inner = _rank(node.body, pos[1:]) if isinstance(node.body, Net) else ()
    return (names.index(pos[0]), *inner)


def _node_at(net: Net, path: Pos) -> Node:
    node = next(n for n in net.nodes if n.name == path[0])
    if len(path) == 1:
        return node
    assert isinstance(node.body, Net)
    return _node_at(node.body, path[1:])


def leaves(plan: Plan, net: Net, use: Mapping[str, Node], prefix: Pos = (),
           inline: Mapping[Pos, Mapping[str, Node] | None] | None = None
           ) -> dict[Pos, tuple[Any, Any]]:
    """Every argument value inside one use, by position, with what the spec wrote there;
    ``inline``: the use's nodes in each nested list, by path."""
    out: dict[Pos, tuple[Any, Any]] = {}
    for tnode in net.nodes:
        node = use.get(tnode.name)
        if node is None or node.shares is not None:
            continue  # a reuse's arguments are its target's
        path, body = (*prefix, tnode.name), node.body
        if isinstance(body, Layer):
            out.update(_layer_leaves(body, path))
        elif isinstance(tnode.body, Net) and tnode.body.repeat is not None and len(
                tnode.body.nodes) == 1 and tnode.body.nodes[0].name == LOOP:
            out[(*path, REPEAT)] = (len(body.nodes), body.repeat)  # the body: see loops()
        elif needs_class(body):
            child = plan.of(body)
            for p in child.params:
                out[(*path, CALL, p)] = (child.args[id(body)][p], _given(body, child, p))
        else:
            assert isinstance(tnode.body, Net)
            nested = (inline or {}).get(path) or {n.name: n for n in body.nodes}
            out.update(leaves(plan, tnode.body, nested, path, inline))
    return out


def _layer_leaves(body: Layer, path: Pos) -> dict[Pos, tuple[Any, Any]]:
    if body.kind == "tensor":
        out = {(*path, "shape"): (body.kwargs["shape"], body.raw.get("shape", NORAW))}
        return out | {(*path, "init", k): v for k, v in _constant_args(body).items()}
    out = {(*path, k): (body.kwargs[k], body.raw.get(k, NORAW)) for k in ordered_keys(body)}
    if body.kind == "layer":
        out[(*path, CLASS)] = (body.op, body.via or NORAW)
    return out


def _constant_args(body: Layer) -> dict[str, tuple[Any, Any]]:
    """A computed constant's arguments (``{shifted_window_mask: {size: $size, ...}}``), each
    with what the spec wrote."""
    from nnspec.catalogue import constants
    from nnspec.catalogue.free_tensors import parse_init

    name, args = parse_init(body.kwargs.get("init", "zeros"))
    if name not in constants.CONSTANTS:
        return {}
    raw = body.raw.get("init")
    written = raw.get(name) if isinstance(raw, dict) else None
    return {k: (v, written.get(k, NORAW) if isinstance(written, dict) else NORAW)
            for k, v in args.items()}


def _given(net: Net, child: ClassPlan, param: str) -> Any:
    spec = child.spec_names.get(param)
    if spec is None or net.call is None:
        return NORAW
    if spec in net.call.given:
        return net.call.given[spec]
    return DEFAULT if param in child.defaults else NORAW


class _Chooser:
    """Decides each position's code for one class (see the module's docstring)."""

    def __init__(self, plan: Plan, cls: ClassPlan, rows: list[dict[Pos, Any]]) -> None:
        self.plan, self.cls, self.rows = plan, cls, rows
        self.namer = Namer(MODULE_NAMES | {"input"} | set(plan.constant_values))
        self.values: dict[str, list[Any]] = {}  # parameter -> its value in each use
        self.mapping: dict[str, str] = {}  # what expressions name -> parameter
        self.pending: dict[tuple[Any, ...], list[Pos]] = {}
        self.block_params: list[str] = []
        self.input_params: list[str] = []
        self.derived: list[str] = []
        self.recent: list[tuple[tuple[Any, ...], Code]] = []
        self.candidates()

    def candidates(self) -> None:
        uses = self.cls.instances
        calls = [net.call for net in uses]
        if all(c is not None for c in calls) and len({tuple(c.values) for c in calls
                                                      if c is not None}) == 1:
            first = calls[0]
            assert first is not None
            for spec in first.values:
                name = self.namer.take(spec, "arg")
                self.mapping[spec] = name
                self.cls.spec_names[name] = spec
                self.values[name] = [c.values[spec] for c in calls if c is not None]
                self.block_params.append(name)
        seen = [self.plan.inputs.get(id(net)) for net in uses]
        root = any(net is self.plan.graph.root for net in uses)  # the model takes no argument
        if not root and all(isinstance(v, TensorInfo) and v.shape for v in seen):
            shapes = [v.shape for v in seen if isinstance(v, TensorInfo)]
            for attribute, pick in (("channels", lambda s: s[0]), ("features", lambda s: s[-1]),
                                    ("shape", list)):
                name = self.namer.take(f"in_{attribute}")
                self.mapping[f"input.{attribute}"] = name
                self.values[name] = [pick(s) for s in shapes]
                self.input_params.append(name)

    def names(self, use: int) -> dict[str, Any]:
        return {**self.plan.constant_values,
                **{name: values[use] for name, values in self.values.items()}}

    def choose(self, pos: Pos, row: list[Any]) -> None:
        present = [(i, cell) for i, cell in enumerate(row) if cell is not _MISSING]
        values = [cell[0] for _, cell in present]
        raw = present[0][1][1]
        if raw is DEFAULT and all(cell[1] is DEFAULT for _, cell in present):
            self.cls.where[pos] = None
            return
        code = self.translated(pos, raw, present)
        vector = tuple(_identity(c[0]) if c is not _MISSING else _ABSENT for c in row)
        if code is None and raw is NORAW and pos[-1] in INFERRED_ARGS:
            code = self.matched(pos, vector, present, self.input_params)  # a size before
        if code is None and all(_identity(v) == _identity(values[0]) for v in values):
            code = Code(self.literal(pos, values[0]))
        if code is None:
            code = self.matched(pos, vector, present, list(self.values))
        if code is not None:
            self.cls.where[pos] = code
            if code.names and (pos[-1] in SIZES or (len(pos) > 1 and pos[-2] == CALL)):
                self.recent.append((vector, code))
            return
        self.pending.setdefault(vector, []).append(pos)

    def matched(self, pos: Pos, vector: tuple[Any, ...], present: list[tuple[int, Any]],
                names: list[str]) -> Code | None:
        """The code of the latest size with the same values (an inferred size is the size
        the layer before it made: ``nn.BatchNorm2d(width)`` after a conv to ``width``), else
        one of ``names`` with the same values."""
        if not self.takes_class(pos):
            for seen, code in reversed(self.recent):
                if all(seen[i] == vector[i] or code.holds(self.names(i), v)
                       for i, (v, _) in present):
                    return code
        named = sorted(names, key=lambda name: name != pos[-1])  # in_features first
        return next((Code(name, frozenset({name})) for name in named
                     if all(_identity(self.values[name][i]) == _identity(v)
                            for i, (v, _) in present) and self.fits(pos, name)), None)

    def loops(self) -> None:
        """A repeat inside the class is a loop: each argument of its body is written once,
        reading ``index`` where the copies differ (``stride=2 if index == 0 else 1``)."""
        if not self.cls.loops:
            return
        variable = self.namer.take("index")
        mapping = {**self.mapping, "index": variable}
        used = False
        for path, uses in self.cls.loops.items():
            body = next(n.body for n in self.cls.net.nodes if n.name == path[-1])
            assert isinstance(body, Net)
            cells: dict[Pos, list[tuple[int, int, Any, Any]]] = {}
            for i, copies in enumerate(uses):
                for k, copy in enumerate(copies or []):
                    for pos, (value, raw) in leaves(self.plan, body, {LOOP: copy}, path).items():
                        cells.setdefault(pos, []).append((i, k, value, raw))
            written: list[Code] = []
            for pos in sorted(cells, key=lambda p: cells[p][0][3] is NORAW):  # written first
                code = self.loop_code(pos, cells[pos], mapping, variable, written)
                self.cls.where[pos] = code
                if code is not None and code.names:
                    written.append(code)
                used = used or (code is not None and variable in code.names)
        self.cls.loop_variable = variable if used else "_"

    def loop_code(self, pos: Pos, found: list[tuple[int, int, Any, Any]],
                  mapping: dict[str, str], variable: str, written: list[Code],
                  split: bool = True) -> Code | None:
        """One argument of a loop's body: the spec's expression, a value, a parameter or a
        code already written for the body; else the first copy's and the others' apart
        (``in_channels if index == 0 else out``)."""
        raw, first = found[0][3], found[0][2]
        if raw is DEFAULT and all(cell[3] is DEFAULT for cell in found):
            return None
        names = [{**self.names(i), variable: k} for i, k, _, _ in found]
        if raw is not NORAW and raw is not DEFAULT and not (
                self.takes_class(pos) and not is_expr(raw)):
            code = translate(raw, first, mapping, self.plan.constant_names)
            if code is not None and all(code.holds(n, cell[2])
                                        for n, cell in zip(names, found, strict=True)):
                return code
        if all(_identity(v) == _identity(first) for _, _, v, _ in found):
            return Code(self.literal(pos, first))
        for name in self.values:
            if self.fits(pos, name) and all(_identity(self.values[name][i]) == _identity(v)
                                            for i, _, v, _ in found):
                return Code(name, frozenset({name}))
        for code in written:
            if not self.takes_class(pos) and all(
                    code.holds(n, cell[2]) for n, cell in zip(names, found, strict=True)):
                return code
        per_use: dict[int, Any] = {}
        if all(per_use.setdefault(i, _identity(v)) == _identity(v) for i, _, v, _ in found):
            name = self.namer.take(_parameter_name([pos]), "arg")  # one value per use
            values = {i: v for i, _, v, _ in found}
            self.values[name] = [values.get(i, first) for i in range(len(self.cls.uses))]
            self.derived.append(name)
            if self.takes_class(pos):
                self.cls.classes.add(name)
            return Code(name, frozenset({name}))
        if split:
            head = [c for c in found if c[1] == 0]
            rest = [c for c in found if c[1] != 0]
            if head and rest:
                a = self.loop_code(pos, head, mapping, variable, written, False)
                b = self.loop_code(pos, rest, mapping, variable, written, False)
                if a is not None and b is not None:
                    text = f"{a.text} if {variable} == 0 else {b.text}"
                    return Code(text, a.names | b.names | {variable})
        raise NoLoop(pos)

    def translated(self, pos: Pos, raw: Any, present: list[tuple[int, Any]]) -> Code | None:
        if raw is NORAW or raw is DEFAULT or (self.takes_class(pos) and not is_expr(raw)):
            return None
        code = translate(raw, present[0][1][0], self.mapping, self.plan.constant_names)
        longest = max((len(t) for t, _ in code.parts), default=len(code.text)) if code else 0
        if code is None or not code.names or longest > LONGEST or (
                self.takes_class(pos) and ('"' in code.text or "'" in code.text)):
            return None  # constant: the value reads better (8, not 16 // 2); or too long
        if all(code.holds(self.names(i), cell[0]) for i, cell in present):
            return code
        return None

    def fits(self, pos: Pos, name: str) -> bool:
        """Where a class is taken, only a parameter that holds layer names may stand."""
        return not self.takes_class(pos) or all(isinstance(v, str) for v in self.values[name])

    def takes_class(self, pos: Pos) -> bool:
        if pos[-1] == CLASS:
            return True
        if len(pos) >= 2 and pos[-2] == CALL:
            return pos[-1] in self.child_at(pos[:-2]).classes
        return False

    def child_at(self, path: Pos) -> ClassPlan:
        net: Net = self.cls.net
        body: Any = None
        for name in path:
            body = next(n.body for n in net.nodes if n.name == name)
            if isinstance(body, Net):
                net = body
        assert isinstance(body, Net)
        return self.plan.of(body)

    def literal(self, pos: Pos, value: Any) -> str:
        if self.takes_class(pos):
            return self.plan.class_ref(str(value))
        return literal(value)

    def derive(self) -> None:
        """New parameters for what nothing else explains, one per group of positions whose
        values always vary together."""
        for vector, positions in self.pending.items():
            first = positions[0]
            wanted = ("layer" if first[-1] == CLASS else f"use_{first[-2]}" if first[-1] == IF
                      else _parameter_name(positions))
            name = self.namer.take(wanted, "arg")
            cells = [row.get(first, _MISSING) for row in self.rows]
            fill = next(c[0] for c in cells if not isinstance(c, _Missing))
            self.values[name] = [fill if isinstance(c, _Missing) else c[0] for c in cells]
            del vector
            self.derived.append(name)
            if self.takes_class(first):
                self.cls.classes.add(name)
            for pos in positions:
                self.cls.where[pos] = Code(name, frozenset({name}))

    def finish(self) -> None:
        """The signature: the parameters some code reads, with their defaults."""
        cls = self.cls
        used = {n for code in cls.where.values() if code is not None for n in code.names}
        for pos, code in cls.where.items():
            if code is not None and self.takes_class(pos):
                cls.classes.update(code.names)
        calls = [net.call for net in cls.instances]
        first = calls[0]
        if first is not None:
            self.defaults(first.defaults, first.types, used)
        order = [*self.input_params,
                 *(p for p in self.block_params if p not in cls.defaults),
                 *self.derived,
                 *(p for p in self.block_params if p in cls.defaults)]
        cls.params = [p for p in order if p in used]
        for p in cls.params:
            spec = cls.spec_names.get(p)
            kind = first.types.get(spec, "") if first is not None and spec else ""
            ann = "type[nn.Module]" if p in cls.classes else TYPES.get(kind) or _annotation(
                self.values[p])
            cls.annotations[p] = f"{ann} | None" if p in cls.computed and ann else ann
        for i, net in enumerate(cls.instances):
            cls.args[id(net)] = {p: self.values[p][i] for p in cls.params}

    def defaults(self, declared: Mapping[str, Any], types: Mapping[str, str],
                 used: set[str]) -> None:
        cls = self.cls
        earlier: dict[str, str] = {f"input.{a}": self.mapping[f"input.{a}"]
                                   for a in ("channels", "features", "shape")
                                   if f"input.{a}" in self.mapping}
        todo = True
        while todo:
            todo = False
            for name in self.block_params:
                spec = cls.spec_names[name]
                if name not in used or name in cls.defaults or spec not in declared:
                    earlier[spec] = name
                    continue
                default = declared[spec]
                if not is_expr(default):
                    cls.defaults[name] = self.default_literal(name, types.get(spec), default)
                else:
                    code = self.computed(name, spec, default, earlier)
                    if code is not None:
                        cls.computed[name] = code
                        cls.defaults[name] = "None"
                        todo = todo or not code.names <= used
                        used |= code.names
                earlier[spec] = name

    def default_literal(self, name: str, kind: str | None, value: Any) -> str:
        if kind == "layer" or name in self.cls.classes:
            return self.plan.class_ref(str(value))
        return literal(value)

    def computed(self, name: str, spec: str, default: str, earlier: Mapping[str, str]
                 ) -> Code | None:
        code = translate(default, self.values[name][0], earlier, self.plan.constant_names)
        if code is None:
            return None
        for i, net in enumerate(self.cls.instances):
            given = net.call is not None and spec in net.call.given
            if not given and not code.holds(self.names(i), self.values[name][i]):
                return None
        return code


def _forward_attributes(cls: ClassPlan) -> None:
    """What a graph's forward reads besides its children: each parameter an op's argument
    reads (``self.window``), and each condition (``self.use_sum``)."""
    if cls.net.kind != "graph":
        return
    taken = {n.name for n in cls.net.nodes} | module_attributes() | MODULE_NAMES
    namer = Namer(taken)
    ops = {n.name for n in cls.net.nodes
           if isinstance(n.body, Layer) and n.body.kind == "op"}
    read = {name for pos, code in cls.where.items() if code is not None and pos[0] in ops
            and pos[-1] != IF for name in code.names}
    for name in cls.params:
        if name in read:
            cls.stored[name] = namer.take(name if name not in taken else f"{name}_value")
    for path, code in cls.optional.items():
        if len(path) > 1:
            continue  # an item of a nested list: built under if, read by no forward
        same = next((n for n, c in cls.optional.items() if c.text == code.text
                     and n[0] in cls.flags and len(n) == 1), None)
        cls.flags[path[0]] = cls.flags[same[0]] if same else namer.take(f"use_{path[0]}")


def _parameter_name(positions: list[Pos]) -> str:
    """The argument these positions feed most often, or ``channels`` when they feed both a
    layer's in_channels and another's out_channels: a size the block keeps, as ResNet's planes."""
    counts = Counter(p[-1] for p in positions)
    for name in counts:
        if name.startswith("out_") and f"in_{name[4:]}" in counts:
            return name[4:]
    return counts.most_common(1)[0][0]


def ordered_keys(layer: Layer) -> list[str]:
    """A layer's argument names in the order of its signature (in_channels first again)."""
    return catalogue.in_signature_order(layer.op, layer.kwargs)


def _identity(value: Any) -> tuple[str, str]:
    """Equal values of equal types (1, 1.0 and True differ here, as they do in the code)."""
    if isinstance(value, tuple):
        value = list(value)
    return type(value).__name__, repr(value)


def _annotation(values: list[Any]) -> str:
    types = {type(v) for v in values}
    if len(types) == 1 and (t := types.pop()) in (int, float, bool, str):
        return t.__name__
    if all(isinstance(v, list | tuple) and all(type(i) is int for i in v) for v in values):
        return "tuple[int, ...]"
    return ""
