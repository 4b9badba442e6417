"""Custom layers: loaded from a module the user names (--plugin) or an installed entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nnspec
from nnspec import catalogue, plugins
from nnspec.cli import app
from nnspec.compiler.build import build
from nnspec.compiler.emit.emitter import emit
from nnspec.run.distributed import relaunch_args
from tests.conftest import EXAMPLES
from tests.parity import assert_same_model, emitted_module, model_class_name, sample_inputs

FOLDER = EXAMPLES / "plugins"
GATED = FOLDER / "gated_mlp.yaml"
runner = CliRunner()


@pytest.fixture(autouse=True)
def example_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(FOLDER))
    yield
    assert plugins.registered() == {}, "a test left custom layers registered"


def _module(folder: Path, name: str, body: str) -> str:
    (folder / f"{name}.py").write_text("from torch import nn\nimport torch\n\n"
                                       + textwrap.dedent(body))
    return name


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output  # stdout and stderr, as a terminal shows them


def test_plugin_layers_validate_build_and_emit_the_same_model() -> None:
    with plugins.loaded("my_layers") as names:
        assert names == ["GatedLinear", "Scale", "Blend"]
        graph = nnspec.infer(GATED)
        source = emit(graph)
        assert "from my_layers import Blend, GatedLinear, Scale\n" in source
        assert "GatedLinear(in_features=64, out_features=64)" in source  # inferred, keywords
        emitted = emitted_module(source)[model_class_name(source)]()
        assert_same_model(build(graph), emitted, sample_inputs(graph))
    assert "GatedLinear" not in catalogue.layers()


def test_cli_plugin_option_loads_for_one_command_only() -> None:
    code, out = _cli("--plugin", "my_layers", "validate", str(GATED))
    assert (code, out.strip()) == (0, f"{GATED}: ok (gated_mlp, 13,194 parameters)")
    code, out = _cli("validate", str(GATED))
    assert code == 2
    assert "unknown layer 'Blend'" in out and "nnspec --plugin MODULE" in out
    assert "takes" not in out, "no follow-on error about the unknown layer's inputs"


def test_cli_compile_summary_schema_and_layers_see_plugin_layers() -> None:
    code, out = _cli("--plugin", "my_layers", "compile", str(GATED), "--emit-python")
    assert code == 0 and "self.mixed = Blend(alpha=0.7)" in out
    code, out = _cli("--plugin", "my_layers", "summary", str(GATED))
    assert code == 0 and "GatedLinear" in out
    code, out = _cli("--plugin", "my_layers", "schema")
    assert code == 0 and '"GatedLinear"' in out and json.loads(out)
    code, out = _cli("--plugin", "my_layers", "layers")
    assert code == 0 and "Blend" in out


def test_plugin_arguments_are_checked_like_torch_layers(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("nnspec: 1\ninput: [8]\nmodel:\n  - Scale: {init: high}\n"
                    "  - GatedLinear: {out_feature: 3}\n")
    code, out = _cli("--plugin", "my_layers", "validate", str(spec))
    assert code == 2
    assert f"{spec}:4:19: error: model[0].Scale.init: expected a number, found 'high'" in out
    assert "unknown argument 'out_feature' of GatedLinear (did you mean 'out_features'" in out


def test_forward_signature_gives_the_number_of_inputs(tmp_path: Path) -> None:
    spec = tmp_path / "one.yaml"
    spec.write_text("nnspec: 1\ninput: [8]\nmodel: [Blend]\n")
    code, out = _cli("--plugin", "my_layers", "validate", str(spec))
    assert code == 2 and "Blend takes 2 inputs, given 1" in out


def test_training_a_spec_with_plugin_layers(tmp_path: Path) -> None:
    code, out = _cli("--plugin", "my_layers", "train", str(GATED), "train.epochs=2",
                     "--run-dir", str(tmp_path / "run"))
    assert code == 0, out
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    assert val[-1]["accuracy"] > 0.8


@pytest.mark.parametrize(("body", "message"), [
    ("class Linear(nn.Module):\n    pass\n", "plugin layer 'Linear' would hide torch's"),
    ("X = 1\n", "defines no nn.Module class"),
    ("class Wrap(nn.Module):\n    def __init__(self, inner: nn.Module):\n"
     "        super().__init__()\n", "Wrap requires inner, which a spec cannot write"),
    ("raise ImportError('needs cuda toolkit')\n", "cannot import plugin module"),
], ids=["shadows-torch", "no-classes", "unwritable-argument", "import-fails"])
def test_bad_plugin_modules_are_usage_errors(body: str, message: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _module(tmp_path, f"plugin_{abs(hash(body))}", body)
    code, out = _cli("--plugin", name, "validate", str(GATED))
    assert code == 2
    assert out.startswith(f"<--plugin {name}>: error: ") and message in out, out


def test_a_path_is_not_a_module_name() -> None:
    code, out = _cli("--plugin", "examples/plugins/my_layers.py", "layers")
    assert code == 2 and "put the file's folder on PYTHONPATH" in out


def test_two_plugins_may_not_define_the_same_layer(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    other = _module(tmp_path, "other_layers", "class Scale(nn.Module):\n    pass\n")
    code, out = _cli("--plugin", "my_layers", "--plugin", other, "layers")
    assert code == 2 and "layer 'Scale' is already defined by --plugin my_layers" in out


def test_installed_entry_point_is_loaded_when_a_spec_names_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    info = tmp_path / "demo_layers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-layers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nnspec.layers]\nScale = my_layers:Scale\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins._installed.cache_clear()
    spec = "nnspec: 1\nname: scaled\ninput: [3, 4, 4]\nmodel: [Scale, Flatten]\n"
    try:
        graph = nnspec.infer(spec)
        assert plugins.registered()["Scale"].origin == "entry point my_layers:Scale"
        source = emit(graph)
        assert "from my_layers import Scale" in source and "Scale(num_features=3)" in source
    finally:
        for name in plugins.registered():
            plugins._unregister(name)
        plugins._installed.cache_clear()


def test_plugin_named_like_the_model_class_keeps_both_names() -> None:
    with plugins.loaded("my_layers"):
        source = emit(nnspec.infer("nnspec: 1\nname: scale\ninput: [4]\nmodel: [Scale]\n"))
    assert "from my_layers import Scale" in source
    assert model_class_name(source) != "Scale"


def test_distributed_relaunch_passes_the_plugins_on() -> None:
    argv = relaunch_args(2, ["spec.yaml", "train.epochs=1"], ["--plugin", "my_layers"])
    assert argv[argv.index("nnspec"):] == ["nnspec", "--plugin", "my_layers", "train",
                                           "spec.yaml", "train.epochs=1"]


def test_emitted_module_with_plugin_runs_on_its_own(tmp_path: Path) -> None:
    with plugins.loaded("my_layers"):
        source = emit(nnspec.infer(GATED))
    (tmp_path / "gated.py").write_text(source)
    script = "import torch, gated; print(tuple(gated.GatedMlp()(torch.zeros(2, 64)).shape))"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": f"{tmp_path}:{FOLDER}"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 10)"


RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed")
def test_emitted_module_with_plugin_imports_passes_ruff(tmp_path: Path) -> None:
    long_module = "a_rather_long_package_name.with_its_custom_layers_module"
    package = tmp_path / "a_rather_long_package_name"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "with_its_custom_layers_module.py").write_text((FOLDER / "my_layers.py")
                                                              .read_text())
    (tmp_path / "my_layers.py").write_text((FOLDER / "my_layers.py").read_text())  # for ruff
    sys.path.insert(0, str(tmp_path))
    try:
        with plugins.loaded("my_layers"):
            (tmp_path / "short.py").write_text(emit(nnspec.infer(GATED)))
        with plugins.loaded(long_module):
            (tmp_path / "long.py").write_text(emit(nnspec.infer(GATED)))
    finally:
        sys.path.remove(str(tmp_path))
    assert "from a_rather_long_package_name.with_its_custom_layers_module import (\n" in (
        tmp_path / "long.py").read_text()
    common = ["--isolated", "--target-version", "py311"]
    for command in (["format", "--check", "--diff"],
                    ["check", "--select", "E,F,W,I,B,UP,SIM,RUF,N"]):
        result = subprocess.run([RUFF, *command, *common, "short.py", "long.py"], cwd=tmp_path,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


LIST_LAYER = """\
class Widths(nn.Module):
    def __init__(self, in_features: int, widths: list[int] = [8], out_features: int = 4):
        super().__init__()
        dims = [in_features] + widths + [out_features]  # a tuple here would fail
        self.layers = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(dims, dims[1:])])

    def forward(self, x):
        return self.layers(x)
