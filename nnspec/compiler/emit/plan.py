"""Which classes the emitted module defines, and which arguments each one takes.

Every container that needs code of its own becomes a class: the model itself, every block
instance, and every nested graph, module_list or module_dict (they carry a forward).  Plain
nested sequentials are written inline as ``nn.Sequential(...)``.

Instances with the same structure (same label, nodes, wiring, layer types and argument names)
share one class.  Arguments that differ between those instances become constructor parameters;
positions whose values always vary together share one parameter, named after the argument it
feeds (ResNet's ``BasicBlock(channels=64)``, ``DownBlock(in_channels=64, channels=128)``).
Arguments that never vary are written into the class as literals.  So a block used once reads
exactly like hand-written code, and a block used with different sizes like torchvision's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from nnspec import catalogue, plugins
from nnspec.compiler.emit import merge, params
from nnspec.compiler.emit.merge import CALL, CLASS, IF, Pos, needs_class
from nnspec.compiler.emit.names import MODULE_NAMES, Namer, class_name, plain_identifier
from nnspec.compiler.emit.params import ordered_keys
from nnspec.compiler.emit.translate import Code
from nnspec.compiler.ir import Graph, Layer, Net, Node, Value

__all__ = ["CALL", "CLASS", "IF", "ClassPlan", "Import", "Plan", "Pos", "needs_class",
           "ordered_keys"]

@dataclass
class ClassPlan:
    label: str
    instances: list[Net]
    net: Net  # the template: every node some use has (see ``merge``)
    name: str = ""
    params: list[str] = field(default_factory=list)  # the signature's order
    annotations: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)  # param -> its default's code
    computed: dict[str, Code] = field(default_factory=dict)  # param -> code when it is None
    classes: set[str] = field(default_factory=set)  # params that take a layer class
    spec_names: dict[str, str] = field(default_factory=dict)  # param -> the block's name for it
    where: dict[Pos, Code | None] = field(default_factory=dict)  # None: the callee's default
    args: dict[int, dict[str, Any]] = field(default_factory=dict)  # id(instance) -> arguments
    uses: list[dict[str, Node]] = field(default_factory=list)  # per instance: its nodes
    # a nested list's path -> per instance: its nodes there (None: the instance has none)
    inline_uses: dict[Pos, list[dict[str, Node] | None]] = field(default_factory=dict)
    optional: dict[Pos, Code] = field(default_factory=dict)  # an item's path -> condition
    loops: dict[Pos, list[list[Node] | None]] = field(default_factory=dict)  # per use: copies
    loop_variable: str = "_"  # what a loop's body reads as the repeat's index
    flags: dict[str, str] = field(default_factory=dict)  # template node -> attribute (graph)
    stored: dict[str, str] = field(default_factory=dict)  # param -> attribute forward reads


class Plan:
    """The classes of one emitted module, children before the classes that use them."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.plan_of: dict[int, ClassPlan] = {}
        self.inputs = input_values(graph)
        # layers outside torch.nn (torchvision.ops, custom layers), imported by class name
        self.imported = _imported_layers(graph.root)
        self.names = Namer(MODULE_NAMES | set(self.imported))
        # the spec's vars, as module constants that expressions read: vars.num_heads -> NUM_HEADS
        self.constant_names = {var: self.names.take(var.upper(), "VAR")
                               for var, value in graph.variables.items() if _plain(value)}
        self.constant_values = {self.constant_names[v]: graph.variables[v]
                                for v in self.constant_names}
        groups: dict[Any, list[Net]] = {}
        depth: dict[Any, int] = {}
        self.collect(graph.root, ("model", graph.name), groups, depth)
        self.classes: dict[int, ClassPlan] = {}
        for key in sorted(groups, key=lambda k: depth[k]):
            for plan in self.plan_group(key, groups[key]):
                self.classes[id(plan)] = plan
        self.helpers = sorted(_chained_ops(graph.root))
        self.helper_names: dict[str, str] = {}
        plans = list(self.classes.values())
        for plan in [plans[-1], *plans[:-1]]:  # the model's own name is chosen first
            plan.name = self.names.take(class_name(plan.label), "Model", sep="")
        for op in self.helpers:
            self.helper_names[op] = self.names.take(class_name(op), "Op", sep="")

    def constants(self) -> dict[str, Any]:
        """The module constants some code reads, by name, in the spec's order."""
        read = {name for plan in self.classes.values()
                for code in [*plan.where.values(), *plan.computed.values()] if code is not None
                for name in code.names}
        return {name: value for name, value in self.constant_values.items() if name in read}

    def of(self, net: Net) -> ClassPlan:
        return self.plan_of[id(net)]

    def collect(self, net: Net, key: Any, groups: dict[Any, list[Net]],
                depth: dict[Any, int]) -> int:
        """Every net that needs a class, grouped (a block's uses, a container by its name);
        returns the depth of ``net``'s group (its children's groups come first)."""
        deepest = self.collect_inside(net, groups, depth)
        groups.setdefault(key, []).append(net)
        depth[key] = max(depth.get(key, 0), deepest + 1)
        return depth[key]

    def collect_inside(self, net: Net, groups: dict[Any, list[Net]],
                       depth: dict[Any, int]) -> int:
        deepest = 0
        for node in net.nodes:
            body = node.body
            if not isinstance(body, Net) or node.shares is not None:
                continue
            if needs_class(body):
                key = ("block", body.block) if body.block else ("container", node.name)
                deepest = max(deepest, self.collect(body, key, groups, depth))
            else:
                deepest = max(deepest, self.collect_inside(body, groups, depth))
        return deepest

    def plan_group(self, key: Any, nets: list[Net]) -> list[ClassPlan]:
        """One class for the group, or where its uses cannot share one, one per structure."""
        unique = list({id(n): n for n in nets}.values())
        label = str(key[1])
        found = merge.template(unique, self.same_class, allow_optional=key[0] == "block")
        parts = [unique] if found is not None else list(_partition(unique, self.structure))
        plans = []
        for part in parts:
            shaped = found if found is not None else merge.template(
                part, self.same_class, allow_optional=False)
            if shaped is None:
                raise ValueError(f"cannot emit the uses of {label!r} as one class")
            plan = ClassPlan(label, part, shaped.net, uses=shaped.uses,
                             inline_uses=shaped.inline_uses(),
                             loops={(k,): v for k, v in shaped.loops.items()})
            for net in part:
                self.plan_of[id(net)] = plan
            try:
                params.parametrise(self, plan, shaped.optional_paths())
            except params.NoLoop:  # a repeat's copies differ in what a loop cannot say
                return self.plan_apart(label, unique)
            plans.append(plan)
        return plans

    def plan_apart(self, label: str, nets: list[Net]) -> list[ClassPlan]:
        plans = []
        for part in _partition(nets, self.structure):
            shaped = merge.template(part, self.same_class, allow_optional=False)
            if shaped is None:
                raise ValueError(f"cannot emit the uses of {label!r} as one class")
            plan = ClassPlan(label, part, shaped.net, uses=shaped.uses,
                             inline_uses=shaped.inline_uses())
            for net in part:
                self.plan_of[id(net)] = plan
            params.parametrise(self, plan, shaped.optional_paths())
            plans.append(plan)
        return plans

    def same_class(self, a: Net, b: Net) -> bool:
        return self.plan_of[id(a)] is self.plan_of[id(b)]

    def structure(self, net: Net) -> Any:
        nodes = []
        for node in net.nodes:
            body = node.body
            if node.shares is not None:  # no module of its own: a call of its target's
                shape: Any = ("reuse", node.shares)
            elif isinstance(body, Layer):
                shape = ("layer", body.op, body.kind, tuple(sorted(body.kwargs)))
                if body.kind == "tensor":  # only its shape may become a class parameter
                    shape = (*shape, repr({k: v for k, v in body.kwargs.items()
                                           if k != "shape"}))
            elif needs_class(body):
                shape = ("class", id(self.plan_of[id(body)]))
            else:
                shape = ("inline", self.structure(body))
            nodes.append((node.name, node.inputs, shape))
        return net.kind, net.inputs, net.outputs, net.order, tuple(nodes)

    def class_ref(self, op: str) -> str:
        """How emitted code names a layer class: ``nn.ReLU``, or ``StochasticDepth``."""
        if not plain_identifier(op):
            raise ValueError(f"cannot emit unknown layer {op!r}")
        if op in self.imported:
            return op
        if op in catalogue.layers():
            return f"nn.{op}"
        raise ValueError(f"cannot emit unknown layer {op!r}")


