"""The chunk op: several outputs, selected with getitem; shaped, built, emitted, summarised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nnspec
from nnspec.catalogue import ops
from nnspec.catalogue.shape_rules import BATCH
from nnspec.compiler.build import build
from nnspec.compiler.ir import TensorInfo
from nnspec.compiler.shapes import describe
from nnspec.views.summary import render_summary
from tests.conftest import run_cli

SPEC = """\
nnspec: 1
name: halves
input: [4, 6]
model:
  graph:
    parts: {chunk: {chunks: 4, dim: -1}}
    first: {getitem: {index: 0}, in: parts}
    last: {getitem: {index: 2}, in: parts}
    out: {add: [first, last]}
"""


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), chunks=st.integers(1, 10),
       data=st.data())
def test_chunk_rule_agrees_with_torch(shape: list[int], chunks: int, data: st.DataObject) -> None:
    dim = data.draw(st.sampled_from([d for d in range(-len(shape), len(shape) + 1) if d % (
        len(shape) + 1)]))
    rule = ops()["chunk"].traits.shape
    assert rule is not None
    ruled = rule("chunk", {"chunks": chunks, "dim": dim}, [TensorInfo(tuple(shape))], ["input"])
    assert ruled == describe(torch.zeros(BATCH, *shape).chunk(chunks, dim=dim))


def test_chunk_gives_a_tuple_that_getitem_selects_from() -> None:
    graph = nnspec.infer(SPEC)
    parts, first, last, out = graph.root.nodes
    assert parts.out == (TensorInfo((4, 2)), TensorInfo((4, 2)), TensorInfo((4, 2)))
    assert first.out == last.out == out.out == TensorInfo((4, 2))
    assert "parts  chunk    ([N, 4, 2], [N, 4, 2], [N, 4, 2])" in render_summary(graph)
    model = build(graph)
    x = torch.randn(2, 4, 6)
    assert torch.equal(model(x), x[..., 0:2] + x[..., 4:6])


def test_chunk_is_emitted_as_the_tensor_method() -> None:
    from nnspec.compiler.emit.emitter import emit

    source = emit(nnspec.infer(SPEC))
    assert "parts = input.chunk(4, dim=-1)" in source and "out = first + last" in source


@pytest.mark.parametrize(("layers", "line", "message"), [
    ("    parts: {chunk: {chunks: 2, dim: 0}}\n", 6,
     "chunk along dim 0 splits the batch, not samples"),
    ("    parts: {chunk: {chunks: 2}}\n    act: {ReLU: null, in: parts}\n", 7,
     "ReLU takes a tensor, but model.graph.parts chunk returns 2 outputs"),
    ("    parts: {chunk: 2}\n    third: {getitem: 2, in: parts}\n", 7,
     "getitem 2: model.graph.parts chunk returns 2 output(s)"),
])
def test_chunk_mistakes_are_located_errors(layers: str, line: int, message: str,
                                           write_spec: Any) -> None:
    path: Path = write_spec(f"nnspec: 1\nname: bad\ninput: [4, 6]\nmodel:\n  graph:\n{layers}")
    result = run_cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    assert f"spec.yaml:{line}:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