"""


def test_list_arguments_reach_custom_layers_as_lists(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    _module(tmp_path, "list_layers", LIST_LAYER)
    spec = ("nnspec: 1\nname: widths\ninput: [6]\nblocks:\n  B:\n    params: {ws: list}\n"
            "    sequential:\n      - Widths: {widths: $ws, out_features: 6}\n"
            "model:\n  - Widths: {widths: [5, 3], out_features: 6}\n  - B: {ws: [2]}\n"
            "  - B: {ws: [4, 4]}\n")
    with plugins.loaded("list_layers"):
        graph = nnspec.infer(spec)
        source = emit(graph)
        assert "Widths(in_features=6, widths=[5, 3], out_features=6)" in source
        assert "widths=[*ws]" in source  # a block parameter, passed on as a list
        emitted = emitted_module(source)[model_class_name(source)]()
        assert_same_model(build(graph), emitted, sample_inputs(graph))


@pytest.mark.parametrize(("name", "message"), [
    ("match", "plugin layer 'match' is a Python keyword"),
    ("nn", "plugin layer 'nn' would hide the 'nn' that emitted Python uses"),
    ("Any", "plugin layer 'Any' would hide the 'Any' that emitted Python uses"),
])
def test_plugin_names_emitted_python_cannot_import_are_refused(
        name: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _module(tmp_path, f"named_{name.lower()}",
                     f"class {name}(nn.Module):\n    def forward(self, x):\n        return x\n")
    code, out = _cli("--plugin", module, "layers")
    assert code == 2 and out.startswith(f"<--plugin {module}>: error: {message}"), out


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed")
def test_a_very_long_plugin_class_name_is_laid_out_as_ruff_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long = "A_Really_Extraordinarily_Long_Custom_Layer_Class_Name_That_Goes_On_And_On_Forever"
    monkeypatch.syspath_prepend(str(tmp_path))
    _module(tmp_path, "long_layers", f"class {long}(nn.Module):\n"
            "    def __init__(self, in_features: int, out_features: int = 4):\n"
            "        super().__init__()\n        self.lin = nn.Linear(in_features, out_features)\n"
            "\n    def forward(self, x):\n        return self.lin(x)\n")
    spec = f"nnspec: 1\nname: long\ninput: [4]\nmodel:\n  graph:\n    x: {{{long}: {{}}}}\n"
    with plugins.loaded("long_layers"):
        graph = nnspec.infer(spec)
        source = emit(graph)
        assert_same_model(build(graph), emitted_module(source)[model_class_name(source)](),
                          sample_inputs(graph))
    assert f"        self.x = {long}(\n" in source  # parentheses would not make it fit
    (tmp_path / "emitted.py").write_text(source)
    result = subprocess.run([RUFF, "format", "--check", "--diff", "--isolated", "emitted.py"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("body", "message"), [
    ("class Needy(nn.Module):\n    def forward(self, x):\n        return x * x.sum().item()\n",
     "custom layer Needy's forward cannot run on the meta device, where nnspec checks shapes "
     "(meta_forward.py:6): Tensor.item() cannot be called on meta tensors"),
    ("class Needy(nn.Module):\n    def __init__(self, n: int = 3):\n        super().__init__()\n"
     "        self.k = int(torch.ones(n).sum().item())\n",
     "custom layer Needy's __init__ cannot run on the meta device, where nnspec checks shapes "
     "(meta_init.py:7): Tensor.item() cannot be called on meta tensors"),
], ids=["forward", "init"])
def test_a_layer_that_needs_real_data_says_so_and_where(body: str, message: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _module(tmp_path, "meta_init" if "__init__" in body else "meta_forward", body)
    spec = tmp_path / "needy.yaml"
    spec.write_text("nnspec: 1\ninput: [4]\nmodel: [Needy]\n")
    code, out = _cli("--plugin", module, "validate", str(spec))
    assert code == 2 and f"{spec}:3:9: error: model[0]: {message}" in out, out
    assert "without .item()" in out
