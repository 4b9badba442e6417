"""train.cuda_graph: when ``auto`` captures the step, why it refuses, and what the run records.

The capture itself needs CUDA; these tests pin the decision, which is made from the built parts
(asked as if the device were CUDA), and the located error ``true`` gives where it is unsafe.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from run_fixtures import DIGITS_MLP, spec_from

from nnspec.errors import SpecError
from nnspec.run import setup, train
from nnspec.run.graphed import Stepper, decide, stepper_for, unsafe_reasons

CUDA = torch.device("cuda")


def _parts(tmp_path: Path, *overrides: str) -> setup.Parts:
    spec, _ = spec_from(DIGITS_MLP, tmp_path, list(overrides))
    return setup.build(spec)


@pytest.mark.parametrize("overrides", [
    (), ("optimizer=Adam",), ("optimizer=AdamW",), ("optimizer=RMSprop",),
    ("train.precision=bf16-mixed",), ("train.grad_clip=1.0",), ("data.drop_last=true",),
    ("train.cuda_graph=true",),
], ids=["sgd-momentum", "adam", "adamw", "rmsprop", "bf16", "clip", "drop-last", "true"])
def test_auto_captures_where_it_is_safe(tmp_path: Path, overrides: tuple[str, ...]) -> None:
    parts = _parts(tmp_path, *overrides, "train.device=cpu")
    assert unsafe_reasons(parts, CUDA) == []
    assert decide(parts, CUDA).graph


@pytest.mark.parametrize(("overrides", "reason"), [
    (("train.precision=16-mixed",), "gradient scaler"),
    (("train.accumulate=2",), "train.accumulate is not 1"),
    (("optimizer=LBFGS",), "LBFGS re-evaluates the loss"),
    (("optimizer=Adagrad",), "Adagrad has no capturable mode"),
    (("scheduler={StepLR: {step_size: 1}}",), "scheduler"),
    (("train.compile=true",), "train.compile is on"),
    (("data.resident=false",), "not resident on the device"),
    (("data.batch_size=5000",), "no full batch"),
], ids=["fp16-scaler", "accumulate", "lbfgs", "adagrad", "scheduler", "compile",
        "dataloader", "no-full-batch"])
def test_auto_refuses_unsafe_settings_and_says_why(tmp_path: Path, overrides: tuple[str, ...],
                                                   reason: str) -> None:
    parts = _parts(tmp_path, *overrides)
    reasons = unsafe_reasons(parts, CUDA)
    assert any(reason in r for r in reasons), reasons
    decision = decide(parts, CUDA)
    assert not decision.graph and reason in decision.reason


def test_the_cpu_is_never_graphed(tmp_path: Path) -> None:
    parts = _parts(tmp_path)
    assert decide(parts).reason == "the device is cpu, not CUDA"
    assert type(stepper_for(parts)) is Stepper


def test_false_turns_it_off(tmp_path: Path) -> None:
    parts = _parts(tmp_path, "train.cuda_graph=false")
    assert not decide(parts, CUDA).graph


def test_true_where_unsafe_is_a_located_error(tmp_path: Path) -> None:
    parts = _parts(tmp_path, "train.cuda_graph=true", "train.accumulate=2")
    with pytest.raises(SpecError, match="cannot be captured as a CUDA graph") as info:
        decide(parts, CUDA)
    problem = info.value.problems[0]
    assert problem.path == ("train", "cuda_graph")
    assert "train.accumulate is not 1" in problem.message


def test_true_on_the_cpu_fails_before_training(tmp_path: Path) -> None:
    spec, _ = spec_from(DIGITS_MLP, tmp_path, ["train.cuda_graph=true"])
    with pytest.raises(SpecError, match="the device is cpu, not CUDA"):
        train(spec, stream=io.StringIO())
    assert not (tmp_path / "runs").exists()


def test_the_run_directory_and_the_summary_say_which_path_ran(tmp_path: Path) -> None:
    spec, _ = spec_from(DIGITS_MLP, tmp_path, ["train.epochs=1"])
    out = io.StringIO()
    summary = train(spec, stream=out)
    run = json.loads((summary.run_dir / "resolved.json").read_text())["run"]
    assert run["step"] == "eager" and run["cuda_graph"] is False
    assert run["cuda_graph_reason"] == "the device is cpu, not CUDA"
    assert (run["precision"], run["world_size"], run["backend"]) == ("32", 1, None)
    path = ("data resident on cpu, eager (auto), precision 32 (auto), contiguous (auto), "
            "single process")
    assert run["path"] == path
    text = out.getvalue()
    assert f"parameters, {path}) -> " in text.splitlines()[0]
    assert f"({path})" in text.splitlines()[-1] and text.splitlines()[-1].startswith("done:")


def test_a_full_batch_is_the_training_splits_own_size_not_data_batch_size(
        tmp_path: Path) -> None:
    """data.train.batch_size != data.batch_size: the graph captures the split's full batches
    (deciding by data.batch_size, a run never captured yet reported that it did)."""
    from nnspec.lang.spec import Data, DataSplit, Named
    from nnspec.run.graphed import is_full_batch
    from nnspec.run.plan import split_plan

    data = Data(dataset=Named(name="SKLearn"), batch_size=64, train=DataSplit(batch_size=32))
    plan = split_plan(data, "train")
    assert (plan.batch_size, plan.is_full(32), plan.is_full(64)) == (32, True, False)
    assert split_plan(data, "val").batch_size == 128  # evaluation: twice data.batch_size
    parts = _parts(tmp_path, "data.train={batch_size: 32}", "data.batch_size=64",
                   "train.device=cpu")
    assert parts.batches["train"].plan.batch_size == 32
    batch = {"input": torch.zeros(32, 64), "target": torch.zeros(32, dtype=torch.long)}
    assert is_full_batch(parts, batch)
    assert not is_full_batch(parts, {k: torch.cat([v, v]) for k, v in batch.items()})
    assert decide(parts, CUDA).graph
