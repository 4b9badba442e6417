"""The locked form: ``nnspec compile SPEC`` prints a spec that needs no evaluation.

The oracle: the locked spec validates on its own and compiles to the same model as the original
(same state_dict keys and shapes, same outputs with the same weights), and locking it again
changes nothing but the header.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

import nnspec
from nnspec.cli import app
from nnspec.compiler.build import build
from nnspec.compiler.ir import Graph, Layer, Net, Node, TensorInfo
from nnspec.lang.loader import loads
from nnspec.lang.model_ast import Source
from nnspec.views.locked_yaml import TRAINING, locked_yaml
from tests.conftest import EXAMPLES, ROOT, SPECS
from tests.parity import assert_same_model, inferred, sample_inputs
from tests.spec_strategies import specs

ALL_FILES = sorted(SPECS.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml"))


@cache
def _lock(path: Path, overrides: tuple[str, ...] = ()) -> str:
    return locked_yaml(inferred(path, overrides), nnspec.load_spec(path, list(overrides)))


def _body(text: str) -> str:
    """The locked spec without its header comment (which names the file and its hash)."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_locked_spec_compiles_to_the_same_model(path: Path, tmp_path: Path) -> None:
    original = inferred(path)
    locked = tmp_path / path.name
    locked.write_text(_lock(path))
    relocked = nnspec.infer(locked)
    assert _structure(relocked.root) == _structure(original.root)
    with torch.device("meta"):
        built, rebuilt = build(original), build(relocked)
    assert {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in rebuilt.state_dict().items()}
    assert list(built.state_dict()) == list(rebuilt.state_dict())


@pytest.mark.parametrize("path", [SPECS / "resnet_tiny.yaml", SPECS / "graph_two_inputs.yaml",
                                  SPECS / "module_dict.yaml"], ids=lambda p: p.stem)
def test_locked_spec_gives_the_same_outputs(path: Path, tmp_path: Path) -> None:
    locked = tmp_path / path.name
    locked.write_text(_lock(path))
    original = inferred(path)
    assert_same_model(build(original), build(nnspec.infer(locked)), sample_inputs(original))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_locking_a_locked_spec_changes_nothing(path: Path, tmp_path: Path) -> None:
    once = _lock(path)
    locked = tmp_path / path.name
    locked.write_text(once)
    assert _body(_lock(locked)) == _body(once)


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_locked_model_has_nothing_left_to_evaluate(path: Path) -> None:
    data = loads(_lock(path), "locked.yaml").data
    assert "vars" not in data and "blocks" not in data
    leaves = list(_leaves(data["model"]))
    assert "auto" not in leaves
    assert not [v for v in leaves if isinstance(v, str) and v.startswith("$")]
    assert "repeat" not in set(_keys(data["model"]))


@pytest.mark.parametrize("path", [p for p in ALL_FILES if any(
    key in loads(p.read_text(), str(p)).data for key in TRAINING)], ids=lambda p: p.stem)
def test_training_sections_are_kept_as_written(path: Path, tmp_path: Path) -> None:
    original = loads(path.read_text(), str(path)).data
    as_json = tmp_path / f"{path.stem}.json"  # JSON has no text to keep: dumped instead
    as_json.write_text(json.dumps(original, indent=1))
    for locked_text in (_lock(path), _lock(as_json)):
        locked = loads(locked_text, "locked.yaml").data
        assert {k: original[k] for k in TRAINING if k in original} == {
            k: locked[k] for k in TRAINING if k in locked}


def test_training_sections_keep_their_comments(write_spec) -> None:
    path = write_spec("""nnspec: 1
input: [4]
model: [{Linear: {out_features: 2}}]   # the model's comment is not kept: it is rewritten
loss: MSELoss        # regression
optimizer: {SGD: {lr: 0.1}}
# between sections
train: {epochs: 1}   # one pass
""")
    locked = _lock(path)
    for comment in ("# regression", "# between sections", "# one pass"):
        assert comment in locked
    assert "rewritten" not in locked


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_generated_specs_lock_to_the_same_model(text: str) -> None:
    original = nnspec.infer(text)
    locked = locked_yaml(original, nnspec.load_spec(text))
    assert _structure(nnspec.infer(locked).root) == _structure(original.root)


DESCRIPTIONS = {
    "short": "A model.",
    "long": "A long description " * 12 + "that ends here.",
    "double-spaces": "Two  spaces " * 10,
    "line-breaks": "First line\nsecond line\n\nthird " * 4,
    "yaml-syntax": "key: value # not a comment, - not a list, {not: flow} & *alias " * 3,
    "quotes": "it's \"quoted\" " * 10,
    "leading-space": "  indented " * 10,
}


