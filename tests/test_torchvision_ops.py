"""torchvision.ops layers in the catalogue: checked, inferred, built, emitted as an import."""

from __future__ import annotations

import types
from typing import Any

import pytest
import torch
from torch import nn
from torchvision import ops

import nnspec
from nnspec import catalogue
from nnspec.catalogue._generate import _vision_layers
from nnspec.compiler.build import build
from nnspec.compiler.emit.emitter import emit
from nnspec.compiler.emit.safety import EmitCheckError, check_source
from nnspec.compiler.ir import TensorInfo
from tests.parity import assert_same_model, emitted_module, model_class_name, sample_inputs

VISION = """\
nnspec: 1
name: vision_ops
input: [3, 12, 12]
model:
  - {Conv2dNormActivation: {out_channels: 8}}
  - {SqueezeExcitation: {squeeze_channels: 2}}
  - {StochasticDepth: {p: 0.1, mode: row}}
  - {DropBlock2d: {p: 0.1, block_size: 3}}
  - {FrozenBatchNorm2d: {}}
  - {Permute: {dims: [0, 2, 3, 1]}}
  - {MLP: {hidden_channels: [16, 4], dropout: 0.0}}
  - Flatten
"""

NAMES = ["Conv2dNormActivation", "Conv3dNormActivation", "DropBlock2d", "DropBlock3d",
         "FrozenBatchNorm2d", "MLP", "Permute", "SqueezeExcitation", "StochasticDepth"]


@pytest.mark.parametrize("name", NAMES)
def test_the_catalogue_names_torchvision_ops_layers_by_class_name(name: str) -> None:
    entry = catalogue.layers()[name]
    assert entry.module == "torchvision.ops"
    assert "norm_layer" not in entry.params and "activation_layer" not in entry.params


def test_layers_taking_boxes_or_offsets_stay_out() -> None:
    assert not {"RoIAlign", "DeformConv2d", "FeaturePyramidNetwork"} & set(catalogue.layers())


def test_a_torchvision_name_that_torch_nn_has_is_left_to_torch_nn() -> None:
    class Linear(nn.Module):
        def __init__(self, size: int) -> None:
            super().__init__()

    class Gate(nn.Module):
        def __init__(self, size: int) -> None:
            super().__init__()

    fake = types.SimpleNamespace(Linear=Linear, Gate=Gate)
    found = _vision_layers(fake, {"Linear", "ReLU"})
    assert list(found) == ["Gate"] and found["Gate"]["module"] == "torchvision.ops"
    assert catalogue.layers()["Linear"].module == "torch.nn"


def test_inferred_arguments_come_from_the_input() -> None:
    graph = nnspec.infer(VISION)
    kwargs = {n.body.op: n.body.kwargs for n in graph.root.nodes}  # type: ignore[union-attr]
    assert kwargs["Conv2dNormActivation"]["in_channels"] == 3
    assert kwargs["SqueezeExcitation"]["input_channels"] == 8
    assert kwargs["FrozenBatchNorm2d"]["num_features"] == 8
    assert kwargs["MLP"]["in_channels"] == 8  # its Linear layers read the last dimension
    assert str(graph.root.nodes[-1].out) == "[N, 576]"


def test_emitted_code_imports_them_from_torchvision_ops_and_is_the_built_model() -> None:
    graph = nnspec.infer(VISION)
    source = emit(graph)
    assert "from torchvision.ops import (\n    MLP,\n    Conv2dNormActivation," in source
    assert "Conv2dNormActivation(3, 8)" in source and "nn.MLP" not in source
    assert_same_model(build(graph), emitted_module(source)[model_class_name(source)](),
                      sample_inputs(graph))


def test_the_safety_check_allows_exactly_the_imports_the_model_uses() -> None:
    source = emit(nnspec.infer(VISION))
    imported = {name: "torchvision.ops" for name in NAMES if name in source}
    check_source(source, ["VisionOps"], imported)
    with pytest.raises(EmitCheckError, match="unexpected import"):
        check_source(source, ["VisionOps"], {})
    extra = source.replace("from torch import nn", "from torch import nn\nfrom torchvision.ops "
                           "import roi_align")
    with pytest.raises(EmitCheckError, match="unexpected import"):
        check_source(extra, ["VisionOps"], imported)


@pytest.mark.parametrize(("layer", "message"), [
    ("{StochasticDepth: {p: 0.1, mode: rows}}", "expected one of 'batch', 'row', found 'rows'"),
    ("{MLP: {hidden_channels: [4], norm_layer: null}}", "unknown argument 'norm_layer' of MLP"),
])
def test_their_arguments_are_checked_with_located_errors(layer: str, message: str,
                                                         write_spec: Any) -> None:
    path = write_spec(f"nnspec: 1\nname: bad\ninput: [3, 8, 8]\nmodel:\n  - {layer}\n")
    with pytest.raises(nnspec.SpecError) as info:
        nnspec.infer(path)
    problem = info.value.problems[0]
    assert message in problem.message and problem.location.line == 5


def test_permute_has_the_permute_op_s_rule_and_check(write_spec: Any) -> None:
    from nnspec.compiler.shapes import _Inferrer
    from tests.test_shape_rules import _node

    ruled = _Inferrer().rule(_node("Permute"), "Permute", {"dims": [0, 3, 1, 2]},
                             [TensorInfo((2, 3, 5))], ["input"])
    expected = ops.Permute([0, 3, 1, 2])(torch.zeros(3, 2, 3, 5))
    assert ruled == TensorInfo(tuple(expected.shape[1:]))
    path = write_spec("nnspec: 1\nname: bad\ninput: [2, 3]\nmodel:\n"
                      "  - {Permute: {dims: [1, 0, 2]}}\n")
    with pytest.raises(nnspec.SpecError) as info:
        nnspec.infer(path)
    problem = info.value.problems[0]
    assert problem.message == ("Permute dims [1, 0, 2] moves the batch dimension 0 of "
                               "[N, 2, 3] from input 'input'")
    assert problem.location.line == 5
