"""``nnspec graph``: Mermaid, dot and SVG diagrams, checked for structure, not by eye."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nnspec
from nnspec.cli import app
from nnspec.views.diagram import Diagram, diagram, render_diagram, to_dot, to_mermaid, to_svg
from tests.conftest import ROOT, SPECS

SPEC_FILES = sorted(SPECS.glob("*.yaml"))
SVG = "{http://www.w3.org/2000/svg}"


def _diagram(name: str) -> Diagram:
    return diagram(nnspec.infer(SPECS / f"{name}.yaml"))


@pytest.fixture(scope="module")
def resnet18() -> Diagram:
    return _diagram("resnet18")


def _labels(d: Diagram) -> dict[str, str]:
    return {b.name: b.id for b in d.boxes()}


def test_every_layer_and_input_is_a_box_with_its_shape(resnet18: Diagram) -> None:
    boxes = {b.name: b for b in resnet18.boxes()}
    assert boxes["input"].shape == "[N, 3, 224, 224]"
    assert (boxes["layer1.0.conv1"].type, boxes["layer1.0.conv1"].shape) == (
        "Conv2d", "[N, 64, 56, 56]")
    assert boxes["fc"].shape == "[N, 1000]"
    graph = nnspec.infer(SPECS / "resnet18.yaml")
    from nnspec.views.summary import summarise

    layers = {row.name for row in summarise(graph).rows if not row.container}
    assert set(boxes) == layers | {"input"}


@pytest.mark.parametrize(("source", "target"), [
    ("layer1.0.bn2", "layer1.0.sum"),               # residual: the block's own path...
    ("maxpool", "layer1.0.sum"),                    # ...and the identity shortcut
    ("layer1.1.out", "layer2.0.downsample.0"),      # a nested sequential taking `in: input`
    ("layer2.0.downsample.1", "layer2.0.sum"),
], ids=["block-path", "identity-shortcut", "into-downsample", "out-of-downsample"])
def test_graph_edges_follow_in_references(resnet18: Diagram, source: str, target: str) -> None:
    ids = _labels(resnet18)
    assert (ids[source], ids[target]) in {(e.source, e.target) for e in resnet18.edges}


def test_edges_off_the_longest_path_are_skips(resnet18: Diagram) -> None:
    names = {b.id: b.name for b in resnet18.boxes()}
    skips = {(names[e.source], names[e.target]) for e in resnet18.edges if e.skip}
    assert ("maxpool", "layer1.0.sum") in skips
    assert ("layer1.1.out", "layer2.0.downsample.0") in skips
    assert ("layer1.0.conv1", "layer1.0.bn1") not in skips
    assert len(skips) == 5 + 3 * 3  # an identity shortcut per BasicBlock, 3 edges per downsample


def test_a_shortcut_with_layers_of_its_own_is_dashed_and_the_main_path_solid(
        resnet18: Diagram) -> None:
    """ResNet's DownBlock: the main path (conv1 ... bn2 -> sum) was drawn dashed before."""
    names = {b.id: b.name for b in resnet18.boxes()}
    skip = {(names[e.source], names[e.target]): e.skip for e in resnet18.edges}
    assert skip[("layer2.0.bn2", "layer2.0.sum")] is False
    assert skip[("layer2.0.downsample.0", "layer2.0.downsample.1")] is True
    assert skip[("layer2.0.downsample.1", "layer2.0.sum")] is True


def test_unet_skip_concatenations_are_skip_edges() -> None:
    d = _diagram("unet_small")
    names = {b.id: b.name for b in d.boxes()}
    skips = {(names[e.source], names[e.target]) for e in d.edges if e.skip}
    assert skips == {("enc1.5", "skip1"), ("enc2.5", "skip2")}


def _mermaid_structure(text: str) -> tuple[set[str], set[str], list[tuple[str, str]]]:
    nodes = set(re.findall(r'^\s*(n\d+)\["', text, re.M))
    subgraphs = re.findall(r"^\s*subgraph (c\d+)\[", text, re.M)
    edges = re.findall(r"^\s*(\w+) (?:-->|-\.->) (\w+)$", text, re.M)
    opened = len(subgraphs)
    closed = len(re.findall(r"^\s*end$", text, re.M))
    assert opened == closed, "every subgraph is closed"
    return nodes, set(subgraphs), edges


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_mermaid_edges_join_declared_nodes(path: Path) -> None:
    d = diagram(nnspec.infer(path))
    text = to_mermaid(d)
    assert text.startswith("flowchart TB\n")
    nodes, _, edges = _mermaid_structure(text)
    assert nodes == {b.id for b in d.boxes()}
    assert edges and all(a in nodes and b in nodes for a, b in edges)
    assert len(edges) == len(d.edges)


