"""The model zoo against its oracle: torchvision's own models.

Each zoo spec names its modules as torchvision does, so torchvision's freshly initialised
weights load into the compiled model with ``strict=True``, and with those weights the two
models give the same outputs.  Inputs are small (the adaptive pools allow it) to keep this fast.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

import nnspec
from tests.conftest import SPECS

# name -> the smallest square input the torchvision architecture accepts comfortably
TORCHVISION_PARITY = {
    "alexnet": 64,
    "vgg11": 32,
    "vgg16": 32,
    "resnet18": 64,
    "resnet50": 64,
    "mobilenet_v2": 64,
}


@pytest.mark.parametrize("name", list(TORCHVISION_PARITY))
def test_zoo_spec_loads_torchvision_weights_and_matches_its_outputs(name: str) -> None:
    size = TORCHVISION_PARITY[name]
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None).eval()
    with torch.device("meta"):  # no time spent initialising weights that are replaced
        ours = nnspec.compile(SPECS / f"{name}.yaml", overrides=[f"input=[3, {size}, {size}]"])
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    ours.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize("name", list(TORCHVISION_PARITY))
def test_zoo_spec_declares_the_full_size_imagenet_input(name: str) -> None:
    graph = nnspec.infer(SPECS / f"{name}.yaml")
    assert graph.inputs["input"].shape == (3, 224, 224)
    reference = getattr(torchvision.models, name)
    with torch.device("meta"):
        expected = sum(p.numel() for p in reference(weights=None).parameters())
    assert graph.params == expected


def test_lenet_has_61706_parameters() -> None:
    assert nnspec.infer(SPECS / "lenet.yaml").params == 61_706


def test_unet_concatenates_skips_and_keeps_the_input_size() -> None:
    graph = nnspec.infer(SPECS / "unet_small.yaml")
    skips = {n.name: n.inputs for n in graph.root.nodes if n.name.startswith("skip")}
    assert skips == {"skip2": ("up2", "enc2"), "skip1": ("up1", "enc1")}
    model = nnspec.compile(SPECS / "unet_small.yaml").eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 2, 64, 64)


def test_transformer_classifier_maps_token_ids_to_class_logits() -> None:
    spec = SPECS / "transformer_classifier.yaml"
    model = nnspec.compile(spec).eval()
    layers = [m for m in model.modules() if isinstance(m, torch.nn.TransformerEncoderLayer)]
    assert len(layers) == 2
    assert all(layer.self_attn.batch_first for layer in layers)
    tokens = torch.randint(0, 1000, (3, 32))
    with torch.no_grad():
        logits = model(tokens)
        # mean pooling: the order of tokens does not matter without a positional encoding
        shuffled = model(tokens[:, torch.randperm(32)])
    assert logits.shape == (3, 4)
    torch.testing.assert_close(logits, shuffled, rtol=1e-4, atol=1e-5)
