"""Shape rules (used instead of slow meta kernels) agree with torch itself, the oracle."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from nnspec.errors import Location
from nnspec.ir import Layer, Node, TensorInfo
from nnspec.model_ast import Source
from nnspec.shapes import BATCH, NO_RULE, _Inferrer, _tuples, describe

CASES: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("ReLU", {}, (3, 8, 8)), ("GELU", {"approximate": "tanh"}, (5,)),
    ("Dropout", {"p": 0.3}, (4, 7)), ("LayerNorm", {"normalized_shape": 7}, (4, 7)),
    ("BatchNorm1d", {"num_features": 4}, (4,)), ("BatchNorm1d", {"num_features": 4}, (4, 9)),
    ("BatchNorm2d", {"num_features": 3}, (3, 8, 8)), ("BatchNorm3d", {"num_features": 2},
                                                     (2, 4, 4, 4)),
    ("InstanceNorm2d", {"num_features": 3}, (3, 6, 6)), ("Dropout2d", {}, (3, 5, 5)),
    ("MaxPool2d", {"kernel_size": 2}, (3, 9, 9)),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, (3, 112, 112)),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (3, 10, 10)),
    ("MaxPool2d", {"kernel_size": [2, 3], "stride": [1, 2], "dilation": 2}, (1, 11, 13)),
    ("MaxPool1d", {"kernel_size": 4, "stride": 3, "ceil_mode": True}, (2, 17)),
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (1, 7, 7)),
    ("AvgPool3d", {"kernel_size": 2}, (1, 4, 5, 6)), ("AvgPool1d", {"kernel_size": 3}, (2, 10)),
    ("AdaptiveAvgPool2d", {"output_size": 1}, (8, 7, 7)),
    ("AdaptiveAvgPool2d", {"output_size": [2, None]}, (8, 7, 5)),
    ("AdaptiveMaxPool1d", {"output_size": 3}, (4, 10)),
    ("Linear", {"in_features": 6, "out_features": 2}, (6,)),
    ("Linear", {"in_features": 6, "out_features": 2}, (5, 6)),
    ("Flatten", {}, (3, 4, 5)), ("Flatten", {"start_dim": 2}, (3, 4, 5)),
    ("Flatten", {"start_dim": 1, "end_dim": 2}, (3, 4, 5)),
]


def _node(op: str) -> Node:
    return Node("n", Layer(op, "layer", {}), (), Source(Location("t"), ("model", 0)))


@pytest.mark.parametrize(("op", "kwargs", "shape"), CASES,
                         ids=[f"{op}-{i}" for i, (op, _, _) in enumerate(CASES)])
def test_rule_matches_torch_on_the_meta_device(op: str, kwargs: dict[str, Any],
                                               shape: tuple[int, ...]) -> None:
    inferrer = _Inferrer()
    ruled = inferrer.rule(_node(op), op, kwargs, [TensorInfo(shape)], ["input"])
    assert ruled is not NO_RULE, f"{op} has no rule for {kwargs}"
    module = getattr(torch.nn, op)(**_tuples(kwargs))
    expected = describe(module(torch.zeros(BATCH, *shape)))
    assert ruled == expected


@pytest.mark.parametrize(("op", "kwargs", "shape"), [
    ("BatchNorm2d", {"num_features": 3}, (3, 8)),
    ("MaxPool2d", {"kernel_size": 2}, (3,)),
], ids=["batchnorm2d-rank", "maxpool2d-rank"])
def test_rule_refuses_what_torch_refuses(op: str, kwargs: dict[str, Any],
                                         shape: tuple[int, ...]) -> None:
    inferrer = _Inferrer()
    ruled = inferrer.rule(_node(op), op, kwargs, [TensorInfo(shape)], ["input"])
    assert ruled is None and inferrer.errors.problems
    with pytest.raises((RuntimeError, ValueError)):
        getattr(torch.nn, op)(**_tuples(kwargs))(torch.zeros(BATCH, *shape))


def test_adaptive_pool_refuses_a_sample_torch_would_read_as_unbatched() -> None:
    # torch takes a [3, 7] tensor as one unbatched [H, W] image; in nnspec the 3 is the batch.
    inferrer = _Inferrer()
    ruled = inferrer.rule(_node("AdaptiveAvgPool2d"), "AdaptiveAvgPool2d", {"output_size": 1},
                          [TensorInfo((7,))], ["input"])
    assert ruled is None
    assert "expects 2 spatial dimensions" in inferrer.errors.problems[0].message


def test_pool_whose_window_does_not_fit_falls_back_to_torch() -> None:
    ruled = _Inferrer().rule(_node("MaxPool2d"), "MaxPool2d", {"kernel_size": 5},
                             [TensorInfo((1, 3, 3))], ["input"])
    assert ruled is NO_RULE