def test_mermaid_nests_containers_as_subgraphs_and_dashes_skips() -> None:
    text = to_mermaid(_diagram("resnet_tiny"))
    _, subgraphs, _ = _mermaid_structure(text)
    assert len(subgraphs) == 3  # layer1, layer1.0, layer1.1
    assert 'subgraph c4["layer1.0: BasicBlock"]' in text
    assert len(re.findall(r" -\.-> ", text)) == 2


def _dot_structure(text: str) -> tuple[set[str], list[tuple[str, str]], int]:
    nodes = set(re.findall(r"^\s*(n\d+) \[label=", text, re.M))
    edges = re.findall(r"^\s*(n\d+) -> (n\d+)", text, re.M)
    clusters = len(re.findall(r"^\s*subgraph cluster_c\d+ \{$", text, re.M))
    assert text.count("{") == text.count("}"), "braces balance"
    return nodes, edges, clusters


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_dot_edges_join_declared_nodes(path: Path) -> None:
    d = diagram(nnspec.infer(path))
    nodes, edges, _ = _dot_structure(to_dot(d))
    assert nodes == {b.id for b in d.boxes()}
    assert edges and all(a in nodes and b in nodes for a, b in edges)


def test_dot_draws_containers_as_clusters_with_escaped_labels() -> None:
    text = to_dot(_diagram("resnet18"))
    _, _, clusters = _dot_structure(text)
    assert clusters == 4 + 8 + 3  # layers, blocks, downsamples
    assert 'label="conv1: Conv2d\\n[N, 64, 112, 112]"' in text
    assert text.count("style=dashed") == 14


@pytest.mark.parametrize("name", ["resnet18", "unet_small", "graph_two_inputs",
                                  "transformer_classifier"])
def test_svg_parses_and_shows_every_label(name: str) -> None:
    d = _diagram(name)
    root = ET.fromstring(to_svg(d))
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for box in d.boxes():
        assert box.title in texts and box.shape in texts
    node_ids = {g.get("id") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert node_ids == {b.id for b in d.boxes()}
    paths = [p for p in root.iter(f"{SVG}path") if p.get("class") in ("edge", "skip")]
    assert len(paths) == len(d.edges)


def test_svg_boxes_do_not_overlap_and_fit_the_canvas() -> None:
    root = ET.fromstring(to_svg(_diagram("unet_small")))
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "box"]
    spans = sorted((float(r.get("y", 0)), float(r.get("y", 0)) + float(r.get("height", 0)))
                   for r in rects)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert all(float(r.get("x", 0)) + float(r.get("width", 0)) < width for r in rects)
    assert spans[-1][1] < height


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown diagram format 'png'"):
        render_diagram(nnspec.infer(SPECS / "lenet.yaml"), "png")


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "svg"])
def test_cli_graph_writes_the_file_and_refuses_to_overwrite(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"lenet.{fmt}"
    args = ["graph", str(SPECS / "lenet.yaml"), "--format", fmt, "-o", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert out.read_text() == render_diagram(nnspec.infer(SPECS / "lenet.yaml"), fmt)
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 2
    assert "exists" in second.stderr


def test_docs_zoo_mermaid_example_is_real_output() -> None:
    text = (ROOT / "docs" / "zoo.md").read_text()
    command = "$ nnspec graph specs/resnet_tiny.yaml --format mermaid\n"
    shown = text.split(command, 1)[1].split("```", 1)[0]
    assert shown == render_diagram(nnspec.infer(SPECS / "resnet_tiny.yaml"), "mermaid")
    assert f"```mermaid\n{shown}```" in text


def test_module_dict_is_drawn_in_its_forward_order(write_spec) -> None:
    path = write_spec("nnspec: 1\ninput: [4]\nmodel:\n  module_dict:\n"
                      "    head: {Linear: {out_features: 2}}\n"
                      "    body: {Linear: {out_features: 8}}\n"
                      "  forward: [body, head]\n")
    d = diagram(nnspec.infer(path))
    names = {b.id: b.name for b in d.boxes()}
    assert [b.name for b in d.boxes()] == ["input", "body", "head"]
    assert [(names[e.source], names[e.target]) for e in d.edges] == [
        ("input", "body"), ("body", "head")]


def test_labels_are_escaped_in_every_format() -> None:
    from nnspec.views.diagram import Box, Cluster, Edge

    hostile = 'x"];</text><script>alert(1)</script>#\\'
    box = Box("n1", hostile, "Conv2d", "[N, 1]")
    d = Diagram(hostile, Cluster("root", hostile, [Cluster("c2", hostile, [box])]),
                [Edge("n1", "n1", True)])
    svg = ET.fromstring(to_svg(d))
    assert box.title in [t.text for t in svg.iter(f"{SVG}text")]
    assert not list(svg.iter(f"{SVG}script"))
    mermaid = to_mermaid(d)
    assert re.findall(r'\["([^"]*)"\]', mermaid)[0].startswith("x#quot;];#lt;/text#gt;")
    dot = to_dot(d)
    assert 'label="x\\"];</text><script>alert(1)</script>#\\\\: Conv2d\\n[N, 1]"' in dot
