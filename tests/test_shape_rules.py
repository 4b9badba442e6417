"""Shape rules (used instead of slow meta kernels) agree with torch itself, the oracle."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nnspec.catalogue.shape_rules import BATCH, NO_RULE, ShapeProblem
from nnspec.catalogue.shape_rules import broadcast_shapes as _broadcast_shapes
from nnspec.compiler.ir import Layer, Node, TensorInfo
from nnspec.compiler.shapes import _Inferrer, _tuples, describe
from nnspec.errors import Location
from nnspec.lang.model_ast import Source

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
    ("TransformerEncoderLayer", {"d_model": 8, "nhead": 2, "dim_feedforward": 16,
                                 "batch_first": True, "norm_first": True}, (5, 8)),
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


@pytest.mark.parametrize(("dtype", "shape"), [("int64", (7,)), ("int32", (3, 4)),
                                             ("int64", ())])
def test_embedding_rule_matches_torch(dtype: str, shape: tuple[int, ...]) -> None:
    kwargs = {"num_embeddings": 10, "embedding_dim": 6}
    ruled = _Inferrer().rule(_node("Embedding"), "Embedding", kwargs,
                             [TensorInfo(shape, dtype)], ["input"])
    ids = torch.zeros(BATCH, *shape, dtype=getattr(torch, dtype))
    assert ruled == describe(torch.nn.Embedding(**kwargs)(ids))


def test_layers_with_rules_leave_other_input_types_to_torch() -> None:
    """A float64 input to float32 weights, float ids: torch has the word (it refuses)."""
    inferrer = _Inferrer()
    attention = {"d_model": 8, "nhead": 2, "batch_first": True}
    assert inferrer.rule(_node("TransformerEncoderLayer"), "TransformerEncoderLayer",
                         attention, [TensorInfo((5, 8), "float64")], ["input"]) is NO_RULE
    assert inferrer.rule(_node("Embedding"), "Embedding", {"embedding_dim": 4},
                         [TensorInfo((5,), "float32")], ["input"]) is NO_RULE


@pytest.mark.parametrize(("dim", "keepdim", "shape"), [
    (1, False, (4, 5)), (-1, False, (4, 5)), ([1, 2], False, (3, 4, 5)), ([-2, 3], True,
                                                                        (3, 4, 5)),
    (2, True, (6, 2)),
])
def test_mean_rule_matches_torch(dim: Any, keepdim: bool, shape: tuple[int, ...]) -> None:
    from nnspec.catalogue import ops

    rule = ops()["mean"].traits.shape
    assert rule is not None
    ruled = rule("mean", {"dim": dim, "keepdim": keepdim}, [TensorInfo(shape)], ["input"])
    dims = tuple(dim) if isinstance(dim, list) else dim
    assert ruled == describe(torch.zeros(BATCH, *shape).mean(dim=dims, keepdim=keepdim))


@pytest.mark.parametrize(("op", "kwargs", "shape"), [
    ("BatchNorm2d", {"num_features": 3}, (3, 8)),
    ("MaxPool2d", {"kernel_size": 2}, (3,)),
], ids=["batchnorm2d-rank", "maxpool2d-rank"])
def test_rule_refuses_what_torch_refuses(op: str, kwargs: dict[str, Any],
                                         shape: tuple[int, ...]) -> None:
    inferrer = _Inferrer()  # run: the rank check before the rules, then the rules
    ruled = inferrer.run(_node(op), op, kwargs, [TensorInfo(shape)], ["input"])
    assert ruled is None and inferrer.errors.problems
    with pytest.raises((RuntimeError, ValueError)):
        getattr(torch.nn, op)(**_tuples(kwargs))(torch.zeros(BATCH, *shape))


def test_adaptive_pool_refuses_a_sample_torch_would_read_as_unbatched() -> None:
    # torch takes a [3, 7] tensor as one unbatched [H, W] image; in nnspec the 3 is the batch.
    inferrer = _Inferrer()
    ruled = inferrer.run(_node("AdaptiveAvgPool2d"), "AdaptiveAvgPool2d", {"output_size": 1},
                         [TensorInfo((7,))], ["input"])
    assert ruled is None
    assert "expects 2 spatial dimensions" in inferrer.errors.problems[0].message


def test_pool_whose_window_does_not_fit_falls_back_to_torch() -> None:
    ruled = _Inferrer().rule(_node("MaxPool2d"), "MaxPool2d", {"kernel_size": 5},
                             [TensorInfo((1, 3, 3))], ["input"])
    assert ruled is NO_RULE


CONV_CASES: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("Conv2d", {"in_channels": 1, "out_channels": 6, "kernel_size": 5, "padding": 2}, (1, 28, 28)),
    ("Conv2d", {"in_channels": 3, "out_channels": 64, "kernel_size": 7, "stride": 2,
                "padding": 3, "bias": False}, (3, 224, 224)),
    ("Conv2d", {"in_channels": 4, "out_channels": 8, "kernel_size": [3, 1], "stride": [2, 1],
                "dilation": [2, 1], "groups": 4}, (4, 17, 9)),
    ("Conv2d", {"in_channels": 2, "out_channels": 2, "kernel_size": 3, "padding": "same",
                "dilation": 2}, (2, 9, 8)),
    ("Conv1d", {"in_channels": 2, "out_channels": 3, "kernel_size": 4, "padding": "valid"},
     (2, 10)),
    ("Conv3d", {"in_channels": 1, "out_channels": 2, "kernel_size": 3, "stride": 2},
     (1, 7, 8, 9)),
    ("ConvTranspose2d", {"in_channels": 4, "out_channels": 2, "kernel_size": 2, "stride": 2},
     (4, 7, 7)),
    ("ConvTranspose1d", {"in_channels": 2, "out_channels": 2, "kernel_size": 3, "stride": 3,
                         "padding": 1, "output_padding": 2, "dilation": 2}, (2, 5)),
]


@pytest.mark.parametrize(("op", "kwargs", "shape"), CONV_CASES,
                         ids=[f"{op}-{i}" for i, (op, _, _) in enumerate(CONV_CASES)])
def test_conv_rule_matches_torch(op: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> None:
    test_rule_matches_torch_on_the_meta_device(op, kwargs, shape)


@settings(max_examples=150, deadline=None)
@given(dims=st.integers(1, 3), transposed=st.booleans(), channels=st.integers(1, 3),
       out=st.integers(1, 3), kernel=st.integers(1, 4), stride=st.integers(1, 3),
       padding=st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"])),
       dilation=st.integers(1, 2), extra=st.integers(0, 2), length=st.integers(1, 9),
       wrong_channels=st.booleans())
def test_conv_rule_agrees_with_torch_or_defers_to_it(
        dims: int, transposed: bool, channels: int, out: int, kernel: int, stride: int,
        padding: int | str, dilation: int, extra: int, length: int,
        wrong_channels: bool) -> None:
    op = f"{'ConvTranspose' if transposed else 'Conv'}{dims}d"
    kwargs: dict[str, Any] = {"in_channels": channels, "out_channels": out,
                              "kernel_size": kernel, "stride": stride, "padding": padding,
                              "dilation": dilation}
    if transposed:
        kwargs["output_padding"] = extra
    shape = (channels + wrong_channels, *[length + i for i in range(dims)])
    try:
        module = getattr(torch.nn, op)(**_tuples(kwargs))
    except (ValueError, RuntimeError, TypeError):
        return  # refused when built, before any rule (padding 'same' with a stride, ...)
    ruled = _Inferrer().rule(_node(op), op, kwargs, [TensorInfo(shape)], ["input"])
    try:
        expected = describe(module(torch.zeros(BATCH, *shape)))
    except (RuntimeError, TypeError):
        assert ruled is NO_RULE, "torch refuses it, so the rule must leave it to torch"
        return
    assert ruled is NO_RULE or ruled == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 4), max_size=4), min_size=1, max_size=4))
def test_broadcast_rule_agrees_with_torch(shapes: list[list[int]]) -> None:
    try:
        expected: tuple[int, ...] | None = tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        expected = None
    try:
        got: tuple[int, ...] | None = _broadcast_shapes([tuple(s) for s in shapes])
    except ValueError:
        got = None
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=4), data=st.data())
def test_permute_rule_agrees_with_torch(shape: list[int], data: st.DataObject) -> None:
    from nnspec.catalogue.shape_rules import permuted

    rest = data.draw(st.permutations(range(1, len(shape) + 1)))
    dims = [0, *(d - len(shape) - 1 if data.draw(st.booleans()) else d for d in rest)]
    ruled = permuted("dims")("permute", {"dims": dims}, [TensorInfo(tuple(shape))], ["input"])
    expected = describe(torch.zeros(BATCH, *shape).permute(*dims))
    assert ruled == expected


def test_a_module_dict_member_used_twice_is_one_module_checked_twice() -> None:
    """forward: [hidden, head, head] reuses one Linear: its second use must fit the arguments
    the first inferred (validate used to infer them afresh and accept what the build refused)."""
    import pytest

    from nnspec import api
    from nnspec.errors import SpecError
    from nnspec.lang.loader import loads

    text = ("nnspec: 1\ninput: [784]\nmodel:\n  module_dict:\n"
            "    hidden: {Linear: {out_features: 256}}\n    head: {Linear: {out_features: 10}}\n"
            "  forward: [hidden, head, head]\n")
    with pytest.raises(SpecError, match="expects in_features=256, receives"):
        api.validate(loads(text, "reuse.yaml"))


def test_transposed_convolution_is_the_entrys_trait_not_its_name() -> None:
    from nnspec.catalogue import layers
    from nnspec.catalogue.shape_rules import conv

    args = {"in_channels": 4, "out_channels": 2, "kernel_size": 2, "stride": 2}
    x = [TensorInfo((4, 5, 5))]
    assert conv(2, transposed=True)("AnyName", args, x, ["input"]).shape == (2, 10, 10)
    assert conv(2)("ConvTranspose2d", args, x, ["input"]).shape == (2, 2, 2)
    rule = layers()["ConvTranspose2d"].traits.shape
    assert rule is not None and rule("ConvTranspose2d", args, x, ["input"]).shape == (2, 10, 10)


@pytest.mark.parametrize("dim", [1, 2, -1, -2])
@pytest.mark.parametrize(("first", "second"), [
    ((1, 8), (4, 8)), ((2, 5), (2, 7)), ((3, 5), (3, 5)), ((1, 8), (4, 9)), ((2, 5), (3, 6)),
    ((2, 5), (2, 5, 1)), ((1, 8), (0, 8)),
])
def test_cat_rule_matches_torch_on_the_meta_device(first: tuple[int, ...],
                                                   second: tuple[int, ...], dim: int) -> None:
    """Sizes, and torch's own message (from its meta kernel) where the sizes do not join."""
    from nnspec.catalogue import ops

    rule = ops()["cat"].traits.shape
    assert rule is not None
    metas = [torch.empty(BATCH, *s, device="meta") for s in (first, second)]
    try:
        expected: Any = describe(torch.cat(metas, dim=dim))
    except RuntimeError as exc:
        expected = str(exc)
    try:
        ruled: Any = rule("cat", {"dim": dim}, [TensorInfo(first), TensorInfo(second)],
                          ["a", "b"])
    except ValueError as exc:
        ruled = str(exc)
    assert ruled == expected


