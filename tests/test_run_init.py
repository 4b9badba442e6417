"""Initialisation rules: matching, order, explanation, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from run_fixtures import DIGITS_MLP
from torch import nn

from nnspec.errors import SpecError
from nnspec.lang.spec import InitMatch, InitRule
from nnspec.run import init
from nnspec.run.commands import train_command


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                         nn.Linear(4, 2))


def rule(fn: str, **match: object) -> InitRule:
    args = match.pop("args", {})
    return InitRule(match=InitMatch(**match), fn=fn, args=args)  # type: ignore[arg-type]


def test_rules_match_type_and_param_in_order() -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init.apply(model, [rule("ones_", param="weight"), rule("zeros_", type="Linear")])
    state = model.state_dict()
    assert torch.all(state["0.weight"] == 1) and torch.all(state["1.weight"] == 1)
    assert torch.all(state["3.weight"] == 0), "the later rule wins"
    assert torch.all(state["3.bias"] == 0)
    assert torch.equal(state["0.bias"], before["0.bias"]), "unmatched: PyTorch's default"


def test_rules_match_module_name_globs() -> None:
    model = _model()
    init.apply(model, [rule("constant_", name="[13]", args={"val": 0.5})])
    assert torch.all(model.state_dict()["1.bias"] == 0.5)
    assert torch.all(model.state_dict()["3.bias"] == 0.5)
    assert not torch.all(model.state_dict()["0.bias"] == 0.5)


def test_explain_names_the_deciding_rule_for_each_parameter() -> None:
    lines = init.explain_lines(_model(), [
        rule("kaiming_normal_", type=["Conv2d", "Linear"], param="weight",
             args={"nonlinearity": "relu"}),
        rule("zeros_", param="bias"), rule("ones_", type="GRU")])
    text = "\n".join(lines)
    assert "0.weight" in text and "init[0] kaiming_normal_(nonlinearity='relu')" in text
    assert "1.weight" in text and "PyTorch default" in text
    assert "init[2] (ones_) matches no parameter" in text


def test_unknown_function_and_layer_type_are_spec_errors_with_hints() -> None:
    with pytest.raises(SpecError) as info:
        init.check_rules([rule("kaiming_normal", type="Linaer")])
    text = str(info.value)
    assert "unknown init function 'kaiming_normal'" in text and "kaiming_normal_" in text
    assert "unknown layer type 'Linaer'" in text and "'Linear'" in text


def test_a_function_that_cannot_apply_names_the_parameter() -> None:
    with pytest.raises(SpecError, match=r"kaiming_normal_ cannot initialise 0\.bias"):
        init.apply(_model(), [rule("kaiming_normal_", type="Conv2d")])


def test_explain_init_command_prints_the_table(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(DIGITS_MLP + "init:\n  - {match: {param: bias}, fn: zeros_}\n")
    out = io.StringIO()
    assert train_command(str(spec), [], explain_init=True, out=out) == 0
    assert "2.bias" in out.getvalue() and "init[0] zeros_()" in out.getvalue()


def test_the_init_line_says_all_or_how_many_and_not_on_resume(tmp_path: Path) -> None:
    """It said '10 of 10 ..., the rest PyTorch's defaults', and printed it again on a resume,
    whose weights come from the checkpoint."""
    spec = tmp_path / "s.yaml"
    spec.write_text(DIGITS_MLP.replace("epochs: 2", "epochs: 1") +
                    "init:\n  - {match: {param: '*'}, fn: zeros_}\n")
    out = io.StringIO()
    assert train_command(str(spec), [], run_dir=str(tmp_path / "run"), err=out) == 0
    assert "init: all 4 parameter tensors set by init rules (--explain-init" in out.getvalue()
    again = io.StringIO()
    assert train_command(str(spec), ["train.epochs=2"], resume=str(tmp_path / "run"),
                         err=again) == 0
    assert "init:" not in again.getvalue()
