"""Mistakes a user makes in the training sections and on the command line, and odd-but-legal
inputs: each is refused with a located message and the right exit code, or does what it says.

Each test pins one defect found by trying to break ``nnspec train``, ``eval`` and overrides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nnspec.api import load_spec
from nnspec.errors import SpecError
from tests.conftest import cli

BASE = """\
nnspec: 1
input: [4]
model:
  - Linear: {out_features: 3}
data: {dataset: {SKLearn: {name: iris}}, val_split: 0.2, batch_size: 16}
loss: CrossEntropyLoss
optimizer: {Adam: {lr: 0.01}}
train: {epochs: 1, metrics: [accuracy]}
"""


def problems(overrides: list[str], text: str = BASE) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(text, overrides)
    return [p.render() for p in info.value.problems]


# -- optimizer and scheduler arguments ------------------------------------------------------

def test_adam_betas_is_an_argument_of_adam_and_adamw() -> None:
    """The catalogue dropped ``betas`` of Adam/AdamW (annotated float | Tensor): 'unknown key'."""
    optimizer = load_spec(BASE, ["optimizer.betas=[0.8, 0.99]"]).optimizer
    assert optimizer is not None and optimizer.args == {"lr": 0.01, "betas": [0.8, 0.99]}
    assert load_spec(BASE, ["optimizer={AdamW: {betas: [0.8, 0.99]}}"]).optimizer is not None
    [message] = problems(["optimizer.betas=[0.9]"])
    assert "optimizer.Adam.betas: expected a list of 2 numbers" in message


def test_multistep_and_cyclic_schedulers_take_their_arguments() -> None:
    """MultiStepLR's milestones and all of CyclicLR's arguments were 'unknown key (allowed: )'."""
    spec = load_spec(BASE, ["scheduler={MultiStepLR: {milestones: [1, 2], gamma: 0.5}}"])
    assert spec.scheduler is not None and spec.scheduler.args["milestones"] == [1, 2]
    spec = load_spec(BASE, ["scheduler={CyclicLR: {base_lr: 0.001, max_lr: 0.01}}"])
    assert spec.scheduler is not None and spec.scheduler.args["max_lr"] == 0.01


@pytest.mark.parametrize(("scheduler", "arg"), [
    ("{CosineAnnealingLR: {T_max: 0}}", "T_max"),        # was a ZeroDivisionError traceback
    ("{StepLR: {step_size: 0}}", "step_size"),           # ZeroDivisionError at the first step
    ("{StepLR: {step_size: -1}}", "step_size"),          # silently decayed every epoch
    ("{ExponentialLR: {gamma: -1}}", "gamma"),           # silently a negative learning rate
    ("{CyclicLR: {base_lr: 0.001, max_lr: 0.01, step_size_up: 0}}", "step_size_up"),
])
def test_scheduler_arguments_torch_cannot_run_are_refused_at_validation(scheduler: str,
                                                                        arg: str) -> None:
    [message] = problems([f"scheduler={scheduler}"])
    assert message.startswith(f"<override 1: scheduler={scheduler}>:1:1: error: scheduler.")
    assert f".{arg}: {arg} must be greater than 0" in message


def test_scheduler_zero_period_exits_2_without_a_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), "scheduler={CosineAnnealingLR: {T_max: 0}}",
                       "--run-dir", str(tmp_path / "run"))
    assert code == 2 and "Traceback" not in err and "T_max must be greater than 0" in err


# -- overrides ------------------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "field", "expected"), [
    (["scheduler={StepLR: {step_size: 2}}", "scheduler.interval=step"], "interval", "step"),
    (["scheduler={StepLR: {step_size: 2}}", "scheduler.warmup_steps=3"], "warmup_steps", 3),
    (["scheduler={StepLR: {step_size: 2}, interval: step}", "scheduler.gamma=0.5"], "args",
     {"step_size": 2, "gamma": 0.5}),
])
def test_override_of_a_scheduler_setting_beside_its_name(overrides: list[str], field: str,
                                                         expected: object) -> None:
    """scheduler.interval=step went into the StepLR arguments: 'unknown key interval'."""
    spec = load_spec(BASE, overrides)
    assert getattr(spec.scheduler, field) == expected


def test_override_of_loss_inputs_beside_its_name() -> None:
    spec = load_spec(BASE, ["loss={CrossEntropyLoss: {label_smoothing: 0.1}}",
                            "loss.inputs=[output, target]", "loss.reduction=sum"])
    assert spec.loss is not None and spec.loss.inputs == ["output", "target"]
    assert spec.loss.args == {"label_smoothing": 0.1, "reduction": "sum"}


# -- metrics, monitor, data ranges: validation-time, located --------------------------------

@pytest.mark.parametrize(("override", "expected"), [
    ("train.metrics=[acuracy]",
     "train.metrics[0]: unknown metric 'acuracy' (did you mean 'accuracy'?)"),
    ("train.monitor=val.top5", "train.monitor: cannot monitor 'val.top5' (add top5 to "
     "train.metrics)"),
    ("train.monitor=accuracy", "train.monitor: cannot monitor 'accuracy' (SPLIT.METRIC with "
     "SPLIT train or val and METRIC one of loss, accuracy)"),
    ("data.train.range=[300, 100]", "data.train.range: range [300, 100) holds no samples "
     "(need start < stop)"),
    ("data.val.range=[5, 5]", "data.val.range: range [5, 5) holds no samples (need start < "
     "stop)"),
])
def test_metric_monitor_and_range_mistakes_point_at_the_override(override: str,
                                                                 expected: str) -> None:
    """Found only by train, with the spec file as the only location (no line, not the override)."""
    [message] = problems([override])
    assert message == f"<override 1: {override}>:1:1: error: {expected}"


def test_metric_mistakes_in_the_file_have_line_and_column(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("train: {epochs: 1, metrics: [accuracy]}",
                                 "train:\n  metrics: [acuracy]\n  monitor: val.mae\n"))
    code, out, err = cli("validate", str(spec))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"{spec}:9:13: error: train.metrics[0]: unknown metric 'acuracy' "
        "(did you mean 'accuracy'?)",
        f"{spec}:10:12: error: train.monitor: cannot monitor 'val.mae' (add mae to "
        "train.metrics)"]


# -- a training split without a single batch ------------------------------------------------

@pytest.mark.parametrize(("overrides", "expected"), [
    (["data.val_split=0.999"], "<override 1: data.val_split=0.999>:1:1: error: data.val_split: "
     "val_split 0.999 leaves the training split almost nothing"),  # refused by validate too
    (["data.drop_last=true", "data.batch_size=200"],
     "<override 1: data.drop_last=true>:1:1: error: data.drop_last: drop_last drops the only "
     "batch: 120 training samples are fewer than the batch size 200"),
])
def test_training_split_without_a_batch_is_refused(tmp_path: Path, overrides: list[str],
                                                   expected: str) -> None:
    """It 'trained' with no step, printed train.loss nan and exited 0."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), *overrides, "--run-dir", str(tmp_path / "run"))
    assert code == 2, err
    assert expected.format(spec=spec) in err


