"""Format 2 of the spec language: what it adds, what it changed, and format 1 kept as it was.

Each new feature is checked end to end: the built model's state_dict keys, its outputs against
the emitted Python (tests/parity.py), and its errors located in the file.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

import nnspec
from nnspec.errors import SpecError
from nnspec.lang.loader import load, loads
from nnspec.lang.upgrade import upgrade
from tests.conftest import EXAMPLES, SPECS
from tests.parity import (
    assert_same_model,
    emitted_module,
    fill_weights,
    model_class_name,
    sample_inputs,
)


def spec(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def keys(text: str) -> list[str]:
    return list(nnspec.compile(spec(text)).state_dict())


def errors(text: str, shapes: bool = True) -> list[str]:
    with pytest.raises(SpecError) as info:
        nnspec.validate(spec(text), shapes=shapes)
    return [p.render() for p in info.value.problems]


def same_as_emitted(text: str) -> None:
    graph = nnspec.infer(spec(text))
    built = nnspec.compile(spec(text))
    source = nnspec.emit(spec(text))
    emitted = emitted_module(source)[model_class_name(source)]()  # not meta: buffers
    fill_weights(built)
    assert_same_model(built, emitted, sample_inputs(graph))


REPEAT_ONE = """
nnspec: {version}
input: [4]
model:
  a: {{Linear: {{out_features: 4}}, repeat: 1}}
  b: {{Linear: {{out_features: 4}}, repeat: 2}}
"""


def test_format_1_repeat_1_is_the_item_itself_as_it_always_was() -> None:
    assert keys(REPEAT_ONE.format(version=1)) == [
        "a.weight", "a.bias", "b.0.weight", "b.0.bias", "b.1.weight", "b.1.bias"]


def test_format_2_repeat_1_makes_child_0_like_any_repeat() -> None:
    assert keys(REPEAT_ONE.format(version=2))[:2] == ["a.0.weight", "a.0.bias"]


def test_index_is_the_repetition_number() -> None:
    text = """
    nnspec: 2
    input: [4]
    vars: {widths: [3, 5, 7]}
    model:
      - {Linear: {out_features: "${widths[index]}"}, repeat: 3}
    """
    model = nnspec.compile(spec(text))
    assert [m.out_features for m in model[0]] == [3, 5, 7]
    same_as_emitted(text)


def test_a_parameter_default_may_use_the_parameters_before_it() -> None:
    # format 1 said: unknown variable 'out' (known: none)
    text = """
    nnspec: 2
    input: [8]
    blocks:
      Feedforward:
        params: {out: int, hidden: {default: "${out * 4}"}}
        sequential:
          - Linear: {out_features: $hidden}
          - Linear: {out_features: $out}
    model:
      - Feedforward: {out: 2}
    """
    assert [m.out_features for m in nnspec.compile(spec(text))[0]] == [8, 2]


def test_a_value_the_caller_gives_reads_the_callers_input_a_default_the_blocks() -> None:
    # the default read the caller's input before: 2 * 3 channels, where the block receives 5
    text = """
    nnspec: 2
    input: [3, 8, 8]
    blocks:
      Widen:
        params: {width: {default: "${input.channels * 2}"}}
        sequential:
          - Conv2d: {out_channels: $width, kernel_size: 1}
    model:
      - Conv2d: {out_channels: 5, kernel_size: 1}
      - Widen
      - {Widen: {width: "${input.channels}"}}   # given by the caller: the caller's input
    """
    model = nnspec.compile(spec(text))
    assert [model[1][0].out_channels, model[2][0].out_channels] == [10, 3]
    same_as_emitted(text)


def test_a_module_list_block_takes_forward() -> None:
    text = """
    nnspec: 2
    input: [4]
    blocks:
      Reversed:
        module_list:
          - Linear: {out_features: 6}
          - Linear: {out_features: 4}
        forward: [1, 0]
    model:
      - Reversed
    """
    model = nnspec.compile(spec(text))
    assert model(torch.zeros(2, 4)).shape == (2, 6)
    same_as_emitted(text)


def test_named_layers_in_a_list_item_hint_at_sequential() -> None:
    text = """
    nnspec: 2
    input: [4]
    model:
      - {fc: {Linear: {out_features: 4}}, act: ReLU}
    """
    (problem,) = errors(text, shapes=False)
    assert "one layer per item" in problem and "{sequential: {fc: ..., act: ...}}" in problem


CONDITIONAL = """
nnspec: 2
input: [8, 6, 6]
blocks:
  Residual:
    params: {out: int, stride: {default: 1}, act: {type: layer, default: ReLU}}
    graph:
      conv: {Conv2d: {out_channels: $out, kernel_size: 3, stride: $stride, padding: 1}}
      act: $act
      downsample:
        sequential:
          - Conv2d: {out_channels: $out, kernel_size: 1, stride: $stride, bias: false}
          - BatchNorm2d
        in: input
        if: ${stride != 1 or input.channels != out}
      sum: {add: [act, downsample]}