def test_cat_rule_leaves_mixed_types_and_free_tensors_to_torch() -> None:
    from nnspec.catalogue import ops

    rule = ops()["cat"].traits.shape
    assert rule is not None
    mixed = [TensorInfo((2, 4)), TensorInfo((2, 4), "float64")]
    free = [TensorInfo((2, 4)), TensorInfo((2, 4), batched=False)]
    assert rule("cat", {"dim": 1}, mixed, ["a", "b"]) is NO_RULE
    assert rule("cat", {"dim": 1}, free, ["a", "b"]) is NO_RULE


def test_cat_of_mismatched_sizes_is_a_located_error() -> None:
    import nnspec
    from nnspec.errors import SpecError

    spec = ("nnspec: 1\nname: c\ninput: [4, 8]\nmodel:\n  graph:\n"
            "    a: {Linear: {out_features: 6}}\n    c: {cat: {dim: 1}, in: [a, input]}\n")
    with pytest.raises(SpecError) as caught:
        nnspec.validate(spec)
    text = str(caught.value)
    assert "model.graph.c" in text and ":7:" in text
    assert "Expected 6 in dimension 2 but got 8 for tensor number 1" in text


@pytest.mark.parametrize(("kwargs", "shapes"), [
    ({"embed_dim": 8, "num_heads": 2, "batch_first": True}, [(5, 8)]),
    ({"embed_dim": 8, "num_heads": 2, "batch_first": True}, [(5, 8), (7, 8), (7, 8)]),
    ({"embed_dim": 6, "num_heads": 3, "batch_first": True}, [(1, 6), (4, 6), (4, 6)]),
])
def test_attention_rule_matches_torch(kwargs: dict[str, Any],
                                      shapes: list[tuple[int, ...]]) -> None:
    inferrer = _Inferrer()
    infos = [TensorInfo(s) for s in shapes]
    ruled = inferrer.rule(_node("MultiheadAttention"), "MultiheadAttention", kwargs, infos,
                          ["input"] * len(infos))
    given = [torch.zeros(BATCH, *s) for s in shapes] * (3 if len(shapes) == 1 else 1)
    assert ruled == describe(torch.nn.MultiheadAttention(**kwargs)(*given))


