"""Windows folded into the batch, and computed constants (format 2; Swin's language features).

A ``Flatten`` from dimension 0 folds sample dimensions into the batch (``[N*4, 8, 8, 8]``) and
an ``Unflatten`` of dimension 0 takes them out again; the shape pass tracks how many rows of
the batch each sample has, statically, and refuses what would mix samples.  Buffers filled by a
computed constant (``relative_position_index``, ``shifted_window_mask``) hold torchvision's own
values, built and emitted alike.
"""

from __future__ import annotations

import textwrap

import pytest
import torch

import nnspec
from nnspec.catalogue import constants
from nnspec.compiler.emit.format import flat, from_source
from nnspec.errors import SpecError
from nnspec.views.summary import summarise
from tests.parity import (
    assert_same_model,
    emitted_module,
    fill_weights,
    model_class_name,
    sample_inputs,
)

WINDOWS = """
nnspec: 2
input: [16, 16, 8]
model:
  graph:
    grid: {reshape: [2, 8, 2, 8, 8], in: input}
    by_window: {permute: [0, 1, 3, 2, 4, 5]}
    windows: {Flatten: {start_dim: 0, end_dim: 2}}
    tokens: {reshape: [64, 8]}
    fc: {Linear: {out_features: 8}}
    back: {reshape: [8, 8, 8]}
    images: {Unflatten: {dim: 0, unflattened_size: [-1, 2, 2]}}
    rows: {permute: [0, 1, 3, 2, 4, 5]}
    out: {reshape: [16, 16, 8]}
"""

