"""Losses: argument sources, every torch.nn loss, and every example's loss falling."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from run_fixtures import EXAMPLES, ROOT, example

from nnspec.catalogue import section
from nnspec.errors import SpecError
from nnspec.lang.loss_inputs import default_inputs, parse
from nnspec.lang.spec import Log, Loss
from nnspec.run import train
from nnspec.run.losses import Evaluator, build_loss, loss_args

LOSS_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("loss_*.yaml"))
# The losses the issue names; each has an example.
NAMED = ["BCELoss", "BCEWithLogitsLoss", "CTCLoss", "CosineEmbeddingLoss", "CrossEntropyLoss",
         "GaussianNLLLoss", "HingeEmbeddingLoss", "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss",
         "MarginRankingLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss",
         "MultiMarginLoss", "NLLLoss", "PoissonNLLLoss", "SmoothL1Loss", "SoftMarginLoss",
         "TripletMarginLoss"]


@pytest.mark.parametrize("text, shown", [
    ("output", "output"),
    ("model(anchor)", "model(anchor)"),
    ("permute(log_softmax(output, 1), 2, 0, 1)", "permute(log_softmax(output, 1), 2, 0, 1)"),
    (" distance( model(a) ,model(b) ) ", "distance(model(a), model(b))"),
])
def test_loss_inputs_parse(text: str, shown: str) -> None:
    assert str(parse(text)) == shown


@pytest.mark.parametrize("text", ["model(", "a b", "f(x,)", "__import__('os')", "x[0]", ""])
def test_bad_loss_inputs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


def test_unknown_function_in_loss_inputs_is_located_with_a_hint() -> None:
    with pytest.raises(SpecError, match=r"loss\.inputs\[0\]: unknown function 'log_sofmax'.*"
                       "did you mean 'log_softmax'"):
        build_loss(Loss(name="NLLLoss", inputs=["log_sofmax(output)", "target"]))


def test_unknown_loss_has_did_you_mean() -> None:
    with pytest.raises(SpecError, match=r"unknown loss 'CrossEntropy'.*CrossEntropyLoss"):
        build_loss(Loss(name="CrossEntropy"))


@pytest.mark.parametrize("name", sorted(section("loss")))
def test_every_catalogue_loss_builds_with_its_default_inputs(name: str) -> None:
    plan = build_loss(Loss(name=name))
    assert [str(e) for e in plan.inputs] == default_inputs(name)


def test_the_same_model_is_applied_once_per_distinct_field() -> None:
    calls: list[int] = []
    model = torch.nn.Linear(2, 2)
    model.register_forward_hook(lambda *_: calls.append(1))
    evaluator = Evaluator(model, ["input"], torch.float32)
    plan = build_loss(Loss(name="TripletMarginLoss"))
    batch = {k: torch.randn(3, 2) for k in ("anchor", "positive", "negative")}
    memo: dict[str, object] = {}
    values = [evaluator(e, batch, memo) for e in (*plan.inputs, parse("model(anchor)"))]
    assert len(calls) == 3 and values[0] is values[3]


def test_every_named_loss_has_an_example() -> None:
    used = {example(name).loss.name for name in LOSS_EXAMPLES}  # type: ignore[union-attr]
    assert set(NAMED) <= used


def _losses(run_dir: Path) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in lines if r["split"] == "train"]


@pytest.mark.parametrize("name", LOSS_EXAMPLES)
def test_example_loss_falls(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # example data paths are relative to the repository root
    spec = example(name, ["train.epochs=3"])
    assert spec.data is not None
    if spec.data.arrange is not None:  # fewer drawn examples keep the test quick
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={
            "arrange": spec.data.arrange.model_copy(update={"count": 800})})})
    spec = spec.model_copy(update={"log": Log(tensorboard=False, dir=str(tmp_path))})
    summary = train(spec, stream=io.StringIO())
    losses = _losses(summary.run_dir)
    assert len(losses) == 3
    assert losses[-1] < losses[0] - 0.01 * abs(losses[0]), losses


def test_loss_input_functions_are_documented_and_implemented_alike() -> None:
    from nnspec.lang import loss_inputs
    from nnspec.run import losses

    assert losses.FUNCTIONS.keys() == loss_inputs.FUNCTIONS.keys()


def test_sigmoid_focal_loss_is_torchvisions_with_the_spec_arguments() -> None:
    from torchvision.ops import sigmoid_focal_loss

    plan = build_loss(Loss(name="sigmoid_focal_loss", args={"alpha": 0.5, "gamma": 1.0}))
    assert [str(e) for e in plan.inputs] == ["output", "target"]
    logits, targets = torch.randn(6, 1), torch.tensor([0, 1, 1, 0, 1, 0])
    values = loss_args("sigmoid_focal_loss", [logits, targets])  # (6,) ints -> (6, 1) floats
    expected = sigmoid_focal_loss(logits, targets.float()[:, None], 0.5, 1.0, "mean")
    assert torch.equal(plan.module(*values), expected)


def test_sigmoid_focal_loss_arguments_are_checked_by_validate_without_torch(
        tmp_path: Path) -> None:
    from nnspec.api import validate

    spec = tmp_path / "focal.yaml"
    spec.write_text((ROOT / "examples" / "loss_sigmoid_focal.yaml").read_text())
    with pytest.raises(SpecError, match=r"loss\.sigmoid_focal_loss\.reduction: expected one of "
                       "'mean', 'sum', found 'none'"):
        validate(spec, shapes=False, overrides=["loss.sigmoid_focal_loss.reduction=none"])
    with pytest.raises(SpecError, match=r"loss\.inputs: sigmoid_focal_loss takes 2 inputs "
                       r"\(inputs, targets\), found 1"):
        validate(spec, shapes=False, overrides=["loss.inputs=[output]"])
