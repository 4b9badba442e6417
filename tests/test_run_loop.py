"""The loop's features: run directory, metrics, checkpoints, errors, optimisation settings."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from run_fixtures import DIGITS_MLP, ROOT, lenet_text, spec_from, tiny_mnist

from nnspec.catalogue import section
from nnspec.lang.spec import Named, Scheduler, Spec
from nnspec.run import train
from nnspec.run.commands import eval_command, train_command
from nnspec.run.optim import Warmup, build_optimizer

SMALL = DIGITS_MLP.replace("  val_split: 0.2\n", "  train: {range: [0, 1280]}\n"
                           "  val: {range: [1280, 1797]}\n")


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _with(spec: Spec, section_name: str, **changes: Any) -> Spec:
    current = getattr(spec, section_name)
    return spec.model_copy(update={section_name: current.model_copy(update=changes)})


def test_run_directory_holds_spec_metrics_events_and_loadable_checkpoints(tmp_path: Path) -> None:
    spec, path = spec_from(DIGITS_MLP, tmp_path, tensorboard=True)
    spec = spec.model_copy(update={"source_text": path.read_text()})
    summary = train(spec, stream=io.StringIO())
    run = summary.run_dir
    assert (run / "spec.yaml").read_text() == path.read_text()
    resolved = json.loads((run / "resolved.json").read_text())
    assert resolved["optimizer"]["args"] == {"lr": 0.1, "momentum": 0.9}
    assert resolved["run"]["device"] == "cpu"
    assert resolved["run"]["data"] == {"train": "resident on cpu", "val": "resident on cpu"}
    records = _records(run)
    assert [(r["epoch"], r["split"]) for r in records] == [
        (1, "train"), (1, "val"), (2, "train"), (2, "val")]
    for r in records:
        assert {"loss", "accuracy", "samples_per_s", "seconds", "time"} <= set(r)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("last", "best"):
        state = torch.load(run / "checkpoints" / f"{name}.pt", weights_only=True)
        assert set(state["model"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    best = max(r["accuracy"] for r in records if r["split"] == "val")
    assert summary.best_value == best


def test_train_command_prints_a_summary(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL.replace("log: {tensorboard: false}", f"log: {{tensorboard: false, "
                                  f"dir: {tmp_path / 'runs'}}}"))
    err = io.StringIO()
    assert train_command(str(path), ["train.epochs=1"], err=err) == 0
    assert "done: best val.accuracy" in err.getvalue() and "epoch 1/1" in err.getvalue()


def test_non_finite_loss_stops_with_exit_3_naming_the_step(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL.replace("lr: 0.1", "lr: 1.0e+30"))
    err = io.StringIO()
    code = train_command(str(path), [], run_dir=str(tmp_path / "run"), err=err)
    assert code == 3
    assert "the loss is not finite at step " in err.getvalue()
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_existing_run_directory_needs_resume(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL)
    assert train_command(str(path), ["train.epochs=1"], run_dir=str(tmp_path / "r"),
                         err=io.StringIO()) == 0
    err = io.StringIO()
    assert train_command(str(path), ["train.epochs=1"], run_dir=str(tmp_path / "r"),
                         err=err) == 3
    assert "--resume" in err.getvalue()


def test_eval_writes_metrics_and_refuses_a_crafted_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL)
    assert train_command(str(path), ["train.epochs=1"], run_dir=str(tmp_path / "r"),
                         err=io.StringIO()) == 0
    out = io.StringIO()
    ckpt = tmp_path / "r" / "checkpoints" / "best.pt"
    assert eval_command(str(path), str(ckpt), "val", out=out, err=io.StringIO()) == 0
    written = json.loads((tmp_path / "r" / "eval-val.json").read_text())
    assert written["split"] == "val" and written["accuracy"] > 0.5
    assert f"val.accuracy {written['accuracy']:.4f}" in out.getvalue()

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Evil()}))
    err = io.StringIO()
    assert eval_command(str(path), str(evil), "val", err=err) == 3
    assert "cannot load checkpoint" in err.getvalue()


def test_data_that_does_not_fit_the_input_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = SMALL.replace("input: [64]", "input: [1, 8, 8]")
    path.write_text(text)
    line = text.splitlines().index("input: [1, 8, 8]") + 1
    err = io.StringIO()
    assert train_command(str(path), [], run_dir=str(tmp_path / "r"), err=err) == 2
    assert err.getvalue() == (
        f"{path}:{line}:8: error: input: the data's input samples have shape [64], the spec's "
        "input is [1, 8, 8] (set input: [64], or reshape the data with transforms)\n")
    assert not (tmp_path / "r").exists()


def test_accumulating_two_half_batches_equals_one_full_batch(tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL.replace("momentum: 0.9", "momentum: 0.0"), tmp_path)
    spec = _with(spec, "train", epochs=1, metrics=[], monitor="train.loss")
    full = train(_with(spec, "data", batch_size=32), stream=io.StringIO())
    half = train(_with(_with(spec, "data", batch_size=16), "train", accumulate=2),
                 stream=io.StringIO())
    a = torch.load(full.run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(half.run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_gradient_clipping_bounds_each_step(tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL.replace("momentum: 0.9", "momentum: 0.0"), tmp_path)
    torch.manual_seed(0)
    spec = _with(spec, "train", epochs=1, grad_clip=1e-3)
    summary = train(spec, stream=io.StringIO())
    after = torch.load(summary.run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    from nnspec.api import compile as build

    torch.manual_seed(0)
    before = build(spec).state_dict()
    moved = torch.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in after))
    assert 0 < moved <= 20 * 0.1 * 1e-3 + 1e-6  # 20 steps of lr 0.1 times a gradient <= 1e-3


def test_step_lr_per_epoch_is_recorded(tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL, tmp_path)
    spec = spec.model_copy(update={"scheduler": Scheduler(
        name="StepLR", args={"step_size": 1, "gamma": 0.5})})
    summary = train(_with(spec, "train", epochs=3), stream=io.StringIO())
    lrs = [r["lr"] for r in _records(summary.run_dir) if r["split"] == "train"]
    assert lrs == [0.1, 0.05, 0.025]


def test_warmup_scales_the_learning_rate_linearly_then_lets_go() -> None:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.4)
    warmup = Warmup(optimizer, 4)
    seen = []
    for step in range(6):
        warmup.begin(step)
        seen.append(optimizer.param_groups[0]["lr"])
        warmup.end()
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])


SCHEDULERS: dict[str, dict[str, Any]] = {
    "StepLR": {"step_size": 1}, "MultiStepLR": {"milestones": [1]}, "ConstantLR": {},
    "LinearLR": {}, "ExponentialLR": {"gamma": 0.9}, "CosineAnnealingLR": {},
    "CosineAnnealingWarmRestarts": {"T_0": 2}, "CyclicLR": {"base_lr": 0.01, "max_lr": 0.1},
    "OneCycleLR": {}, "PolynomialLR": {}, "ReduceLROnPlateau": {"patience": 0},
}


# ReduceLROnPlateau steps on the monitored metric, so once per epoch only.
SCHEDULER_CASES = [(name, interval) for name in sorted(SCHEDULERS) for interval in ("epoch", "step")
                   if (name, interval) != ("ReduceLROnPlateau", "step")]


@pytest.mark.parametrize(("name", "interval"), SCHEDULER_CASES)
def test_every_scheduler_runs_and_checkpoints(name: str, interval: str, tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL, tmp_path)
    spec = spec.model_copy(update={"scheduler": Scheduler(
        name=name, args=SCHEDULERS[name], interval=interval, warmup_steps=3)})  # type: ignore
    summary = train(_with(spec, "train", epochs=2), stream=io.StringIO())
    state = torch.load(summary.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["scheduler"] is not None


def test_schedulers_needing_python_functions_are_refused(tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL, tmp_path)
    spec = spec.model_copy(update={"scheduler": Scheduler(name="LambdaLR")})
    err = io.StringIO()
    from nnspec.errors import SpecError

    with pytest.raises(SpecError, match="needs a Python function"):
        train(spec, stream=err)
    assert set(SCHEDULERS) | {"LambdaLR", "MultiplicativeLR"} == set(section("scheduler"))


# Mini-batch L-BFGS needs a smaller step and a line search to stay stable.
OPTIMIZER_ARGS = {"LBFGS": {"lr": 0.5, "max_iter": 2, "line_search_fn": "strong_wolfe"}}


@pytest.mark.parametrize("name", sorted(set(section("optimizer")) - {"SparseAdam", "Muon"}))
def test_every_optimizer_takes_steps(name: str, tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL, tmp_path)
    spec = spec.model_copy(update={"optimizer": Named(name=name,
                                                      args=OPTIMIZER_ARGS.get(name, {}))})
    summary = train(_with(spec, "train", epochs=1, metrics=[], monitor="val.loss"),
                    stream=io.StringIO())
    assert summary.last["train"]["loss"] < 2.4  # below chance (ln 10 = 2.30...) plus slack


@pytest.mark.parametrize("name, message", [
    ("Muon", "only supports 2D parameters"),
    ("Adamm", "unknown optimizer 'Adamm'"),
])
def test_optimizer_errors_are_spec_errors(name: str, message: str) -> None:
    from nnspec.errors import SpecError

    with pytest.raises(SpecError, match=message):
        build_optimizer(Named(name=name), torch.nn.Linear(2, 2).parameters())


def test_bf16_mixed_precision_trains_on_the_cpu(tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL, tmp_path)
    summary = train(_with(spec, "train", precision="bf16-mixed", epochs=2),
                    stream=io.StringIO())
    records = [r["loss"] for r in _records(summary.run_dir) if r["split"] == "train"]
    assert records[1] < records[0]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_redrawn_progress_bar_and_a_log_plain_lines(tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL, tmp_path, every_n_steps=5)
    terminal, log = _Terminal(), io.StringIO()
    train(_with(spec, "train", epochs=1), stream=terminal)
    train(_with(spec, "train", epochs=1), stream=log)
    assert "\repoch 1/1 [" in terminal.getvalue() and "ETA" in terminal.getvalue()
    assert "samples/s" in terminal.getvalue()
    assert "\r" not in log.getvalue() and "epoch 1/1  train.loss" in log.getvalue()


def test_random_transforms_run_per_sample_through_a_loader(tmp_path: Path) -> None:
    root = tiny_mnist(tmp_path / "mnist", n=64)
    text = lenet_text(root).replace("range: [0, 192]", "range: [0, 48]").replace(
        "range: [192, 256]", "range: [48, 64]").replace(
        "[ToImage, {ToDtype: {scale: true}}]",
        "[ToImage, {RandomCrop: {size: 28, padding: 2}}, {ToDtype: {scale: true}}]")
    spec, _ = spec_from(text, tmp_path)
    summary = train(spec, stream=io.StringIO())
    resolved = json.loads((summary.run_dir / "resolved.json").read_text())
    assert resolved["run"]["data"]["train"].startswith("DataLoader")
    assert resolved["run"]["data"]["val"].startswith("DataLoader")


def test_tensorboard_gets_the_model_graph_scalars_and_hparams(tmp_path: Path) -> None:
    from run_fixtures import lenet_text, tiny_mnist
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = tiny_mnist(tmp_path / "mnist")
    spec, _ = spec_from(lenet_text(root, epochs=2), tmp_path, tensorboard=True, graph=True,
                        every_n_steps=1)
    summary = train(spec, run_dir=tmp_path / "run", stream=io.StringIO())
    events = EventAccumulator(str(summary.run_dir / "tensorboard"))
    events.Reload()
    graph = events.Graph()  # traced after the first epoch's training, once
    assert sum("Conv2d" in node.op or "conv" in node.op.lower() for node in graph.node) >= 2
    tags = events.Tags()["scalars"]
    assert {"train/loss_step", "train/lr", "train/loss", "val/loss"} <= set(tags)
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert len(events.Scalars("train/loss_step")) == 2 * 192 // 32  # every step, two epochs


def test_tensorboard_gets_a_transformer_encoders_graph(tmp_path: Path) -> None:
    """In eval mode the encoder layers' fused fast path failed the trace's sanity check and
    the graph was dropped with a note; it is traced with the plain path, then restored."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    gen = torch.Generator().manual_seed(0)
    data = tmp_path / "tokens.pt"
    torch.save({"inputs": torch.randint(0, 1000, (16, 32), generator=gen),
                "targets": torch.randint(0, 4, (16,), generator=gen)}, data)
    text = (ROOT / "specs" / "transformer_classifier.yaml").read_text() + f"""
data: {{dataset: {{Tensors: {{path: {data}}}}}, batch_size: 8}}
loss: CrossEntropyLoss
optimizer: {{AdamW: {{lr: 0.001}}}}
train: {{epochs: 1, monitor: train.loss}}
"""
    spec, _ = spec_from(text, tmp_path, tensorboard=True, graph=True)
    out = io.StringIO()
    summary = train(spec, run_dir=tmp_path / "run", stream=out)
    assert "model graph was not written" not in out.getvalue()
    events = EventAccumulator(str(summary.run_dir / "tensorboard"))
    events.Reload()
    assert any("TransformerEncoderLayer" in node.name for node in events.Graph().node)
    assert torch.backends.mha.get_fastpath_enabled()  # restored