@pytest.mark.parametrize(("data", "message"), [
    ("{dataset: {SKLearn: {name: iris}}, train: {range: [0, 1]}, val_split: 0.2}",
     "val_split 0.2 holds out all 1 training sample, leaving none to train on"),
    ("{dataset: {FakeData: {size: 3, image_size: [4]}}, val_split: 0.9}",
     "val_split 0.9 holds out all 3 training samples, leaving none to train on"),
])
def test_validate_refuses_a_val_split_that_empties_a_dataset_of_known_size(
        tmp_path: Path, data: str, message: str) -> None:
    """It was only found by train, after loading the data, with no line."""
    col = len("data: ") + data.index("val_split: ") + len("val_split: ") + 1
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace(BASE.splitlines()[4], f"data: {data}"))
    code, _, err = cli("validate", str(spec))
    assert code == 2
    assert err == (f"{spec}:5:{col}: error: data.val_split: {message} (lower data.val_split "
                   "(it holds out at least one sample), use more samples, or give data.val its "
                   "own dataset or range)\n")


def test_train_refuses_a_val_split_that_empties_a_file_before_any_work(tmp_path: Path) -> None:
    """A CSV's size is known once it is read: refused then, located, before the model or the
    run directory exists."""
    (tmp_path / "two.csv").write_text("a,b,c,d,y\n1,2,3,4,0\n5,6,7,8,1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace(BASE.splitlines()[4], "data:\n  dataset: {CSV: {path: "
                                 f"{tmp_path / 'two.csv'}, target: y}}}}\n  val_split: 0.75"))
    assert cli("validate", str(spec))[0] == 0  # the size is in the file
    code, _, err = cli("train", str(spec), "--run-dir", str(tmp_path / "run"))
    assert code == 2
    assert err.startswith(f"{spec}:7:14: error: data.val_split: val_split 0.75 holds out all 2 "
                          "training samples, leaving none to train on (lower data.val_split")
    assert not (tmp_path / "run").exists()


# -- eval -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A spec and the best checkpoint of its one-epoch run."""
    folder = tmp_path_factory.mktemp("trained")
    spec = folder / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), "--run-dir", str(folder / "run"))
    assert code == 0, err
    return spec, folder / "run" / "checkpoints" / "best.pt"