BIAS = """
nnspec: 2
input: [4, 3, 9, 9]
model:
  graph:
    table: {parameter: {shape: [25, 3], init: {trunc_normal: {std: 0.02}}}}
    index: {buffer: {shape: [81], init: {relative_position_index: {window: [3, 3]}}}}
    rows: {lookup: [table, index]}
    grid: {Unflatten: {dim: 0, unflattened_size: [9, 9]}}
    bias: {permute: [2, 0, 1]}
    mask:
      buffer:
        shape: [4, 1, 9, 9]
        persistent: false
        init: {shifted_window_mask: {size: [6, 6], window: [3, 3], shift: [1, 1]}}
    windows: {Flatten: {start_dim: 0, end_dim: 1}, in: input}
    biased: {add: [windows, bias]}
    images: {Unflatten: {dim: 0, unflattened_size: [-1, 4]}}
    masked: {add: [images, mask]}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        nnspec.validate(textwrap.dedent(text).lstrip())
    return [p.render() for p in info.value.problems]


def _same_as_emitted(text: str) -> None:
    graph = nnspec.infer(text)
    built = nnspec.compile(text)
    source = nnspec.emit(text)
    emitted = emitted_module(source)[model_class_name(source)]()  # not meta: computed buffers
    fill_weights(built)
    assert_same_model(built, emitted, sample_inputs(graph))


# -- folding into the batch ------------------------------------------------------------------

def test_flatten_from_dimension_0_folds_windows_into_the_batch_and_unflatten_unfolds() -> None:
    graph = nnspec.infer(WINDOWS)
    shapes = {row.name: row.output for row in summarise(graph).rows}
    assert shapes["windows"] == "[N*4, 8, 8, 8]"
    assert shapes["tokens"] == shapes["fc"] == "[N*4, 64, 8]"
    assert shapes["images"] == "[N, 2, 2, 8, 8, 8]"
    assert shapes["out"] == "[N, 16, 16, 8]"
    model = nnspec.compile(WINDOWS).eval()
    x = torch.randn(2, 16, 16, 8)
    windows = x.view(2, 2, 8, 2, 8, 8).permute(0, 1, 3, 2, 4, 5).reshape(8, 64, 8)
    expected = model.fc(windows).view(2, 2, 2, 8, 8, 8).permute(0, 1, 3, 2, 4, 5).reshape(
        2, 16, 16, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)
    _same_as_emitted(WINDOWS)


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "svg"])
def test_diagrams_show_the_windows_folded_into_the_batch(fmt: str) -> None:
    from nnspec.views.diagram import render_diagram

    text = render_diagram(nnspec.infer(WINDOWS), fmt)
    assert "[N*4, 8, 8, 8]" in text and "[N, 2, 2, 8, 8, 8]" in text


def test_layers_on_folded_windows_count_their_macs_for_every_window() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    text = WINDOWS.replace("{Linear: {out_features: 8}}",
                           "{Linear: {out_features: 8, bias: false}}")
    model = nnspec.compile(text)
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 16, 16, 8))
    assert summarise(nnspec.infer(text)).macs == counter.get_total_flops() // 2 == 4 * 64 * 64


@pytest.mark.parametrize(("change", "message"), [
    ("[-1, 2, 2]", "[-1, 2, 2] takes 4 rows per sample out of the batch of [N, 4, 8, 8, 8]"),
    ("[2, 2, -1]", "must keep the batch first, as -1: found [2, 2, -1]"),
    ("[-1, 3]", "[-1, 3] takes 3 rows per sample out of the batch of [N*4, 8, 8, 8]"),
])
def test_unflattening_the_batch_is_checked_statically_and_located(change: str,
                                                                   message: str) -> None:
    text = WINDOWS.replace("[-1, 2, 2]", change)
    if change == "[-1, 2, 2]":  # nothing folded: the windows kept as a sample dimension
        text = text.replace("{Flatten: {start_dim: 0, end_dim: 2}}",
                            "{Flatten: {start_dim: 1, end_dim: 2}}")
        text = text.replace("tokens: {reshape: [64, 8]}", "tokens: {reshape: [4, 64, 8]}")
        text = text.replace("back: {reshape: [8, 8, 8]}", "back: {reshape: [4, 8, 8, 8]}")
    (problem,) = _errors(text)
    assert problem.startswith("<text>:11:") and "model.graph.images" in problem
    assert message in problem and "an Unflatten of dimension 0 takes them out" in problem


def test_values_with_different_folds_cannot_be_added() -> None:
    text = WINDOWS.replace("    images:", "    mixed: {add: [back, input]}\n    images:")
    text = text.replace("unflattened_size: [-1, 2, 2]}}",
                        "unflattened_size: [-1, 2, 2]}, in: back}")
    (problem,) = _errors(text + "  outputs: [out, mixed]\n")
    assert "model.graph.mixed" in problem
    assert "hold different numbers of rows per sample" in problem


def test_ops_along_a_folded_batch_are_still_refused() -> None:
    text = WINDOWS.replace("fc: {Linear: {out_features: 8}}", "fc: {softmax: {dim: 0}}")
    (problem,) = _errors(text)
    assert "would mix the batch" in problem and "model.graph.fc" in problem


# -- computed constants ----------------------------------------------------------------------

def _torchvision_mask(size: list[int], window: list[int], shift: list[int]) -> torch.Tensor:
    """torchvision's shifted_window_attention builds its mask this way (swin_transformer.py)."""
    height, width = size
    mask = torch.zeros((height, width))
    h_slices = ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], None))
    w_slices = ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], None))
    count = 0
    for h in h_slices:
        for w in w_slices:
            mask[h[0]:h[1], w[0]:w[1]] = count
            count += 1
    windows = (height // window[0]) * (width // window[1])
    mask = mask.view(height // window[0], window[0], width // window[1], window[1])
    mask = mask.permute(0, 2, 1, 3).reshape(windows, window[0] * window[1])
    mask = mask.unsqueeze(1) - mask.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


@pytest.mark.parametrize("window", [[7, 7], [8, 8], [3, 5]])
def test_relative_position_index_is_torchvisions_buffer(window: list[int]) -> None:
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    reference = ShiftedWindowAttention(8, window, [0, 0], 2).relative_position_index
    ours = constants.make("relative_position_index", {"window": window}, (-1,))
    assert ours.dtype == torch.int64 and torch.equal(ours, reference)


@pytest.mark.parametrize("window", [[8, 8], [7, 7], [3, 5]])
def test_relative_coords_table_is_torchvisions_buffer(window: list[int]) -> None:
    from torchvision.models.swin_transformer import ShiftedWindowAttentionV2

    reference = ShiftedWindowAttentionV2(8, window, [0, 0], 2).relative_coords_table
    ours = constants.make("relative_coords_table", {"window": window}, tuple(reference.shape))
    assert torch.equal(ours, reference)
    written = constants.source("relative_coords_table", {"window": window},
                               str(tuple(reference.shape)))
    assert torch.equal(emitted_module(f"import torch\nvalue = {written}\n")["value"], ours)


@pytest.mark.parametrize(("size", "window", "shift"), [
    ([56, 56], [7, 7], [3, 3]), ([14, 14], [7, 7], [3, 3]), ([16, 24], [8, 8], [4, 0]),
    ([16, 24], [8, 8], [0, 4]), ([32, 32], [8, 8], [4, 4])])
def test_shifted_window_mask_is_torchvisions(size: list[int], window: list[int],
                                             shift: list[int]) -> None:
    args = {"size": size, "window": window, "shift": shift}
    length = window[0] * window[1]
    ours = constants.make("shifted_window_mask", args, (-1, length, length))
    assert torch.equal(ours, _torchvision_mask(size, window, shift))
    written = constants.source("shifted_window_mask", args, f"(-1, {length}, {length})")
    assert torch.equal(emitted_module(f"import torch\nvalue = {written}\n")["value"], ours)


def test_computed_buffers_build_emit_and_keep_persistent_ones_in_the_state_dict() -> None:
    model = nnspec.compile(BIAS)
    assert list(model.state_dict()) == ["table", "index"]  # the mask is not persistent
    assert model.index.dtype == torch.int64 and model.mask.shape == (4, 1, 9, 9)
    assert torch.equal(model.mask[:, 0], _torchvision_mask([6, 6], [3, 3], [1, 1]))
    _same_as_emitted(BIAS)


@pytest.mark.parametrize(("change", "message"), [
    ("shape: [81]", "relative_position_index {'window': [3, 3]} gives 81 values; shape [80] "
     "holds 80"),
    ("size: [6, 6]", "shifted_window_mask: size [6, 7] is not a multiple of the window [3, 3]"),
    ("shift: [1, 1]", "shifted_window_mask: shift [3, 1] must be smaller than the window"),
])
def test_a_computed_constant_that_does_not_fit_is_a_located_error(change: str,
                                                                  message: str) -> None:
    wrong = {"shape: [81]": "shape: [80]", "size: [6, 6]": "size: [6, 7]",
             "shift: [1, 1]": "shift: [3, 1]"}[change]
    (problem,) = _errors(BIAS.replace(change, wrong))
    assert message in problem and problem.startswith("<text>:")


def test_emitted_sums_keep_their_parentheses() -> None:
    assert flat(from_source("(a + b) * 3")) == "(a + b) * 3"
    assert flat(from_source("a + (b + c)")) == "a + (b + c)"
    assert flat(from_source("(a - b) * c + d * e")) == "(a - b) * c + d * e"