@pytest.mark.parametrize(("kwargs", "shapes"), [
    ({"embed_dim": 8, "num_heads": 2}, [(5, 8)]),  # sequence first
    ({"embed_dim": 8, "num_heads": 2, "batch_first": True, "add_bias_kv": True}, [(5, 8)]),
    ({"embed_dim": 8, "num_heads": 2, "batch_first": True}, [(5, 8), (7, 8), (6, 8)]),
    ({"embed_dim": 8, "num_heads": 2, "batch_first": True}, [(5, 6)]),
])
def test_attention_rule_leaves_the_rest_to_torch(kwargs: dict[str, Any],
                                                 shapes: list[tuple[int, ...]]) -> None:
    ruled = _Inferrer().rule(_node("MultiheadAttention"), "MultiheadAttention", kwargs,
                             [TensorInfo(s) for s in shapes], ["input"] * len(shapes))
    assert ruled is NO_RULE


@pytest.mark.parametrize(("shifts", "dims", "shape"), [
    (1, 1, (4, 5)), ([-3, -3], [1, 2], (6, 6, 2)), ([2, 1], [-1, 1], (3, 4, 5)),
])
def test_roll_rule_matches_torch(shifts: Any, dims: Any, shape: tuple[int, ...]) -> None:
    from nnspec.catalogue import ops

    rule = ops()["roll"].traits.shape
    assert rule is not None
    ruled = rule("roll", {"shifts": shifts, "dims": dims}, [TensorInfo(shape)], ["input"])
    assert ruled == describe(torch.zeros(BATCH, *shape).roll(shifts, dims))
    assert rule("roll", {"shifts": [1, 2], "dims": [1]}, [TensorInfo(shape)],
                ["input"]) is NO_RULE  # torch's refusal, torch's message


