"""Parse the ``model`` and ``blocks`` sections into typed syntax (part of the check pass).

The model language, in one place:

* a list of items                  -> ``sequential`` (children 0, 1, 2, ...)
* a mapping of name -> item        -> ``ordered`` (nn.Sequential(OrderedDict), children named)
* ``{sequential: list|mapping}``   -> the same, explicitly (useful inside graphs, with ``in``)
* ``{module_list: [items], forward: [2, 0, 1]}``   -> nn.ModuleList applied in that order
* ``{module_dict: {name: item}, forward: [names]}`` -> nn.ModuleDict applied in that order
* ``{graph: {name: item}, inputs: [...], outputs: [...]}`` -> nodes that name their inputs

An item is a layer, op or block: ``ReLU``, ``{Conv2d: {out_channels: 6}}``, with optional
``repeat: N`` and, inside graphs, ``in: name`` or ``in: [a, b]``; or a nested container; or,
inside graphs, ``{reuse: node, in: other}``: the module of another node called again.
Argument values stay unevaluated here (they may hold ``$var`` expressions): resolve evaluates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nnspec import catalogue
from nnspec.errors import Collector, Location, SpecPath
from nnspec.lang.exprs import template_problem

CONTAINER_KEYS = ("sequential", "module_list", "module_dict", "graph")
ITEM_KEYS = ("repeat", "in", "if")
REUSE = "reuse"  # {reuse: NODE}: a graph node that calls another node's module again
CONTAINER_EXTRA = {
    "sequential": ("in", "repeat", "if"),
    "module_list": ("in", "repeat", "if", "forward"),
    "module_dict": ("in", "repeat", "if", "forward"),
    "graph": ("in", "repeat", "if", "inputs", "outputs"),
}
REPEAT_KEYS = ("times", "name")
PARAM_TYPES = ("int", "float", "bool", "str", "list", "layer", "any")
# A module name as torch's add_module takes it, kept to characters emitted code can quote
# safely: ``block1-0`` is a name (torchvision's RegNet), never an expression.
MODULE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Source:
    location: Location
    path: SpecPath


@dataclass(frozen=True)
class Call:
    """A use of a layer, op or block by name."""

    name: str
    args: dict[str, Any]
    source: Source
    repeat: Any = None  # an int or an expression string
    inputs: tuple[str, ...] | None = None
    arg_locations: dict[str, Location] = field(default_factory=dict)
    # where each argument's value starts: type errors point here, unknown names at the key
    value_locations: dict[str, Location] = field(default_factory=dict)
    repeat_location: Location | None = None
    condition: Any = None  # `if:`, an expression: the item exists only where it is true
    condition_location: Location | None = None
    names: str | None = None  # `repeat: {times, name}`: the copies' name pattern (format 2)
    names_location: Location | None = None
    reuse: str | None = None  # `{reuse: enc}`: call the module of graph node enc again


@dataclass(frozen=True)
class Container:
    kind: str  # sequential | ordered | module_list | module_dict | graph
    items: tuple[tuple[str, Item], ...]
    source: Source
    forward: tuple[Any, ...] | None = None
    graph_inputs: tuple[str, ...] | None = None
    graph_outputs: tuple[str, ...] | None = None
    repeat: Any = None
    inputs: tuple[str, ...] | None = None
    outputs_location: Location | None = None
    repeat_location: Location | None = None
    condition: Any = None
    condition_location: Location | None = None
    names: str | None = None
    names_location: Location | None = None
    # `module_list: {Linear: {...}, repeat: 10}`: the copies are the members (0..9), as
    # nn.ModuleList([nn.Linear(10, 10) for i in range(10)])
    spread: bool = False


Item = Call | Container


@dataclass(frozen=True)
class ForwardStep:
    """A ``forward`` entry that combines members (format 2): ``{add: ["${index // 2}",
    $index], repeat: 10}`` is ``x = self[i // 2](x) + self[i](x)`` for i in 0..9, each member
    applied to the same x, as the PyTorch docs' ModuleList example does."""

    op: str
    members: tuple[Any, ...]  # indices or names, or expressions of ``index``
    source: Source
    repeat: Any = None
    repeat_location: Location | None = None
    names: None = None  # steps are not modules: their repeat names nothing


@dataclass(frozen=True)
class BlockParam:
    name: str
    type: str
    default: Any
    required: bool


@dataclass(frozen=True)
class Block:
    name: str
    params: dict[str, BlockParam]
    body: Container
    source: Source
    description: str = ""


@dataclass
class ModelParser:
    """Turns the raw model/blocks data into ``Container``/``Block`` objects, collecting errors."""

    locate: Any  # (path, key=False) -> Location
    errors: Collector = field(default_factory=Collector)
    version: int = 1  # the spec's `nnspec:` version: from 2 on, the naming rule is an error

    def src(self, path: SpecPath, key: bool = False) -> Source:
        return Source(self.locate(path, key=key), path)

    def error(self, path: SpecPath, message: str, hint: str | None = None,
              key: bool = False) -> None:
        self.errors.add(self.locate(path, key=key), path, message, hint)

    # -- model -------------------------------------------------------------------------
    def model(self, value: Any, path: SpecPath) -> Container:
        if isinstance(value, dict) and not any(k in value for k in CONTAINER_KEYS):
            return self._named(value, path, "ordered")
        item = self.item(value, path)
        if isinstance(item, Container):
            return item
        return Container("sequential", (("0", item),), item.source)

    def item(self, value: Any, path: SpecPath) -> Item:
        if isinstance(value, str):
            return Call(value, {}, self.src(path))
        if isinstance(value, list):
            return self._listed(value, path, "sequential")
        if not isinstance(value, dict):
            self.error(path, f"expected a layer (a name or {{Name: {{args}}}}), "
                       f"found {_kind(value)}", "write e.g. ReLU or {Linear: {out_features: 10}}")
            return Call("<invalid>", {}, self.src(path))
        if not value:
            self.error(path, "empty mapping where a layer was expected")
            return Call("<invalid>", {}, self.src(path))
        if REUSE in value:
            return self._reuse(value, path)
        containers = [k for k in value if k in CONTAINER_KEYS]
        if containers:
            return self._container(value, containers, path)
        return self._call(value, path)

    def _call(self, value: dict[str, Any], path: SpecPath) -> Call:
        names = [k for k in value if k not in ITEM_KEYS]
        if len(names) != 1:
            if not names:
                self.error(path, "no layer named here", "add a layer: {Linear: {...}, repeat: 2}")
            elif (op := catalogue.ops().get(names[0])) and all(n in op.params
                                                                for n in names[1:]):
                import json

                args, extra = value[names[0]], {n: value[n] for n in names[1:]}
                if op.max_inputs > 1:
                    ins = args if isinstance(args, list) else ["a", "b"]
                    where = f", in: [{', '.join(map(str, ins))}]"
                else:
                    where = ""
                    if isinstance(args, dict):
                        extra = {**args, **extra}
                    elif args is not None and op.required:
                        extra = {op.required[0]: args, **extra}
                given = ", ".join(f"{k}: {json.dumps(v)}" for k, v in extra.items())
                self.error((*path, names[1]), f"'{names[1]}' is an argument of {names[0]}, "
                           "not a layer", f"write {{{names[0]}: {{{given}}}{where}}}", key=True)
            else:
                self.several_layers(value, names, path)
            return Call("<invalid>", {}, self.src(path))
        name = names[0]
        args = value[name]
        op = catalogue.ops().get(name)
        if op and op.max_inputs > 1 and isinstance(args, list) and args and all(
                isinstance(a, str) or is_constant(a) for a in args):
            inputs = tuple(a for a in args if not is_constant(a))
            constants = [a for a in args if is_constant(a)]
            extra = {"scalar": constants[0]} if constants and "scalar" in op.params else {}
            if len(constants) > 1 or (constants and not extra) or not inputs:
                self.error((*path, name), f"{name} takes node names" + (
                    " and one constant" if "scalar" in op.params else ""),
                    "combine constants in one expression: ${a * b}")
            return Call(name, extra, self.src((*path, name), key=True), inputs=inputs,
                        **self._repeat(value, path), **self._condition(value, path))
        if args is None:
            args = {}
        elif not isinstance(args, dict):
            args = {"__shorthand__": args}
        arg_locations = {k: self.locate((*path, name, k), key=True) for k in args}
        if "__shorthand__" in args:
            arg_locations["__shorthand__"] = self.locate((*path, name))
        value_locations = {k: self.locate((*path, name, k)) for k in args
                           if k != "__shorthand__"}
        return Call(name, args, self.src((*path, name), key=True),
                    inputs=self._inputs(value, path), arg_locations=arg_locations,
                    value_locations=value_locations, **self._repeat(value, path),
                    **self._condition(value, path))

    def _reuse(self, value: dict[str, Any], path: SpecPath) -> Call:
        """``{reuse: enc, in: right}``: the module of graph node ``enc``, called again."""
        for key in value:
            if key not in (REUSE, "in", "if"):
                self.error((*path, key), f"unexpected key '{key}' beside reuse",
                           "a reused module is the other node's, called again: allowed "
                           "here are reuse, in and if", key=True)
        target = value[REUSE]
        if not isinstance(target, str):
            self.error((*path, REUSE), f"expected the name of a graph node, found "
                       f"{_kind(target)}", "write {reuse: enc, in: other_input}")
            target = "<invalid>"
        return Call(REUSE, {}, self.src((*path, REUSE), key=True), None,
                    self._inputs(value, path), reuse=target, **self._condition(value, path))

    def several_layers(self, value: dict[str, Any], names: list[str], path: SpecPath) -> None:
        """A mapping of several names where one layer was expected: named layers meant as a
        nested nn.Sequential (wrap them in ``sequential:``), or layers meant as items."""
        known = {*catalogue.callables(), *CONTAINER_KEYS}
        layers = [n for n in names if n in known]
        first = names[0]
        if not layers:
            hint = (f"to nest named layers, wrap them: {{sequential: {{{first}: ..., "
                    f"{names[1]}: ...}}}} (an nn.Sequential with children {first}, "
                    f"{names[1]}, ...)")
        elif len(layers) == len(names):
            hint = "split them into separate items"
        else:
            hint = ("give each layer its own item, or wrap named layers in sequential: "
                    "{sequential: {name: layer, ...}}")
        self.error((*path, names[1]), f"one layer per item, found {len(names)}: "
                   + ", ".join(names), hint, key=True)

    def _repeat(self, value: dict[str, Any], path: SpecPath) -> dict[str, Any]:
        """``repeat: N``, or (format 2) ``repeat: {times: N, name: PATTERN}``, whose copies are
        named from the pattern (``denselayer${index + 1}``) instead of ``0..N-1``."""
        if "repeat" not in value:
            return {}
        raw, rpath = value["repeat"], (*path, "repeat")
        if not isinstance(raw, dict):
            return {"repeat": raw, "repeat_location": self.locate(rpath)}
        unknown = [key for key in raw if key not in REPEAT_KEYS]
        for key in unknown:
            from nnspec.errors import did_you_mean

            self.error((*rpath, key), f"unexpected key '{key}' in repeat",
                       did_you_mean(str(key), REPEAT_KEYS) or "allowed: times, name",
                       key=True)
        if "times" not in raw and not unknown:  # a misspelt times is said once, above
            self.error(rpath, "repeat needs times, the number of copies",
                       "write repeat: {times: 4, name: \"layer${index + 1}\"}")
        out = {"repeat": raw.get("times", 1), "repeat_location": self.locate(
            (*rpath, "times") if "times" in raw else rpath)}
        pattern = raw.get("name")
        if "name" not in raw:
            return out
        npath = (*rpath, "name")
        problem = template_problem(pattern) if isinstance(pattern, str) else (
            f"expected a name pattern (a string), found {_kind(pattern)}")
        if problem:
            self.error(npath, problem, "e.g. name: \"denselayer${index + 1}\"")
            return out
        return {**out, "names": pattern, "names_location": self.locate(npath)}

    def _condition(self, value: dict[str, Any], path: SpecPath) -> dict[str, Any]:
        if "if" not in value:
            return {}
        return {"condition": value["if"], "condition_location": self.locate((*path, "if"))}

    def _inputs(self, value: dict[str, Any], path: SpecPath) -> tuple[str, ...] | None:
        if "in" not in value:
            return None
        raw = value["in"]
        raw_list = raw if isinstance(raw, list) else [raw]
        if not raw_list or not all(isinstance(r, str) for r in raw_list):
            self.error((*path, "in"), "expected a node name or a list of node names, "
                       f"found {raw!r}")
            return None
        return tuple(raw_list)

    def _container(self, value: dict[str, Any], keys: list[str], path: SpecPath) -> Container:
        if len(keys) > 1:
            self.error((*path, keys[1]), f"one container per item, found {', '.join(keys)}",
                       key=True)
        kind = keys[0]
        allowed = (kind, *CONTAINER_EXTRA[kind])
        for key in value:
            if key not in allowed and key not in keys[1:]:
                self.error((*path, key), f"unexpected key '{key}' in a {kind}",
                           f"allowed here: {', '.join(allowed)}", key=True)
        body, bpath = value[kind], (*path, kind)
        if kind == "sequential":
            if isinstance(body, list):
                c = self._listed(body, bpath, "sequential")
            elif isinstance(body, dict):
                c = self._named(body, bpath, "ordered")
            else:
                self.error(bpath, f"expected a list or mapping of layers, found {_kind(body)}")
                c = Container("sequential", (), self.src(bpath))
        elif kind == "module_list" and isinstance(body, dict) and "repeat" in body:
            c = Container("module_list", (("0", self.item(body, bpath)),), self.src(bpath),
                          spread=True)
        elif kind == "module_list":
            c = self._listed(body, bpath, "module_list")
        else:
            c = self._named(body, bpath, kind)
        forward = self._forward(value, path, c) if "forward" in value else None
        return Container(c.kind, c.items, c.source, forward,
                         self._names(value.get("inputs"), (*path, "inputs")),
                         self._names(value.get("outputs"), (*path, "outputs")),
                         inputs=self._inputs(value, path), outputs_location=self.locate(
                             (*path, "outputs")) if "outputs" in value else None,
                         **self._repeat(value, path), **self._condition(value, path),
                         spread=c.spread)

    def _forward(self, value: dict[str, Any], path: SpecPath, c: Container) -> tuple[Any, ...]:
        forward = value["forward"]
        fpath = (*path, "forward")
        if not isinstance(forward, list) or not forward:
            self.error(fpath, "expected a non-empty list naming the order of the forward pass")
            return ()
        known = [name for name, _ in c.items]
        out: list[Any] = []
        for i, ref in enumerate(forward):
            if isinstance(ref, dict):
                out.append(self._step(ref, (*fpath, i), c, known))
                continue
            self._member(ref, (*fpath, i), c, known)
            out.append(str(ref))
        return tuple(out)

    def _member(self, ref: Any, path: SpecPath, c: Container, known: list[str]) -> None:
        if c.spread:  # how many copies is known once the repeat is evaluated: resolve checks
            return
        ref_name = str(ref) if c.kind == "module_list" and isinstance(ref, int) else ref
        if not isinstance(ref_name, str) or ref_name not in known:
            from nnspec.errors import did_you_mean

            hint = did_you_mean(str(ref), known) if isinstance(ref, str) else None
            self.error(path, f"'{ref}' is not a member of this {c.kind}",
                       hint or f"members: {', '.join(known)}")

    def _step(self, value: dict[str, Any], path: SpecPath, c: Container,
              known: list[str]) -> ForwardStep:
        """``{add: [0, 1], repeat: N}``: members combined by an op of several inputs."""
        from nnspec.lang.exprs import is_expr

        names = [k for k in value if k != "repeat"]
        op = catalogue.ops().get(names[0]) if len(names) == 1 else None
        members = value[names[0]] if len(names) == 1 else None
        if op is None or op.max_inputs < 2 or not isinstance(members, list) or not members:
            self.error(path, "a forward step is a member, or an op of several inputs over "
                       "members: {add: [0, 1]}", "add, mul, cat, matmul ... take a list of "
                       "members, each applied to x; repeat: N with ${index} makes N steps")
            return ForwardStep("add", (), self.src(path))
        for j, ref in enumerate(members):
            if not is_expr(ref):
                self._member(ref, (*path, names[0], j), c, known)
        return ForwardStep(names[0], tuple(members), self.src((*path, names[0]), key=True),
                           value.get("repeat"),
                           self.locate((*path, "repeat")) if "repeat" in value else None)

    def _names(self, raw: Any, path: SpecPath) -> tuple[str, ...] | None:
        if raw is None:
            return None
        raw_list = raw if isinstance(raw, list) else [raw]
        if not raw_list or not all(isinstance(r, str) for r in raw_list):
            self.error(path, f"expected a name or a list of names, found {raw!r}")
            return None
        if path[-1] == "inputs":
            for i, name in enumerate(raw_list):
                problem = input_name_problem(name)
                if problem:
                    self.error((*path, i) if isinstance(raw, list) else path, *problem)
        return tuple(raw_list)

    def _listed(self, body: Any, path: SpecPath, kind: str) -> Container:
        if not isinstance(body, list) or not body:
            self.error(path, f"expected a non-empty list of layers, found {_kind(body)}")
            return Container(kind, (), self.src(path))
        items = tuple((str(i), self.item(v, (*path, i))) for i, v in enumerate(body))
        return Container(kind, items, self.src(path))

    def _named(self, body: Any, path: SpecPath, kind: str) -> Container:
        if not isinstance(body, dict) or not body:
            self.error(path, f"expected a non-empty mapping of name: layer, found {_kind(body)}")
            return Container(kind, (), self.src(path))
        items = []
        for name, v in body.items():
            self._check_name(name, (*path, name), kind)
            items.append((name, self.item(v, (*path, name))))
        return Container(kind, tuple(items), self.src(path))

    def _check_name(self, name: str, path: SpecPath, kind: str = "") -> None:
        problem = name_problem(name, kind)
        if problem:
            self.error(path, *problem, key=True)

    def input_names(self, raw: Any) -> None:
        """The spec's named inputs become parameters of a graph's forward."""
        if isinstance(raw, dict) and "shape" not in raw:
            for name in raw:
                problem = input_name_problem(str(name))
                if problem:
                    self.error(("input", name), *problem, key=True)

    # -- blocks ------------------------------------------------------------------------
    def blocks(self, raw: Any, path: SpecPath) -> dict[str, Block]:
        out: dict[str, Block] = {}
        for name, value in (raw or {}).items():
            bpath = (*path, name)
            self._check_name(name, bpath)
            self._check_block_name(name, bpath)
            if not isinstance(value, dict):
                self.error(bpath, f"a block is a mapping with params and a body, found "
                           f"{_kind(value)}")
                continue
            body_keys = [k for k in value if k in CONTAINER_KEYS]
            if len(body_keys) != 1:
                self.error(bpath, "a block needs exactly one body: sequential, graph, "
                           "module_list or module_dict")
                continue
            extra = CONTAINER_EXTRA[body_keys[0]]
            shape = tuple(k for k in ("inputs", "outputs", "forward") if k in extra)
            for key in value:
                if key not in (*body_keys, "params", "description", *shape):
                    self.error((*bpath, key), f"unexpected key '{key}' in a block",
                               f"allowed: params, description, {', '.join(shape)} and one "
                               "body", key=True)
            body = self._container(
                {k: v for k, v in value.items() if k in (*body_keys, *shape)},
                body_keys, bpath)
            params = self._params(value.get("params") or {}, (*bpath, "params"))
            out[name] = Block(name, params, body, self.src(bpath, key=True),
                              str(value.get("description", "")))
        return out

    def _check_block_name(self, name: str, path: SpecPath) -> None:
        """The naming rule (nnspec.catalogue.names): a warning in spec version 1."""
        from nnspec.catalogue.names import catalogue_clash

        entry = catalogue_clash(name)
        if entry is None:
            return
        kind = "an op" if entry in catalogue.ops() else "a layer"
        if entry == name:
            message = f"block '{name}' takes the name of {kind}: here {name} means the block"
            hint = f"rename the block, e.g. '{name}Block'"
        else:
            message = f"block '{name}' is named like {kind}, '{entry}'"
            hint = f"a misspelt '{entry}'? else rename the block"
        report = self.errors.warn if self.version < 2 else self.errors.add
        report(self.locate(path, key=True), path, message,
               hint + "; language v2 refuses such names")

    def _params(self, raw: Any, path: SpecPath) -> dict[str, BlockParam]:
        if not isinstance(raw, dict):
            self.error(path, f"expected a mapping of parameter: type or {{default: value}}, "
                       f"found {_kind(raw)}")
            return {}
        out = {}
        for name, decl in raw.items():
            ppath = (*path, name)
            if not name.isidentifier():
                self.error(ppath, f"'{name}' is not a valid parameter name", key=True)
            if isinstance(decl, str):
                decl = {"type": decl}
            if not isinstance(decl, dict):
                decl = {"default": decl}
            ptype = decl.get("type", "any")
            if ptype not in PARAM_TYPES:
                from nnspec.errors import did_you_mean

                self.error((*ppath, "type") if "type" in decl else ppath,
                           f"unknown parameter type '{ptype}'",
                           did_you_mean(str(ptype), PARAM_TYPES) or
                           f"one of {', '.join(PARAM_TYPES)}")
            for key in decl:
                if key not in ("type", "default", "description"):
                    self.error((*ppath, key), f"unexpected key '{key}' in a parameter",
                               "allowed: type, default, description", key=True)
            out[name] = BlockParam(name, str(ptype), decl.get("default"), "default" not in decl)
        return out


def name_problem(name: str, kind: str = "") -> tuple[str, str | None] | None:
    """Why ``name`` cannot name a child of a ``kind`` container (a block's name: kind ``""``),
    as (message, hint); None when it can."""
    block = kind == ""  # a block's name is used like a layer's: an identifier
    if not MODULE_NAME.match(name) or name.startswith("__") or (
            block and not name.isidentifier()):
        return (f"'{name}' is not a valid {'block' if block else 'module'} name",
                "use ASCII letters, digits and _, not starting with a digit or __"
                if block else "use ASCII letters, digits, _ and -, not starting with - or __")
    if name in CONTAINER_KEYS or name in ITEM_KEYS:
        return f"'{name}' is a reserved word and cannot name a layer", None
    if name in catalogue.reserved_names():
        return (f"'{name}' cannot name a layer: it is a Python keyword or an nn.Module "
                "attribute", f"rename it, e.g. '{name}_'")
    if kind == "graph" and name in catalogue.GRAPH_RESERVED:
        return (f"'{name}' cannot name a node of a graph: the graph is built as a "
                "torch.fx.GraphModule, whose attribute (or forward's self) it would be",
                f"rename it, e.g. '{name}_'")
    return None


def is_constant(value: Any) -> bool:
    """A number or an expression among an op's inputs: ``{mul: [conv, 1e-6]}``."""
    from nnspec.lang.exprs import is_expr

    return (isinstance(value, int | float) and not isinstance(value, bool)) or is_expr(value)


def input_name_problem(name: str) -> tuple[str, str] | None:
    """Why a graph input cannot take this name: it becomes a parameter of the forward."""
    import keyword

    if keyword.iskeyword(name) or name == "self":
        return (f"'{name}' cannot name an input: it becomes a parameter of forward, after self",
                f"rename it, e.g. '{name}_'")
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ('{value}')"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    return type(value).__name__