def test_eval_of_an_unknown_split_is_a_usage_error(trained: tuple[Path, Path]) -> None:
    """--split bogus was a KeyError traceback and exit 1."""
    spec, best = trained
    code, _, err = cli("eval", str(spec), "--checkpoint", str(best), "--split", "bogus")
    assert code == 2 and "Traceback" not in err
    assert err.strip() == "<command line>: error: unknown split 'bogus' (use --split train, " \
        "val or test)"


def test_eval_with_another_specs_checkpoint_says_what_does_not_fit(
        trained: tuple[Path, Path], tmp_path: Path) -> None:
    """The message stopped at torch's first line, 'Error(s) in loading state_dict for ...'."""
    _, best = trained
    other = tmp_path / "other.yaml"
    other.write_text(BASE.replace("Linear: {out_features: 3}", "Linear: {out_features: 5}"))
    code, _, err = cli("eval", str(other), "--checkpoint", str(best), "--split", "val")
    assert code == 3
    assert f"{best} is not a checkpoint of this spec: '0.weight' has shape [3, 4], the model's " \
        "is [5, 4]" in err and "the run directory's spec.yaml" in err


# -- devices --------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cuda:", "CPU"])
def test_malformed_device_option_is_a_usage_error(tmp_path: Path, device: str) -> None:
    """--device tpu was exit 3 with an unlocated 'error: unknown device'."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), "--device", device, "--run-dir", str(tmp_path / "r"))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == f"<command line>: error: unknown device {device!r} given to --device " \
        "(use auto, cpu, cuda, cuda:N or mps)"
    assert not (tmp_path / "r").exists()


def test_malformed_train_device_is_a_spec_error_at_its_value(tmp_path: Path) -> None:
    [message] = problems(["train.device=tpu"])
    assert message == "<override 1: train.device=tpu>:1:1: error: train.device: unknown " \
        "device 'tpu' (use auto, cpu, cuda, cuda:N or mps)"
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("epochs: 1,", "epochs: 1, device: cuda:x,"))
    code, _, err = cli("validate", str(spec))
    assert code == 2
    assert err.strip() == f"{spec}:8:28: error: train.device: unknown device 'cuda:x' (use " \
        "auto, cpu, cuda, cuda:N or mps)"
    for good in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert load_spec(BASE, [f"train.device={good}"]).train.device == good


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_cuda_is_still_a_run_error(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), "--device", "cuda", "--run-dir", str(tmp_path / "r"))
    assert code == 3 and "CUDA is not available" in err


# -- optimizer, scheduler and loss arguments: at the argument -------------------------------

@pytest.mark.parametrize(("override", "expected"), [
    ("optimizer.Adam.lr=-1", "optimizer.Adam.lr: lr must not be negative, found -1 "
     "(torch.optim refuses a negative learning rate)"),
    ("optimizer.eps=-1e-8", "optimizer.Adam.eps: eps must not be negative, found -1e-08 "
     "(torch.optim refuses a negative epsilon)"),
    ("optimizer={SGD: {lr: 0.1, weight_decay: -0.5}}", "optimizer.SGD.weight_decay: "
     "weight_decay must not be negative, found -0.5 (torch.optim refuses a negative weight "
     "decay)"),
])
def test_negative_optimizer_arguments_are_refused_at_validation(override: str,
                                                                expected: str) -> None:
    """torch's ValueError came at train time, located at the file's optimizer.Adam key."""
    [message] = problems([override])
    assert message == f"<override 1: {override}>:1:1: error: {expected}"


def test_negative_learning_rate_in_the_file_has_its_line_and_column(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("lr: 0.01", "lr: -0.01"))
    code, _, err = cli("validate", str(spec))
    assert code == 2 and err.startswith(f"{spec}:7:24: error: optimizer.Adam.lr: ")


@pytest.mark.parametrize(("overrides", "expected"), [
    (["optimizer.betas=[1.5, 0.9]"], "<override 1: optimizer.betas=[1.5, 0.9]>:1:1: error: "
     "optimizer.Adam.betas: Invalid beta parameter at index 0: 1.5"),
    (["scheduler={LinearLR: {total_iters: 2}}", "scheduler.start_factor=2.0"],
     "<override 2: scheduler.start_factor=2.0>:1:1: error: scheduler.LinearLR.start_factor: "
     "Starting multiplicative factor expected to be greater than 0 and less or equal to 1."),
    (["loss={TripletMarginLoss: {margin: -1.0}}", "data.arrange={kind: triplets}"],
     "<override 1: loss={TripletMarginLoss: {margin: -1.0}}>:1:1: error: "
     "loss.TripletMarginLoss.margin: TripletMarginLoss: expected margin to be greater than 0, "
     "got -1.0 instead"),
])
def test_torch_argument_errors_point_at_the_argument(tmp_path: Path, overrides: list[str],
                                                     expected: str) -> None:
    """torch refuses these when the run builds them: the error named only the optimizer (or
    scheduler, or loss), at its key in the file, not the argument or the override."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), *overrides, "--run-dir", str(tmp_path / "r"))
    assert code == 2 and err.strip() == expected


