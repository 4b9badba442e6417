"""The uses of one block, laid over each other: one template net for the block's class.

Uses of a block differ in their argument values, and where the block's structure depends on
its arguments, in which items are present (``if:``) and which layer a layer-valued parameter
names.  ``template`` aligns the uses' nodes by the spec item each came from and returns the
union, each node marked by the uses that have it; a graph's wiring is checked to be the same
once a left-out node is read as what stands for it (its first input, as the resolver wires
it).  Where the uses cannot be laid over each other (a repeat whose count differs, a free
tensor whose computed values differ, different child classes), it returns None and the planner
writes one class per structure instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nnspec.compiler.ir import Layer, Net, Node

Pos = tuple[str, ...]  # node names down to a layer argument, or "()" and a class parameter
CALL = "()"
CLASS = "[class]"  # a layer's class (a parameter may name it: ``- $act``)
IF = "[if]"  # whether an item is there (``if:``)
LOOP = "[each]"  # the body of a repeat written as a loop
REPEAT = "[repeat]"  # its count


def needs_class(net: Net) -> bool:
    return net.block is not None or net.container.forward is not None


@dataclass
class Template:
    """The block's nodes (``net``) and, for each use, its node at each template name."""

    net: Net
    uses: list[dict[str, Node]]
    optional: list[str]  # template names some uses leave out
    # a nested list's own template, and the uses (their numbers here) that have it
    inline: dict[str, tuple[Template, list[int]]] = field(default_factory=dict)
    # a repeat written as a loop: each use's copies (None: the use has none)
    loops: dict[str, list[list[Node] | None]] = field(default_factory=dict)

    def optional_paths(self, prefix: Pos = ()) -> list[Pos]:
        """Every item some uses leave out, by its path (a nested list's items included)."""
        out = [(*prefix, name) for name in self.optional]
        for name, (sub, _) in self.inline.items():
            out += sub.optional_paths((*prefix, name))
        return out

    def inline_uses(self, prefix: Pos = (), numbers: list[int] | None = None,
                    count: int | None = None) -> dict[Pos, list[dict[str, Node] | None]]:
        """For each nested list, by path: each use's nodes in it (None: the use has none)."""
        count = len(self.uses) if count is None else count
        numbers = list(range(len(self.uses))) if numbers is None else numbers
        out: dict[Pos, list[dict[str, Node] | None]] = {}
        for name, (sub, present) in self.inline.items():
            rows: list[dict[str, Node] | None] = [None] * count
            for j, i in enumerate(present):
                rows[numbers[i]] = sub.uses[j]
            path = (*prefix, name)
            out[path] = rows
            out |= sub.inline_uses(path, [numbers[i] for i in present], count)
        return out


def template(instances: Sequence[Net], same_class: Callable[[Net, Net], bool],
             allow_optional: bool, allow_loops: bool = True) -> Template | None:
    """The nets laid over each other, or None.  Only the class's own members become loops
    (``allow_loops``): the emitter writes a loop for a member of the class, not for a repeat
    nested in a member's list, which stays copies."""
    first = instances[0]
    if any(n.kind != first.kind or n.inputs != first.inputs or n.order != first.order
           for n in instances):
        return None
    keyed = [_keyed(net) for net in instances]
    if any(k is None for k in keyed):
        return None
    uses_by_key = [k for k in keyed if k is not None]
    order = _union([list(k) for k in uses_by_key])
    optional_keys = [key for key in order if any(key not in k for k in uses_by_key)]
    if optional_keys and not (allow_optional and first.kind in ("sequential", "graph")):
        return None
    if any(k[key].condition is None for key in optional_keys for k in uses_by_key
           if key in k):
        return None  # not an if: item (a repeat's count that differs): one class each
    names = {key: _template_name(first, key, i) for i, key in enumerate(order)}
    nodes: list[Node] = []
    inline: dict[str, tuple[Template, list[int]]] = {}
    loops: dict[str, list[list[Node] | None]] = {}
    for key in order:
        present = [k[key] for k in uses_by_key if key in k]
        if not all(_compatible(present[0], n, same_class) for n in present[1:]):
            return None
        best = max((k for k in uses_by_key if key in k), key=len)[key]
        body = best.body
        repeats = all(isinstance(n.body, Net) and n.body.repeat is not None for n in present)
        if allow_optional and allow_loops and isinstance(body, Net) and repeats:
            copies = [c for n in present if isinstance(n.body, Net) for c in n.body.nodes]
            if not all(_compatible(copies[0], c, same_class) for c in copies[1:]):
                return None
            at = iter(n.body.nodes for n in present if isinstance(n.body, Net))
            loops[names[key]] = [list(next(at)) if key in k else None for k in uses_by_key]
            body = Net("sequential", (copies[0].with_(name=LOOP),), body.source,
                       repeat=body.repeat)
        elif isinstance(body, Net) and not needs_class(body) and best.shares is None:
            sub = template([n.body for n in present if isinstance(n.body, Net)], same_class,
                           allow_optional and body.kind == "sequential", allow_loops=False)
            if sub is None:
                return None
            inline[names[key]] = (sub, [i for i, k in enumerate(uses_by_key) if key in k])
            body = sub.net
        nodes.append(best.with_(name=names[key], body=body))
    uses = [{names[key]: node for key, node in k.items()} for k in uses_by_key]
    net = Net(first.kind, tuple(nodes), first.source, first.inputs,
              _outputs(instances, uses_by_key), first.order, first.block)
    found = Template(net, uses, [names[k] for k in optional_keys], inline, loops)
    if first.kind == "graph" and not _same_wiring(found, instances):
        return None
    if any(isinstance(n.body, Layer) and n.body.kind == "tensor" for n in nodes
           if n.name in found.optional):
        return None  # nothing stands for a left-out free tensor
    return found


