"""Big specs: what makes their check fast must not change what it finds (bench/bench_compile.py
measures the speed; these tests pin the behaviour)."""

from __future__ import annotations

import pytest
import torch

import nnspec
from nnspec import limits
from nnspec.errors import SpecError
from nnspec.views.summary import render_summary
from tests.conftest import ROOT

REPEATED = """
nnspec: 1
input: [3, 8, 8]
blocks:
  Basic:
    params: {planes: int}
    graph:
      conv: {Conv2d: {out_channels: $planes, kernel_size: 3, padding: 1}}
      bn: BatchNorm2d
      sum: {add: [bn, input]}
model:
  stem: {Conv2d: {out_channels: 4, kernel_size: 1}}
  stage: {Basic: {planes: 4}, repeat: REPEAT}
  pool: {mean: {dim: [2, 3]}}
  fc: {Linear: {out_features: 2}}
"""


def test_the_copies_of_a_repeat_that_never_reads_index_share_one_body() -> None:
    graph = nnspec.validate(ROOT / "bench" / "resnet_repeat_1000.yaml")
    copies = [node.body for node in graph.root.nodes[1].body.nodes]
    assert len(copies) == 1000 and all(body is copies[0] for body in copies)


@pytest.mark.parametrize("repeat", [1, 2, 5])
def test_shared_copies_still_build_one_module_each_and_count_every_parameter(
        repeat: int) -> None:
    text = REPEATED.replace("REPEAT", str(repeat))
    graph = nnspec.validate(text)
    model = nnspec.compile(text)
    params = list(model.parameters())
    assert graph.params == sum(p.numel() for p in params)
    assert len({id(p) for p in params}) == len(params)  # no module is shared
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2)
    rows = render_summary(graph).splitlines()
    assert sum(" Basic " in row for row in rows) == repeat
    assert f"Total params:          {graph.params:,}" in rows


def test_a_repeat_that_reads_index_resolves_each_copy() -> None:
    text = ("nnspec: 2\ninput: [4]\nmodel:\n"
            "  - {Linear: {out_features: \"${index + 2}\"}, repeat: 3}\n")
    copies = nnspec.validate(text).root.nodes[0].body.nodes
    assert [node.body.kwargs["out_features"] for node in copies] == [2, 3, 4]
    assert [node.out.shape for node in copies] == [(2,), (3,), (4,)]


def test_the_node_limit_counts_every_copy() -> None:
    with limits.raised(max_nodes=5_000), pytest.raises(SpecError, match="more than 5000 nodes"):
        nnspec.validate(ROOT / "bench" / "resnet_repeat_1000.yaml")


def test_an_error_in_a_shared_body_is_reported_once() -> None:
    text = REPEATED.replace("REPEAT", "50").replace("kernel_size: 3, padding: 1",
                                                    "kernel_size: 3")
    with pytest.raises(SpecError) as info:
        nnspec.validate(text)
    assert len(info.value.problems) == 1 and "add" in str(info.value)


@pytest.mark.parametrize("name", ["vit_b_16", "swin_t", "maxvit_t"])
def test_validating_a_zoo_transformer_imports_neither_torchvision_nor_dynamo(name: str) -> None:
    """Their layers and ops have shape rules: nothing runs on meta through torch._dynamo."""
    import os
    import subprocess
    import sys

    spec = str(ROOT / "specs" / f"{name}.yaml")
    code = (f"import sys, torch, nnspec; nnspec.validate({spec!r}); "
            "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "[]"
