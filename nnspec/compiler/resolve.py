"""The resolve pass: ``Spec`` -> ``Graph``.

Evaluates variables and block parameters, instantiates blocks, expands ``repeat``, checks every
layer's arguments against the catalogue's schema, and checks graph references: unknown names,
cycles, unused nodes.  All problems are collected and raised together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from nnspec import catalogue, limits, plugins
from nnspec.catalogue import AUTO
from nnspec.compiler.inplace import check_inplace
from nnspec.compiler.ir import CONTAINERS, BlockCall, Graph, Layer, Net, Node, Step, TensorInfo
from nnspec.compiler.repeat_names import copy_names
from nnspec.errors import Collector, Location, Problem, SpecPath, did_you_mean
from nnspec.lang import schema
from nnspec.lang.checker import sha256
from nnspec.lang.exprs import (
    ExprError,
    PendingView,
    ShapeNeeded,
    TensorView,
    is_expr,
    substitute,
)
from nnspec.lang.model_ast import (
    CONTAINER_KEYS,
    Block,
    Call,
    Container,
    ForwardStep,
    Item,
    ModelParser,
    Source,
)
from nnspec.lang.spec import Spec

# Every node costs about half a millisecond in the shape check (a module on the meta device), so
# 10k nodes is already seconds; real networks (resnet152: ~500 modules) stay far below.
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list": (list,),
    "layer": (str, dict),
}


def resolve(spec: Spec) -> Graph:
    resolver = _Resolver(spec)
    scope = resolver.variables()
    top_inputs = tuple(spec.inputs) or ("input",)
    for name, given in spec.inputs.items():  # expressions may read the model's input shapes
        scope.setdefault(name, TensorView(tuple(given.shape), given.dtype))
    root = resolver.net(spec.model, scope, top_inputs, ())
    if spec.model.items and not root.nodes and not resolver.errors.problems:
        resolver.error(spec.model.source, ("model",),
                       "every item of model is left out (if: false), so the model is empty",
                       "keep at least one item, or check the if: conditions; an empty model "
                       "is refused, as model: [] is")
    if spec.model.repeat is not None:
        resolver.error(spec.model.repeat_location or spec.model.source, ("model", "repeat"),
                       "repeat applies to an item of the model, not to the whole model",
                       "write model: [{sequential: [...], repeat: N}]")
    if root.kind != "graph" and len(top_inputs) > 1:
        resolver.error(spec.model.source, ("input",),
                       f"the spec declares {len(top_inputs)} inputs "
                       f"({', '.join(top_inputs)}), but a {root.kind} model takes one",
                       "use a graph model, whose nodes take inputs by name")
    if not resolver.errors.problems:
        check_inplace(root, lambda node, message, hint: resolver.error(
            node.source, node.source.path, message, hint))
    resolver.errors.raise_if_any()
    inputs = {k: TensorInfo(tuple(v.shape), v.dtype) for k, v in spec.inputs.items()}
    return Graph(spec.name, spec.description, inputs, root, spec.file, sha256(spec),
                 warnings=tuple(spec.warnings),
                 variables={k: v for k, v in scope.items() if k in spec.vars})


def repeat_counts(spec: Spec) -> dict[SpecPath, set[int]]:
    """Every ``repeat`` the model instantiates, by the path of its item: the counts it takes."""
    resolver = _Resolver(spec)
    scope = resolver.variables()
    resolver.net(spec.model, scope, tuple(spec.inputs) or ("input",), ())
    resolver.errors.raise_if_any()
    return resolver.repeats


_INDEX = re.compile(r"\bindex\b")

# What an unknown layer name resolves to, so that the rest of the spec can still be checked.
UNKNOWN_LAYER = Layer("Identity", "layer", {})


# Containers whose forward takes one input and feeds each member into the next (a repeated
# node is a sequential of its copies); a graph takes its inputs, a pending block is judged once
# it is expanded.
_ONE_INPUT = frozenset(kind for kind, c in CONTAINERS.items() if c.forward != "graph"
                       and kind != "pending")


class _Resolver:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.v2 = spec.version >= 2
        self.blocks: dict[str, Block] = spec.blocks
        self.errors = Collector()
        self.count = 0
        self.over_limit = False
        self.broken: set[str] = set()  # variables whose definition failed (reported once)
        self.indices: set[str] = set()
        self.repeats: dict[SpecPath, set[int]] = {}  # each repeat's counts, for `upgrade`
        self.index_readers: dict[str, bool] = {}  # block name -> may read ``index``

    def error(self, where: Source | Location, path: SpecPath, message: str,
              hint: str | None = None) -> None:
        location = where.location if isinstance(where, Source) else where
        self.errors.add(location, path, message, hint)

    # -- variables ---------------------------------------------------------------------
    def variables(self) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        for name, value in self.spec.vars.items():
            try:
                scope[name] = substitute(value, scope)
            except ExprError as exc:
                where = self.spec.var_locations.get(name, Location(self.spec.file))
                self.error(where, ("vars", name), str(exc), exc.hint)
                self.broken.add(name)
        return scope

    def evaluate(self, value: Any, scope: Mapping[str, Any], where: Location,
                 path: SpecPath) -> Any:
        try:
            return substitute(value, scope)
        except ExprError as exc:
            if not any(f"'{name}'" in str(exc) for name in self.broken):  # reported in vars
                self.error(where, path, str(exc), exc.hint)
            return None

    # -- containers --------------------------------------------------------------------
    def net(self, c: Container, scope: Mapping[str, Any], default_inputs: tuple[str, ...],
            stack: tuple[str, ...], block: str | None = None) -> Net:
        nodes = []
        omitted: dict[str, Item] = {}
        for name, item in c.items:
            if c.kind != "graph" and isinstance(item, Call) and item.reuse is not None:
                self.error(item.source, item.source.path, "reuse only works inside a graph",
                           f"in a {c.kind} the module would be registered twice, under two "
                           "names (two sets of state_dict keys): use a graph, whose node "
                           "{reuse: NODE, in: INPUT} calls NODE's module again")
                continue
            if c.kind != "graph" and item.inputs is not None:
                self.error(item.source, (*item.source.path, "in"),
                           "'in' only works inside a graph",
                           "use a graph to wire nodes by name")
            if not self.present(item, scope):
                omitted[name] = item
                continue
            node = self.node(name, item, scope, stack, nest=c.spread)
            if item.condition is not None:
                node = node.with_(condition=item.condition)
            if c.kind != "graph" and item.inputs is None:
                self.check_input_count(node, 1)
            nodes.append(node)
        if c.spread and nodes and isinstance(nodes[0].body, Net) and \
                nodes[0].body.kind == "sequential":  # the copies (0..N-1) are the members
            nodes = list(nodes[0].body.nodes)
        order = self.forward(c, scope, [n.name for n in nodes])
        if order:
            self.check_members_used(c, nodes, _called(order))
        if c.kind == "sequential" and omitted:  # a list renumbers, as nn.Sequential(*kept)
            nodes = [node.with_(name=str(i)) for i, node in enumerate(nodes)]
        if c.kind != "graph":
            if omitted and order:
                order = tuple(s for s in order if not isinstance(s, str) or s not in omitted)
            return Net(c.kind, tuple(nodes), c.source, order=order, block=block)
        inputs = c.graph_inputs or default_inputs
        return self.graph(c, nodes, inputs, block, omitted)

    def forward(self, c: Container, scope: Mapping[str, Any],
                known: list[str]) -> tuple[str | Step, ...]:
        """A module_list's or module_dict's forward, its steps' repeats expanded and their
        members evaluated (``${index // 2}``)."""
        order: list[str | Step] = []
        for entry in c.forward or ():
            if not isinstance(entry, ForwardStep):
                if c.spread and entry not in known:
                    self.error(c.source, (*c.source.path[:-1], "forward"),
                               f"'{entry}' is not a member of this {c.kind}",
                               f"members: 0 to {len(known) - 1}")
                order.append(entry)
                continue
            for i in range(self.repeat_count(entry, scope)):
                inner = self.indexed(scope, i) if entry.repeat is not None else scope
                members = [self.member(c, known, ref, inner, entry.source, j)
                           for j, ref in enumerate(entry.members)]
                order.append(Step(entry.op, tuple(m for m in members if m is not None),
                                  entry.source))
        return tuple(order)

    def member(self, c: Container, known: list[str], ref: Any, scope: Mapping[str, Any],
               source: Source, j: int) -> str | None:
        """One member a forward step names, evaluated: an index or a name of ``c``."""
        path = (*source.path, j)
        value = self.evaluate(ref, scope, source.location, path)
        if value is None:
            return None
        if str(value) not in known or isinstance(value, bool) or (
                c.kind == "module_list" and not isinstance(value, int)):
            self.error(source, path, f"'{ref}' is {value!r}, not a member of this {c.kind}",
                       f"members: {', '.join(known)}")
            return None
        return str(value)

    def present(self, item: Item, scope: Mapping[str, Any]) -> bool:
        """Whether an item's ``if:`` holds (format 2); an item without one is present."""
        if item.condition is None:
            return True
        path = (*_item_path(item), "if")
        where = item.condition_location or item.source.location
        value = self.evaluate(item.condition, scope, where, path)
        if value is not None and not isinstance(value, bool):
            self.error(where, path, f"if must be true or false, found {schema.found(value)}",
                       "write a comparison, e.g. if: ${stride != 1}")
        return value is not False

    def graph(self, c: Container, nodes: list[Node], inputs: tuple[str, ...],
              block: str | None, omitted: Mapping[str, Item] | None = None) -> Net:
        wired, previous = [], inputs[0]
        names = [n.name for n in nodes]
        item_inputs = {name: item.inputs for name, item in c.items}
        stand_in = self.stand_ins(c, omitted or {}, inputs[0])
        after = {name: stand_in.get(name, name) for name, _ in c.items}  # what follows reads
        nodes = self.shared(c, nodes, omitted or {})
        by_name = {n.name: n for n in nodes}
        for item_name, _ in c.items:
            if item_name not in by_name:
                previous = previous if after[item_name] == _NOTHING else after[item_name]
                continue
            node = by_name[item_name]
            implicit = () if _sourceless(node) else (previous,)  # a free tensor reads none
            refs = tuple(stand_in.get(r, r) for r in item_inputs[node.name] or implicit)
            wired.append(node.with_(inputs=tuple(refs)))
            previous = node.name
            for i, ref in enumerate(refs):
                if ref == _NOTHING:
                    name = (item_inputs[node.name] or implicit)[i]
                    self.error(node.source, (*c.source.path, node.name, "in", i),
                               f"node '{node.name}' reads '{name}', which is left out (if: "
                               "false) and reads no input, so nothing stands for it",
                               "leave this node out too, with the same if:")
                elif ref not in names and ref not in inputs:
                    self.error(node.source, (*c.source.path, node.name, "in", i),
                               f"unknown input '{ref}'",
                               did_you_mean(ref, [*inputs, *names]) or
                               f"known: {', '.join([*inputs, *names])}")
                elif ref == node.name:
                    self.error(node.source, (*c.source.path, node.name, "in"),
                               f"node '{ref}' takes itself as input")
            self.check_input_count(node, len(refs))
        outputs = tuple(stand_in.get(o, o) for o in (
            c.graph_outputs or ((c.items[-1][0],) if c.items else ())))
        for out in outputs:
            if out == _NOTHING:
                self.error(c.outputs_location or c.source.location,
                           (*c.source.path[:-1], "outputs"), "an output is left out (if: "
                           "false) and reads no input, so nothing stands for it",
                           "leave out the free tensor only where the graph has other outputs")
            elif out not in names and out not in inputs:
                self.error(c.outputs_location or c.source.location,
                           (*c.source.path[:-1], "outputs"), f"unknown output '{out}'",
                           did_you_mean(out, [*names, *inputs]) or
                           f"known: {', '.join([*inputs, *names])}")
        net = Net("graph", tuple(wired), c.source, inputs, tuple(outputs), block=block)
        if not self.errors.problems:
            self.check_cycles_and_use(net, _dropped(c, omitted or {}, stand_in))
        if not self.errors.problems:
            self.check_reuse_order(net)
        return net

    def check_reuse_order(self, net: Net) -> None:
        """A reused module's sizes come from its own node's input: that node must not be
        computed from the node that reuses it."""
        by_name = {n.name: n for n in net.nodes}

        def reads(name: str, wanted: str, seen: set[str]) -> bool:
            if name == wanted:
                return True
            seen.add(name)
            node = by_name.get(name)
            return node is not None and any(
                reads(ref, wanted, seen) for ref in node.after if ref not in seen)

        for node in net.nodes:
            if node.shares is not None and reads(node.shares, node.name, set()):
                self.error(node.source, node.source.path,
                           f"'{node.name}' reuses the module of '{node.shares}', which is "
                           f"computed from '{node.name}'",
                           "reuse a node computed before this one: its sizes are inferred "
                           "from its own input")

    def shared(self, c: Container, nodes: list[Node], omitted: Mapping[str, Item]) -> list[Node]:
        """Reuse nodes get the body of the node whose module they call (which must hold one:
        a layer, block or container of this graph, not an op, free tensor or input)."""
        by_name = {n.name: n for n in nodes}
        out = []
        for node in nodes:
            target = by_name.get(node.shares or "")
            if node.shares is None or node.shares == "<invalid>":
                out.append(node)
                continue
            problem = _reuse_problem(node, target, omitted, list(by_name))
            if problem is not None:
                self.error(node.source, node.source.path, *problem)
                out.append(node.with_(shares=None))
                continue
            assert target is not None
            out.append(node.with_(body=target.body))
        return out

    def stand_ins(self, c: Container, omitted: Mapping[str, Item], first: str) -> dict[str,
                                                                                        str]:
        """A node left out (``if:`` false) stands for its first input, so that references to
        it read what it would have read: torchvision's optional downsample (one input), and
        its optional shortcut, ``add: [block, input]`` standing for ``block``.  A left-out
        free tensor reads nothing, so nothing stands for it (``_NOTHING``)."""
        out: dict[str, str] = {}
        previous = first
        for name, item in c.items:
            if name not in omitted:
                previous = name
                continue
            refs = item.inputs or (() if _reads_nothing(item) else (previous,))
            out[name] = out.get(refs[0], refs[0]) if refs else _NOTHING
            previous = previous if out[name] == _NOTHING else out[name]
        return out

    def check_members_used(self, c: Container, nodes: list[Node],
                           order: tuple[str, ...]) -> None:
        """A member the forward never calls would be built but never shaped: refuse it."""
        for node in nodes:
            if node.name not in order:
                self.error(node.source, (*c.source.path, node.name),
                           f"member '{node.name}' is not used by forward",
                           "add it to forward, or remove it")

    def check_input_count(self, node: Node, count: int) -> None:
        if isinstance(node.body, Net) and node.body.kind in _ONE_INPUT and count > 1:
            self.error(node.source, node.source.path,
                       f"node '{node.name}' takes 1 input, given {count}: a repeated node or a "
                       f"{node.body.kind} runs its members one after another, each on the "
                       "last's output",
                       "join the inputs first in a node of their own without repeat, e.g. "
                       "{cat: [a, b]}, and read that node here")
            return
        if not isinstance(node.body, Layer) or node.body is UNKNOWN_LAYER:
            return  # an unknown layer is reported already; its inputs cannot be judged
        entry = catalogue.callables()[node.body.op]
        if not entry.min_inputs <= count <= entry.max_inputs:
            want = (str(entry.min_inputs) if entry.min_inputs == entry.max_inputs
                    else f"{entry.min_inputs} to {entry.max_inputs}")
            hint = None
            if count < entry.min_inputs:
                hint = "inside a graph, name them with in: [a, b]"
            elif entry.max_inputs == 1:
                hint = ("join them first in a node of their own, e.g. {cat: [a, b]} or "
                        "{add: [a, b]}, and read that node here")
            if entry.max_inputs == 0:
                hint = (f"a {node.body.op} is a node of a graph that others read by name: "
                        "write it in a graph (a block's graph makes it the block's member)")
            self.error(node.source, node.source.path,
                       f"{node.body.op} takes {want} input{'' if want == '1' else 's'}, "
                       f"given {count}", hint)

    def check_cycles_and_use(self, net: Net, dropped: Mapping[str, str] | None = None) -> None:
        by_name = {n.name: n for n in net.nodes}
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(name: str, trail: list[str]) -> None:
            if name not in by_name or state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = [*trail[trail.index(name):], name]
                node = by_name[name]
                self.error(node.source, node.source.path, "cycle: " + " -> ".join(cycle),
                           "a graph must not feed a node back into itself")
                return
            state[name] = 1
            for ref in by_name[name].inputs:
                visit(ref, [*trail, name])
            state[name] = 2

        for out in net.outputs:
            visit(out, [])
        for node in net.nodes:
            if state.get(node.name) != 2 and not any(
                    p.message.startswith("cycle") for p in self.errors.problems):
                self.error(node.source, node.source.path,
                           f"node '{node.name}' is not used by any output",
                           (dropped or {}).get(node.name, "remove it, or list it in outputs"))

    # -- items -------------------------------------------------------------------------
    def node(self, name: str, item: Call | Container, scope: Mapping[str, Any],
             stack: tuple[str, ...], nest: bool = False) -> Node:
        self.count += 1
        if isinstance(item, Call) and item.reuse is not None:  # its body: see `shared`
            return Node(name, UNKNOWN_LAYER, (), item.source, shares=item.reuse)
        if self.too_many(item):
            return Node(name, Layer("Identity", "layer", {}), (), item.source)
        repeat = self.repeat_count(item, scope)
        self.count += repeat - 1  # each copy is a node: nested repeats multiply
        if self.too_many(item):
            return Node(name, Layer("Identity", "layer", {}), (), item.source)
        # format 1 made a lone copy of `repeat: 1` the item itself; format 2 always nests, and
        # so does a repeat that names its copies (and a module_list's copies, its members)
        if repeat > 1 or (item.repeat is not None and (self.v2 or nest or
                                                       item.names is not None)):
            names = copy_names(item, [self.indexed(scope, i) for i in range(repeat)],
                               self.errors)
            copies = tuple(Node(names[i], body, (), item.source)
                           for i, body in enumerate(self.copies(item, scope, stack, repeat)))
            if self.too_many(item):
                return Node(name, Layer("Identity", "layer", {}), (), item.source)
            kind = "sequential" if item.names is None else "ordered"
            written = item.repeat if item.names is None else None  # for emitted loops
            return Node(name, Net(kind, copies, item.source, repeat=written), (), item.source)
        if item.repeat is not None:
            scope = self.indexed(scope, 0)
        return Node(name, self.body(item, scope, stack), (), item.source)

    def copies(self, item: Call | Container, scope: Mapping[str, Any],
               stack: tuple[str, ...], repeat: int) -> list[Layer | Net]:
        """The body of each copy of a repeated item.  Copies differ only in ``index``: an item
        that never reads it (nor do the blocks it uses) is resolved once, and its copies
        share that body (the IR is immutable; the builder makes one module per node), so a
        ``repeat: 1000`` costs one resolution, not a thousand."""
        if repeat == 1 or self.reads_index(item):
            return [self.body(item, self.indexed(scope, i), stack) for i in range(repeat)]
        before = self.count
        body = self.body(item, self.indexed(scope, 0), stack)
        self.count += (self.count - before) * (repeat - 1)  # each copy's nodes, for the limit
        return [body] * repeat

    def reads_index(self, item: Call | Container) -> bool:
        """Whether ``index`` may be read by the item or a block it uses (by the text of its
        expressions: a conservative answer, never a wrong "no")."""
        text = repr(item)
        if _INDEX.search(text):
            return True
        return any(self.block_reads_index(name) for name in self.blocks
                   if name in text)

    def block_reads_index(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name not in self.index_readers:
            text = repr(self.blocks[name])
            self.index_readers[name] = bool(_INDEX.search(text)) or any(
                self.block_reads_index(other, seen | {name}) for other in self.blocks
                if other not in seen and other != name and other in text)
        return self.index_readers[name]

    def indexed(self, scope: Mapping[str, Any], index: int) -> Mapping[str, Any]:
        """The scope of one repetition: ``index`` is its number (a format-1 spec's own
        variable of that name keeps its value)."""
        if not self.v2 and "index" in scope and "index" not in self.indices:
            return scope
        self.indices.add("index")
        return {**scope, "index": index}

    def too_many(self, item: Call | Container) -> bool:
        """Whether the node limit is passed; reports it once, so expansion stops early."""
        limit = limits.current().max_nodes
        if self.count <= limit:
            return False
        if not self.over_limit:
            self.over_limit = True
            self.error(item.source, item.source.path,
                       f"the model has more than {limit} nodes",
                       "this looks like a resource bomb; " + limits.hint("max_nodes"))
        return True

    def repeat_count(self, item: Call | Container | ForwardStep,
                     scope: Mapping[str, Any]) -> int:
        if item.repeat is None:
            return 1
        path = (*item.source.path[:-1], "repeat")  # beside the layer name or container key
        if item.names is not None:
            path = (*path, "times")
        where = item.repeat_location or item.source.location
        value = self.evaluate(item.repeat, scope, where, path)
        if isinstance(value, int) and item.names is None:  # a named repeat always nests
            self.repeats.setdefault(path, set()).add(value)
        if value is None:
            return 1
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            self.error(where, path, f"repeat must be a positive integer, found {value!r}")
            return 1
        limit = limits.current().max_repeat
        if value > limit:
            self.error(where, path, f"repeat {value} is over the limit of {limit}",
                       "this looks like a resource bomb; " + limits.hint("max_repeat"))
            return 1
        return value

    def body(self, item: Call | Container, scope: Mapping[str, Any],
             stack: tuple[str, ...]) -> Layer | Net:
        if isinstance(item, Container):
            return self.net(item, scope, item.graph_inputs or ("input",), stack)
        if item.name.startswith("$"):
            return self.layer_parameter(item, scope, stack)
        if item.name in self.blocks:
            return self.block(item, scope, stack)
        if item.name in catalogue.callables() or plugins.from_entry_point(item.name):
            return self.layer(item, scope)
        if item.name != "<invalid>":
            choices = [*catalogue.callables(), *self.blocks, *CONTAINER_KEYS]
            self.error(item.source, item.source.path, f"unknown layer '{item.name}'",
                       did_you_mean(item.name, choices) or
                       "see `nnspec layers` for the catalogue, define a block, or load a "
                       "custom layer with `nnspec --plugin MODULE`")
        return UNKNOWN_LAYER

    def layer(self, call: Call, scope: Mapping[str, Any]) -> Layer:
        entry = catalogue.callables()[call.name]
        args = dict(call.args)
        if "__shorthand__" in args:
            args = self.shorthand(call, args.pop("__shorthand__"))
            if not args:  # reported: the other arguments cannot be judged
                return Layer(call.name, entry.kind, {})
        values: dict[str, Any] = {}
        failed = set()
        for key, raw in args.items():
            where = _value_at(call, key)
            before = len(self.errors.problems)
            value = self.evaluate(raw, scope, where, (*call.source.path, key))
            failed_expr = value is None and raw is not None
            if len(self.errors.problems) == before and not failed_expr:  # reported once
                values[key] = value
            else:
                failed.add(key)
        for error in _argument_errors(call.name, values):
            path, message, hint, _ = schema.explain(error)
            if error.validator == "required" and any(
                    f"'{k}'" in error.message for k in failed | _misspelt(values, entry.params)):
                continue  # reported as a failed or misspelt argument already
            if message.startswith("unknown key"):
                message = message.replace("unknown key", "unknown argument") + f" of {call.name}"
                hint = did_you_mean(str(path[-1]), entry.params) or (
                    f"{call.name} takes: {', '.join(entry.params) or 'no arguments'}")
            elif message.startswith("missing"):
                message += f" of {call.name}"
            at = call.arg_locations if message.startswith("unknown") else call.value_locations
            where = at.get(str(path[0]) if path else "", call.source.location)
            if path and is_expr(args.get(str(path[0]))):  # the value came from a variable
                origin = self.provenance(str(args[str(path[0])]))
                hint = f"{origin}; {hint}" if hint else origin
            self.error(where, (*call.source.path, *path), message, hint)
        for pname, param in entry.params.items():
            if param.inferred and pname not in values:  # Transformer's d_model too
                values[pname] = AUTO
        if entry.traits.batch_first and values.get("batch_first") is not True:
            self.error(call.source, call.source.path,
                       f"{call.name} must be given batch_first: true",
                       "nnspec tensors put the batch dimension first; without it torch would "
                       "read the batch as the sequence")
        return Layer(call.name, entry.kind, values, raw=args)

    def provenance(self, expr: str) -> str:
        """Where the variables behind a ``$name`` or ``${expr}`` value were set."""
        names = [n for n in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", expr))
                 if n in self.spec.vars]
        if not names:
            return f"the value of {expr}"
        return f"the value of {expr}: " + ", ".join(
            f"vars.{n} set at {self.spec.var_locations.get(n, Location(self.spec.file))}"
            for n in names)

    def shorthand(self, call: Call, value: Any) -> dict[str, Any]:
        entry = catalogue.callables()[call.name]
        required = entry.required or (list(entry.params) if len(entry.params) == 1 else [])
        if len(required) == 1:  # the one required argument, or the only one: {mul: 0.5}
            return {required[0]: value}
        where = call.arg_locations.get("__shorthand__", call.source.location)
        self.error(where, call.source.path, f"the arguments of {call.name} must be a mapping, "
                   f"found {schema.found(value)}",
                   f"write {{{call.name}: {{name: value}}}}; it takes "
                   f"{', '.join(entry.params) or 'no arguments'}")
        return {}

    def layer_parameter(self, call: Call, scope: Mapping[str, Any],
                        stack: tuple[str, ...]) -> Layer | Net:
        """``- $act``: the layer a block parameter (or variable) holds, e.g. ``Hardswish`` or
        ``{LeakyReLU: {negative_slope: 0.1}}``, with the arguments written beside it."""
        value = self.evaluate(call.name, scope, call.source.location, call.source.path)
        if value is None:
            return UNKNOWN_LAYER
        if not (isinstance(value, str) or (isinstance(value, dict) and len(value) == 1)):
            self.error(call.source, call.source.path, f"{call.name} holds "
                       f"{schema.found(value)}, not a layer",
                       "pass a layer: a name (ReLU) or {Name: {args}}")
            return UNKNOWN_LAYER
        parser = ModelParser(lambda path, key=False: call.source.location, self.errors)
        item = parser.item(value, call.source.path)
        if isinstance(item, Call) and call.args:
            given = {k: v for k, v in call.args.items() if k != "__shorthand__"}
            item = replace(item, args={**item.args, **given})
        if isinstance(item, Call) and item.name.startswith("$"):
            self.error(call.source, call.source.path, f"{call.name} names another parameter "
                       f"({item.name}), not a layer")
            return UNKNOWN_LAYER
        body = self.body(item, scope, stack)
        return replace(body, via=call.name) if isinstance(body, Layer) else body

    def block(self, call: Call, scope: Mapping[str, Any],
              stack: tuple[str, ...]) -> Layer | Net:
        block = self.blocks[call.name]
        if call.name in stack:
            self.error(call.source, call.source.path,
                       f"block '{call.name}' uses itself: " + " -> ".join([*stack, call.name]))
            return Layer("Identity", "layer", {})
        given = self.block_args(block, call, scope)
        inputs = block.body.graph_inputs or ("input",)
        pending = {name: PendingView(name) for name in dict.fromkeys(("input", *inputs))
                   if self.v2 or name not in scope}  # format 1: a variable keeps its name
        problems, count = len(self.errors.problems), self.count
        try:  # defaults are the block's: their `input` is the block's input
            params = self.defaults(block, given, {**scope, **pending})
            inner = {**scope, **pending, **params}
            net = self.net(block.body, inner, inputs, (*stack, call.name), block=call.name)
            return replace(net, call=_block_call(block, call, params))
        except ShapeNeeded:  # the block reads its input's shape: resolved during inference
            del self.errors.problems[problems:]
            self.count = count

        def expand(values: Sequence[Any]) -> tuple[Net, list[Problem]]:
            before = len(self.errors.problems)
            views = {"input": _view(values[0]),
                     **dict(zip(inputs, map(_view, values), strict=False))}
            params = self.defaults(block, given, {**scope, **views})
            shaped = {**scope, **params, **views}
            net = self.net(block.body, shaped, inputs, (*stack, call.name), block=call.name)
            net = replace(net, call=_block_call(block, call, params))
            found = self.errors.problems[before:]
            del self.errors.problems[before:]
            return net, found

        return Net("pending", (), call.source, inputs, block=call.name, expand=expand)

    def block_args(self, block: Block, call: Call, scope: Mapping[str, Any]) -> dict[str, Any]:
        args = dict(call.args)
        if "__shorthand__" in args:
            self.error(call.source, call.source.path, f"the arguments of block {call.name} "
                       "must be a mapping of its parameters")
            args = {}
        out: dict[str, Any] = {}
        for key, raw in args.items():
            where = call.arg_locations.get(key, call.source.location)
            path = (*call.source.path, key)
            if key not in block.params:
                self.error(where, path, f"unknown parameter '{key}' of block {call.name}",
                           did_you_mean(key, block.params) or
                           f"{call.name} takes: {', '.join(block.params) or 'no parameters'}")
                continue
            value = self.evaluate(raw, scope, _value_at(call, key), path)
            ok = self.check_param_type(block.params[key].type, value, _value_at(call, key), path)
            out[key] = value if ok else None  # None: reported here, not again where it is used
        misspelt = _misspelt(args, block.params)
        for name, param in block.params.items():
            if name not in out and param.required:
                if name not in misspelt:
                    self.error(call.source, call.source.path,
                               f"missing parameter '{name}' of block {call.name}")
                out[name] = None
        return out

    def defaults(self, block: Block, given: Mapping[str, Any], scope: Mapping[str, Any]
                 ) -> dict[str, Any]:
        """The block's parameters: those given, then the defaults of the others, which may
        read the parameters before them and the block's input (``ShapeNeeded`` until it is
        known)."""
        out = dict(given)
        names = list(block.params)
        for name, param in block.params.items():
            later = [n for n in names[names.index(name) + 1:] if n not in out]
            if name not in out and _reads(param.default, later):
                self.error(block.source.location, (*block.source.path, "params", name),
                           f"the default of '{name}' reads "
                           f"'{_reads(param.default, later)}', declared after it",
                           "a default may read the parameters declared before it: reorder "
                           "the params, or give the value where the block is used")
                out[name] = None
            elif name not in out:
                out[name] = self.evaluate(param.default, {**scope, **out},
                                          block.source.location,
                                          (*block.source.path, "params", name))
        return out

    def check_param_type(self, ptype: str, value: Any, where: Location, path: SpecPath) -> bool:
        """Report a block argument of the wrong type; whether it was of the right one."""
        allowed = _TYPES.get(ptype)
        if allowed is None or value is None:
            return True
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        else:
            ok = isinstance(value, allowed)
        if not ok:
            words = {"int": "an integer", "float": "a number", "bool": "true or false",
                     "str": "a string", "list": "a list", "layer": "a layer"}
            self.error(where, path, f"expected {words[ptype]}, found {schema.found(value)}",
                       f"the block declares {path[-1]}: {ptype}")
        return ok


_CLEAN: set[str] = set()  # (layer, arguments) the schema found nothing wrong with



def _reads(default: Any, names: list[str]) -> str | None:
    """The first of ``names`` an expression default reads (``${b * 2}``, ``$b``), if any."""
    if not isinstance(default, str) or "$" not in default:
        return None
    words = set(re.findall(r"(?<![.\w])[A-Za-z_]\w*", default))  # not input.channels' attribute
    return next((n for n in names if n in words), None)

def _argument_errors(name: str, values: dict[str, Any]) -> list[Any]:
    """The schema's errors for a layer's evaluated arguments; a repeated layer is checked once
    (a block repeated 1,000 times has a handful of distinct layers)."""
    validator = schema.args_validator(name)  # a new one when plugins change the catalogue
    try:
        key = json.dumps([id(validator), name, values], sort_keys=True)
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _CLEAN:
        return []
    errors = list(validator.iter_errors(values))
    if not errors and key is not None and len(_CLEAN) < 100_000:
        _CLEAN.add(key)
    return errors


def _value_at(call: Call, key: str) -> Location:
    return call.value_locations.get(key) or call.arg_locations.get(key, call.source.location)


def _misspelt(given: Mapping[str, Any], known: Mapping[str, Any]) -> set[str]:
    """Known names that a given unknown name is a close misspelling of: a "missing" error for
    them would only repeat the "unknown ..., did you mean" error."""
    import difflib

    return {m for k in given if k not in known
            for m in difflib.get_close_matches(k, list(known), n=1)}


def _item_path(item: Item) -> SpecPath:
    """The path of the mapping an item is written as (a call's source is its name's key)."""
    path = item.source.path
    if isinstance(item, Call) and path and path[-1] == item.name:
        return path[:-1]
    return path[:-1] if isinstance(item, Container) and path and path[-1] in CONTAINER_KEYS \
        else path


def _called(order: tuple[str | Step, ...]) -> tuple[str, ...]:
    """The members a forward calls."""
    return tuple(m for s in order for m in ((s,) if isinstance(s, str) else s.members))


def _reuse_problem(node: Node, target: Node | None, omitted: Mapping[str, Item],
                   names: list[str]) -> tuple[str, str | None] | None:
    """Why a reuse node cannot call its target's module, if it cannot."""
    name = node.shares or ""
    if target is None:
        if name in omitted:
            return (f"'{name}' is left out by its if:, so it has no module to reuse",
                    "give this node the same if:")
        return (f"unknown node '{name}' to reuse",
                did_you_mean(name, names) or "reuse names a node of this graph that holds a "
                "layer, block or container")
    if target.shares is not None:
        return (f"'{name}' reuses '{target.shares}' itself", f"write reuse: {target.shares}")
    body = target.body
    if isinstance(body, Layer) and body.kind != "layer":
        what = "an op" if body.kind == "op" else f"a free tensor ({body.op})"
        return (f"'{name}' is {what}, not a module, so there is nothing to reuse",
                "write the op again" if body.kind == "op" else
                f"read the tensor by name instead: in: {name}")
    if target is node:
        return (f"node '{name}' reuses itself", None)
    return None


def _block_call(block: Block, call: Call, values: Mapping[str, Any]) -> BlockCall:
    """What emitted code needs of one use of a block (see ``BlockCall``)."""
    params = block.params.values()
    return BlockCall({p.name: values.get(p.name) for p in params},
                     {k: v for k, v in call.args.items() if k in block.params},
                     {p.name: "" if p.type == "any" else p.type for p in params},
                     {p.name: p.default for p in params if not p.required},
                     block.description)


def _view(value: Any) -> Any:
    """What an expression reads of an inferred value: a tensor, or a list of them."""
    if isinstance(value, TensorInfo):
        return TensorView(value.shape, value.dtype)
    return [_view(v) for v in value]


# What a left-out free tensor stands for: nothing (not a name, so it never meets a node's).
_NOTHING = "<nothing>"


def _dropped(c: Container, omitted: Mapping[str, Item], stand_in: Mapping[str, str]
             ) -> dict[str, str]:
    """The inputs a left-out node drops (all but its first), each with the hint that explains
    why the node that computes it may end up unused."""
    out: dict[str, str] = {}
    items = dict(c.items)
    for name, item in c.items:
        for ref in (item.inputs or ())[1:] if name in omitted else ():
            free = ref in items and _reads_nothing(items[ref])
            out.setdefault(ref, f"'{name}' is left out (if: false) and stands for its first "
                           f"input, '{stand_in[name]}'; " + (
                               f"give '{ref}' the same if:" if free else
                               "list the input it should keep first"))
    return out


def _reads_nothing(item: Item) -> bool:
    """A free tensor's item (``parameter``, ``buffer``): it takes no input."""
    entry = catalogue.callables().get(item.name) if isinstance(item, Call) else None
    return entry is not None and entry.max_inputs == 0


def _sourceless(node: Node) -> bool:
    """A node that reads no input (a free tensor): it does not take the previous node's."""
    body = node.body
    return isinstance(body, Layer) and body is not UNKNOWN_LAYER and \
        catalogue.callables()[body.op].max_inputs == 0
