"""train.early_stopping and train.max_time: a run ends early, says why, and resumes correctly."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from run_fixtures import DIGITS_MLP, spec_from

from nnspec.errors import SpecError
from nnspec.run import train
from nnspec.run.commands import train_command

# lr 0.5 overfits the small MLP quickly: val.loss stops improving after a few epochs
NOISY = DIGITS_MLP.replace("lr: 0.1", "lr: 0.5").replace(
    "monitor: val.accuracy}", "monitor: val.accuracy, epochs: 40}").replace("epochs: 2, ", "")


def _records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _spec(tmp_path: Path, train_extra: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(NOISY.replace("epochs: 40}", f"epochs: 40, {train_extra}}}"))
    return path


def test_early_stopping_ends_the_run_and_records_why(tmp_path: Path) -> None:
    path = _spec(tmp_path, "early_stopping: {patience: 2, monitor: val.loss}")
    err = io.StringIO()
    assert train_command(str(path), [], run_dir=str(tmp_path / "run"), err=err) == 0
    records = _records(tmp_path / "run")
    losses = [r["loss"] for r in records if r.get("split") == "val"]
    stop = records[-1]
    assert stop["event"] == "stop" and stop["reason"] == "early_stopping"
    best = min(range(len(losses)), key=losses.__getitem__)
    assert stop["best_epoch"] == best + 1 and len(losses) == best + 1 + 2 < 40
    assert stop["epoch"] == len(losses) and stop["monitor"] == "val.loss"
    text = err.getvalue()
    assert f"stopped early: val.loss did not improve by more than 0 for 2 epochs (best " \
        f"{losses[best]:.4f} at epoch {best + 1}); {len(losses)} epochs in" in text
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "stopped early" and summary["epochs"] == len(losses)


def test_min_delta_and_monitor_default_to_train_monitor(tmp_path: Path) -> None:
    path = _spec(tmp_path, "early_stopping: {patience: 1, min_delta: 0.5}")
    spec_run = train(str(path), run_dir=tmp_path / "run", stream=io.StringIO())
    # val.accuracy (train.monitor, max) can never gain 0.5 after epoch 1: stops at epoch 2
    assert spec_run.epochs == 2 and spec_run.stopped is not None
    assert "val.accuracy did not improve by more than 0.5 for 1 epochs" in spec_run.stopped


def test_early_stopping_state_survives_resume(tmp_path: Path) -> None:
    """Stopped after 3 epochs of a 40-epoch run, resumed: the count of epochs without an
    improvement goes on from the checkpoint, so it ends where the uninterrupted run ends."""
    path = _spec(tmp_path, "early_stopping: {patience: 3, monitor: val.loss}")
    whole = train(str(path), run_dir=tmp_path / "whole", stream=io.StringIO())
    assert whole.stopped and whole.epochs > 3
    first = train(str(path), overrides=["train.epochs=3"], run_dir=tmp_path / "cut",
                  stream=io.StringIO())
    assert first.stopped is None and first.epochs == 3
    resumed = train(str(path), resume=tmp_path / "cut", stream=io.StringIO())
    assert resumed.epochs == whole.epochs and resumed.stopped == whole.stopped
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_early_stopped_run_stops_at_once_unless_patience_is_raised(
        tmp_path: Path) -> None:
    path = _spec(tmp_path, "early_stopping: {patience: 1, monitor: val.loss}")
    first = train(str(path), run_dir=tmp_path / "run", stream=io.StringIO())
    again = train(str(path), resume=tmp_path / "run", stream=io.StringIO())
    assert again.epochs == first.epochs and "raise train.early_stopping.patience" in str(
        again.stopped)
    more = train(str(path), overrides=["train.early_stopping.patience=3"],
                 resume=tmp_path / "run", stream=io.StringIO())
    assert more.epochs > first.epochs


def test_max_time_stops_with_a_checkpoint_that_resumes(tmp_path: Path) -> None:
    path = _spec(tmp_path, "max_time: 0.001")
    err = io.StringIO()
    assert train_command(str(path), [], run_dir=str(tmp_path / "run"), err=err) == 0
    assert "stopped at the time limit: train.max_time 0.001s reached" in err.getvalue(), \
        err.getvalue()
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 0 and state["position"] == 1  # after the first step
    assert state["stopping"]["elapsed"] >= 0.001
    stop = _records(tmp_path / "run")[-1]
    assert stop["event"] == "stop" and stop["reason"] == "max_time"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "time limit"
    resumed = train(str(path), overrides=["train.max_time=3600", "train.epochs=2"],
                    resume=tmp_path / "run", stream=io.StringIO())
    assert resumed.stopped is None and resumed.epochs == 2
    assert [r["epoch"] for r in _records(tmp_path / "run") if r.get("split") == "val"] == [1, 2]


def test_a_resumed_run_past_its_time_limit_says_to_raise_it(tmp_path: Path) -> None:
    path = _spec(tmp_path, "max_time: 0.001")
    train(str(path), run_dir=tmp_path / "run", stream=io.StringIO())
    again = train(str(path), resume=tmp_path / "run", stream=io.StringIO())
    assert again.stopped is not None and "raise it to continue" in again.stopped


def test_a_time_limit_reached_right_after_the_best_epoch_ends_cleanly(tmp_path: Path) -> None:
    """The stop record carries the best epoch's number: the hparams written at the end read
    only metric records, never a traceback (KeyError 'split')."""
    path = _spec(tmp_path, "max_time: 3600")
    path.write_text(path.read_text().replace("tensorboard: false", "tensorboard: true"))
    first = train(str(path), overrides=["train.epochs=1"], run_dir=tmp_path / "run",
                  stream=io.StringIO())
    assert first.epochs == 1
    again = train(str(path), overrides=["train.epochs=2", "train.max_time=0.001"],
                  resume=tmp_path / "run", stream=io.StringIO())
    assert again.stopped is not None and "raise it to continue" in again.stopped


@pytest.mark.parametrize(("setting", "message"), [
    ("early_stopping: {patience: 0}", "patience"),
    ("early_stopping: {monitor: val.top5}", "cannot monitor 'val.top5'"),
    ("early_stopping: {min_delta: -1}", "min_delta"),
    ("max_time: 0", "max_time"),
])
def test_bad_stopping_settings_are_located_errors(setting: str, message: str,
                                                   tmp_path: Path) -> None:
    from nnspec.api import load_spec

    path = _spec(tmp_path, setting)
    with pytest.raises(SpecError) as caught:
        load_spec(str(path))
    assert message in str(caught.value) and "s.yaml:" in str(caught.value)


def test_spec_from_keeps_stopping_settings(tmp_path: Path) -> None:
    spec, _ = spec_from(NOISY.replace("epochs: 40}", "epochs: 40, max_time: 60}"), tmp_path)
    assert spec.train.max_time == 60


def test_a_val_monitor_without_a_validation_split_says_it_watches_train(tmp_path: Path) -> None:
    """The best epoch and early stopping silently judged train.accuracy instead."""
    spec, _ = spec_from(DIGITS_MLP, tmp_path, [
        "data.val_split=0", "train.epochs=1", "data.train={range: [0, 64]}",
        "train.early_stopping={patience: 2, monitor: val.loss}"])
    out = io.StringIO()
    train(spec, stream=out)
    lines = out.getvalue().splitlines()
    assert "note: no validation split: train.monitor val.accuracy watches train.accuracy " \
        "instead (set data.val_split or data.val to validate)" in lines
    assert any("train.early_stopping.monitor val.loss watches train.loss" in x for x in lines)