@pytest.mark.parametrize(("table", "index"), [((169, 3), (2401,)), ((10, 2, 3), (4, 5)),
                                              ((7,), (3,))])
def test_lookup_rule_matches_torch(table: tuple[int, ...], index: tuple[int, ...]) -> None:
    from nnspec.catalogue import ops

    rule = ops()["lookup"].traits.shape
    assert rule is not None
    infos = [TensorInfo(table, batched=False), TensorInfo(index, "int64", batched=False)]
    expected = torch.zeros(table)[torch.zeros(index, dtype=torch.int64)]
    assert rule("lookup", {}, infos, ["table", "index"]) == describe(expected, batched=False)
    float_index = [infos[0], TensorInfo(index, batched=False)]
    with pytest.raises(ShapeProblem, match="lookup needs integer indices"):  # torch refuses
        rule("lookup", {}, float_index, ["table", "index"])
    with pytest.raises(Exception, match="must be long, int, byte or bool"):
        torch.zeros(table)[torch.zeros(index)]
    bool_index = [infos[0], TensorInfo(index, "bool", batched=False)]
    assert rule("lookup", {}, bool_index, ["table", "index"]) is NO_RULE  # a mask: torch's


# (equation, shapes; batched ones are one sample's, free tensors' (F) whole)
EINSUMS: list[tuple[str, list[tuple[Any, ...]]]] = [
    ("bghid,bghjd->bghij", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("bghij,bghjd->bghid", [(2, 3, 4, 6), (2, 3, 6, 5)]),
    ("B G H I D, B G H J D -> B G H I J", [(2, 3, 4, 5), (2, 3, 6, 5)]),  # torchvision's
    ("bqd,kd->bqk", [(4, 5), ("F", 6, 5)]),
    ("nqd->ndq", [(4, 5)]),
    ("ij,jk->ik", [("F", 3, 4), ("F", 4, 2)]),
    ("bi,bj,bk->bijk", [(2,), (3,), (4,)]),
]


# (a, b): batched shapes are one sample's, free tensors' (F) whole
MATMULS: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = [
    ((2, 4, 5), (2, 5, 6)), ((4, 5), ("F", 5, 6)), ((5,), ("F", 5, 6)),
    ((3, 4, 5), ("F", 1, 5, 2)), (("F", 7, 5), (5, 6)), (("F", 3, 4), ("F", 4, 2)),
    (("F", 2, 1, 3, 4), ("F", 5, 4, 2)), ((2, 4, 5), (1, 5, 6)),
]


@pytest.mark.parametrize(("a", "b"), MATMULS)
def test_matmul_rule_matches_torch(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    from nnspec.catalogue import ops

    rule = ops()["matmul"].traits.shape
    assert rule is not None
    infos, (x, y) = _einsum_case([a, b])
    expected = describe(x @ y, batched=any(i.batched for i in infos))
    assert rule("matmul", {}, infos, ["a", "b"]) == expected


@pytest.mark.parametrize(("a", "b"), [
    ((4, 5), (6, 7)),                    # inner sizes differ: the check or torch says so
    (("F", 5,), ("F", 5, 6)),            # a vector
    ((4, 5), ("F", 2, 5, 6)),            # the free tensor would meet the batch
    ((3,), (3,)),                        # b's rows would be the batch
    ((2, 4, 5), (3, 5, 6)),              # leading sizes that do not broadcast
])
def test_matmul_rule_leaves_the_rest_to_torch(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    from nnspec.catalogue import ops

    rule = ops()["matmul"].traits.shape
    assert rule is not None
    infos, _ = _einsum_case([a, b])
    assert rule("matmul", {}, infos, ["a", "b"]) is NO_RULE


def _einsum_case(shapes: list[tuple[Any, ...]]) -> tuple[list[TensorInfo], list[torch.Tensor]]:
    infos = [TensorInfo(s[1:], batched=False) if s[:1] == ("F",) else TensorInfo(s)
             for s in shapes]
    return infos, [torch.zeros(i.full(BATCH)) for i in infos]


@pytest.mark.parametrize(("equation", "shapes"), EINSUMS)
def test_einsum_rule_matches_torch(equation: str, shapes: list[tuple[Any, ...]]) -> None:
    from nnspec.catalogue import ops

    rule = ops()["einsum"].traits.shape
    assert rule is not None
    infos, tensors = _einsum_case(shapes)
    batched = any(i.batched for i in infos)
    expected = describe(torch.einsum(equation, *tensors), batched=batched)
    assert rule("einsum", {"equation": equation}, infos, ["x"] * len(infos)) == expected


@pytest.mark.parametrize(("equation", "shapes"), [
    ("bii->bi", [(3, 3)]),                       # a diagonal
    ("...d,...d->...", [(3, 4), (3, 4)]),        # an ellipsis
    ("bij,bjk", [(2, 3), (3, 4)]),               # no explicit output
    ("bij,bjk->bik", [(2, 3), (1, 4)]),          # j of two sizes: torch may broadcast
    ("bi,bi->i", [(3,), (3,)]),                  # the batch summed away
    ("bij->ibj", [(2, 3)]),                      # the batch moved
    ("bij,bjk->bik", [(2, 3), (4, 5, 6)]),       # letters that do not name the dimensions
])
def test_einsum_rule_leaves_the_rest_to_torch(equation: str,
                                              shapes: list[tuple[Any, ...]]) -> None:
    from nnspec.catalogue import ops

    rule = ops()["einsum"].traits.shape
    assert rule is not None
    infos, _ = _einsum_case(shapes)
    assert rule("einsum", {"equation": equation}, infos, ["x"] * len(infos)) is NO_RULE


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "normalize"])
@pytest.mark.parametrize(("dim", "info"), [
    (-1, TensorInfo((2, 3, 4))), (1, TensorInfo((5,))), (0, TensorInfo((4, 6), batched=False)),
    (-2, TensorInfo((4, 6), "float64", batched=False)), (2, TensorInfo((3, 4), fold=4)),
])
def test_softmax_rule_matches_torch(op: str, dim: int, info: TensorInfo) -> None:
    from nnspec.catalogue import ops

    rule = ops()[op].traits.shape
    assert rule is not None
    tensor = torch.zeros(info.full(BATCH), dtype=getattr(torch, info.dtype))
    run = getattr(tensor, op) if op != "normalize" else partial(F.normalize, tensor)
    expected = describe(run(dim=dim), batched=info.batched, fold=info.fold)
    assert rule(op, {"dim": dim}, [info], ["x"]) == expected


@pytest.mark.parametrize(("dim", "info"), [
    (2, TensorInfo((4, 6), batched=False)), (-3, TensorInfo((4, 6), batched=False)),
    (0, TensorInfo((), batched=False)), (1, TensorInfo((4,), "int64")),
])
def test_softmax_rule_leaves_other_dims_and_types_to_torch(dim: int, info: TensorInfo) -> None:
    from nnspec.catalogue import ops

    rule = ops()["softmax"].traits.shape
    assert rule is not None
    assert rule("softmax", {"dim": dim}, [info], ["x"]) is NO_RULE


def test_stochastic_depth_rule_matches_torchvision_and_leaves_bad_arguments_to_it() -> None:
    from torchvision.ops import StochasticDepth

    inferrer = _Inferrer()
    kwargs = {"p": 0.2, "mode": "row"}
    ruled = inferrer.run(_node("StochasticDepth"), "StochasticDepth", kwargs,
                         [TensorInfo((4, 5))], ["input"])
    assert ruled == describe(StochasticDepth(**kwargs)(torch.zeros(BATCH, 4, 5)))
    refused = inferrer.run(_node("StochasticDepth"), "StochasticDepth", {"p": 1.5, "mode": "row"},
                           [TensorInfo((4, 5))], ["input"])
    assert refused is None and "drop probability" in str(inferrer.errors.problems[0])