def test_loss_argument_error_in_the_file_has_its_line_and_column(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("loss: CrossEntropyLoss", "loss:\n  MultiMarginLoss:\n"
                                 "    margin: 1.0\n    p: 3"))
    code, _, err = cli("train", str(spec), "--run-dir", str(tmp_path / "r"))
    assert code == 2
    assert err.strip() == f"{spec}:9:8: error: loss.MultiMarginLoss.p: only p == 1 and p == 2 " \
        "supported"


# -- loss inputs ----------------------------------------------------------------------------

@pytest.mark.parametrize(("inputs", "found"), [("[output]", 1), ("[output, target, target]", 3)])
def test_loss_inputs_of_the_wrong_count_are_refused_before_training(
        tmp_path: Path, inputs: str, found: int) -> None:
    """loss.inputs=[output] failed at the first step: exit 3, 'missing 1 required positional
    argument: target', no location."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, out, err = cli("train", str(spec), f"loss.inputs={inputs}",
                         "--run-dir", str(tmp_path / "r"))
    assert code == 2 and out == ""
    assert err.strip() == f"<override 1: loss.inputs={inputs}>:1:1: error: loss.inputs: " \
        f"CrossEntropyLoss takes 2 inputs (input, target), found {found} (one entry per " \
        "argument; by default [output, target])"


def test_loss_input_without_a_field_points_at_the_entry(tmp_path: Path) -> None:
    """The error was at the file's loss: key, even for an override of loss.inputs."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), "loss.inputs=[output, nosuch]",
                       "--run-dir", str(tmp_path / "r"))
    assert code == 2
    assert err.startswith("<override 1: loss.inputs=[output, nosuch]>:1:1: error: "
                          "loss.inputs[1]: the data has no field(s) ['nosuch']")
    spec.write_text(BASE.replace("loss: CrossEntropyLoss",
                                 "loss:\n  CrossEntropyLoss: {}\n  inputs: [output, nosuch]"))
    code, _, err = cli("train", str(spec), "--run-dir", str(tmp_path / "r2"))
    assert code == 2 and err.startswith(f"{spec}:8:20: error: loss.inputs[1]: ")


