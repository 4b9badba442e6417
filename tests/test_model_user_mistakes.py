"""Model specs a practitioner gets wrong (or unusually right), each pinned to a located error
with a fix, or to a built model that the emitted one matches.

Found by trying to break the model side across the catalogue; every case here once validated
and then failed or silently mixed samples at run time, or gave a misleading message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import nnspec
from nnspec.errors import SpecError
from tests.parity import assert_same_model, emitted_module, model_class_name, sample_inputs

LOCATED = re.compile(r"^\S+:\d+:\d+: error: \S+: .+ \(.+\)$")


def problems(path: Path) -> list[str]:
    """The validation errors of a spec, each as its CLI line (and checked to be located)."""
    with pytest.raises(SpecError) as info:
        nnspec.validate(path)
    lines = [p.render() for p in info.value.problems]
    for line in lines:
        assert LOCATED.match(line), line
    return lines


def same_as_emitted(path: Path) -> None:
    graph = nnspec.infer(path)
    source = nnspec.emit(path)
    emitted = emitted_module(source)[model_class_name(source)]()
    assert_same_model(nnspec.compile(path), emitted, sample_inputs(graph))


def spec(body: str, input_: str = "[4, 8]") -> str:
    return f"nnspec: 1\ninput: {input_}\nmodel:\n{body}"


# -- ops that would reach across the batch dimension ---------------------------------------

@pytest.mark.parametrize(("body", "expected"), [
    ("  - permute: [1, 0, 2]\n", "permute dims [1, 0, 2] moves the batch dimension 0"),
    ("  - transpose: {dim0: 0, dim1: 2}\n", "transpose 0, 2 moves the batch dimension 0"),
    ("  - mean: {dim: 0}\n", "mean over dim 0 averages [N, 4, 8]"),
    ("  - mean: {dim: [-3, 1]}\n", "mean over dim [-3, 1] averages"),
    ("  graph:\n    a: {Linear: {out_features: 8}}\n    c: {cat: {dim: 0}, in: [a, input]}\n",
     "cat along dim 0 joins batches"),
], ids=["permute", "transpose", "mean", "mean-negative", "cat"])
def test_an_op_over_the_batch_dimension_is_refused(write_spec: Any, body: str,
                                                    expected: str) -> None:
    (line,) = problems(write_spec(spec(body)))
    assert expected in line and "count the batch as 0" in line


def test_permute_and_reshape_that_do_not_fit_a_sample(write_spec: Any) -> None:
    (line,) = problems(write_spec(spec("  - permute: [0, 2, 1]\n", "[3, 8, 8]")))
    assert "permute dims [0, 2, 1] has 3 entries, [N, 3, 8, 8] from input 'input' has 4" in line
    assert "e.g. [0, 3, 2, 1]" in line
    (line,) = problems(write_spec(spec("  - reshape: [3, 60]\n", "[3, 8, 8]")))
    # not torch's "shape '[3, 3, 60]' is invalid": 3 there is nnspec's inference batch
    assert "reshape to [3, 60] needs 180 elements per sample, [N, 3, 8, 8] from input " \
           "'input' has 192" in line


def test_ops_that_keep_the_batch_still_work(write_spec: Any) -> None:
    path = write_spec(spec("  - permute: [0, 2, 1]\n  - transpose: {dim0: -1, dim1: 1}\n"
                           "  - mean: {dim: -1, keepdim: true}\n  - reshape: [-1]\n"))
    same_as_emitted(path)


# -- ranks torch would read as an unbatched input ------------------------------------------

@pytest.mark.parametrize(("body", "input_", "expected"), [
    ("  - Conv2d: {out_channels: 8, kernel_size: 3}\n", "[3, 32]",
     "Conv2d expects a [N, C, H, W] input, receives [N, 3, 32] from input 'input' "
     "(add a channel dimension first, e.g. {reshape: [1, 3, 32]})"),
    ("  - Conv1d: {out_channels: 4, kernel_size: 3}\n", "[32]",
     "Conv1d expects a [N, C, L] input, receives [N, 32]"),
    ("  - GRU: {hidden_size: 8, batch_first: true}\n  - getitem: 0\n", "[16]",
     "GRU expects a [N, L, features] input (batch_first), receives [N, 16]"),
    ("  - TransformerEncoderLayer: {nhead: 2, dim_feedforward: 8, batch_first: true}\n", "[16]",
     "TransformerEncoderLayer expects a [N, L, features] input"),
    ("  - Softmax\n", "[4, 5]", "Softmax without dim would normalise [N, 4, 5] from input "
     "'input' over the batch dimension"),
    ("  - AdaptiveMaxPool2d: {output_size: 2, return_indices: true}\n", "[3, 4, 8, 8]",
     "AdaptiveMaxPool2d expects 2 spatial dimensions after the channels, receives "
     "[N, 3, 4, 8, 8]"),
], ids=["conv2d", "conv1d", "gru", "encoder-layer", "softmax-no-dim", "adaptive-indices"])
def test_a_rank_torch_would_take_as_unbatched_is_refused(write_spec: Any, body: str,
                                                         input_: str, expected: str) -> None:
    (line,) = problems(write_spec(spec(body, input_)))
    assert expected in line


# -- hints ---------------------------------------------------------------------------------

def test_linear_after_a_conv_without_flatten_suggests_flatten(write_spec: Any) -> None:
    path = write_spec(spec("  - Conv2d: {out_channels: 8, kernel_size: 3}\n"
                           "  - Linear: {in_features: 288, out_features: 10}\n", "[3, 8, 8]"))
    (line,) = problems(path)
    assert "Linear expects in_features=288, receives [N, 8, 6, 6] from model[0] Conv2d " \
           "(add a Flatten before it (it gives [N, 288], which matches in_features=288)" in line


def test_embedding_of_a_float_input_says_to_declare_int64(write_spec: Any) -> None:
    path = write_spec(spec("  - Embedding: {num_embeddings: 10, embedding_dim: 4}\n", "[10]"))
    (line,) = problems(path)
    assert "declare the input as {shape: [10], dtype: int64}" in line


def test_a_kernel_larger_than_the_input_gets_a_fix(write_spec: Any) -> None:
    path = write_spec(spec("  - Conv2d: {out_channels: 8, kernel_size: 5}\n", "[3, 4, 4]"))
    (line,) = problems(path)
    assert "pad it (padding), use a smaller kernel_size or stride" in line


# -- names the built module cannot take ----------------------------------------------------

@pytest.mark.parametrize(("body", "expected"), [
    ("  module_dict:\n    _modules: {Linear: {out_features: 8}}\n  forward: [_modules]\n",
     "'_modules' cannot name a layer: it is a Python keyword or an nn.Module attribute"),
    ("  training: {Linear: {out_features: 8}}\n",
     "'training' cannot name a layer: it is a Python keyword or an nn.Module attribute"),
    ("  graph:\n    self: {Linear: {out_features: 8}}\n",
     "'self' cannot name a node of a graph"),
    ("  graph:\n    code: {Linear: {out_features: 8}}\n",
     "'code' cannot name a node of a graph"),
    ("  graph:\n    meta: {Linear: {out_features: 8}}\n",
     "'meta' cannot name a node of a graph"),
], ids=["_modules", "training", "graph-self", "graph-code", "graph-meta"])
def test_a_name_the_built_module_already_has_is_refused(write_spec: Any, body: str,
                                                        expected: str) -> None:
    (line,) = problems(write_spec(spec(body, "[8]")))
    assert expected in line and "(rename it, e.g. '" in line


@pytest.mark.parametrize("name", ["self", "class", "None"])
def test_an_input_named_self_or_a_keyword_is_refused(write_spec: Any, name: str) -> None:
    text = (f"nnspec: 1\ninput:\n  {name}: [4]\n  other: [4]\nmodel:\n  graph:\n"
            f"    l: {{Linear: {{out_features: 4}}, in: other}}\n    s: {{add: [l, {name}]}}\n")
    (line,) = problems(write_spec(text))
    assert f":3:3: error: input.{name}: '{name}' cannot name an input" in line


def test_unusual_but_legal_names_build_and_match_the_emitted_module(write_spec: Any) -> None:
    path = write_spec("nnspec: 1\ninput:\n  self_: [8]\n  torch: [8]\nmodel:\n  graph:\n"
                      "    nn: {Linear: {out_features: 8}, in: self_}\n"
                      "    fwd: {add: [nn, torch]}\n    super: {ReLU: null, in: fwd}\n"
                      "    x: {Linear: {out_features: 8}, in: super}\n"
                      "    input: {mul: [x, self_]}\n    None_: {Tanh: null, in: input}\n")
    same_as_emitted(path)
    path = write_spec("nnspec: 1\ninput: [8]\nmodel:\n  self: {Linear: {out_features: 8}}\n"
                      "  torch: {Linear: {out_features: 4}}\n  nn: Tanh\n", "seq.yaml")
    same_as_emitted(path)


# -- op arguments written beside the op ----------------------------------------------------

def test_cat_dim_beside_the_op_says_how_to_write_it(write_spec: Any) -> None:
    path = write_spec(spec("  graph:\n    a: {Linear: {out_features: 8}}\n"
                           "    c: {cat: [a, input], dim: 1}\n"))
    (line,) = problems(path)
    assert line.endswith("model.graph.c.dim: 'dim' is an argument of cat, not a layer "
                         "(write {cat: {dim: 1}, in: [a, input]})")


def test_mean_keepdim_beside_the_op_says_how_to_write_it(write_spec: Any) -> None:
    (line,) = problems(write_spec(spec("  - mean: 1\n    keepdim: true\n")))
    assert line.endswith("(write {mean: {dim: 1, keepdim: true}})")


def test_transformer_d_model_left_out_is_inferred_as_documented(write_spec: Any) -> None:
    path = write_spec("nnspec: 1\ninput:\n  src: [7, 16]\n  tgt: [5, 16]\nmodel:\n  graph:\n"
                      "    t: {Transformer: {nhead: 2, dim_feedforward: 8, num_encoder_layers: 1,"
                      " num_decoder_layers: 1, batch_first: true}, in: [src, tgt]}\n")
    (node,) = nnspec.infer(path).root.nodes
    assert node.body.kwargs["d_model"] == 16  # type: ignore[union-attr]
    same_as_emitted(path)


# -- attention ops given arguments torch refuses: said in nnspec's words, with a fix ---------

def v2(body: str, input_: str = "[3, 8, 8]") -> str:
    return f"nnspec: 2\ninput: {input_}\nmodel:\n  graph:\n{body}"


@pytest.mark.parametrize(("body", "expected"), [
    ("    a: {narrow: {dim: 1, start: 2, length: 5}}\n",
     "narrow takes 5 entries from 2 along dim 1, but dimension 1 of [N, 3, 8, 8] from input "
     "'input' has 3 entries (start + length must be at most 3: e.g. start: 2, length: 1)"),
    ("    a: {narrow: {dim: 1, start: 4, length: 0}}\n", "narrow start 4 is outside"),
    ("    a: {narrow: {dim: 1, start: 0, length: -1}}\n", "narrow length -1 is negative"),
    ("    a: {roll: {shifts: [1, 2], dims: 1}}\n",
     "roll needs one shift per dimension: shifts [1, 2] gives 2, dims 1 names 1"),
    ("    a: {einsum: {equation: 'nchw,nchw->nc'}}\n",
     "einsum equation 'nchw,nchw->nc' has 2 operands, given 1 input"),
    ("    a: {einsum: {equation: 'chw->c'}}\n",
     "einsum operand 0 of 'chw->c', 'chw', has 3 letters, but [N, 3, 8, 8] from input "
     "'input' has 4 dimensions (one letter per dimension; the batch counts"),
    ("    a: {einsum: {equation: 'nchw->nq'}}\n", "einsum cannot take [N, 3, 8, 8] from"),
    ("    t: {parameter: {shape: [11]}}\n    i: {buffer: {shape: [6, 6]}}\n"
     "    a: {lookup: [t, i]}\n",
     "lookup needs integer indices: [6, 6] from model.graph.i buffer holds float32 (give the "
     "index tensor dtype: int64"),
    ("    a: {select: {dim: 1, index: 9}}\n",
     "select index 9 is outside dimension 1 of [N, 3, 8, 8] from input 'input', which has 3 "
     "entries (index from 0 to 2"),
    ("    m: {buffer: {shape: [3, 3]}}\n    s: {reshape: [6, 32], in: input}\n"
     "    a: {scaled_dot_product_attention: null, in: [s, s, s, m]}\n",
     "(inputs [q, k, v] or [q, k, v, mask]; the mask or bias broadcasts to the scores"),
], ids=["narrow-past-end", "narrow-start", "narrow-length", "roll-pairs", "einsum-operands",
        "einsum-letters", "einsum-torch", "lookup-float-index", "select-outside",
        "attention-mask"])
def test_attention_op_arguments_torch_refuses_are_said_with_a_fix(
        write_spec: Any, body: str, expected: str) -> None:
    (found,) = problems(write_spec(v2(body)))
    assert expected in found and not found.endswith(".)"), found


@pytest.mark.parametrize("body", [
    "    a: {narrow: {dim: -1, start: -3, length: 3}}\n",
    "    a: {narrow: {dim: 1, start: 3, length: 0}}\n",
    "    a: {roll: {shifts: [1, 2], dims: [1, 2]}}\n",
    "    a: {einsum: {equation: '...hw->...h'}}\n",
], ids=["narrow-from-end", "narrow-empty", "roll-two", "einsum-ellipsis"])
def test_attention_op_arguments_torch_takes_validate(write_spec: Any, body: str) -> None:
    nnspec.validate(write_spec(v2(body)))
