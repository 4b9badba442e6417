"""The model zoo against its oracle: torchvision's own models.

Each zoo spec is named after a torchvision builder and names its modules as torchvision does,
so ``torchvision.models.NAME(weights=None).state_dict()`` loads into the compiled model with
``strict=True``, and with those weights the two give the same outputs in eval mode at
torchvision's input size.  The other sizes of a family are ``vars`` overrides of its spec
(docs/zoo.md lists them).  Over 100 M parameters the check is keys and shapes on the meta
device; below it, outputs too (batch 1, one torchvision model per builder).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.regnet import BlockParams

import nnspec
from nnspec.compiler.build import build
from nnspec.views.summary import summarise
from tests.conftest import ROOT, SPECS
from tests.parity import inferred

_BN_TF = ("vars.bn_eps=0.001", "vars.bn_momentum=0.01")  # efficientnet_b5 to b7's batch norm
# torchvision builder -> (spec in specs/, vars overrides that make this size of it)
ZOO: dict[str, tuple[str, tuple[str, ...]]] = {
    "alexnet": ("alexnet", ()),
    "vgg11": ("vgg11", ()),
    "vgg16": ("vgg16", ()),
    "resnet18": ("resnet18", ()),
    "resnet50": ("resnet50", ()),
    "resnext50_32x4d": ("resnext50_32x4d", ()),
    "wide_resnet50_2": ("wide_resnet50_2", ()),
    "densenet121": ("densenet121", ()),
    "densenet161": ("densenet121", ("vars.growth_rate=48", "vars.block_config=[6, 12, 36, 24]",
                                    "vars.num_init_features=96")),
    "densenet169": ("densenet121", ("vars.block_config=[6, 12, 32, 32]",)),
    "densenet201": ("densenet121", ("vars.block_config=[6, 12, 48, 32]",)),
    "squeezenet1_0": ("squeezenet1_0", ()),
    "googlenet": ("googlenet", ()),
    "inception_v3": ("inception_v3", ()),
    "mobilenet_v2": ("mobilenet_v2", ()),
    "mobilenet_v3_small": ("mobilenet_v3_small", ()),
    "mnasnet1_0": ("mnasnet1_0", ()),
    "mnasnet0_5": ("mnasnet1_0", ("vars.alpha=0.5",)),
    "mnasnet0_75": ("mnasnet1_0", ("vars.alpha=0.75",)),
    "mnasnet1_3": ("mnasnet1_0", ("vars.alpha=1.3",)),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", ()),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x1_0", ("vars.stage2=48", "vars.stage3=96",
                                                  "vars.stage4=192")),
    "shufflenet_v2_x1_5": ("shufflenet_v2_x1_0", ("vars.stage2=176", "vars.stage3=352",
                                                  "vars.stage4=704")),
    "shufflenet_v2_x2_0": ("shufflenet_v2_x1_0", ("vars.stage2=244", "vars.stage3=488",
                                                  "vars.stage4=976", "vars.last_channel=2048")),
    "efficientnet_b0": ("efficientnet_b0", ()),
    "efficientnet_b1": ("efficientnet_b0", ("vars.depth_mult=1.1",)),
    "efficientnet_b2": ("efficientnet_b0", ("vars.width_mult=1.1", "vars.depth_mult=1.2",
                                            "vars.dropout=0.3")),
    "efficientnet_b3": ("efficientnet_b0", ("vars.width_mult=1.2", "vars.depth_mult=1.4",
                                            "vars.dropout=0.3")),
    "efficientnet_b4": ("efficientnet_b0", ("vars.width_mult=1.4", "vars.depth_mult=1.8",
                                            "vars.dropout=0.4")),
    "efficientnet_b5": ("efficientnet_b0", ("vars.width_mult=1.6", "vars.depth_mult=2.2",
                                            "vars.dropout=0.4", *_BN_TF)),
    "efficientnet_b6": ("efficientnet_b0", ("vars.width_mult=1.8", "vars.depth_mult=2.6",
                                            "vars.dropout=0.5", *_BN_TF)),
    "efficientnet_b7": ("efficientnet_b0", ("vars.width_mult=2.0", "vars.depth_mult=3.1",
                                            "vars.dropout=0.5", *_BN_TF)),
    "efficientnet_v2_s": ("efficientnet_v2_s", ()),
    "efficientnet_v2_m": ("efficientnet_v2_s", (
        "vars.channels=[24, 24, 48, 80, 160, 176, 304, 512]",
        "vars.depths=[3, 5, 5, 7, 14, 18, 5]", "vars.dropout=0.3")),
    "efficientnet_v2_l": ("efficientnet_v2_s", (
        "vars.channels=[32, 32, 64, 96, 192, 224, 384, 640]",
        "vars.depths=[4, 7, 7, 10, 19, 25, 7]", "vars.dropout=0.4")),
    "resnet34": ("resnet18", ("vars.layers=[3, 4, 6, 3]",)),
    "resnet101": ("resnet50", ("vars.layers=[3, 4, 23, 3]",)),
    "resnet152": ("resnet50", ("vars.layers=[3, 8, 36, 3]",)),
    "resnext101_32x8d": ("resnext50_32x4d", ("vars.layers=[3, 4, 23, 3]",
                                             "vars.width_per_group=8")),
    "resnext101_64x4d": ("resnext50_32x4d", ("vars.layers=[3, 4, 23, 3]", "vars.groups=64")),
    "wide_resnet101_2": ("wide_resnet50_2", ("vars.layers=[3, 4, 23, 3]",)),
    "vgg13": ("vgg11", ("vars.convs=[2, 2, 2, 2, 2]",)),
    "vgg19": ("vgg16", ("vars.convs=[2, 2, 4, 4, 4]",)),
    "vgg11_bn": ("vgg11", ("vars.batch_norm=true",)),
    "vgg13_bn": ("vgg11", ("vars.convs=[2, 2, 2, 2, 2]", "vars.batch_norm=true")),
    "vgg16_bn": ("vgg16", ("vars.batch_norm=true",)),
    "vgg19_bn": ("vgg16", ("vars.convs=[2, 2, 4, 4, 4]", "vars.batch_norm=true")),
    "squeezenet1_1": ("squeezenet1_0", ("vars.version=1.1",)),
    "mobilenet_v3_large": ("mobilenet_v3_large", ()),
    "convnext_tiny": ("convnext_tiny", ()),
    "convnext_small": ("convnext_tiny", ("vars.depths=[3, 3, 27, 3]",)),
    "convnext_base": ("convnext_tiny", ("vars.depths=[3, 3, 27, 3]",
                                        "vars.widths=[128, 256, 512, 1024]")),
    "convnext_large": ("convnext_tiny", ("vars.depths=[3, 3, 27, 3]",
                                         "vars.widths=[192, 384, 768, 1536]")),
    "vit_b_16": ("vit_b_16", ()),
    "regnet_y_400mf": ("regnet_y_400mf", ()),
    "regnet_y_800mf": ("regnet_y_400mf", ("vars.depths=[1, 3, 8, 2]",
                                          "vars.widths=[64, 144, 320, 784]",
                                          "vars.group_width=16")),
    "regnet_y_1_6gf": ("regnet_y_400mf", ("vars.depths=[2, 6, 17, 2]",
                                          "vars.widths=[48, 120, 336, 888]",
                                          "vars.group_width=24")),
    "regnet_y_3_2gf": ("regnet_y_400mf", ("vars.depths=[2, 5, 13, 1]",
                                          "vars.widths=[72, 216, 576, 1512]",
                                          "vars.group_width=24")),
    "regnet_y_8gf": ("regnet_y_400mf", ("vars.depths=[2, 4, 10, 1]",
                                        "vars.widths=[224, 448, 896, 2016]",
                                        "vars.group_width=56")),
    "regnet_y_16gf": ("regnet_y_400mf", ("vars.depths=[2, 4, 11, 1]",
                                         "vars.widths=[224, 448, 1232, 3024]",
                                         "vars.group_width=112")),
    "regnet_y_32gf": ("regnet_y_400mf", ("vars.depths=[2, 5, 12, 1]",
                                         "vars.widths=[232, 696, 1392, 3712]",
                                         "vars.group_width=232")),
    "regnet_y_128gf": ("regnet_y_400mf", ("vars.depths=[2, 7, 17, 1]",
                                          "vars.widths=[528, 1056, 2904, 7392]",
                                          "vars.group_width=264")),
    "regnet_x_400mf": ("regnet_y_400mf", ("vars.depths=[1, 2, 7, 12]",
                                          "vars.widths=[32, 64, 160, 400]", "vars.group_width=16",
                                          "vars.se_ratio=0")),
    "regnet_x_800mf": ("regnet_y_400mf", ("vars.depths=[1, 3, 7, 5]",
                                          "vars.widths=[64, 128, 288, 672]", "vars.group_width=16",
                                          "vars.se_ratio=0")),
    "regnet_x_1_6gf": ("regnet_y_400mf", ("vars.depths=[2, 4, 10, 2]",
                                          "vars.widths=[72, 168, 408, 912]", "vars.group_width=24",
                                          "vars.se_ratio=0")),
    "regnet_x_3_2gf": ("regnet_y_400mf", ("vars.depths=[2, 6, 15, 2]",
                                          "vars.widths=[96, 192, 432, 1008]", "vars.group_width=48",
                                          "vars.se_ratio=0")),
    "regnet_x_8gf": ("regnet_y_400mf", ("vars.depths=[2, 5, 15, 1]",
                                        "vars.widths=[80, 240, 720, 1920]", "vars.group_width=120",
                                        "vars.se_ratio=0")),
    "regnet_x_16gf": ("regnet_y_400mf", ("vars.depths=[2, 6, 13, 1]",
                                         "vars.widths=[256, 512, 896, 2048]",
                                         "vars.group_width=128", "vars.se_ratio=0")),
    "regnet_x_32gf": ("regnet_y_400mf", ("vars.depths=[2, 7, 13, 1]",
                                         "vars.widths=[336, 672, 1344, 2520]",
                                         "vars.group_width=168", "vars.se_ratio=0")),
    "vit_b_32": ("vit_b_16", ("vars.patch_size=32",)),
    "vit_l_16": ("vit_b_16", ("vars.num_layers=24", "vars.hidden_dim=1024", "vars.mlp_dim=4096",
                              "vars.num_heads=16")),
    "vit_l_32": ("vit_b_16", ("vars.patch_size=32", "vars.num_layers=24", "vars.hidden_dim=1024",
                              "vars.mlp_dim=4096", "vars.num_heads=16")),
    "vit_h_14": ("vit_b_16", ("vars.patch_size=14", "vars.num_layers=32", "vars.hidden_dim=1280",
                              "vars.mlp_dim=5120", "vars.num_heads=16")),
    "swin_t": ("swin_t", ()),
    "swin_s": ("swin_t", ("vars.depths=[2, 2, 18, 2]", "vars.stochastic_depth_prob=0.3")),
    "swin_b": ("swin_t", ("vars.depths=[2, 2, 18, 2]", "vars.embed_dim=128",
                          "vars.num_heads=[4, 8, 16, 32]", "vars.stochastic_depth_prob=0.5")),
    "swin_v2_t": ("swin_v2_t", ()),
    "swin_v2_s": ("swin_v2_t", ("vars.depths=[2, 2, 18, 2]", "vars.stochastic_depth_prob=0.3")),
    "swin_v2_b": ("swin_v2_t", ("vars.depths=[2, 2, 18, 2]", "vars.embed_dim=128",
                                "vars.num_heads=[4, 8, 16, 32]",
                                "vars.stochastic_depth_prob=0.5")),
    "maxvit_t": ("maxvit_t", ()),
}
# over 100 M parameters: keys and shapes on the meta device
LARGE = {"vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
         "wide_resnet101_2", "convnext_large", "efficientnet_v2_l", "vit_l_16", "vit_l_32",
         "vit_h_14", "regnet_y_32gf", "regnet_y_128gf", "regnet_x_32gf"}
INPUT_SIDE = {"inception_v3": 299}  # torchvision's input size; 224 for the others


def _spec(name: str) -> tuple[str, tuple[str, ...]]:
    spec, overrides = ZOO[name]
    return str(SPECS / f"{spec}.yaml"), overrides


def _torchvision(name: str) -> nn.Module:
    with warnings.catch_warnings(), _regnet_widths_on_the_cpu():  # googlenet and inception_v3
        warnings.simplefilter("ignore", FutureWarning)  # warn about their init
        return getattr(torchvision.models, name)(weights=None)


@contextlib.contextmanager
def _regnet_widths_on_the_cpu() -> Iterator[None]:
    """RegNet's builders compute their widths with tensors, which fails on the meta device."""
    original = BlockParams.from_init_params.__func__  # type: ignore[attr-defined]

    def on_the_cpu(cls: type[BlockParams], *args: Any, **kwargs: Any) -> BlockParams:
        with torch.device("cpu"):
            return original(cls, *args, **kwargs)  # type: ignore[no-any-return]

    with mock.patch.object(BlockParams, "from_init_params", classmethod(on_the_cpu)):
        yield


