"""`nnspec validate` asks torch about the training sections, as `train` would, before any data."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from nnspec.cli import app

runner = CliRunner()
SPEC = """nnspec: 1
input: [8]
model: [{Linear: {out_features: 3}}]
loss: {CrossEntropyLoss: {}, inputs: [output]}
optimizer: {Adam: {betas: [0.9, 1.5]}}
scheduler: {StepLR: {step_size: 2, last_epoch: -3}}
"""


def test_validate_reports_what_torch_refuses_in_every_training_section(tmp_path: Path) -> None:
    spec = tmp_path / "train.yaml"
    spec.write_text(SPEC)
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{spec}:4:38: error: loss.inputs: CrossEntropyLoss takes 2 inputs (input, target), "
        "found 1 (one entry per argument; by default [output, target])",
        f"{spec}:5:27: error: optimizer.Adam.betas: Invalid beta parameter at index 1: 1.5",
    ]  # the scheduler's last_epoch is found by train, which builds a real optimizer


def test_validate_checks_optimizers_without_importing_dynamo(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = tmp_path / "train.yaml"
    spec.write_text(SPEC.replace("1.5", "0.99"))
    script = ("import sys, nnspec\n"
              f"try: nnspec.validate({str(spec)!r})\n"
              "except Exception as exc: print(exc)\n"
              "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120).stdout.splitlines()
    assert "betas" not in out[0] and out[-1] == "False"


def test_a_valid_training_spec_still_validates(tmp_path: Path) -> None:
    spec = tmp_path / "train.yaml"
    spec.write_text(SPEC.replace("inputs: [output]", "inputs: [output, target]")
                    .replace("1.5", "0.99").replace("last_epoch: -3", "gamma: 0.5"))
    result = runner.invoke(app, ["validate", str(spec)])
    assert (result.exit_code, result.output.strip()) == (0, f"{spec}: ok (train, 27 parameters)")


def test_without_shapes_torch_is_not_asked(tmp_path: Path) -> None:
    spec = tmp_path / "train.yaml"
    spec.write_text(SPEC)
    result = runner.invoke(app, ["validate", "--no-shapes", str(spec)])
    # a loss's number of inputs comes from the catalogue; the optimizer's betas need torch
    assert (result.exit_code, result.output.splitlines()) == (2, [
        f"{spec}:4:38: error: loss.inputs: CrossEntropyLoss takes 2 inputs (input, target), "
        "found 1 (one entry per argument; by default [output, target])"])


def test_without_shapes_a_loss_with_unknown_functions_is_refused_without_torch(
        tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = tmp_path / "train.yaml"
    spec.write_text(SPEC.replace("inputs: [output]", "inputs: [log_sofmax(output), target]"))
    code = ("import sys; from nnspec.cli import main; sys.argv = ['nnspec', 'validate', "
            f"'--no-shapes', {str(spec)!r}]\ntry: main()\nexcept SystemExit as e: "
            "print('torch' in sys.modules, e.code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "2"], out.stderr
    assert "loss.inputs[0]: unknown function 'log_sofmax' (did you mean 'log_softmax'" in out.stderr