def test_no_tensorboard_folder_when_it_is_switched_off(tmp_path: Path) -> None:
    from run_fixtures import lenet_text, tiny_mnist

    root = tiny_mnist(tmp_path / "mnist")
    spec, _ = spec_from(lenet_text(root), tmp_path, tensorboard=False)
    summary = train(spec, run_dir=tmp_path / "run", stream=io.StringIO())
    assert not (summary.run_dir / "tensorboard").exists()


def test_flush_denormal_holds_for_the_run_only(tmp_path: Path) -> None:
    from nnspec.run import setup

    tiny = torch.tensor([1e-39])  # a float32 denormal
    spec, _ = spec_from(SMALL, tmp_path)
    flushed = spec.model_copy(update={"train": spec.train.model_copy(
        update={"flush_denormal": True})})
    with setup.flushing_denormals(flushed, torch.device("cpu")):
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) != 0.0
    with setup.flushing_denormals(spec, torch.device("cpu")):  # off: nothing changes
        assert float(tiny * 1.0) != 0.0
    summary = train(_with(flushed, "train", epochs=1), stream=io.StringIO())
    assert "denormals flushed" in json.loads((summary.run_dir / "resolved.json").read_text(
    ))["run"]["path"]
    assert float(tiny * 1.0) != 0.0


