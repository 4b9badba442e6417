"""``nnspec summary``: every layer with its output shape, parameters and multiply-accumulates.

Counted from the inferred graph: shapes are already on every node, and each layer is built on
the ``meta`` device to count its parameters, so no weights are allocated and a 10^11-parameter
spec is summarised as quickly as a small one.

MACs are counted by each layer's catalogue entry (``Traits.macs``, nnspec/catalogue/macs.py):
a layer's weights count once for every position they are applied at (a convolution at every
output position, a ``Linear`` or ``LayerNorm`` at every token of a sequence), ops that multiply
tensors (``matmul``, ``einsum``, ``scaled_dot_product_attention``) and ``MultiheadAttention``
count their products from their input shapes (``Traits.count``), and layers without weights,
and graph ops that only add, count zero.  For convolutional networks this is torchinfo's count
(tests/test_summary.py holds torchinfo as the oracle); for attention networks and layers on
sequences, torch.utils.flop_counter (FLOPs / 2) is the oracle, which leaves out biases and
norms: the two differ by those, a fraction of a percent.  A module called again (a ``reuse``
node, a member a module_list's forward calls twice) counts its MACs at each call, as torchinfo
does, and its parameters once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from math import prod
from typing import TYPE_CHECKING

from nnspec import catalogue, plugins
from nnspec.catalogue.macs import MacsRule, once
from nnspec.compiler.ir import Graph, Layer, Net, Node, TensorInfo, Value, show

if TYPE_CHECKING:
    from torch import nn



@dataclass(frozen=True)
class Row:
    """One node of the model: a layer, a graph op, or a container (its children follow)."""

    name: str  # dotted, as in the module's state_dict keys: layer1.0.conv1
    depth: int  # 0 for the model's own children
    type: str  # Conv2d, add, BasicBlock (a block), Sequential, Graph, ...
    output: str  # per-sample shape with the batch as N: [N, 64, 56, 56]
    params: int
    trainable: int
    macs: int  # per sample
    param_bytes: int
    container: bool


@dataclass(frozen=True)
class Summary:
    """The rows of a model and its totals (summed over layers, never over containers)."""

    name: str
    inputs: dict[str, TensorInfo]
    rows: tuple[Row, ...]

    def _leaves(self) -> Iterator[Row]:
        return (row for row in self.rows if not row.container)

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self._leaves())

    @property
    def trainable_params(self) -> int:
        return sum(row.trainable for row in self._leaves())

    @property
    def macs(self) -> int:
        return sum(row.macs for row in self._leaves())

    @property
    def param_bytes(self) -> int:
        return sum(row.param_bytes for row in self._leaves())

    @property
    def param_mb(self) -> float:
        """Parameter memory in MB (10^6 bytes), as torchinfo reports it."""
        return self.param_bytes / 1e6


def summarise(graph: Graph) -> Summary:
    """Count parameters and MACs of every node of an inferred graph (see the module docs)."""
    rows = tuple(_net_rows(graph.root, "", 0, {}))
    return Summary(graph.name, dict(graph.inputs), rows)


Seen = dict[int, tuple[Net, list[Row]]]  # id of a container -> it and its rows (no prefix)


def _net_rows(net: Net, prefix: str, depth: int, seen: Seen) -> Iterator[Row]:
    # a member a module_list's forward calls k times counts its MACs k times, as torchinfo
    calls = Counter(n.name for n in net.forward_nodes()) if net.chained else Counter()
    for node in net.nodes:
        times = calls.get(node.name, 1)
        for row in _node_rows(node, prefix + node.name, depth, seen):
            yield row if times == 1 else replace(row, macs=row.macs * times)


def _children(body: Net, name: str, depth: int, seen: Seen) -> list[Row]:
    """A container's rows; the copies of a repeat share one body, counted once and renamed."""
    known = seen.get(id(body))
    if known is None or known[0] is not body:
        known = (body, list(_net_rows(body, "", 0, seen)))
        seen[id(body)] = known
    return [replace(row, name=name + row.name, depth=row.depth + depth) for row in known[1]]


def _node_rows(node: Node, name: str, depth: int, seen: Seen) -> Iterator[Row]:
    body = node.body
    if node.shares is not None:  # a module called again: its MACs again, its params once
        again = [_layer_row(node, body, name, depth)] if isinstance(body, Layer) else [
            row for row in _net_rows(body, name + ".", depth + 1, seen) if not row.container]
        yield Row(name, depth, f"reuse {node.shares}", show(node.out), 0, 0,
                  sum(r.macs for r in again), 0, False)
        return
    if isinstance(body, Net):
        children = _children(body, name + ".", depth + 1, seen)
        direct = [row for row in children if not row.container]
        kind = body.block or body.container.type
        yield Row(name, depth, kind, show(node.out),
                  sum(r.params for r in direct), sum(r.trainable for r in direct),
                  sum(r.macs for r in direct), sum(r.param_bytes for r in direct), True)
        yield from children
        return
    yield _layer_row(node, body, name, depth)