@pytest.mark.parametrize("description", DESCRIPTIONS.values(), ids=DESCRIPTIONS.keys())
def test_description_survives_the_locked_form(description: str) -> None:
    text = json.dumps({"nnspec": 1, "name": "m", "description": description, "input": [4],
                       "model": ["ReLU"]}, indent=1)
    locked = locked_yaml(nnspec.infer(text), nnspec.load_spec(text))
    assert loads(locked, "locked.yaml").data["description"] == description


def test_inferred_arguments_come_first_as_in_torch_signatures() -> None:
    data = loads(_lock(SPECS / "lenet.yaml"), "locked.yaml").data
    assert list(data["model"][0]["Conv2d"]) == ["in_channels", "out_channels", "kernel_size",
                                                "padding"]


def test_header_comment_cannot_be_broken_by_the_file_name() -> None:
    where = Source(nnspec.errors.Location("x.yaml", 1, 1), ("model",))
    root = Net("sequential", (Node("0", Layer("ReLU", "layer", {}), (), where,
                                   TensorInfo((4,))),), where)
    hostile = "evil.yaml\nmodel: [Linear]\r\ninput: [9]\u2028x: 1"
    graph = Graph("m", "", {"input": TensorInfo((4,))}, root, hostile, "0" * 64)
    spec = nnspec.load_spec("nnspec: 1\ninput: [4]\nmodel: [ReLU]\n")
    data = loads(locked_yaml(graph, spec), "locked.yaml").data
    assert data == {"nnspec": 1, "name": "m", "input": [4], "model": ["ReLU"]}


def test_cli_compile_prints_the_locked_spec() -> None:
    result = CliRunner().invoke(app, ["compile", str(SPECS / "resnet_tiny.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stdout == _lock(SPECS / "resnet_tiny.yaml")


def _structure(net: Net) -> Any:
    """What the builder reads from a net: everything but source locations and block names
    (and an unstated forward order, which the locked form states: members in order)."""
    order = net.order or (tuple(n.name for n in net.nodes) if net.kind in (
        "module_list", "module_dict") else ())
    return (net.kind, net.inputs, net.outputs, order, tuple(
        (n.name, n.inputs, n.out, _structure(n.body) if isinstance(n.body, Net) else (
            n.body.op, n.body.kind, n.body.kwargs)) for n in net.nodes))


@pytest.mark.parametrize("stem", ["lenet", "resnet_tiny"])
def test_docs_show_the_real_locked_spec(stem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    relative = Path("specs") / f"{stem}.yaml"
    text = locked_yaml(nnspec.infer(relative), nnspec.load_spec(relative))
    assert f"```yaml\n{text}```" in (ROOT / "docs" / "compile.md").read_text(), (
        f"docs/compile.md shows a stale locked spec: paste `nnspec compile {relative}`")


def _leaves(value: Any) -> Any:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _keys(value: Any) -> Any:
    if isinstance(value, dict):
        yield from value
        for v in value.values():
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


def test_compile_loads_the_spec_and_applies_its_overrides_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The locked YAML is written from the Document the check pass made, not a second load."""
    from nnspec.lang import loader, overrides
    from nnspec.views import locked_yaml as view

    calls: list[str] = []
    for module, name in ((loader, "load"), (overrides, "apply_overrides"), (view, "loads"),
                         (view, "apply_overrides")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: (
            calls.append(_n), _f(*a, **k))[1])
    monkeypatch.setattr("nnspec.api.load", loader.load)
    monkeypatch.setattr("nnspec.api.apply_overrides", overrides.apply_overrides)
    text = nnspec.lock(EXAMPLES / "loss_mse.yaml", ["train.epochs=2"])
    assert "epochs: 2" in text
    assert calls == ["load", "apply_overrides"]
def test_the_package_locks_a_spec_as_docs_compile_md_shows() -> None:
    """docs/compile.md's API line: ``import nnspec; nnspec.lock(path)`` (once an AttributeError
    through ``nnspec.lock.locked_yaml``)."""
    import importlib

    fresh = importlib.import_module("nnspec")
    text = fresh.lock(str(SPECS / "lenet.yaml"))
    assert text.startswith("# The locked form of ") and "name: lenet5" in text
    assert "nnspec.lock(path)" in (ROOT / "docs" / "compile.md").read_text()
