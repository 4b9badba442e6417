"""Fine-tuning: weights from a file, freezing, parameter groups, and their located errors.

The oracle is torchvision: its ResNet-18's state_dict, written as a .pth or a .safetensors
file, loads into specs/resnet18.yaml's model, which then gives torchvision's outputs.  Nothing
is downloaded: the weights are torchvision's freshly initialised ones.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from run_fixtures import spec_from
from safetensors.torch import save_file

import nnspec
from nnspec.api import load_spec
from nnspec.errors import SpecError
from nnspec.run import param_groups, setup, train, weights
from nnspec.run.checkpoint import load as load_checkpoint
from tests.conftest import EXAMPLES, SPECS, cli

MLP = """
nnspec: 1
name: digits_ft
input: [64]
model:
  body: {{Linear: {{out_features: 32}}}}
  bn: BatchNorm1d
  relu: ReLU
  fc: {{Linear: {{out_features: 10}}}}
data:
  dataset: {{SKLearn: {{name: digits}}}}
  standardize: true
  val_split: 0.2
  batch_size: 64
loss: CrossEntropyLoss
optimizer: {optimizer}
train: {{epochs: {epochs}, device: cpu, metrics: [accuracy], monitor: val.accuracy}}
{extra}
"""


def mlp_text(extra: str = "", epochs: int = 1,
             optimizer: str = "{SGD: {lr: 0.1, momentum: 0.9}}") -> str:
    return MLP.format(extra=extra, epochs=epochs, optimizer=optimizer)


def mlp_weights(folder: Path, head: int = 10) -> Path:
    """A state_dict file for the MLP (another seed than the run's, so loading shows)."""
    torch.manual_seed(123)
    model = torch.nn.Sequential()
    model.add_module("body", torch.nn.Linear(64, 32))
    model.add_module("bn", torch.nn.BatchNorm1d(32))
    model.add_module("relu", torch.nn.ReLU())
    model.add_module("fc", torch.nn.Linear(32, head))
    model.bn.running_mean.uniform_()  # statistics that differ from a fresh BatchNorm's
    path = folder / "mlp.pth"
    torch.save(model.state_dict(), path)
    return path


def resnet18_file(folder: Path, kind: str) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    if kind == "pth":
        path = folder / "resnet18.pth"
        torch.save(reference.state_dict(), path)
    else:
        path = folder / "resnet18.safetensors"
        save_file(reference.state_dict(), str(path))
    return reference, path


def load_into_model(spec_path: Path | str, overrides: list[str]) -> tuple[torch.nn.Module,
                                                                           weights.Report]:
    spec = load_spec(str(spec_path), overrides)
    model = nnspec.compile(spec)
    source = weights.read(spec)
    assert source is not None and spec.weights is not None
    return model, weights.apply(model, source, spec.weights)


# ---- start from weights ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_torchvision_weights_file_loads_into_the_zoo_spec_exactly(tmp_path: Path,
                                                                  kind: str) -> None:
    reference, path = resnet18_file(tmp_path, kind)
    model, report = load_into_model(SPECS / "resnet18.yaml",
                                    ["input=[3, 64, 64]", f"weights.from={path}"])
    assert (report.missing, report.unused, report.mismatched) == ([], [], [])
    assert len(report.loaded) == len(reference.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference(x), rtol=0, atol=0)


def test_a_changed_head_loads_the_rest_and_lists_the_skipped_keys(tmp_path: Path) -> None:
    reference, path = resnet18_file(tmp_path, "pth")
    model, report = load_into_model(SPECS / "resnet18.yaml", [
        "input=[3, 64, 64]", "vars.num_classes=10", f"weights.from={path}",
        "weights.strict=false"])
    assert [k for k, _, _ in report.mismatched] == ["fc.weight", "fc.bias"]
    assert ("fc.weight", [1000, 512], [10, 512]) in report.mismatched
    lines = "\n".join(report.lines())
    assert "skipped fc.weight: the file's shape [1000, 512], the model's [10, 512]" in lines
    ours = model.state_dict()
    for key, value in reference.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(ours[key], value), key