def _layer_row(node: Node, layer: Layer, name: str, depth: int) -> Row:
    if layer.kind == "op":  # matmul and attention count their multiplications
        return Row(name, depth, layer.op, show(node.out), 0, 0, node.macs or 0, 0, False)
    if layer.kind == "tensor":
        return _tensor_row(node, layer, name, depth)
    params, trainable, macs, size = _layer_counts(layer, _first_shape(node.out),
                                                  _first_fold(node.out))
    macs = node.macs if node.macs is not None else macs  # counted from the inputs' shapes
    return Row(name, depth, layer.op, show(node.out), params=params, trainable=trainable,
               macs=macs, param_bytes=size, container=False)


_COUNTS: dict[str, tuple[int, int, int, int]] = {}


def _layer_counts(layer: Layer, out: tuple[int, ...],
                  rows: int = 1) -> tuple[int, int, int, int]:
    """Parameters, trainable ones, MACs and bytes of a layer (a repeated one is built once);
    ``rows``: the rows of the batch dimension per sample (Swin's windows folded into it)."""
    entry = catalogue.layers().get(layer.op)
    if entry is not None and entry.traits.unbuilt and plugins.get(layer.op) is None:
        return 0, 0, 0, 0  # no weights, so no MACs: not built (torchvision's import costs seconds)
    try:
        key: str | None = json.dumps([id(plugins.layer_class(layer.op)), layer.op, layer.kwargs,
                                      out, rows], sort_keys=True)
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _COUNTS:
        return _COUNTS[key]
    module = _meta_module(layer)
    params = list(module.parameters())
    counts = (sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad),
              module_macs(module, out) * rows, sum(p.numel() * p.element_size() for p in params))
    if key is not None and len(_COUNTS) < 100_000:
        _COUNTS[key] = counts
    return counts


def _tensor_row(node: Node, layer: Layer, name: str, depth: int) -> Row:
    """A free tensor: a parameter counts its elements (trainable unless requires_grad is
    false), a buffer none, as torchinfo counts ``parameters()``."""
    count = prod(layer.kwargs["shape"]) if layer.op == "parameter" else 0
    trainable = count if layer.kwargs.get("requires_grad", True) else 0
    width = 8 if "64" in str(layer.kwargs.get("dtype", "")) else 4
    return Row(name, depth, layer.op, show(node.out), count, trainable, 0, count * width, False)


def _meta_module(layer: Layer) -> nn.Module:
    """The layer as the builder makes it, on the meta device: shapes only, no memory."""
    from nnspec.compiler.build import _layer
    from nnspec.compiler.shapes import meta_device

    with meta_device():
        return _layer(layer)


def module_macs(module: nn.Module, out_shape: tuple[int, ...]) -> int:
    """The multiply-accumulates of one module for one sample of ``out_shape``: its catalogue
    entry's rule, else its children's, else its weights once (torchinfo's rule)."""
    rule = _macs_rule(type(module))
    if rule is not None:
        return rule(module, out_shape)
    children = list(module.children())
    if children:
        return sum(module_macs(child, out_shape) for child in children)
    return once(module, out_shape)


def _macs_rule(cls: type) -> MacsRule | None:
    """The catalogue entry's MACs rule for a module class (or the layer it derives from)."""
    entries = catalogue.layers()
    for base in cls.__mro__:
        if base.__name__ in entries:
            return entries[base.__name__].traits.macs
    return None


def _first_fold(value: Value | None) -> int:
    while isinstance(value, tuple):
        if not value:
            return 1
        value = value[0]
    return value.fold if value is not None and value.batched else 1


def _first_shape(value: Value | None) -> tuple[int, ...]:
    """The shape torchinfo measures: a layer returning several tensors counts the first."""
    while isinstance(value, tuple):
        if not value:
            return ()
        value = value[0]
    return value.shape if value is not None else ()



# -- the table -----------------------------------------------------------------------------
_HEADERS = ("Layer", "Type", "Output shape", "Params", "MACs")


def render_summary(graph: Graph) -> str:
    """The summary as a text table with totals, for ``nnspec summary``."""
    return format_summary(summarise(graph))


def format_summary(summary: Summary) -> str:
    cells = [_cells(row) for row in summary.rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(_HEADERS)]
    right = (False, False, False, True, True)

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w)
                         for v, w, r in zip(values, widths, right, strict=True)).rstrip()

    rule = "=" * len(line(_HEADERS))
    inputs = ", ".join(("" if k == "input" else f"{k} ") + str(v) +
                       ("" if v.dtype == "float32" else f" {v.dtype}")
                       for k, v in summary.inputs.items())
    body = [line(c) for c in cells]
    return "\n".join([f"{summary.name}: input {inputs}", rule, line(_HEADERS), rule, *body,
                      rule, *_totals(summary), rule])


def _cells(row: Row) -> tuple[str, ...]:
    params = f"{row.params:,}" if row.params else "--"
    macs = f"{row.macs:,}" if row.macs else "--"
    return ("  " * row.depth + row.name, row.type, row.output, params, macs)


def _totals(summary: Summary) -> list[str]:
    frozen = summary.total_params - summary.trainable_params
    return [
        f"Total params:          {summary.total_params:,}",
        f"Trainable params:      {summary.trainable_params:,}",
        f"Non-trainable params:  {frozen:,}",
        f"MACs per sample:       {summary.macs:,} ({_readable(summary.macs)})",
        f"Params size (MB):      {summary.param_mb:,.2f}",
    ]


def _readable(count: int) -> str:
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return str(count)