model:
  same: {Residual: {out: 8}}
  wider: {Residual: {out: 16, act: {LeakyReLU: {negative_slope: 0.2}}}}
  smaller: {Residual: {out: 16, stride: 2, act: Hardswish}}
"""


def test_a_node_left_out_by_if_stands_for_its_input() -> None:
    model = nnspec.compile(CONDITIONAL)
    names = [k for k in model.state_dict() if "downsample" in k]
    assert not any(k.startswith("same.") for k in names)
    assert "wider.downsample.0.weight" in names and "smaller.downsample.1.weight" in names
    assert isinstance(model.wider.act, torch.nn.LeakyReLU)
    assert model.wider.act.negative_slope == 0.2
    assert isinstance(model.smaller.act, torch.nn.Hardswish)
    same_as_emitted(CONDITIONAL)


SHORTCUT_STAGE = """
nnspec: 2
input: [8, 6, 6]
blocks:
  Inverted:
    params: {out: int, stride: {default: 1}}
    graph:
      block:
        - Conv2d: {out_channels: $out, kernel_size: 3, stride: $stride, padding: 1}
        - BatchNorm2d
      stochastic_depth: {StochasticDepth: {p: 0.1, mode: row},
                         if: "${stride == 1 and input.channels == out}"}
      sum: {add: [stochastic_depth, input], if: "${stride == 1 and input.channels == out}"}
model:
  stage: {Inverted: {out: 16, stride: "${2 if index == 0 else 1}"}, repeat: 3}