def test_weights_skip_leaves_out_the_head_and_stays_strict(tmp_path: Path) -> None:
    _, path = resnet18_file(tmp_path, "pth")
    _, report = load_into_model(SPECS / "resnet18.yaml", [
        "input=[3, 64, 64]", "vars.num_classes=10", f"weights.from={path}",
        "weights.skip=['fc.*']"])
    assert report.skipped == ["fc.weight", "fc.bias"]
    assert "weights: skipped by weights.skip: fc.weight, fc.bias" in report.lines()


def test_prefixes_are_stripped_and_renamed(tmp_path: Path, write_spec) -> None:
    state = torch.load(mlp_weights(tmp_path), weights_only=True)
    mapped = {("module." + k).replace("module.fc.", "module.head."): v for k, v in state.items()}
    torch.save({"state_dict": mapped, "epoch": 3}, tmp_path / "wrapped.pt")
    spec = write_spec(mlp_text("weights: {from: wrapped.pt, strip_prefix: module., "
                               "rename: {head.: fc.}}"))
    model, report = load_into_model(spec, [])
    assert (report.missing, report.unused) == ([], [])
    assert torch.equal(model.state_dict()["fc.weight"], state["fc.weight"])


def test_an_nnspec_run_directory_gives_its_best_checkpoint(tmp_path: Path) -> None:
    spec, _ = spec_from(mlp_text(), tmp_path)
    first = train(spec, run_dir=tmp_path / "first", stream=io.StringIO())
    best = load_checkpoint(first.run_dir / "checkpoints" / "best.pt")["model"]
    model, report = load_into_model(tmp_path / "spec.yaml", [f"weights.from={first.run_dir}"])
    assert report.path == first.run_dir / "checkpoints" / "best.pt"
    assert all(torch.equal(model.state_dict()[k], v) for k, v in best.items())


def test_weights_file_is_short_for_weights_from_file(tmp_path: Path, write_spec) -> None:
    mlp_weights(tmp_path)
    _, report = load_into_model(write_spec(mlp_text("weights: mlp.pth")), [])
    assert report.path == tmp_path / "mlp.pth" and not report.missing