def _scalars(run_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return events


def test_log_every_n_steps_counts_over_the_run_so_short_epochs_log(tmp_path: Path) -> None:
    """20 steps an epoch, every_n_steps 50: steps 50 and 100 of 5 epochs log (none did)."""
    spec, _ = spec_from(SMALL, tmp_path, tensorboard=True, graph=False)
    summary = train(_with(spec, "train", epochs=5), stream=_Terminal())
    events = _scalars(summary.run_dir)
    assert [e.step for e in events.Scalars("train/loss_step")] == [50, 100]
    assert [e.step for e in events.Scalars("train/lr")] == [50, 100]


def test_tensorboard_hparams_hold_the_best_epochs_metrics_not_the_last(tmp_path: Path) -> None:
    spec, _ = spec_from(SMALL.replace("lr: 0.1", "lr: 0.5"), tmp_path, tensorboard=True,
                        graph=False)
    summary = train(_with(spec, "train", epochs=6), stream=io.StringIO())
    records = [r for r in _records(summary.run_dir) if r["split"] == "val"]
    best = max(records, key=lambda r: r["accuracy"])
    assert records[-1]["accuracy"] != best["accuracy"]  # the case the test is about
    events = _scalars(summary.run_dir)
    assert events.Scalars("hparam/val.accuracy")[0].value == pytest.approx(best["accuracy"])
    assert events.Scalars("hparam/val.loss")[0].value == pytest.approx(best["loss"])