"""


def test_a_left_out_add_stands_for_its_first_input() -> None:
    graph = nnspec.infer(SHORTCUT_STAGE)
    first, second, _ = (node.body for node in graph.root.nodes[0].body.nodes)
    assert [n.name for n in first.nodes] == ["block"] and first.outputs == ("block",)
    assert second.outputs == ("sum",)
    assert second.nodes[-1].inputs == ("stochastic_depth", "input")
    model = nnspec.compile(SHORTCUT_STAGE).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        y = model.stage[0].block(x)
        y = model.stage[1].block(y) + y
        torch.testing.assert_close(model(x), model.stage[2].block(y) + y)
    same_as_emitted(SHORTCUT_STAGE)


def test_a_default_reads_the_blocks_own_input() -> None:
    # a default reading `input` read the caller's input (here the model's, 3 channels)
    text = """
    nnspec: 2
    input: [3, 8, 8]
    blocks:
      Expand:
        params: {expand: int, hidden: {type: int, default: "${input.channels * expand}"}}
        sequential:
          - Conv2d: {out_channels: $hidden, kernel_size: 1}
    model:
      - Conv2d: {out_channels: 16, kernel_size: 1}
      - Expand: {expand: 4}
    """
    model = nnspec.compile(spec(text))
    assert model[1][0].out_channels == 64
    assert nnspec.validate(spec(text), shapes=False).root.nodes[1].body.kind == "pending"


def test_a_block_reading_its_input_is_checked_without_shapes_too() -> None:
    assert nnspec.validate(CONDITIONAL, shapes=False).root.nodes[0].body.kind == "pending"


def test_an_error_inside_a_block_reading_its_input_is_located() -> None:
    text = CONDITIONAL.replace("in: input\n", "in: inptu\n")
    (problem,) = errors(text)
    assert "unknown input 'inptu'" in problem and "did you mean 'input'" in problem
    assert problem.startswith("<text>:11:11:")  # the node downsample


def test_expressions_read_the_model_input() -> None:
    text = """
    nnspec: 2
    input: [3, 10]
    model:
      - Linear: {out_features: "${input.channels * input.features}"}
      - Linear: {out_features: "${input.shape[0]}"}
    """
    assert [m.out_features for m in nnspec.compile(spec(text))] == [30, 3]


def test_an_unknown_tensor_attribute_is_a_located_error() -> None:
    text = """
    nnspec: 2
    input: [3, 10]
    model:
      - Linear: {out_features: "${input.chanels}"}
    """
    (problem,) = errors(text, shapes=False)
    assert "not allowed" in problem and "did you mean 'channels'" in problem


def test_module_names_as_torch_takes_them() -> None:
    text = """
    nnspec: 2
    input: [4]
    model:
      graph:
        block1-0: {Linear: {out_features: 4}}
        block1-1: {Linear: {out_features: 4}}
        sum: {add: [block1-0, block1-1]}
        trunk:
          sequential:
            fc-a: {Linear: {out_features: 3}}
    """
    assert keys(text)[:2] == ["block1-0.weight", "block1-0.bias"]
    assert "trunk.fc-a.weight" in keys(text)
    assert 'self.add_module("block1-0"' in nnspec.emit(spec(text))
    same_as_emitted(text)


@pytest.mark.parametrize("name", ["-a", "a.b", "a b", "__x"])
def test_module_names_torch_refuses_stay_refused(name: str) -> None:
    text = f"nnspec: 2\ninput: [4]\nmodel:\n  '{name}': ReLU\n"
    assert any("not a valid module name" in p for p in errors(text, shapes=False))


# -- nnspec upgrade -----------------------------------------------------------------------

def test_upgrade_writes_out_repeat_1_and_keeps_the_keys(tmp_path: Path) -> None:
    text, changes = upgrade(loads(spec(REPEAT_ONE.format(version=1)), "v1.yaml"))
    assert "nnspec: 2" in text and "repeat: 1" not in text and "repeat: 2" in text
    assert [c.what.split(":")[0] for c in changes] == ["nnspec", "model.a"]
    assert keys(text) == keys(REPEAT_ONE.format(version=1))


def test_upgrade_onto_an_existing_file_refuses_before_saying_what_it_would_change(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nnspec.cli import app

    path = tmp_path / "s.yaml"
    path.write_text(spec(REPEAT_ONE.format(version=1)))
    result = CliRunner().invoke(app, ["upgrade", str(path), "-o", str(path)])
    assert result.exit_code == 2
    assert "exists" in result.output and "nnspec: 1 -> 2" not in result.output
    assert path.read_text() == spec(REPEAT_ONE.format(version=1))


@pytest.mark.parametrize(("repeat", "quoted"), [
    ("$k", "${k == 1}"), ('"${k}"', "${k == 1}"), ('"${k - 1}"', "${(k - 1) == 1}")])
def test_upgrade_refuses_a_repeat_that_is_1_only_sometimes(repeat: str, quoted: str) -> None:
    text = """
    nnspec: 1
    input: [4]
    blocks:
      B:
        params: {k: int}
        sequential:
          - {Linear: {out_features: 4}, repeat: REPEAT}
    model:
      one: {B: {k: K1}}
      two: {B: {k: K2}}
    """.replace("REPEAT", repeat)
    small, big = (2, 3) if "- 1" in repeat else (1, 2)
    text = text.replace("K1", str(small)).replace("K2", str(big))
    with pytest.raises(SpecError, match="repeat is 1 for some uses and 2 for others") as err:
        upgrade(loads(spec(text), "v1.yaml"))
    hint = err.value.problems[0].hint or ""
    assert quoted in hint and quoted.replace("== 1", "> 1") in hint and "${n" not in hint


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_upgraded_specs_build_the_same_model(path: Path) -> None:
    original = load(path)
    text, _ = upgrade(original)
    with torch.device("meta"):
        before = nnspec.compile(original)
        after = nnspec.compile(loads(text, str(path)))
    assert [(k, v.shape) for k, v in before.state_dict().items()] == [
        (k, v.shape) for k, v in after.state_dict().items()]
    def leaves(model: torch.nn.Module) -> list[tuple[str, str]]:  # renamed blocks: classes
        return [(n, repr(m)) for n, m in model.named_modules() if not list(m.children())]

    assert leaves(before) == leaves(after)


@pytest.mark.parametrize("name", ["resnet_tiny", "transformer_classifier", "module_list"])
def test_upgraded_specs_give_the_same_outputs(name: str) -> None:
    original = load(SPECS / f"{name}.yaml")
    text, _ = upgrade(original)
    before, after = nnspec.compile(original), nnspec.compile(loads(text, name))
    after.load_state_dict(fill_weights(before), strict=True)
    graph = nnspec.infer(original)
    assert_same_model(before, after, sample_inputs(graph))


# -- free tensors -------------------------------------------------------------------------

FREE = """
nnspec: 2
input: [3, 32, 32]
blocks:
  Encoder:
    params: {length: int}
    graph:
      pos_embedding:
        parameter: {shape: [1, $length, "${input.features}"], init: {normal: {std: 0.02}}}
      with_pos: {add: [input, pos_embedding]}
      keep: {buffer: {shape: [16, 1], init: ones, persistent: false}}
      kept: {mul: [with_pos, keep]}
      ln: LayerNorm
