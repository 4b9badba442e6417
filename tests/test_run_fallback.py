"""data.fallback: a stand-in dataset where the spec's own cannot be found, said out loud; and
examples/resnet18_cifar.yaml, which trains offline on it where CIFAR-10 is absent."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from run_fixtures import DIGITS_MLP, example, spec_from

from nnspec.errors import RunError
from nnspec.lang.spec import Log
from nnspec.run import train
from tests.conftest import cli

MISSING = """
  dataset: {CIFAR10: {root: ROOT, download: false}}
  fallback:
    note: the bundled digits instead
    dataset: {SKLearn: {name: digits}}
"""


def _missing_cifar(tmp_path: Path, fallback: bool = True) -> str:
    text = MISSING.replace("ROOT", str(tmp_path / "nothing-here"))
    if not fallback:
        text = text.split("  fallback:")[0]
    return DIGITS_MLP.replace("  dataset: {SKLearn: {name: digits}}\n", text)


def test_a_missing_dataset_trains_on_the_fallback_and_says_so(tmp_path: Path) -> None:
    spec, _ = spec_from(_missing_cifar(tmp_path), tmp_path, ["train.epochs=1"])
    out = io.StringIO()
    summary = train(spec, stream=out)
    line = out.getvalue().splitlines()[1]
    assert line.startswith("data: CIFAR10 not found under ") and line.endswith(
        "; training on data.fallback: the bundled digits instead")
    run = json.loads((summary.run_dir / "resolved.json").read_text())["run"]
    assert run["stand_in"] == line.removeprefix("data: ")


def test_without_a_fallback_a_missing_dataset_is_still_a_run_error(tmp_path: Path) -> None:
    spec, _ = spec_from(_missing_cifar(tmp_path, fallback=False), tmp_path, ["train.epochs=1"])
    with pytest.raises(RunError, match="CIFAR10 not found"):
        train(spec, stream=io.StringIO())


def test_a_dataset_that_is_there_is_used_and_no_stand_in_is_recorded(tmp_path: Path) -> None:
    text = DIGITS_MLP.replace("  standardize: true\n", "  standardize: true\n  fallback: "
                              "{note: unused, dataset: {SKLearn: {name: wine}}}\n")
    spec, _ = spec_from(text, tmp_path, ["train.epochs=1"])
    summary = train(spec, stream=io.StringIO())
    assert "stand_in" not in json.loads((summary.run_dir / "resolved.json").read_text())["run"]


def test_a_misspelt_fallback_dataset_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(_missing_cifar(tmp_path).replace("SKLearn", "SKLaern"))
    code, _, err = cli("validate", "--no-shapes", str(path))
    assert code == 2
    assert "data.fallback.dataset" in err and "unknown dataset 'SKLaern'" in err
    assert "did you mean 'SKLearn'" in err


def test_resnet18_cifar_validates() -> None:
    code, out, err = cli("validate", "examples/resnet18_cifar.yaml")
    assert code == 0, err
    assert "11,173,962 parameters" in out + err


def test_resnet18_cifar_trains_a_step_offline(tmp_path: Path) -> None:
    """The example's default path where CIFAR-10 is absent, cut to one step of 4 images."""
    spec = example("resnet18_cifar.yaml", [
        f"data.root={tmp_path / 'no-cifar'}", "data.batch_size=4",
        "data.fallback.train.range=[0, 4]", "data.fallback.val.range=[1297, 1301]"])
    spec = spec.model_copy(update={"log": Log(tensorboard=False, dir=str(tmp_path))})
    out = io.StringIO()
    summary = train(spec, run_dir=tmp_path / "run", stream=out)
    assert summary.epochs == 1 and summary.best_value is not None
    assert "training on data.fallback: scikit-learn's digits" in out.getvalue()


def test_the_stand_in_line_says_its_own_splits_replace_the_specs(tmp_path: Path) -> None:
    """data.train.range=[0, 8] shortens the spec's dataset, not the fallback's, whose own train
    split replaces it: the line says so, and where to change it (a user took the range to be
    ignored)."""
    text = _missing_cifar(tmp_path).replace(
        "    dataset: {SKLearn: {name: digits}}\n",
        "    dataset: {SKLearn: {name: digits}}\n    train: {range: [0, 64]}\n")
    spec, _ = spec_from(text, tmp_path, ["train.epochs=1", "data.train.range=[0, 8]"])
    out = io.StringIO()
    train(spec, stream=out)
    line = out.getvalue().splitlines()[1]
    assert line.endswith("(its own train range [0, 64] replaces data.train: change it under "
                         "data.fallback)"), line
