"""A self-contained SVG layout for ``nnspec graph --format svg`` (no Graphviz needed).

One box per row in forward order, containers as nested frames around their rows, edges between
neighbouring rows as short arrows and every longer edge (a shortcut, a branch, a second input)
as an arc in its own lane to the right, so skip connections stand out and never cross a box.
Plain and predictable rather than compact: a model reads top to bottom like its spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from nnspec.views.diagram import Box, Cluster, Diagram, Edge

MARGIN, TITLE_H, ROW_H, BOX_H, HEADER_H, FOOTER_H = 20, 30, 38, 28, 22, 8
INDENT, LANE_W, CHAR_W = 12, 12, 7.2
_STYLE = (
    "text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#1f2933}"
    ".box{fill:#eef3fb;stroke:#52606d}.frame{fill:none;stroke:#9aa5b1;stroke-dasharray:0}"
    ".shape{fill:#616e7c}.label{font-weight:bold;fill:#52606d}.title{font-size:15px}"
    ".edge{fill:none;stroke:#555;marker-end:url(#arrow)}"
    ".skip{fill:none;stroke:#c0392b;stroke-dasharray:5 3;marker-end:url(#arrow-skip)}"
)


@dataclass(frozen=True)
class _Placed:
    box: Box
    row: int  # index in drawing order
    x: float
    y: float
    width: float


@dataclass(frozen=True)
class _Frame:
    cluster: Cluster
    x: float
    y: float
    width: float
    height: float


class _Layout:
    """Assigns every box a row and position, and every cluster a frame around its rows."""

    def __init__(self, inner_width: float) -> None:
        self.inner_width = inner_width
        self.y: float = MARGIN + TITLE_H
        self.boxes: dict[str, _Placed] = {}
        self.frames: list[_Frame] = []

    def place(self, cluster: Cluster, depth: int) -> None:
        for item in cluster.items:
            if isinstance(item, Box):
                left = MARGIN + depth * INDENT
                width = self.inner_width - 2 * depth * INDENT
                self.boxes[item.id] = _Placed(item, len(self.boxes), left, self.y, width)
                self.y += ROW_H
                continue
            top = self.y
            self.y += HEADER_H
            self.place(item, depth + 1)
            frame_left = MARGIN + depth * INDENT + INDENT / 2
            self.frames.append(_Frame(item, frame_left, top,
                                      self.inner_width - 2 * (frame_left - MARGIN),
                                      self.y - top - ROW_H + BOX_H + FOOTER_H / 2))
            self.y += FOOTER_H


def render_svg(d: Diagram) -> str:
    """The diagram as a standalone SVG document."""
    depth = _depth(d.root)
    longest = max((len(b.title) + len(b.shape) for b in d.boxes()), default=10)
    inner = max(longest * CHAR_W + 40, 220) + 2 * depth * INDENT
    layout = _Layout(inner)
    layout.place(d.root, 0)
    arcs, lanes = _lanes(d.edges, layout.boxes)
    right = MARGIN + inner
    width = right + LANE_W * (lanes + 1) + MARGIN
    height = layout.y + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}">',
        f"<title>{escape(d.name)}</title>",
        f"<style>{_STYLE}</style>",
        "<defs>" + _marker("arrow", "#555") + _marker("arrow-skip", "#c0392b") + "</defs>",
        f'<text class="title" x="{MARGIN}" y="{MARGIN + 14}">{escape(d.name)}</text>',
    ]
    parts += [_frame(f) for f in layout.frames]
    parts += [_box(p) for p in layout.boxes.values()]
    parts += [_edge(e, layout.boxes, arcs.get(e), right) for e in d.edges]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _depth(cluster: Cluster) -> int:
    inner = [_depth(c) + 1 for c in cluster.items if isinstance(c, Cluster)]
    return max(inner, default=0)


def _lanes(edges: list[Edge], boxes: dict[str, _Placed]) -> tuple[dict[Edge, int], int]:
    """Give each edge that skips rows a lane to the right, shortest arcs innermost.

    Placing short arcs first makes a long arc go around the short ones it spans (a U-Net's
    outer skip around its inner one) instead of crossing them.
    """
    def span(e: Edge) -> tuple[int, int]:
        return boxes[e.source].row, boxes[e.target].row

    arcs = sorted((e for e in edges if span(e)[1] - span(e)[0] != 1),
                  key=lambda e: (span(e)[1] - span(e)[0], span(e)))
    lanes: list[list[tuple[int, int]]] = []
    lane_of: dict[Edge, int] = {}
    for e in arcs:
        start, end = span(e)
        free = [i for i, used in enumerate(lanes)
                if all(end < s or e_ < start for s, e_ in used)]
        lane = free[0] if free else len(lanes)
        if lane == len(lanes):
            lanes.append([])
        lanes[lane].append((start, end))
        lane_of[e] = lane
    return lane_of, len(lanes)


def _marker(name: str, colour: str) -> str:
    return (f'<marker id="{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{colour}"/></marker>')


def _frame(f: _Frame) -> str:
    return (f'<g class="cluster"><rect class="frame" x="{f.x:.1f}" y="{f.y:.1f}" '
            f'width="{f.width:.1f}" height="{f.height:.1f}" rx="6"/>'
            f'<text class="label" x="{f.x + 8:.1f}" y="{f.y + 15:.1f}">'
            f"{escape(f.cluster.label)}</text></g>")


def _box(p: _Placed) -> str:
    cy = p.y + BOX_H / 2 + 4
    return (f'<g class="node" id={quoteattr(p.box.id)}><title>{escape(p.box.name)}</title>'
            f'<rect class="box" x="{p.x:.1f}" y="{p.y:.1f}" width="{p.width:.1f}" '
            f'height="{BOX_H}" rx="4"/>'
            f'<text x="{p.x + 8:.1f}" y="{cy:.1f}">{escape(p.box.title)}</text>'
            f'<text class="shape" x="{p.x + p.width - 8:.1f}" y="{cy:.1f}" '
            f'text-anchor="end">{escape(p.box.shape)}</text></g>')


def _edge(e: Edge, boxes: dict[str, _Placed], lane: int | None, right: float) -> str:
    src, dst = boxes[e.source], boxes[e.target]
    cls = "skip" if e.skip else "edge"
    if lane is None:
        x = src.x + src.width / 2
        return f'<path class="{cls}" d="M{x:.1f},{src.y + BOX_H:.1f} V{dst.y:.1f}"/>'
    lane_x = right + LANE_W * (lane + 1)
    y1, y2 = src.y + BOX_H / 2, dst.y + BOX_H / 2
    return (f'<path class="{cls}" d="M{src.x + src.width:.1f},{y1:.1f} H{lane_x:.1f} '
            f'V{y2:.1f} H{dst.x + dst.width:.1f}"/>')
