"""Shared modules (format 2): a graph node ``{reuse: NODE, in: ...}`` calls another node's
module again, so its weights are tied: one module, one set of state_dict keys.

Held against a hand-written PyTorch module with the same weights (strict load, equal outputs),
the emitted Python, torchinfo's counts and the locked spec.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
import torchinfo
from torch import nn

import nnspec
from nnspec.errors import SpecError
from nnspec.views.diagram import diagram
from nnspec.views.locked_yaml import locked_yaml
from nnspec.views.summary import summarise
from tests.parity import assert_same_model, emitted_module, fill_weights, model_class_name

SIAMESE = Path(__file__).with_name("specs_v2") / "siamese.yaml"


class HandWrittenSiamese(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 16))
        self.proj = nn.Linear(16, 16)
        self.head = nn.Linear(16, 1)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return self.head(self.proj(self.proj(self.enc(left) + self.enc(right))))


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(3, 1, 28, 28), torch.randn(3, 1, 28, 28)


def test_a_reused_module_is_the_hand_written_one() -> None:
    model = nnspec.compile(SIAMESE).eval()
    hand = HandWrittenSiamese().eval()
    state = fill_weights(model)
    model.load_state_dict(state)
    hand.load_state_dict(state, strict=True)
    assert list(model.state_dict()) == list(hand.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in hand.parameters())
    with torch.no_grad():
        torch.testing.assert_close(model(*_inputs()), hand(*_inputs()))


def test_a_reused_module_is_trained_by_both_uses() -> None:
    model = nnspec.compile(SIAMESE)
    model(*_inputs()).sum().backward()
    grad = model.enc[0].weight.grad
    assert grad is not None
    model.zero_grad()
    left, right = _inputs()
    model(left, torch.zeros_like(right)).sum().backward()
    assert not torch.equal(grad, model.enc[0].weight.grad)  # the right input counted


def test_emitted_python_calls_the_module_twice() -> None:
    source = nnspec.emit(SIAMESE)
    assert "enc_right = self.enc(right)" in source
    assert "proj_again = self.proj(proj)" in source
    assert "self.enc_right" not in source and "self.proj_again" not in source
    emitted = emitted_module(source)[model_class_name(source)]()
    model = nnspec.compile(SIAMESE)
    fill_weights(model)
    assert_same_model(model, emitted, list(_inputs()))


def test_summary_counts_parameters_once_and_macs_per_call_as_torchinfo() -> None:
    summary = summarise(nnspec.infer(SIAMESE))
    rows = {row.name: row for row in summary.rows}
    assert rows["enc_right"].type == "reuse enc" and rows["enc_right"].params == 0
    assert rows["enc_right"].macs == rows["enc"].macs > 0
    assert rows["proj_again"].macs == rows["proj"].macs
    oracle = torchinfo.summary(nnspec.compile(SIAMESE), input_size=[(1, 1, 28, 28)] * 2,
                               verbose=0)
    assert (summary.total_params, summary.macs) == (oracle.total_params,
                                                    oracle.total_mult_adds)
    assert nnspec.infer(SIAMESE).params == summary.total_params


def test_the_diagram_draws_a_reuse_as_one_box() -> None:
    drawn = diagram(nnspec.infer(SIAMESE))
    text = repr(drawn)
    assert "reuse enc" in text and "reuse proj" in text


def test_the_locked_spec_keeps_the_reuse_and_builds_the_same_model() -> None:
    locked = locked_yaml(nnspec.infer(SIAMESE), nnspec.load_spec(SIAMESE))
    assert "enc_right: {reuse: enc, in: right}" in locked
    again = nnspec.compile(locked)
    original = nnspec.compile(SIAMESE)
    original.load_state_dict(fill_weights(original))
    again.load_state_dict(original.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(again(*_inputs()), original(*_inputs()))


def _errors(body: str, shapes: bool = True) -> list[str]:
    text = "nnspec: 2\n" + textwrap.dedent(body).lstrip()
    with pytest.raises(SpecError) as info:
        nnspec.validate(text, shapes=shapes)
    return [p.render() for p in info.value.problems]


def test_a_reuse_on_an_input_of_another_shape_is_a_located_error() -> None:
    (problem,) = _errors("""
    input: {a: [4], b: [6]}
    model:
      graph:
        fc: {Linear: {out_features: 4}, in: a}
        again: {reuse: fc, in: b}
        out: {add: [fc, again]}
    """)
    assert problem.startswith("<text>:6:13: error: model.graph.again.reuse: reusing the "
                              "module of 'fc': Linear expects in_features=4, receives [N, 6]")
    assert "keeps the sizes of its first use ('fc', model.graph.fc.Linear)" in problem


@pytest.mark.parametrize(("node", "message"), [
    ("{reuse: fcc}", "unknown node 'fcc' to reuse (did you mean 'fc'?)"),
    ("{reuse: s}", "'s' is an op, not a module, so there is nothing to reuse"),
    ("{reuse: t}", "'t' is a free tensor (parameter), not a module"),
    ("{reuse: r}", "'r' reuses 'fc' itself (write reuse: fc)"),
    ("{reuse: fc, repeat: 2}", "unexpected key 'repeat' beside reuse"),
    ("{reuse: [fc]}", "expected the name of a graph node, found a list"),
])
def test_a_reuse_that_cannot_be_is_a_located_error(node: str, message: str) -> None:
    problems = _errors(f"""
    input: [4]
    model:
      graph:
        fc: {{Linear: {{out_features: 4}}}}
        t: {{parameter: {{shape: [4]}}}}
        s: {{add: [fc, t]}}
        r: {{reuse: fc}}
        x: {node}
        out: {{add: [r, x]}}
    """, shapes=False)
    assert any(message in p and p.startswith("<text>:9:") for p in problems), problems


def test_a_reuse_outside_a_graph_is_refused() -> None:
    (problem,) = _errors("""
    input: [4]
    model:
      - Linear: {out_features: 4}
      - {reuse: "0"}
    """, shapes=False)
    assert "reuse only works inside a graph" in problem and "registered twice" in problem


def test_a_reuse_of_a_node_computed_from_it_is_refused() -> None:
    (problem,) = _errors("""
    input: [4]
    model:
      graph:
        early: {reuse: fc, in: input}
        fc: {Linear: {out_features: 4}, in: early}
    """, shapes=False)
    assert "'early' reuses the module of 'fc', which is computed from 'early'" in problem


def test_a_reuse_inside_a_repeated_block_ties_within_each_copy() -> None:
    text = """
    nnspec: 2
    input: [8]
    blocks:
      Twice:
        graph:
          fc: {Linear: {out_features: 8}}
          act: ReLU
          again: {reuse: fc}
    model:
      - {Twice: null, repeat: 2}
    """
    text = textwrap.dedent(text).lstrip()
    model = nnspec.compile(text)
    assert list(model.state_dict()) == ["0.0.fc.weight", "0.0.fc.bias", "0.1.fc.weight",
                                        "0.1.fc.bias"]
    x = torch.randn(2, 8)
    first = model[0][0]
    torch.testing.assert_close(model[0][0](x), first.fc(torch.relu(first.fc(x))))


# -- the ModuleList example of the PyTorch docs ----------------------------------------------

MODULE_LIST = Path(__file__).with_name("specs_v2") / "module_list_docs.yaml"


class MyModule(nn.Module):
    """torch.nn.ModuleList's documented example, as written there."""

    def __init__(self) -> None:
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(10, 10) for i in range(10)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ModuleList can act as an iterable, or be indexed using ints
        for i, l in enumerate(self.linears):  # noqa: E741 (the docs' own name)
            x = self.linears[i // 2](x) + l(x)
        return x


def test_the_module_list_docs_example_is_the_hand_written_module() -> None:
    model = nnspec.compile(MODULE_LIST).eval()
    hand = MyModule().eval()
    state = fill_weights(model)
    model.load_state_dict(state)
    hand.load_state_dict(state, strict=True)
    assert isinstance(model.linears, nn.ModuleList) and len(model.linears) == 10
    x = torch.randn(4, 10)
    with torch.no_grad():
        torch.testing.assert_close(model(x), hand(x))


def test_the_module_list_docs_example_emits_locks_and_counts() -> None:
    source = nnspec.emit(MODULE_LIST)
    assert "x = self[4](x) + self[9](x)" in source
    emitted = emitted_module(source)[model_class_name(source)]()
    model = nnspec.compile(MODULE_LIST)
    fill_weights(model)
    assert_same_model(model, emitted, [torch.randn(3, 10)])
    locked = nnspec.lock(MODULE_LIST)
    assert "- {add: [2, 5]}" in locked
    again = nnspec.compile(locked)
    model.load_state_dict(fill_weights(model))
    again.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 10)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    summary = summarise(nnspec.infer(MODULE_LIST))
    oracle = torchinfo.summary(model, input_size=[(1, 10)], verbose=0)
    assert (summary.total_params, summary.macs) == (1100, oracle.total_mult_adds) == (
        oracle.total_params, 2200)  # each Linear counted at every call


