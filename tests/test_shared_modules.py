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