def test_a_relative_path_is_read_from_the_spec_files_folder(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> \
        None:
    (tmp_path / "specs").mkdir()
    mlp_weights(tmp_path / "specs")
    spec_path = tmp_path / "specs" / "spec.yaml"
    spec_path.write_text(mlp_text("weights: {from: mlp.pth}"))
    monkeypatch.chdir(tmp_path)  # elsewhere: the spec's folder decides, not the working one
    _, report = load_into_model("specs/spec.yaml", [])
    assert report.path == Path("specs/mlp.pth")


# ---- freezing --------------------------------------------------------------------------------

FREEZE = """
weights: {from: mlp.pth}
freeze:
  - {match: {name: [body, bn]}, stats: true}
log: {tensorboard: false}
"""


def trained_state(tmp_path: Path, extra: str, epochs: int = 2,
                  overrides: list[str] | None = None) -> tuple[dict[str, torch.Tensor],
                                                               dict[str, torch.Tensor], str]:
    """(the weights file's tensors, the last checkpoint's, what the run printed)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    file = mlp_weights(tmp_path)
    (tmp_path / "spec.yaml").write_text(mlp_text(extra, epochs))
    out = io.StringIO()
    summary = train(tmp_path / "spec.yaml", overrides=overrides or [],
                    run_dir=tmp_path / "run", stream=out)
    last = load_checkpoint(summary.run_dir / "checkpoints" / "last.pt")["model"]
    return torch.load(file, weights_only=True), last, out.getvalue()


def test_frozen_parameters_and_statistics_stay_while_the_others_train(tmp_path: Path) -> None:
    start, end, printed = trained_state(tmp_path, FREEZE)
    for key in ("body.weight", "body.bias", "bn.weight", "bn.bias", "bn.running_mean",
                "bn.running_var"):
        assert torch.equal(start[key], end[key]), key
    assert not torch.equal(start["fc.weight"], end["fc.weight"])
    assert "freeze: 330 of 2,474 parameters train (2,144 frozen)" in printed
    assert "running statistics of 1 norm layer frozen too" in printed


def test_frozen_parameters_are_left_out_of_the_optimizer(tmp_path: Path) -> None:
    spec, _ = spec_from(mlp_text(FREEZE.replace("mlp.pth", str(mlp_weights(tmp_path)))),
                        tmp_path)
    parts = setup.build(spec)
    params = [p for g in parts.optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in params} == {id(parts.model.fc.weight), id(parts.model.fc.bias)}
    assert not parts.model.body.weight.requires_grad


def test_staged_unfreezing_trains_a_layer_from_the_given_epoch(tmp_path: Path) -> None:
    staged = "freeze:\n  - {match: {name: body}, epochs: 1}\nweights: {from: mlp.pth}\n" \
        "log: {tensorboard: false}"
    start, one, printed = trained_state(tmp_path / "a", staged, epochs=1)
    assert torch.equal(start["body.weight"], one["body.weight"])
    assert not torch.equal(start["fc.weight"], one["fc.weight"])
    assert "frozen until epoch 1, trained from epoch 2" in printed
    _, two, _ = trained_state(tmp_path / "b", staged, epochs=2)
    assert not torch.equal(start["body.weight"], two["body.weight"])


def test_a_resumed_staged_run_ends_as_the_uninterrupted_one(tmp_path: Path) -> None:
    staged = "freeze:\n  - {match: {name: body}, epochs: 1}\nlog: {tensorboard: false}"
    _, whole, _ = trained_state(tmp_path / "whole", staged, epochs=2)
    trained_state(tmp_path / "cut", staged, epochs=1)
    train(tmp_path / "cut" / "spec.yaml", overrides=["train.epochs=2"],
          resume=tmp_path / "cut" / "run", stream=io.StringIO())
    resumed = load_checkpoint(tmp_path / "cut" / "run" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


# ---- parameter groups ------------------------------------------------------------------------

GROUPS = """{AdamW: {lr: 0.01, weight_decay: 0.05},
  groups: [{match: {param: bias}, weight_decay: 0},
           {match: {type: BatchNorm1d}, weight_decay: 0},
           {match: {name: body}, lr: "${0.01 * 0.5 ** (max_depth - depth)}"}]}"""


def test_parameter_groups_reach_the_optimizer_with_their_settings(tmp_path: Path) -> None:
    spec, _ = spec_from(mlp_text(optimizer=GROUPS), tmp_path)
    parts = setup.build(spec)
    groups = {g["name"]: g for g in parts.optimizer.param_groups}
    model = parts.model
    by_param = {id(p): g for g in parts.optimizer.param_groups for p in g["params"]}
    body_w, body_b = by_param[id(model.body.weight)], by_param[id(model.body.bias)]
    # body is depth 0, the head depth 2: layer-wise decay 0.01 * 0.5 ** 2
    assert body_w["lr"] == pytest.approx(0.0025) and body_w["weight_decay"] == 0.05
    assert body_b["lr"] == pytest.approx(0.0025) and body_b["weight_decay"] == 0
    bn = by_param[id(model.bn.weight)]
    assert bn is by_param[id(model.bn.bias)] and bn["weight_decay"] == 0 and bn["lr"] == 0.01
    assert by_param[id(model.fc.weight)]["weight_decay"] == 0.05
    assert by_param[id(model.fc.bias)] is bn  # equal settings share one group
    assert set(groups) == {"groups[2]", "groups[0]+groups[2]", "groups[0]+groups[1]",
                           "default"}


def test_one_group_is_said_in_the_singular(tmp_path: Path) -> None:
    one = "{AdamW: {lr: 0.01}, groups: [{match: {param: '*'}, weight_decay: 0}]}"
    spec, _ = spec_from(mlp_text(optimizer=one), tmp_path)
    model = setup.build(spec).model
    assert param_groups.lines(param_groups.plan(model, spec), spec)[0] == \
        "optimizer: 1 parameter group"


def test_a_scheduler_acts_on_every_group_and_the_groups_are_recorded(tmp_path: Path) -> None:
    text = mlp_text(optimizer=GROUPS, extra="scheduler: {StepLR: {step_size: 1, gamma: 0.5}}")
    spec, _ = spec_from(text, tmp_path, tensorboard=True)
    summary = train(spec, run_dir=tmp_path / "run", stream=io.StringIO())
    state = load_checkpoint(summary.run_dir / "checkpoints" / "last.pt")
    lrs = sorted(g["lr"] for g in state["optimizer"]["param_groups"])
    assert lrs == pytest.approx(sorted([0.0025 / 2, 0.0025 / 2, 0.01 / 2, 0.01 / 2]))
    resolved = json.loads((summary.run_dir / "resolved.json").read_text())
    recorded = {g["name"]: g for g in resolved["run"]["param_groups"]}
    assert recorded["groups[2]"]["params"] == ["body.weight"]
    assert recorded["groups[2]"]["settings"] == {"lr": pytest.approx(0.0025)}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(summary.run_dir / "tensorboard"))
    board.Reload()
    assert {f"train/lr_group{i}" for i in range(4)} <= set(board.Tags()["scalars"])


# ---- located errors --------------------------------------------------------------------------

def cli_train(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    code, _, err = cli("train", str(path), "log.tensorboard=false", "--run-dir",
                       str(tmp_path / "run"), *args)
    return code, err


class Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


@pytest.mark.parametrize("content", ["random", "pickle", "empty"])
def test_an_unreadable_weights_file_is_a_located_error(tmp_path: Path, content: str,
                                                      capsys: pytest.CaptureFixture[str]) -> \
        None:
    path = tmp_path / "bad.pth"
    if content == "random":
        path.write_bytes(bytes(range(256)) * 4)
    elif content == "pickle":
        torch.save({"fc.weight": Evil()}, path)
    else:
        path.write_bytes(b"")
    code, err = cli_train(tmp_path, mlp_text("weights: {from: bad.pth}"))
    assert code == 2
    assert re.search(r"spec.yaml:\d+:17: error: weights.from: cannot read .*bad.pth", err)
    assert "pwned" not in capsys.readouterr().out and "Evil" not in err and "print" not in err


def test_a_missing_weights_file_is_a_located_error_at_train_time_only(tmp_path: Path) -> None:
    text = mlp_text("weights: {from: nowhere.pth}")
    code, err = cli_train(tmp_path, text)
    assert code == 2 and "error: weights.from: no weights file " in err
    assert "read from the spec file's folder" in err
    assert cli("validate", str(tmp_path / "spec.yaml"))[0] == 0  # validate reads no weights


def test_a_shape_mismatch_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    mlp_weights(tmp_path, head=5)
    code, err = cli_train(tmp_path, mlp_text("weights: {from: mlp.pth}"))
    assert code == 2
    assert "error: weights.from: fc.weight: the file's shape [5, 32] does not fit the " \
        "model's [10, 32] (a new layer? leave it out with weights.skip: ['fc.*']" in err


def test_weights_of_another_network_are_said_to_be_so_in_one_short_line(tmp_path: Path) -> None:
    """A file none of whose tensors fit listed every one of the model's names (122 for
    ResNet-18) and every one of the file's."""
    other = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(20)])
    torch.save(other.state_dict(), tmp_path / "other.pth")
    code, err = cli_train(tmp_path, mlp_text("weights: {from: other.pth}"))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "none of the file's 40 tensors fits this model: it has no weight for body.weight" \
        in err and "... (40 in all)" in err and "another network" in err