# -- data ranges past the end of the dataset ------------------------------------------------

def test_range_past_the_dataset_points_at_the_range(tmp_path: Path) -> None:
    """It pointed at data.dataset in the file, even when the range came from an override."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), "data.train.range=[0, 20000]",
                       "--run-dir", str(tmp_path / "r"))
    assert code == 2
    assert err.strip() == "<override 1: data.train.range=[0, 20000]>:1:1: error: " \
        "data.train.range: range [0, 20000) does not fit a dataset of 150 samples (need start " \
        "< stop <= size)"
    spec.write_text(BASE.replace("batch_size: 16}", "batch_size: 16,\n"
                                 "       train: {range: [0, 20000]}}"))
    code, _, err = cli("train", str(spec), "--run-dir", str(tmp_path / "r2"))
    assert code == 2 and err.startswith(f"{spec}:6:23: error: data.train.range: ")


# -- resume from a checkpoint that is not one -----------------------------------------------

@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_resume_of_a_corrupt_checkpoint_says_it_is_not_readable(
        trained: tuple[Path, Path], tmp_path: Path, damage: str) -> None:
    """A truncated last.pt said 'cannot load checkpoint ...: 174812789' (the unpickler's
    number); an empty one was an IndexError traceback."""
    import shutil

    spec, best = trained
    run = tmp_path / "run"
    shutil.copytree(best.parent.parent, run)
    last = run / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"")
    code, _, err = cli("train", str(spec), "--resume", str(run))
    assert code == 3 and "Traceback" not in err
    assert err.splitlines() == [
        f"error: cannot load checkpoint {last}: not a readable checkpoint (truncated, or not "
        "written by nnspec)",
        "  hint: only checkpoints written by nnspec (plain tensors) are accepted"]


def test_a_safetensors_export_given_as_a_checkpoint_says_what_it_is(
        trained: tuple[Path, Path], tmp_path: Path) -> None:
    """It said 'not a readable checkpoint (... or not written by nnspec)' of nnspec's export."""
    spec, best = trained
    weights = tmp_path / "model.safetensors"
    code, _, err = cli("export", str(spec), "--checkpoint", str(best), "--format",
                       "safetensors", "-o", str(weights))
    assert code == 0, err
    code, _, err = cli("eval", str(spec), "--checkpoint", str(weights))
    assert code == 3 and f"cannot load checkpoint {weights}: it is a safetensors file" in err
    assert "checkpoints/best.pt" in err


# -- top-K with K classes or fewer ----------------------------------------------------------

@pytest.mark.parametrize("metric", ["top5", "top3"])
def test_topk_with_no_more_classes_than_k_is_refused(tmp_path: Path, metric: str) -> None:
    """top5 of a 3-class output was always 1.0, silently."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), f"train.metrics=[{metric}]",
                       "--run-dir", str(tmp_path / "r"))
    assert code == 3
    assert f"error: {metric} of an output with 3 classes is always 1: K = {metric[3:]} must be " \
        "less than the number of classes" in err
    assert "hint: use top2 or less, or accuracy" in err
    spec_ok = load_spec(BASE, ["train.metrics=[top2]"])
    assert spec_ok.train.metrics == ["top2"]


# -- a first step that fails: a hint for what it most often means ---------------------------

@pytest.mark.parametrize(("overrides", "hint"), [
    (["model.0.out_features=2"], "the last layer needs out_features equal to the number of "
     "classes"),
    (["data.dataset={SKLearn: {name: diabetes}}", "input=[10]"], "the loss takes class "
     "indices (integers)"),
], ids=["too-few-outputs", "float-targets"])
def test_a_failing_first_step_hints_the_likely_cause(tmp_path: Path, overrides: list[str],
                                                    hint: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    code, _, err = cli("train", str(spec), *overrides, "train.metrics=[]",
                       "--run-dir", str(tmp_path / "r"))
    assert code == 3 and "the first training step failed" in err and hint in err, err
