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

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nnspec import catalogue, plugins
from nnspec.compiler.emit.names import MODULE_NAMES, Namer, class_name
from nnspec.compiler.ir import Graph, Layer, Net

Pos = tuple[str, ...]  # node names down to a layer argument, or "()" and a class parameter
CALL = "()"


def needs_class(net: Net) -> bool:
    return net.block is not None or net.container.forward is not None


@dataclass
class ClassPlan:
    label: str
    instances: list[Net]
    name: str = ""
    params: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    where: dict[Pos, str] = field(default_factory=dict)  # a varying position -> its parameter
    args: dict[int, dict[str, Any]] = field(default_factory=dict)  # id(instance) -> arguments

    @property
    def net(self) -> Net:
        return self.instances[0]


class Plan:
    """The classes of one emitted module, children before the classes that use them."""

    def __init__(self, graph: Graph) -> None:
        self.classes: dict[Any, ClassPlan] = {}
        self.key_of: dict[int, Any] = {}
        self.root = self.register(graph.root, graph.name)
        for plan in self.classes.values():
            self.parametrise(plan)
        self.helpers = sorted(_chained_ops(graph.root))
        # layers outside torch.nn (torchvision.ops, custom layers), imported by class name
        self.imported = _imported_layers(graph.root)
        self.names = Namer(MODULE_NAMES | set(self.imported))
        self.helper_names: dict[str, str] = {}
        plans = list(self.classes.values())
        for plan in [plans[-1], *plans[:-1]]:  # the model's own name is chosen first
            plan.name = self.names.take(class_name(plan.label), "Model", sep="")
        for op in self.helpers:
            self.helper_names[op] = self.names.take(class_name(op), "Op", sep="")

    def of(self, net: Net) -> ClassPlan:
        return self.classes[self.key_of[id(net)]]

    def register(self, net: Net, label: str) -> Any:
        key = (label, self.structure(net))
        self.classes.setdefault(key, ClassPlan(label, [])).instances.append(net)
        self.key_of[id(net)] = key
        return key

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
                elif body.kind == "op":  # written into forward as literals: never parameters
                    shape = (*shape, repr(body.kwargs))
            elif needs_class(body):
                shape = ("class", self.register(body, body.block or node.name))
            else:
                shape = ("inline", self.structure(body))
            nodes.append((node.name, node.inputs, shape))
        return net.kind, net.inputs, net.outputs, net.order, tuple(nodes)

    def leaves(self, net: Net, prefix: Pos = ()) -> list[tuple[Pos, Any]]:
        """Every argument value inside ``net``, by position."""
        out: list[tuple[Pos, Any]] = []
        for node in net.nodes:
            body, path = node.body, (*prefix, node.name)
            if node.shares is not None:
                continue  # its arguments are its target's
            if isinstance(body, Layer):
                if body.kind == "op":
                    continue  # part of the class's structure (its forward's literals)
                keys = ["shape"] if body.kind == "tensor" else ordered_keys(body)
                out += [((*path, k), body.kwargs[k]) for k in keys]
            elif needs_class(body):
                out += [((*path, CALL, p), v) for p, v in self.of(body).args[id(body)].items()]
            else:
                out += self.leaves(body, path)
        return out

    def parametrise(self, plan: ClassPlan) -> None:
        rows = [dict(self.leaves(net)) for net in plan.instances]
        groups: dict[tuple[Any, ...], list[Pos]] = {}
        for pos in rows[0]:
            seen = tuple(_identity(row[pos]) for row in rows)
            if len(set(seen)) > 1:
                groups.setdefault(seen, []).append(pos)
        namer = Namer(MODULE_NAMES)
        plan.args = {id(net): {} for net in plan.instances}
        for positions in groups.values():
            wanted = _parameter_name(positions)
            name = namer.take(wanted, "arg")
            plan.params.append(name)
            plan.where.update(dict.fromkeys(positions, name))
            values = [row[positions[0]] for row in rows]
            plan.annotations[name] = _annotation(values)
            for net, value in zip(plan.instances, values, strict=True):
                plan.args[id(net)][name] = value


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
    return type(value).__name__, repr(value)


def _annotation(values: list[Any]) -> str:
    types = {type(v) for v in values}
    if len(types) == 1 and (t := types.pop()) in (int, float, bool, str):
        return t.__name__
    if all(isinstance(v, list | tuple) and all(type(i) is int for i in v) for v in values):
        return "tuple[int, ...]"
    return ""


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
