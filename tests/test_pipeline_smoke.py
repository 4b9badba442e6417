"""End to end through every pass on the shipped specs: load, check, resolve, infer, build."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nnspec
from tests.conftest import SPECS, run_cli

SPEC_FILES = sorted(SPECS.glob("*.yaml"))


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_every_shipped_spec_builds_and_runs(path: Path) -> None:
    graph = nnspec.infer(path)
    model = nnspec.compile(path)
    inputs = [torch.randint(0, 2, (2, *info.shape)) if info.dtype.startswith("int")
              else torch.randn(2, *info.shape) for info in graph.inputs.values()]
    model.eval()
    with torch.no_grad():
        out = model(*inputs)
    assert out is not None
    assert sum(p.numel() for p in model.parameters()) == graph.params


def test_lenet_has_61706_parameters_and_sequential_children() -> None:
    model = nnspec.compile(SPECS / "lenet.yaml")
    assert isinstance(model, torch.nn.Sequential)
    assert sum(p.numel() for p in model.parameters()) == 61_706
    assert [name for name, _ in model.named_children()] == [str(i) for i in range(12)]


def test_named_layers_give_ordereddict_keys() -> None:
    model = nnspec.compile(SPECS / "mlp_named.yaml")
    assert list(model.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def test_module_list_and_dict_are_torch_containers() -> None:
    assert isinstance(nnspec.compile(SPECS / "module_list.yaml"), torch.nn.ModuleList)
    assert isinstance(nnspec.compile(SPECS / "module_dict.yaml"), torch.nn.ModuleDict)


def test_cli_validate_ok_and_error_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("validate", str(SPECS / "lenet.yaml"))
    assert ok.returncode == 0, ok.stderr
    assert "lenet5" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("nnspec: 1\ninput: [4]\nmodel:\n  - Linaer: {out_features: 2}\n")
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    assert f"{bad}:4:5: error: model[0].Linaer: unknown layer 'Linaer' (did you mean 'Linear'?)" \
        in result.stderr
    assert "Traceback" not in result.stderr