def _ours(name: str, meta: bool = True) -> tuple[nn.Module, int]:
    """The spec's model on the meta device, and the parameter count `nnspec summary` prints.

    A model with buffers outside its state_dict (swin's computed attention masks) is built on
    the CPU when its outputs are compared: loading a state_dict cannot fill those.
    """
    graph = inferred(*_spec(name))
    side = INPUT_SIDE.get(name, 224)
    assert graph.inputs["input"].shape == (3, side, side)
    with torch.device("meta" if meta else "cpu"):
        model = build(graph)
    return model, summarise(graph).total_params


def _computed_buffers(name: str) -> bool:
    with torch.device("meta"):
        model = build(inferred(*_spec(name)))
    return any(m._non_persistent_buffers_set for m in model.modules())


@pytest.mark.parametrize("name", [n for n in ZOO if n not in LARGE])
def test_zoo_spec_loads_torchvision_weights_and_gives_its_outputs(name: str) -> None:
    torch.manual_seed(0)
    reference = _torchvision(name).eval()
    ours, params = _ours(name, meta=not _computed_buffers(name))
    assert params == sum(p.numel() for p in reference.parameters()) < 100_000_000
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    ours.eval()
    side = INPUT_SIDE.get(name, 224)
    x = torch.randn(1, 3, side, side)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_zoo_spec_has_torchvision_keys_shapes_and_parameter_count(name: str) -> None:
    with torch.device("meta"):
        reference = _torchvision(name)
    ours, params = _ours(name)
    assert params == sum(p.numel() for p in reference.parameters()) >= 100_000_000
    expected = {k: v.shape for k, v in reference.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == expected
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)