model:
  graph:
    layer_scale: {parameter: {shape: [16, 1, 1], init: 1e-6}}
    conv_proj: {Conv2d: {out_channels: 16, kernel_size: 8, stride: 8}, in: input}
    scaled: {mul: [conv_proj, layer_scale]}
    tokens: {reshape: [16, -1]}
    seq: {transpose: {dim0: 1, dim1: 2}}
    encoder: {Encoder: {length: 16}}
    pooled: {mean: {dim: 1}}
    head: {Linear: {out_features: 10}}
"""


def test_free_tensors_are_state_dict_entries_under_their_node_names() -> None:
    model = nnspec.compile(FREE)
    assert list(model.state_dict())[:4] == [
        "layer_scale", "conv_proj.weight", "conv_proj.bias", "encoder.pos_embedding"]
    assert "encoder.keep" not in model.state_dict()  # persistent: false
    assert torch.all(model.layer_scale == 1e-6)
    graph = nnspec.infer(FREE)
    assert graph.params == sum(p.numel() for p in model.parameters())
    same_as_emitted(FREE)


def test_free_tensors_in_the_summary_and_emitted_code() -> None:
    from nnspec.views.summary import render_summary

    text = render_summary(nnspec.infer(FREE))
    assert "layer_scale              parameter  [16, 1, 1]         16" in text
    source = nnspec.emit(FREE)
    assert "self.layer_scale = nn.Parameter(torch.full((16, 1, 1), 1e-06))" in source
    assert 'self.register_buffer("keep", torch.ones((16, 1)), persistent=False)' in source


def test_a_free_tensor_outside_a_graph_is_a_located_error() -> None:
    text = """
    nnspec: 2
    input: [4]
    model:
      - {parameter: {shape: [4]}}
    """
    (problem,) = errors(text, shapes=False)
    assert "parameter takes 0 inputs, given 1" in problem and "write it in a graph" in problem


def test_a_free_tensor_with_a_bad_init_is_a_located_error() -> None:
    text = """
    nnspec: 2
    input: [4]
    model:
      graph:
        t: {parameter: {shape: [4], init: gaussian}}
        out: {add: [input, t]}
    """
    (problem,) = errors(text, shapes=False)
    assert problem.startswith("<text>:5:") and "init" in problem


# -- ops of attention networks -------------------------------------------------------------

ATTENTION = Path(__file__).with_name("specs_v2") / "attention_ops.yaml"


def test_attention_ops_build_emit_and_match() -> None:
    text = ATTENTION.read_text()
    model = nnspec.compile(text)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    same_as_emitted(text)


def test_matmul_and_attention_macs_match_the_flop_counter() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from nnspec.views.summary import summarise

    text = ATTENTION.read_text()
    rows = {row.name: row.macs for row in summarise(nnspec.infer(text)).rows}
    model = nnspec.compile(text).eval()
    block = model.attn
    x = torch.randn(2, 17, 16)
    for name, run in [("attn.att", lambda: block(x)), ("scores", lambda: model(
            torch.randn(2, 3, 32, 32)))]:
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            run()
        matmuls = sum(v for k, v in counter.get_flop_counts()["Global"].items()
                      if "bmm" in str(k))
        expected = rows[name] if name == "attn.att" else rows["scores"] + rows["attn.att"]
        assert matmuls / 2 / 2 == expected  # FLOPs / 2 per MAC, batch of 2


def test_a_constant_among_mul_inputs() -> None:
    # format 1 reported two errors that contradicted each other
    text = """
    nnspec: 2
    input: [4]
    vars: {scale: 0.5}
    model:
      graph:
        fc: {Linear: {out_features: 4}}
        small: {mul: [fc, 1e-6]}
        halved: {mul: [small, $scale]}
        chained:
          sequential:
            - {mul: 2.0}
            - {add: 1}
    """
    model = nnspec.compile(spec(text))
    x = torch.randn(2, 4)
    expected = (model.fc(x) * 1e-6 * 0.5) * 2.0 + 1
    torch.testing.assert_close(model(x), expected)
    same_as_emitted(text)


def test_mul_of_one_input_without_a_constant_is_one_located_error() -> None:
    text = """
    nnspec: 2
    input: [4]
    model:
      graph:
        fc: {Linear: {out_features: 4}}
        twice: {mul: [fc]}
    """
    (problem,) = errors(text)
    assert "mul of one input needs a constant" in problem


@pytest.mark.parametrize(("op", "message"), [
    ("{select: {dim: 0, index: 0}}", "would mix the batch"),
    ("{softmax: {dim: 0}}", "would mix the batch"),
    ("{roll: {shifts: 1, dims: 0}}", "would mix the batch"),
])
def test_ops_along_the_batch_are_refused(op: str, message: str) -> None:
    text = f"nnspec: 2\ninput: [4, 4]\nmodel:\n  - {op}\n"
    (problem,) = errors(text)
    assert message in problem


def test_a_free_tensor_that_would_meet_the_batch_is_refused() -> None:
    text = """
    nnspec: 2
    input: [4]
    model:
      graph:
        table: {parameter: {shape: [3, 4]}}
        out: {add: [input, table]}
    """
    (problem,) = errors(text)
    assert "would broadcast it against the batch dimension" in problem


def test_upgrade_renames_a_block_format_2_would_refuse() -> None:
    text = ("nnspec: 1\ninput: [4]\nblocks:\n  Lienar:\n    sequential: [ReLU]\n"
            "model: [Lienar, {Lienar: null, repeat: 1}]\n")
    upgraded, changes = upgrade(loads(text, "v1.yaml"))
    assert upgraded == ("nnspec: 2\ninput: [4]\nblocks:\n  LienarBlock:\n    sequential: "
                        "[ReLU]\nmodel: [LienarBlock, {LienarBlock: null}]\n")
    assert sum("renamed LienarBlock" in c.what for c in changes) == 3


@pytest.mark.parametrize(("params", "problem"), [
    ('{a: {default: "${b * 2}"}, b: {default: 2}}', "the default of 'a' reads 'b', declared "
     "after it (a default may read the parameters declared before it"),
    ('{a: {default: "${input.channels}"}, channels: {default: 2}}', None),  # an attribute
    ('{b: {default: 2}, a: {default: "${b * 2}"}}', None),
], ids=["reads-a-later-one", "attribute-of-input", "reads-an-earlier-one"])
def test_a_default_reading_a_later_parameter_says_so(params: str, problem: str | None) -> None:
    """It said unknown variable 'b' (known: input), as if b were not a parameter at all."""
    text = f"""
    nnspec: 2
    input: [4, 3]
    blocks:
      F:
        params: {params}
        sequential:
          - Linear: {{out_features: $a}}
    model:
      - F
    """
    if problem is None:
        nnspec.validate(loads(spec(text), "v2.yaml"))
        return
    with pytest.raises(SpecError) as err:
        nnspec.validate(loads(spec(text), "v2.yaml"))
    assert problem in err.value.render()


def test_upgrade_says_when_a_removed_repeat_was_an_expression() -> None:
    """repeat: $k with k = 1 was removed with the plain 'removed repeat: 1' note, though vars.k
    then no longer repeats anything."""
    text = "nnspec: 1\ninput: [4]\nvars: {k: 1}\nmodel:\n  - {Linear: {out_features: 4}, " \
        "repeat: $k}\n"
    upgraded, changes = upgrade(loads(text, "v1.yaml"))
    assert "repeat" not in upgraded
    (removed,) = [c.what for c in changes if "removed repeat" in c.what]
    assert "it was repeat: $k, 1 with this spec's values" in removed
    assert "if: ${k == 1}" in removed
