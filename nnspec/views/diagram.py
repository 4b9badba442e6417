"""``nnspec graph``: the architecture as a Mermaid, Graphviz dot or SVG diagram.

The inferred graph is first flattened into a small drawing model (boxes, nested clusters for
containers and blocks, edges); each format is then a short renderer over that model.  Boxes are
labelled ``name: Type`` and the output shape.  Edges that a graph's ``in:`` draws from anywhere
but the node just before (residual shortcuts, U-Net skips, a second input) are marked ``skip``
and drawn dashed.  SVG is laid out here, in Python (one box per row, long edges as arcs on the
right), so no Graphviz binary is needed; ``--format dot`` gives Graphviz's own layout to those
who have it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from nnspec.compiler.ir import Graph, Net, Node, show

FORMATS = ("mermaid", "dot", "svg")


@dataclass(frozen=True)
class Box:
    id: str  # n0, n1, ...: safe in every format, whatever the spec's names
    name: str  # dotted module name (or the input's name)
    type: str  # Conv2d, add, input
    shape: str  # [N, 64, 56, 56]

    @property
    def title(self) -> str:
        if self.type == "input":
            return self.name
        return f"{self.name.rsplit('.', 1)[-1]}: {self.type}"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    skip: bool  # drawn from a node other than the one just before: a shortcut


@dataclass
class Cluster:
    """A container or block instance: its boxes and nested clusters, in drawing order."""

    id: str
    label: str
    items: list[Box | Cluster] = field(default_factory=list)


@dataclass
class Diagram:
    name: str
    root: Cluster
    edges: list[Edge]

    def boxes(self) -> Iterator[Box]:
        return _boxes(self.root)


def _boxes(cluster: Cluster) -> Iterator[Box]:
    for item in cluster.items:
        if isinstance(item, Box):
            yield item
        else:
            yield from _boxes(item)


Incoming = list[tuple[str, bool]]  # (box id, skip) feeding one input


class _Builder:
    """Walks the graph in forward order, creating boxes, clusters and edges."""

    def __init__(self) -> None:
        self.count = 0
        self.edges: list[Edge] = []

    def next_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def net(self, net: Net, prefix: str, cluster: Cluster, incoming: list[Incoming],
            dashed: bool = False) -> Incoming:
        if net.chained:
            current = incoming[0]
            forward = net.forward_nodes()
            for step, members in net.forward_steps():
                outs = [self.node(node, prefix, cluster, [current], dashed) for node in members]
                current = outs[0] if step is None else self.box(
                    Box(self.next_id("n"), f"{prefix}forward", step.op, ""), cluster, outs,
                    dashed)
            for node in net.nodes:  # members the stated forward leaves out: shown, unconnected
                if node not in forward:
                    self.node(node, prefix, cluster, [], dashed)
            return current
        env: dict[str, Incoming] = dict(zip(net.inputs, incoming, strict=False))
        main = _main_path(net)
        for node in net.topological():
            off = dashed or not any(edge[1] == node.name for edge in main)
            feeds = [[(src, skip or off or (ref, node.name) not in main) for src, skip in env[ref]]
                     for ref in node.inputs]
            env[node.name] = self.node(node, prefix, cluster, feeds, off)
        return [edge for out in net.outputs for edge in env[out]]

    def node(self, node: Node, prefix: str, cluster: Cluster,
             incoming: list[Incoming], dashed: bool = False) -> Incoming:
        name = prefix + node.name
        body = node.body
        if node.shares is not None:  # one box: the module is drawn at its own node
            return self.box(Box(self.next_id("n"), name, f"reuse {prefix}{node.shares}",
                                show(node.out)), cluster, incoming, dashed)
        if isinstance(body, Net):
            kind = body.block or body.container.type
            inner = Cluster(self.next_id("c"), f"{name}: {kind}")
            cluster.items.append(inner)
            out = self.net(body, name + ".", inner, incoming, dashed)
            return [(src, False) for src, _ in out]
        return self.box(Box(self.next_id("n"), name, body.op, show(node.out)), cluster,
                        incoming, dashed)

    def box(self, box: Box, cluster: Cluster, incoming: list[Incoming],
            dashed: bool) -> Incoming:
        cluster.items.append(box)
        for feed in incoming:
            self.edges.extend(Edge(src, box.id, skip or dashed) for src, skip in feed)
        return [(box.id, False)]


def _main_path(net: Net) -> set[tuple[str, str]]:
    """The (input, node) references on the longest chain of layers to the net's outputs.

    Each node's main input is the one reached through the most layers (ties: the node declared
    just before it), so a shortcut with layers of its own (ResNet's downsample) stays the
    shortcut, however its nodes are ordered.
    """
    depth = dict.fromkeys(net.inputs, 0)
    main_input: dict[str, str] = {}
    previous = net.inputs[0] if net.inputs else ""
    for node in net.topological():
        refs = [r for r in node.inputs if r in depth]
        if refs:
            main_input[node.name] = max(refs, key=lambda r: (depth[r], r == previous))
        depth[node.name] = depth.get(main_input.get(node.name, ""), 0) + _size(node)
        previous = node.name
    edges: set[tuple[str, str]] = set()
    for name in net.outputs:
        while name in main_input:
            edges.add((main_input[name], name))
            name = main_input[name]
    return edges


def _size(node: Node) -> int:
    """How many boxes a node draws: one per layer, however deeply nested."""
    if isinstance(node.body, Net) and node.shares is None:
        return sum(_size(n) for n in node.body.nodes)
    return 1


def diagram(graph: Graph) -> Diagram:
    """The drawing model of an inferred graph: what every renderer draws."""
    builder = _Builder()
    root = Cluster("root", graph.name)
    incoming: list[Incoming] = []
    for name, info in graph.inputs.items():
        box = Box(builder.next_id("n"), name, "input", str(info))
        root.items.append(box)
        incoming.append([(box.id, False)])
    builder.net(graph.root, "", root, incoming)
    return Diagram(graph.name, root, builder.edges)


def render_diagram(graph: Graph, fmt: str) -> str:
    """The diagram as Mermaid, Graphviz dot or SVG text."""
    renderers = {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}
    if fmt not in renderers:
        raise ValueError(f"unknown diagram format {fmt!r}; one of {', '.join(FORMATS)}")
    return renderers[fmt](diagram(graph))



# -- Mermaid -------------------------------------------------------------------------------
def to_mermaid(d: Diagram) -> str:
    lines = ["flowchart TB"]
    lines += _nested(d.root.items, 1, _MERMAID)
    for e in d.edges:
        lines.append(f"  {e.source} {'-.->' if e.skip else '-->'} {e.target}")
    return "\n".join(lines) + "\n"


def _nested(items: list[Box | Cluster], depth: int, syntax: _Syntax) -> list[str]:
    """Boxes and clusters, nested and indented, in one format's syntax."""
    pad = "  " * depth
    lines = []
    for item in items:
        if isinstance(item, Box):
            lines.append(pad + syntax.box(item))
        else:
            lines += [pad + line for line in syntax.open(item)]
            lines += _nested(item.items, depth + 1, syntax)
            lines.append(pad + syntax.close)
    return lines


@dataclass(frozen=True)
class _Syntax:
    """How one text format writes a box, opens a cluster and closes it."""

    box: Callable[[Box], str]
    open: Callable[[Cluster], list[str]]
    close: str


_MERMAID = _Syntax(lambda b: f'{b.id}["{_mm(b.title)}<br/>{_mm(b.shape)}"]',
                   lambda c: [f'subgraph {c.id}["{_mm(c.label)}"]', "  direction TB"], "end")


def _mm(text: str) -> str:
    """Escape text for a quoted Mermaid label (entity codes, as Mermaid documents them)."""
    table = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;"}
    return "".join(table.get(ch, ch) for ch in text)


# -- Graphviz dot --------------------------------------------------------------------------
def to_dot(d: Diagram) -> str:
    lines = [
        f"digraph {_dq(d.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
        '  edge [color="#555555"];',
    ]
    lines += _nested(d.root.items, 1, _DOT)
    for e in d.edges:
        style = ' [style=dashed, color="#c0392b"]' if e.skip else ""
        lines.append(f"  {e.source} -> {e.target}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_DOT = _Syntax(lambda b: f"{b.id} [label={_dq(b.title + chr(10) + b.shape)}];",
               lambda c: [f"subgraph cluster_{c.id} {{",
                          f'  label={_dq(c.label)}; style="rounded"; color="#9aa5b1";'], "}")


def _dq(text: str) -> str:
    """A double-quoted dot string; a newline becomes dot's centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_svg(d: Diagram) -> str:
    from nnspec.views.svg import render_svg

    return render_svg(d)