@pytest.mark.parametrize("name", ["efficientnet_b1", "efficientnet_b5", "efficientnet_v2_m"])
def test_efficientnet_sizes_have_torchvisions_dropout_depth_and_norm_settings(name: str) -> None:
    """What a state_dict does not hold: each block's stochastic depth probability (over the
    global block index), the classifier's dropout, batch norm's eps and momentum."""
    with torch.device("meta"):
        reference = dict(_torchvision(name).named_modules())
    ours = dict(_ours(name)[0].named_modules())
    kinds = (torchvision.ops.StochasticDepth, nn.BatchNorm2d, nn.Dropout)
    compared = [n for n, m in ours.items() if isinstance(m, kinds)]
    assert len(compared) > 80
    assert [repr(ours[n]) for n in compared] == [repr(reference[n]) for n in compared]


# the same architectures as other specs' overrides (docs/zoo.md, "Sizes")
ALIASES = {
    "resnext50_32x4d": ("resnet50", ("vars.groups=32", "vars.width_per_group=4")),
    "wide_resnet50_2": ("resnet50", ("vars.width_per_group=128",)),
}


@pytest.mark.parametrize("name", list(ALIASES))
def test_resnet50_overrides_give_resnext_and_wide_resnet(name: str) -> None:
    spec, overrides = ALIASES[name]
    graph = inferred(str(SPECS / f"{spec}.yaml"), overrides)
    with torch.device("meta"):
        ours, reference = build(graph), _torchvision(name)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}
    assert summarise(graph).total_params == sum(p.numel() for p in reference.parameters())


