"""The typed objects passed from resolve to infer, build and emit.

A ``Net`` is one container (the model, a nested sequential, a block instance); its ``nodes``
are ``Node``s whose ``body`` is either a ``Layer`` (a torch module or a tensor op, with its
arguments evaluated) or another ``Net``.  ``infer`` returns the same tree with ``out`` filled on
every node: a ``TensorInfo`` or, for layers that return several tensors, a tuple of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nnspec.lang.model_ast import Source


@dataclass(frozen=True)
class TensorInfo:
    """The shape of one sample (no batch dimension) and the element type; or, not batched,
    the whole shape of a free tensor."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    # False for a free tensor (a parameter or buffer): its shape is the whole tensor's, with no
    # batch dimension, and it broadcasts against batched values as torch does
    batched: bool = True
    # rows of the batch dimension per sample: a Flatten from dimension 0 folds dimensions into
    # the batch (Swin's windows: [N*64, 49, 96]) and an Unflatten of dimension 0 takes them out
    fold: int = 1
    # where the batch sits in the whole tensor: 0 but for a few outputs, e.g. an LSTM's h and
    # c, [num_layers, N, hidden]
    batch_dim: int = 0

    def full(self, batch: int) -> tuple[int, ...]:
        """The whole shape with ``batch`` as the batch's size (a free tensor: its shape)."""
        if not self.batched:
            return self.shape
        return (*self.shape[:self.batch_dim], batch * self.fold, *self.shape[self.batch_dim:])

    def __str__(self) -> str:
        sizes = [str(n) for n in self.shape]
        if self.batched:
            sizes.insert(self.batch_dim, "N" if self.fold == 1 else f"N*{self.fold}")
        return "[" + ", ".join(sizes) + "]"


Value = TensorInfo | tuple["Value", ...]


def show(value: Value | None) -> str:
    """A value as people read it: ``[N, 6, 28, 28]``, a tuple of them, or ``?`` if unknown."""
    if value is None:
        return "?"
    if isinstance(value, TensorInfo):
        return str(value)
    return "(" + ", ".join(show(v) for v in value) + ")"


@dataclass(frozen=True)
class Layer:
    op: str  # a catalogue name: Conv2d, add, ...
    kind: str  # "layer" (an nn.Module) or "op" (a tensor operation)
    kwargs: dict[str, Any]
    # the arguments as the spec wrote them (``$planes``, ``${2 * width}``), for emitted code;
    # ``via``: the block parameter that named the layer (``- $act``)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    via: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Node:
    name: str
    body: Layer | Net
    inputs: tuple[str, ...]  # names in the enclosing graph; empty in sequential containers
    source: Source
    out: Value | None = None
    macs: int | None = None  # ops that multiply (matmul, attention): per sample, from infer
    # ``{reuse: enc}``: the graph node whose module this node calls again (weight tying); its
    # body is that node's, inferred again for this node's inputs, and builds no module
    shares: str | None = None
    condition: Any = field(default=None, compare=False, repr=False)  # its `if:`, as written

    @property
    def after(self) -> tuple[str, ...]:
        """The nodes this one comes after: its inputs and the node whose module it reuses."""
        return self.inputs if self.shares is None else (self.shares, *self.inputs)

    def with_(self, **changes: Any) -> Node:
        return replace(self, **changes)


@dataclass(frozen=True)
class Step:
    """A forward step of a module_list or module_dict that combines members:
    ``x = op(self[a](x), self[b](x))``; a plain step (``x = self[a](x)``) is just a name."""

    op: str
    members: tuple[str, ...]
    source: Source = field(compare=False, hash=False)


@dataclass(frozen=True)
class ContainerKind:
    """What a kind of container is, for every pass that builds, writes or shows one."""

    type: str  # the torch class it is shown as (summary, diagram) and, emitted, subclasses
    forward: str | None  # None: nn.Sequential's own; "chain": members in order; "graph": wired

    @property
    def base(self) -> str:
        """The nn class an emitted container subclasses."""
        return "Module" if self.forward == "graph" else self.type


CONTAINERS: dict[str, ContainerKind] = {
    "sequential": ContainerKind("Sequential", None),
    "ordered": ContainerKind("Sequential", None),  # a mapping of named members, in order
    "module_list": ContainerKind("ModuleList", "chain"),
    "module_dict": ContainerKind("ModuleDict", "chain"),
    "graph": ContainerKind("Graph", "graph"),
    "pending": ContainerKind("Sequential", None),  # a block resolved during inference
}


@dataclass(frozen=True)
class BlockCall:
    """How a block was instantiated, for emitted code: every parameter's value (declared
    order, defaults filled), the arguments the call wrote, and the block's declarations."""

    values: dict[str, Any]
    given: dict[str, Any]  # as written: ``{planes: 64, stride: "${2 if index == 0 else 1}"}``
    types: dict[str, str]  # int, float, bool, str, list, layer, or "" (any)
    defaults: dict[str, Any]  # the declared default of each parameter that has one
    description: str = ""  # the block's, for its class's docstring


@dataclass(frozen=True)
class Net:
    kind: str  # sequential | ordered | module_list | module_dict | graph
    nodes: tuple[Node, ...]
    source: Source
    inputs: tuple[str, ...] = ("input",)
    outputs: tuple[str, ...] = ()
    order: tuple[str | Step, ...] = ()  # forward of module_list / module_dict: member names
    block: str | None = None  # the block this net instantiates, if any
    # kind "pending": a block that reads its input's shape (``${input.channels}``), which the
    # resolver cannot instantiate before inference knows that shape; inference calls
    # ``expand`` with the inferred input values and gets the block's net and the problems
    # found resolving it.  No pending net is left in an inferred graph.
    expand: Callable[[Sequence[Value]], tuple[Net, list[Any]]] | None = None
    call: BlockCall | None = field(default=None, compare=False, repr=False)
    repeat: Any = field(default=None, compare=False, repr=False)  # a repeat's count, as written

    @property
    def container(self) -> ContainerKind:
        return CONTAINERS[self.kind]

    @property
    def chained(self) -> bool:
        """Whether the forward pass simply feeds each node into the next."""
        return self.container.forward != "graph"

    def topological(self) -> list[Node]:
        """The nodes in an order where each comes after the nodes it reads (graphs), or as
        listed; references to names outside this net (its inputs) are skipped."""
        by_name = {n.name: n for n in self.nodes}
        order: list[Node] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name not in by_name:
                return
            seen.add(name)
            for ref in by_name[name].after:
                visit(ref)
            order.append(by_name[name])

        for node in self.nodes:
            visit(node.name)
        return order

    def forward_steps(self) -> list[tuple[Step | None, list[Node]]]:
        """The forward of a chained net, step by step: (None, [member]) calls one member on
        x, (step, members) combines members each called on x."""
        if not (self.container.forward == "chain" and self.order):
            return [(None, [node]) for node in self.nodes]
        by_name = {n.name: n for n in self.nodes}
        return [(None, [by_name[s]]) if isinstance(s, str) else
                (s, [by_name[m] for m in s.members]) for s in self.order]

    def forward_nodes(self) -> list[Node]:
        """The members in the order the forward calls them (a member called twice, twice)."""
        return [node for _, nodes in self.forward_steps() for node in nodes]


@dataclass(frozen=True)
class Graph:
    """The whole model: its name, its inputs and its root container."""

    name: str
    description: str
    inputs: dict[str, TensorInfo]
    root: Net
    file: str
    sha256: str
    params: int | None = None  # filled by infer
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[Any, ...] = ()  # the spec's warnings (nnspec.errors.Problem), for validate
    variables: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # vars