def _keyed(net: Net) -> dict[Any, Node] | None:
    """The nodes by what identifies them across uses: a list's by the spec item (the list
    renumbers when an item is left out), others by name."""
    if net.kind == "sequential":
        paths = [n.source.path for n in net.nodes]
        if len(set(paths)) == len(paths):
            return {("item", *n.source.path): n for n in net.nodes}
    keyed = {("name", n.name): n for n in net.nodes}
    return keyed if len(keyed) == len(net.nodes) else None


def _template_name(net: Net, key: Any, index: int) -> str:
    return str(index) if key[0] == "item" else str(key[1])


def _union(orders: list[list[Any]]) -> list[Any]:
    """The keys of every use in one order each use keeps (they all follow the spec's)."""
    out = list(orders[0])
    for order in orders[1:]:
        at = 0
        for key in order:
            if key in out:
                at = out.index(key) + 1
            else:
                out.insert(at, key)
                at += 1
    return out


def _outputs(instances: Sequence[Net], keyed: list[dict[Any, Node]]) -> tuple[str, ...]:
    fullest = max(range(len(instances)), key=lambda i: len(keyed[i]))
    return instances[fullest].outputs


def _compatible(a: Node, b: Node, same_class: Callable[[Net, Net], bool]) -> bool:
    if a.shares != b.shares:
        return False
    if a.shares is not None:
        return True
    x, y = a.body, b.body
    if isinstance(x, Layer) and isinstance(y, Layer):
        return _same_layer_form(x, y)
    if isinstance(x, Net) and isinstance(y, Net):
        if needs_class(x) or needs_class(y):
            return needs_class(x) and needs_class(y) and same_class(x, y)
        return x.kind == y.kind  # laid over each other by its own template
    return False


def _same_layer_form(x: Layer, y: Layer) -> bool:
    if x.kind != y.kind or sorted(x.kwargs) != sorted(y.kwargs):
        return False
    if x.kind == "tensor":  # its shape, and a computed constant's arguments, may vary
        return _tensor_form(x) == _tensor_form(y)
    return x.op == y.op or (x.kind == "layer" and x.via == y.via)


def _tensor_form(layer: Layer) -> str:
    """What must be the same for two uses of a free tensor: all but its shape, and of a
    computed constant, the calls its arguments lead to (``constants.skeleton``)."""
    from nnspec.catalogue import constants
    from nnspec.catalogue.free_tensors import parse_init

    rest = {k: v for k, v in layer.kwargs.items() if k not in ("shape", "init")}
    name, args = parse_init(layer.kwargs.get("init", "zeros"))
    init = constants.skeleton(name, args) if name in constants.CONSTANTS else repr(args)
    return repr((rest, name, init))


def _same_wiring(found: Template, instances: Sequence[Net]) -> bool:
    """Each use's inputs and outputs are the template's, a left-out node read as the node
    that stands for it."""
    by_name = {n.name: n for n in found.net.nodes}
    for use, net in zip(found.uses, instances, strict=True):
        def stand_in(name: str, use: dict[str, Node] = use) -> str:
            node = by_name.get(name)
            if node is None or name in use:
                return name
            return stand_in(node.inputs[0]) if node.inputs else "<nothing>"

        for name, node in use.items():
            if tuple(map(stand_in, by_name[name].inputs)) != node.inputs:
                return False
        if tuple(map(stand_in, found.net.outputs)) != net.outputs:
            return False
    return True