SIZE_ROW = re.compile(r"^\| `(\w+)` \| `(\w+)\.yaml ([^`]+)` \| ([\d,]+) \| ([\d,]+) \|$", re.M)


def test_docs_zoo_sizes_table_gives_each_builders_override_and_counts() -> None:
    rows = SIZE_ROW.findall((ROOT / "docs" / "zoo.md").read_text())
    assert {name for name, *_ in rows} >= {n for n, (spec, _) in ZOO.items() if n != spec}
    for name, spec, overrides, params, macs in rows:
        entry = ALIASES.get(name) or ZOO[name]
        assert (spec, overrides) == (entry[0], " ".join(entry[1]))
        summary = summarise(inferred(str(SPECS / f"{spec}.yaml"), entry[1]))
        assert (f"{summary.total_params:,}", f"{summary.macs:,}") == (params, macs)


def test_every_spec_of_a_torchvision_builder_is_in_the_zoo_table() -> None:
    builders = set(torchvision.models.list_models(module=torchvision.models))
    specs = {p.stem for p in SPECS.glob("**/*.yaml")} & builders
    assert specs <= {spec for spec, _ in ZOO.values()}


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


@pytest.mark.parametrize("name", ["swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s",
                                  "swin_v2_b"])
def test_swin_stochastic_depth_grows_as_torchvisions(name: str) -> None:
    from torchvision.ops import StochasticDepth

    with torch.device("meta"):
        reference = _torchvision(name)
    ours, _ = _ours(name)
    theirs = [m.p for m in reference.modules() if isinstance(m, StochasticDepth)]
    # torchvision calls a block's one module twice; the spec has one per residual branch
    assert [m.p for m in ours.modules() if isinstance(m, StochasticDepth)][::2] == theirs


def test_maxvit_modules_have_torchvisions_names_and_settings() -> None:
    """What a state_dict does not hold: every module of the spec without children (stochastic
    depth with numpy.linspace's p, dropout, batch norm's eps and momentum, GELU, SiLU) is the
    torchvision module of that name, with the same settings. torchvision's partition modules
    and identities have no parameters; the spec writes them as ops or leaves them out."""
    with torch.device("meta"):
        reference = dict(_torchvision("maxvit_t").named_modules())
    ours = {n: m for n, m in _ours("maxvit_t")[0].named_modules() if not list(m.children())}
    assert len(ours) > 350
    assert {n: repr(m) for n, m in ours.items()} == {n: repr(reference.get(n)) for n in ours}