def test_a_skip_pattern_missing_from_the_file_of_another_network_says_it_is_another(
        tmp_path: Path) -> None:
    other = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(3)])
    torch.save(other.state_dict(), tmp_path / "other.pth")
    code, err = cli_train(tmp_path, mlp_text("weights: {from: other.pth, skip: [head.*]}"))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "none of the file's 6 tensors fits this model" in err and "another network" in err
    assert "matches no key" not in err


def test_a_skip_pattern_that_matches_no_key_is_a_located_error(tmp_path: Path) -> None:
    mlp_weights(tmp_path)
    code, err = cli_train(tmp_path, mlp_text("weights: {from: mlp.pth, skip: [head.*]}"))
    assert code == 2 and "weights.skip[0]: 'head.*' matches no key of the file" in err


@pytest.mark.parametrize(("extra", "optimizer", "expected"), [
    ("freeze: [{match: {name: bdy}}]", None,
     "spec.yaml:18:18: error: freeze[0].match: matches no parameter of the model "
     "(did you mean 'body'?)"),
    ("freeze: [{match: {type: Conv2d}}]", None,
     "error: freeze[0].match: matches no parameter of the model (module names begin with body"),
    ("freeze: [{match: {name: '*'}, unless: {name: head}}]", None,
     "error: freeze[0].unless: matches none of the parameters that match chose"),
    ("freeze: [{match: {name: fc}, stats: true}]", None,
     "error: freeze[0].stats: matches no layer with running statistics (BatchNorm)"),
    ("freeze: [{match: {name: '*'}}]", None, "error: freeze: every parameter is frozen"),
    ("freeze: [{match: {type: Batchnorm1d}}]", None,
     "error: freeze[0].match.type: unknown layer type 'Batchnorm1d' (did you mean"),
    ("", "{SGD: {lr: 0.1}, groups: [{match: {param: biases}, weight_decay: 0}]}",
     "error: optimizer.groups[0].match: matches no parameter of the model (did you mean 'bias'"),
    ("", "{SGD: {lr: 0.1}, groups: [{match: {name: fc}, lr: '${0.1 * dept}'}]}",
     "error: optimizer.groups[0].lr: unknown variable 'dept' (did you mean 'depth'"),
    ("", "{SGD: {lr: 0.1}, groups: [{match: {name: fc}, wd: 0}]}",
     "error: optimizer.groups[0].wd: unknown setting 'wd' of SGD"),
    ("", "{SGD: {lr: 0.1}, groups: [{match: {name: fc}, lr: '${0.1 - depth}'}]}",
     "error: optimizer.groups[0].lr: lr must not be negative, found -1.9 at depth 2"),
    ("", "{groups: [{match: {name: fc}, lr: 0.1}]}",
     "error: optimizer: groups need an optimizer beside them"),
    ("", "{SGD: {lr: 0.1}, groups: [{match: {name: fc}, stats: true}]}",
     "error: optimizer.groups[0].stats: unknown setting 'stats' of SGD"),
    ("freeze: [{match: {name: fc}, lr: 0.1}]", None,
     "error: freeze[0].lr: unknown key 'lr' (allowed: match, unless, stats, epochs)"),
    ("weights: {fro: x.pt}", None, "error: weights.fro: unknown key 'fro' (did you mean 'from'?)"),
])
def test_validate_locates_rules_that_match_nothing_or_cannot_apply(
        tmp_path: Path, extra: str, optimizer: str | None, expected: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(mlp_text(extra, optimizer=optimizer or "{SGD: {lr: 0.1}}"))
    code, _, err = cli("validate", str(path))
    assert code == 2, err
    assert expected in err


# ---- evaluation and resume take their weights from the checkpoint ----------------------------

def test_eval_and_resume_do_not_read_the_weights_file(tmp_path: Path) -> None:
    mlp_weights(tmp_path)
    text = mlp_text("weights: {from: mlp.pth}\nlog: {tensorboard: false}")
    assert cli_train(tmp_path, text)[0] == 0
    (tmp_path / "mlp.pth").unlink()
    spec = str(tmp_path / "spec.yaml")
    code, _, err = cli("eval", spec, "--checkpoint", str(tmp_path / "run/checkpoints/best.pt"),
                         "--split", "val")
    assert code == 0, err
    code, _, err = cli("train", spec, "train.epochs=2", "--resume", str(tmp_path / "run"))
    assert code == 0, err
    assert "weights: restored from the checkpoint (the weights file is not read)" in err


def test_weights_loading_refuses_a_spec_error_not_a_trace(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(SpecError, match="holds no state_dict"):
        load_into_model_text(tmp_path, "weights: {from: list.pt}")
    torch.save({"a": {"x": torch.zeros(1)}, "b": 1}, tmp_path / "nested.pt")
    with pytest.raises(SpecError, match=r"weights\.key: the file has no entry 'c'"):
        load_into_model_text(tmp_path, "weights: {from: nested.pt, key: c}")


def load_into_model_text(tmp_path: Path, extra: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(mlp_text(extra))
    load_into_model(path, [])


def test_keys_are_shown_escaped() -> None:
    assert weights.show("fc.\x1b[2Jweight") == "fc.\\x1b[2Jweight"


# ---- the example -----------------------------------------------------------------------------

@pytest.mark.slow
def test_the_fine_tuning_example_runs_offline(tmp_path: Path) -> None:
    """torchvision's ResNet-18 weights (written here), a new head, the backbone frozen and the
    last stage joining in epoch 2, on a slice of the bundled digits."""
    reference, path = resnet18_file(tmp_path, "pth")
    out = io.StringIO()
    summary = train(EXAMPLES / "finetune_resnet18_digits.yaml", overrides=[
        f"weights.from={path}", "train.epochs=2", "data.train={range: [0, 192]}",
        "data.val={range: [1600, 1664]}", "log.tensorboard=false"],
        run_dir=tmp_path / "run", stream=out)
    end = load_checkpoint(summary.run_dir / "checkpoints" / "last.pt")["model"]
    start = reference.state_dict()
    assert torch.equal(end["conv1.weight"], start["conv1.weight"])
    assert torch.equal(end["layer3.1.bn2.running_mean"], start["layer3.1.bn2.running_mean"])
    assert not torch.equal(end["layer4.1.conv2.weight"], start["layer4.1.conv2.weight"])
    assert end["fc.weight"].shape == (10, 512)
    printed = out.getvalue()
    assert "weights: 120 of 122 tensors loaded from" in printed
    assert "weights: skipped by weights.skip: fc.weight, fc.bias" in printed
    assert "freeze: 5,130 of 11,181,642 parameters train in epoch 1" in printed


# ---- DDP -------------------------------------------------------------------------------------

@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_ddp_ranks_freeze_unfreeze_and_group_as_one_process_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # torchrun's torchelastic_* folders
    start = torch.load(mlp_weights(tmp_path), weights_only=True)
    extra = ("weights: {from: mlp.pth}\nfreeze:\n  - {match: {name: bn}, stats: true}\n"
             "  - {match: {name: body}, epochs: 1}\nlog: {tensorboard: false}")
    (tmp_path / "spec.yaml").write_text(mlp_text(extra, epochs=2, optimizer=GROUPS))
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    proc = subprocess.run([sys.executable, "-m", "nnspec", "train", str(tmp_path / "spec.yaml"),
                           "--run-dir", str(tmp_path / "run"), "--nproc-per-node", "2"],
                          capture_output=True, text=True, timeout=180,
                          env={**env, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    end = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    for key in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
        assert torch.equal(start[key], end[key]), key
    assert not torch.equal(start["body.weight"], end["body.weight"])  # trained in epoch 2
    assert proc.stderr.count("optimizer: 4 parameter groups") == 1  # rank 0 alone speaks


@pytest.mark.parametrize("content", ["truncated-safetensors", "device-file", "folder"])
def test_hostile_weights_paths_are_located_errors(tmp_path: Path, content: str) -> None:
    if content == "truncated-safetensors":
        save_file({"fc.weight": torch.zeros(10, 32)}, str(tmp_path / "w.safetensors"))
        data = (tmp_path / "w.safetensors").read_bytes()
        (tmp_path / "w.safetensors").write_bytes(data[:-40])
        target, expected = "w.safetensors", "not a readable safetensors file"
    elif content == "device-file":
        target, expected = "/dev/zero", "/dev/zero is not a regular file"
    else:
        (tmp_path / "empty").mkdir()
        target, expected = "empty", "is a folder that holds no nnspec checkpoint"
    code, err = cli_train(tmp_path, mlp_text(f"weights: {{from: {target}}}"))
    assert code == 2 and "error: weights.from: " in err and expected in err


def test_hostile_key_names_reach_the_terminal_escaped(tmp_path: Path) -> None:
    state = torch.load(mlp_weights(tmp_path), weights_only=True)
    state["\x1b[2Jcleared"] = torch.zeros(1)
    torch.save(state, tmp_path / "mlp.pth")
    code, err = cli_train(tmp_path, mlp_text("weights: {from: mlp.pth}"))
    assert code == 2 and "\x1b" not in err
    assert "the model has nothing named \\x1b[2Jcleared" in err


@pytest.mark.parametrize("repeat", ["3", '{times: 3, name: "dense${index + 1}"}'],
                         ids=["numbered", "named"])
def test_each_copy_of_a_top_level_repeat_is_one_depth_named_or_not(tmp_path: Path,
                                                                    repeat: str) -> None:
    text = f"""nnspec: 2
input: [4]
model:
  body: {{Linear: {{out_features: 4}}, repeat: {repeat}}}
  fc: {{Linear: {{out_features: 2}}}}
optimizer: {{SGD: {{lr: 0.1}}, groups: [{{match: {{name: "*"}}, lr: "${{0.1 * depth}}"}}]}}
"""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    spec = load_spec(str(path), [])
    model = nnspec.compile(spec)
    depth = param_groups.depths(model, param_groups.repeats(spec))
    assert sorted(set(depth.values())) == [0, 1, 2, 3]  # three copies, then the head
    assert depth["fc.weight"] == 3