def _plain(value: Any) -> bool:
    """A value a module constant can hold: numbers, strings, booleans, lists of them."""
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return isinstance(value, bool | int | float | str)


def _partition(nets: list[Net], structure: Any) -> Iterator[list[Net]]:
    parts: dict[Any, list[Net]] = {}
    for net in nets:
        parts.setdefault(structure(net), []).append(net)
    yield from parts.values()


def input_values(graph: Graph) -> dict[int, Value | None]:
    """The value each net is called on (its first input), by ``id``: what ``input.channels``
    and ``input.shape`` read in a block's expressions."""
    found: dict[int, Value | None] = {}
    first = next(iter(graph.inputs.values()), None)
    _walk_inputs(graph.root, [first], found)
    return found


def _walk_inputs(net: Net, given: list[Value | None], found: dict[int, Value | None]) -> None:
    found[id(net)] = given[0] if given else None
    named: dict[str, Value | None] = dict(zip(net.inputs, given, strict=False))
    current = given[0] if given else None
    steps = net.forward_steps() if net.container.forward == "chain" else [
        (None, [n]) for n in net.nodes]
    for step, members in steps:
        for node in members:
            ins = [named.get(r) for r in node.inputs] if net.kind == "graph" else [current]
            if isinstance(node.body, Net) and node.shares is None:
                _walk_inputs(node.body, ins, found)
            named[node.name] = node.out
        current = members[-1].out if step is None else None


@dataclass(frozen=True)
class Import:
    """A layer class emitted code imports by name: ``from module import Name``."""

    module: str
    installed: bool  # a third-party package (isort's second group), else the user's own code


def _imported_layers(net: Net) -> dict[str, Import]:
    """The layers a net uses that live outside torch.nn, by name: custom layers and the
    catalogue's torchvision.ops layers."""
    found: dict[str, Import] = {}
    for node in net.nodes:
        body = node.body
        if isinstance(body, Net):
            found.update(_imported_layers(body))
        elif body.kind == "layer" and (plugin := plugins.get(body.op)) is not None:
            found[body.op] = Import(plugin.module, plugin.installed)
        elif body.kind == "layer" and (entry := catalogue.layers().get(body.op)) and \
                entry.module != "torch.nn":
            found[body.op] = Import(entry.module, True)
    return found


def _chained_ops(net: Net) -> set[str]:
    """Ops that sit inside sequential containers: they need a module of their own."""
    found: set[str] = set()
    for node in net.nodes:
        body = node.body
        if isinstance(body, Net):
            found |= _chained_ops(body)
        elif body.kind == "op" and net.chained:
            if body.op not in catalogue.ops():
                raise ValueError(f"cannot emit unknown op {body.op!r}")
            found.add(body.op)
    return found