def test_a_member_used_twice_counts_its_parameters_once() -> None:
    # validate said 40 parameters for this 20-parameter model
    text = ("nnspec: 2\ninput: [4]\nmodel:\n  module_list:\n    - Linear: {out_features: 4}\n"
            "  forward: [0, 0]\n")
    assert nnspec.validate(text).params == 20


def test_forward_steps_of_a_module_dict_combine_named_members() -> None:
    text = """
    nnspec: 2
    input: [6]
    model:
      module_dict:
        gate: {Linear: {out_features: 6}}
        value: {Linear: {out_features: 6}}
        out: {Linear: {out_features: 2}}
      forward: [{mul: [gate, value]}, out]
    """
    text = textwrap.dedent(text).lstrip()
    model = nnspec.compile(text)
    x = torch.randn(2, 6)
    torch.testing.assert_close(model(x), model.out(model.gate(x) * model.value(x)))
    source = nnspec.emit(text)
    assert 'x = self["gate"](x) * self["value"](x)' in source


@pytest.mark.parametrize(("forward", "message", "at"), [
    ('[{add: [0, "${index + 1}"], repeat: 2}]', "'${index + 1}' is 2, not a member", "5:14"),
    ("[{add: [0, 3]}]", "'3' is not a member of this module_list", "5:23"),
    ("[{ReLU: [0, 1]}]", "a forward step is a member, or an op of several inputs", "5:13"),
    ("[{add: 0}]", "a forward step is a member, or an op of several inputs", "5:13"),
])
def test_a_forward_step_that_cannot_be_is_a_located_error(forward: str, message: str,
                                                            at: str) -> None:
    problems = _errors(f"""
    input: [4]
    model:
      module_list: [{{Linear: {{out_features: 4}}}}, {{Linear: {{out_features: 4}}}}]
      forward: {forward}
    """, shapes=False)
    assert any(message in p and p.startswith(f"<text>:{at}:") for p in problems), problems


def test_a_step_whose_members_give_shapes_that_do_not_combine_is_located() -> None:
    (problem,) = _errors("""
    input: [4]
    model:
      module_list: [{Linear: {out_features: 4}}, {Linear: {out_features: 3}}]
      forward: [{add: [0, 1]}]
    """)
    assert problem.startswith("<text>:5:14: error: model.forward[0].add: add cannot combine")
