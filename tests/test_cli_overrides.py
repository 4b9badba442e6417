"""KEY=VALUE overrides on validate, compile, summary and graph, as train and eval take them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from nnspec.cli import app
from tests.conftest import EXAMPLES, SPECS

runner = CliRunner()
ALEXNET = str(SPECS / "alexnet.yaml")  # vars: {num_classes: 1000, dropout: 0.5}


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output  # stdout and stderr, as a terminal shows them


def test_validate_applies_overrides_to_every_file() -> None:
    code, out = _cli("validate", ALEXNET, "vars.num_classes=10", str(SPECS / "vgg11.yaml"))
    assert code == 0, out
    assert "alexnet.yaml: ok (alexnet, 57,044,810 parameters)" in out  # 61,100,840 with 1000


def test_validate_reports_a_bad_override() -> None:
    code, out = _cli("validate", ALEXNET, "train.epochs=many")
    assert code == 2
    assert out.startswith("<override 1: train.epochs=many>:1:1: error: train.epochs: expected an "
                          "integer, found 'many'")
    code, out = _cli("validate", ALEXNET, "vars.num_classes=ten")
    assert code == 2  # found where the variable is used
    assert ":35:30: error: model.classifier[6].Linear.out_features: expected an integer, " \
        "found 'ten'" in out


def test_a_file_whose_name_has_an_equals_sign_is_a_file(tmp_path: Path) -> None:
    odd = tmp_path / "lr=0.1.yaml"
    odd.write_text((SPECS / "mlp.yaml").read_text())
    code, out = _cli("validate", str(odd))
    assert (code, out.strip()) == (0, f"{odd}: ok (mlp, 203,530 parameters)")


def test_compile_emit_summary_and_graph_take_overrides() -> None:
    code, out = _cli("compile", ALEXNET, "vars.num_classes=7", "--emit-python")
    assert code == 0 and "NUM_CLASSES = 7\n" in out and "nn.Linear(4096, NUM_CLASSES)" in out
    code, out = _cli("summary", ALEXNET, "vars.num_classes=7")
    assert code == 0 and "[N, 7]" in out
    code, out = _cli("graph", ALEXNET, "vars.num_classes=7")
    assert code == 0 and "[N, 7]" in out


def test_locked_spec_shows_overridden_training_values() -> None:
    spec = str(EXAMPLES / "lenet_digits.yaml")
    code, out = _cli("compile", spec, "train.epochs=3")
    assert code == 0, out
    assert "epochs: 3" in out and "epochs: 10" not in out
    code, plain = _cli("compile", spec)
    assert "epochs: 10" in plain and "# LeNet-5 on the 1,797" not in plain  # header is ours


def test_a_model_override_may_skip_the_layer_name() -> None:
    code, out = _cli("compile", str(SPECS / "mlp.yaml"), "model.0.out_features=8",
                     "model.1.inplace=true")
    assert code == 0, out
    assert "- Linear: {in_features: 784, out_features: 8}\n  - ReLU: {inplace: true}\n" in out
    graph = str(SPECS / "graph_two_inputs.yaml")
    code, out = _cli("compile", graph, "model.graph.meta_fc.out_features=4",
                     "model.graph.act.inplace=false")
    assert code == 0, out
    assert "meta_fc: {Linear: {in_features: 8, out_features: 4}, in: meta}" in out
    assert "act: {ReLU: {inplace: false}, in: joined}" in out


def test_a_misspelt_model_argument_override_is_located_at_the_override() -> None:
    code, out = _cli("validate", str(SPECS / "mlp.yaml"), "model.0.out_feature=8")
    assert code == 2
    assert out.startswith("<override 1: model.0.out_feature=8>:1:1: error: model[0].Linear."
                          "out_feature: unknown argument 'out_feature' of Linear (did you mean "
                          "'out_features'")


def test_an_error_in_a_variable_says_where_the_variable_was_set() -> None:
    code, out = _cli("validate", ALEXNET, "vars.num_classes=ten")
    assert code == 2
    assert "(the value of $num_classes: vars.num_classes set at <override 1: " \
        "vars.num_classes=ten>:1:1)" in out
