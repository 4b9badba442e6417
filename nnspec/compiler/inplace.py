"""Layers run in place (``inplace: true``) where the backward pass needs what they overwrite.

A layer run in place overwrites its input.  Torch refuses that in the backward pass (after
validate accepted the spec) when the value is one its producer's backward reads back (a ReLU,
Sigmoid or Softmax output: the catalogue's ``saves_output``), and the forward pass silently
changes when another node reads the same value too (and fails backward when that node saved
it).  Values are followed through views (``view``: Flatten, permute, getitem), which share their
input's memory.  A container is judged as a whole in its parent: it overwrites its input when its
first layer does, and its output is saved when its last layer's is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnspec import catalogue
from nnspec.compiler.ir import Layer, Net, Node

Report = Callable[[Node, str, str], None]
_HINT = "set inplace: false"


def check_inplace(net: Net, report: Report) -> None:
    """Report every node of ``net`` (and of the nets in it) that runs in place on a value the
    backward pass or another node still needs."""
    _Checker(report).net(net)


def _entry(node: Node) -> Any:
    if not isinstance(node.body, Layer):
        return None
    return catalogue.callables().get(node.body.op)


def _in_place(node: Node) -> bool:
    """Whether the node overwrites its (first) input."""
    if isinstance(node.body, Net):
        return _net_in_place(node.body)
    entry = _entry(node)
    return entry is not None and "inplace" in entry.params and \
        node.body.kwargs.get("inplace") is True


def _saves_output(node: Node) -> str | None:
    """What reads the node's output back in the backward pass (for the message), if anything."""
    if isinstance(node.body, Net):
        last = _last(node.body)
        return _saves_output(last) if last is not None else None
    entry = _entry(node)
    if entry is None:
        return None
    saves = entry.traits.saves_output
    if saves == "always" or (saves == "in place" and _in_place(node)):
        return f"{entry.name}'s backward pass"
    return None


def _is_free_tensor(node: Node) -> bool:
    return isinstance(node.body, Layer) and node.body.op in catalogue.tensors()


def _is_view(node: Node) -> bool:
    entry = _entry(node)
    return entry is not None and entry.traits.view


def _chain(net: Net) -> list[Node] | None:
    """The members of a net that feeds each into the next, in order; None otherwise."""
    if not net.chained or net.kind == "pending":
        return None
    steps = net.forward_steps()
    if any(step is not None for step, _ in steps):
        return None
    return [members[0] for _, members in steps]


def _last(net: Net) -> Node | None:
    chain = _chain(net)
    if chain is not None:
        return chain[-1] if chain else None
    if net.kind == "graph" and len(net.outputs) == 1:
        return next((n for n in net.nodes if n.name == net.outputs[0]), None)
    return None


def _net_in_place(net: Net) -> bool:
    chain = _chain(net)
    if chain is not None:
        for node in chain:
            if not _is_view(node):
                return _in_place(node)
        return False
    if net.kind != "graph":
        return False
    by_name = {n.name: n for n in net.nodes}
    for node in net.nodes:
        if node.inputs and _in_place(node):
            ref = node.inputs[0]
            while ref in by_name and _is_view(by_name[ref]) and by_name[ref].inputs:
                ref = by_name[ref].inputs[0]
            if ref in net.inputs:
                return True
    return False


class _Checker:
    def __init__(self, report: Report) -> None:
        self.report = report
        self.seen: set[int] = set()  # a repeat's copies share one body: judged once

    def net(self, net: Net) -> None:
        if id(net) in self.seen:
            return
        self.seen.add(id(net))
        for node in net.nodes:
            if isinstance(node.body, Net):
                self.net(node.body)
        chain = _chain(net)
        if chain is not None:
            self.chained(chain)
        elif net.kind == "graph":
            self.graph(net)
        elif net.chained and net.kind != "pending":
            self.steps(net)

    def chained(self, chain: list[Node]) -> None:
        for i, node in enumerate(chain):
            if not _in_place(node):
                continue
            j = i - 1
            while j >= 0 and _is_view(chain[j]):
                j -= 1
            if j >= 0 and (saved := _saves_output(chain[j])):
                self.refuse(node, f"the output of '{chain[j].name}', which {saved} reads back")

    def steps(self, net: Net) -> None:
        """A module_list's or module_dict's step that calls several members on one value."""
        for step, members in net.forward_steps():
            if step is not None and len(members) > 1:
                for node in members:
                    if _in_place(node):
                        others = [m.name for m in members if m is not node]
                        self.refuse(node, f"a value that '{others[0]}' also reads")

    def graph(self, net: Net) -> None:
        by_name = {n.name: n for n in net.nodes}
        readers: dict[str, list[str]] = {}
        for node in net.nodes:
            for ref in dict.fromkeys(node.inputs):
                readers.setdefault(ref, []).append(node.name)
        for out in net.outputs:
            readers.setdefault(out, []).append("the output")
        for node in net.nodes:
            if node.inputs and _in_place(node):
                self.graph_node(node, by_name, readers)

    def graph_node(self, node: Node, by_name: dict[str, Node],
                   readers: dict[str, list[str]]) -> None:
        ref, reader = node.inputs[0], node.name
        while True:
            others = [r for r in readers.get(ref, []) if r != reader]
            if others:
                who = "the graph's output" if others[0] == "the output" else f"'{others[0]}'"
                self.refuse(node, f"'{ref}', which {who} also reads", _HINT,
                            "the other reader would see the overwritten value, and torch's "
                            "backward pass fails where it saved it")
                return
            producer = by_name.get(ref)
            if producer is None:
                return  # an input of the net: its parent judges what feeds it
            if not (_is_view(producer) and producer.inputs):
                break
            ref, reader = producer.inputs[0], producer.name
        if _is_free_tensor(producer):
            self.refuse(node, f"the free tensor '{ref}'", _HINT, "torch refuses to change a "
                        "parameter in place, and a buffer would keep the change")
        elif saved := _saves_output(producer):
            self.refuse(node, f"the output of '{ref}', which {saved} reads back")

    def refuse(self, node: Node, what: str, hint: str = _HINT,
               why: str = "torch's backward pass fails") -> None:
        op = f"{node.body.op} with inplace: true" if isinstance(node.body, Layer) else \
            "a layer with inplace: true first"
        self.report(node, f"'{node.name}' runs in place ({op}) and would overwrite {what}: "
                          f"{why}", hint)
