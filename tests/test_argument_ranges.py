"""Argument ranges the catalogue states: refused where written (exit 2), never a crash later.

Before, `kernel_size: 0` or `stride: 0` divided by zero in the shape pass (a traceback), and
`out_channels: 0` or an Embedding of 0 entries validated on the meta device, then failed to build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nnspec import catalogue
from nnspec.catalogue.shape_rules import NO_RULE, conv, pool
from nnspec.compiler.ir import TensorInfo
from tests.conftest import run_cli

CASES = {
    "pool-kernel-0": ("MaxPool2d: {kernel_size: 0}", 31, "MaxPool2d.kernel_size: expected a "
                      "number >= 1, found 0"),
    "pool-stride-0": ("AvgPool2d: {kernel_size: 2, stride: 0}", 42,
                      "AvgPool2d.stride: expected a number >= 1, found 0"),
    "conv-stride-0": ("Conv2d: {out_channels: 4, kernel_size: 3, stride: 0}", 56,
                      "Conv2d.stride: expected a number >= 1, found 0"),
    "conv-kernel-0-in-a-list": ("Conv2d: {out_channels: 4, kernel_size: [3, 0]}", 45,
                                "Conv2d.kernel_size[1]: expected a number >= 1, found 0"),
    "conv-out-channels-0": ("Conv2d: {out_channels: 0, kernel_size: 3}", 29,
                            "Conv2d.out_channels: expected a number >= 1, found 0"),
    "conv-groups-0": ("Conv2d: {out_channels: 4, kernel_size: 3, groups: 0}", 56,
                      "Conv2d.groups: expected a number >= 1, found 0"),
    "conv-dilation-0": ("Conv1d: {out_channels: 4, kernel_size: 3, dilation: 0}", 58,
                        "Conv1d.dilation: expected a number >= 1, found 0"),
    "conv-padding-negative": ("Conv2d: {out_channels: 4, kernel_size: 3, padding: -1}", 57,
                              "Conv2d.padding: expected a number >= 0, found -1"),
    "transposed-output-padding": ("ConvTranspose2d: {out_channels: 2, kernel_size: 2, "
                                  "output_padding: -1}", 73, "ConvTranspose2d.output_padding: "
                                  "expected a number >= 0, found -1"),
    "pool-padding-negative": ("MaxPool2d: {kernel_size: 3, padding: [1, -1]}", 43,
                              "MaxPool2d.padding[1]: expected a number >= 0, found -1"),
    "linear-out-features-0": ("Linear: {out_features: 0}", 29,
                              "Linear.out_features: expected a number >= 1, found 0"),
    "embedding-0-entries": ("Embedding: {num_embeddings: 0, embedding_dim: 4}", 34,
                            "Embedding.num_embeddings: expected a number >= 1, found 0"),
    "chunk-0": ("chunk: {chunks: 0}", 22, "chunk.chunks: expected a number >= 1, found 0"),
    # numbers: torch refuses these only when the layer runs (the meta device accepts them)
    "batchnorm-eps-negative": ("BatchNorm2d: {eps: -0.5}", 25,
                               "BatchNorm2d.eps: expected a number > 0, found -0.5"),
    "layernorm-eps-0": ("LayerNorm: {eps: 0}", 23, "LayerNorm.eps: expected a number > 0, found 0"),
    "dropout-p-over-1": ("Dropout: {p: 1.5}", 19, "Dropout.p: expected a number <= 1, found 1.5"),
    "dropout2d-p-negative": ("Dropout2d: {p: -0.5}", 21,
                             "Dropout2d.p: expected a number >= 0, found -0.5"),
    "softshrink-lambd-negative": ("Softshrink: {lambd: -1.0}", 26,
                                  "Softshrink.lambd: expected a number >= 0, found -1.0"),
}


def _spec(write_spec: Any, layer: str) -> Path:
    path: Path = write_spec(f"nnspec: 1\nname: ranges\ninput: [3, 8, 8]\nmodel:\n  - {{{layer}}}\n")
    return path


@pytest.mark.parametrize("shapes", [True, False], ids=["shapes", "no-shapes"])
@pytest.mark.parametrize(("layer", "column", "message"), CASES.values(), ids=CASES.keys())
def test_an_argument_out_of_range_is_a_located_error(layer: str, column: int, message: str,
                                                     shapes: bool, write_spec: Any) -> None:
    path = _spec(write_spec, layer)
    result = run_cli("validate", *([] if shapes else ["--no-shapes"]), str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"spec.yaml:5:{column}: error: model[0].{message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_negative_padding_stays_allowed_where_torch_crops_with_it(write_spec: Any) -> None:
    path = _spec(write_spec, "ConstantPad2d: {padding: -1, value: 0.0}")
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "[N, 3, 6, 6]" in run_cli("summary", str(path)).stdout


def test_the_catalogue_states_the_ranges_in_the_schema_and_the_docs() -> None:
    schema = catalogue.layers()["Conv2d"].params["stride"].schema
    assert {"type": "integer", "minimum": 1} in schema["anyOf"]
    assert "padding: " in (line := _doc_line("Conv2d", "padding")) and ">= 0" in line
    assert "minimum" not in str(catalogue.layers()["ConstantPad2d"].params["padding"].schema)
    assert "eps: a number, > 0;" in _doc_line("BatchNorm2d", "eps")
    assert "p: a number, >= 0, <= 1;" in _doc_line("Dropout", "p")
    assert "minimum" not in str(catalogue.layers()["PairwiseDistance"].params["p"].schema)


def _doc_line(name: str, param: str) -> str:
    from nnspec.views.catalogue_docs import describe_entry

    return next(line for line in describe_entry(name).splitlines()
                if line.strip().startswith(f"{param}:"))


@pytest.mark.parametrize("kwargs", [{"kernel_size": 0}, {"kernel_size": 2, "stride": 0},
                                    {"kernel_size": 2, "dilation": 0},
                                    {"kernel_size": 3, "padding": -1}])
def test_the_pool_rule_guards_its_arithmetic(kwargs: dict[str, Any]) -> None:
    assert pool(2)("MaxPool2d", kwargs, [TensorInfo((3, 8, 8))], ["input"]) is NO_RULE


@pytest.mark.parametrize("kwargs", [{"kernel_size": 0}, {"kernel_size": 2, "stride": 0},
                                    {"kernel_size": 3, "dilation": 0},
                                    {"kernel_size": 3, "padding": -2}])
def test_the_conv_rule_guards_its_arithmetic(kwargs: dict[str, Any]) -> None:
    args = {"in_channels": 3, "out_channels": 2, **kwargs}
    assert conv(2)("Conv2d", args, [TensorInfo((3, 8, 8))], ["input"]) is NO_RULE
