"""``nnspec lsp`` driven over stdio as an editor drives it: initialize, didOpen, didChange, the
diagnostics it publishes, hover, completion and go-to-definition."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SPECS, cli
from tests.lsp_client import LspClient, position_of

pytest.importorskip("pygls", reason="nnspec lsp needs pygls (pip install 'nnspec[lsp]')")

LENET = (SPECS / "lenet.yaml").read_text()
TINY = (SPECS / "resnet_tiny.yaml").read_text()


@pytest.fixture(scope="module")
def server() -> Iterator[LspClient]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    client = LspClient([sys.executable, "-m", "nnspec", "lsp"], env=env, cwd=ROOT)
    result = client.initialize(ROOT)
    caps = result["capabilities"]
    assert caps["hoverProvider"] and caps["definitionProvider"] and caps["completionProvider"]
    yield client
    client.close()


def _open(server: LspClient, text: str, name: str) -> str:
    return server.open(SPECS / name, text)  # never written: the server checks the text sent


def _labels(result: Any) -> dict[str, dict[str, Any]]:
    items = result["items"] if isinstance(result, dict) else result
    return {i["label"]: i for i in items}


def _hover(server: LspClient, uri: str, text: str, needle: str, offset: int = 1,
           until: str = "") -> str:
    """The hover text at ``needle``; with ``until``, asked again until it contains that."""
    line, col = position_of(text, needle, offset)
    deadline = time.monotonic() + 60
    while True:
        result = server.at("textDocument/hover", uri, line, col)
        value = result["contents"]["value"] if result else ""
        if until in value or time.monotonic() > deadline:
            return str(value)
        time.sleep(0.2)


def test_publishes_nnspec_errors_at_their_place_with_the_hint(server: LspClient) -> None:
    text = LENET.replace("Linear: {out_features: 84}", "Linear: {out_feature: 84}")
    uri = _open(server, text, "lsp_argument.yaml")
    [diag] = server.diagnostics(uri, lambda d: bool(d))
    line, col = position_of(text, "out_feature: 84")
    assert diag["range"]["start"] == {"line": line, "character": col}
    assert diag["range"]["end"] == {"line": line, "character": col + len("out_feature")}
    assert diag["severity"] == 1 and diag["source"] == "nnspec"
    assert diag["message"] == ("model[9].Linear.out_feature: unknown argument 'out_feature' of "
                               "Linear (did you mean 'out_features' or 'in_features'?)")


def test_shape_errors_come_as_the_user_types(server: LspClient) -> None:
    uri = _open(server, LENET, "lsp_shapes.yaml")
    assert server.diagnostics(uri) == []
    broken = LENET.replace("Conv2d: {out_channels: 16, kernel_size: 5}",
                           "Conv2d: {out_channels: 16, kernel_size: 15}")
    server.change(uri, broken, 2)
    diags = server.diagnostics(uri, lambda d: bool(d), timeout=90)
    line, _ = position_of(broken, "Conv2d: {out_channels: 16")
    assert [d["range"]["start"]["line"] for d in diags] == [line]
    assert diags[0]["message"].startswith("model[3].Conv2d: ")
    server.change(uri, LENET, 3)  # fixed again: the error goes away
    assert server.diagnostics(uri, lambda d: not d, timeout=90) == []


def test_a_block_named_like_a_layer_is_a_warning(server: LspClient) -> None:
    text = TINY.replace("BasicBlock", "Conv2D")
    uri = _open(server, text, "lsp_warning.yaml")
    diags = server.diagnostics(uri, lambda d: bool(d))
    assert [d["severity"] for d in diags] == [2]
    assert "named like a layer, 'Conv2d'" in diags[0]["message"]


def test_hover_on_a_layer_shows_its_shapes_and_parameters(server: LspClient) -> None:
    uri = _open(server, LENET, "lsp_hover.yaml")
    value = _hover(server, uri, LENET, "Conv2d: {out_channels: 16", until="Shapes")
    assert "**Conv2d** (layer)" in value and ":math:" not in value
    assert "`[N, 6, 14, 14]` → `[N, 16, 10, 10]`, 2,416 parameters" in value
    flatten = _hover(server, uri, LENET, "- Flatten", 3, until="Shapes")
    assert "`[N, 16, 5, 5]` → `[N, 400]`" in flatten


def test_hover_on_an_argument_shows_type_default_and_doc(server: LspClient) -> None:
    uri = _open(server, LENET, "lsp_hover_arg.yaml")
    assert _hover(server, uri, LENET, "padding: 2") == (
        "padding (one of 'same', 'valid' or int or list of 2 ints; default 0). "
        "An argument of Conv2d.")
    assert "(int; required)" in _hover(server, uri, LENET, "out_channels: 6")
    loss = _hover(server, uri, LENET, "CrossEntropyLoss")
    assert "Inputs: input = raw class scores (logits)" in loss


def test_hover_on_a_block_use_shows_its_parameters_and_shapes(server: LspClient) -> None:
    uri = _open(server, TINY, "lsp_hover_block.yaml")
    value = _hover(server, uri, TINY, "BasicBlock: {planes", until="Shapes")
    assert value.startswith("**BasicBlock**(planes: int, stride: any = 1)")
    assert "`[N, 16, 32, 32]` → `[N, 16, 32, 32]`, 4,672 parameters" in value


def test_completes_layer_names_with_valid_snippets(server: LspClient) -> None:
    text = LENET.replace("  - ReLU\n  - MaxPool2d", "  - Co\n  - MaxPool2d", 1)
    uri = _open(server, text, "lsp_complete_layer.yaml")
    line, col = position_of(text, "  - Co\n", len("  - Co"))
    items = _labels(server.at("textDocument/completion", uri, line, col))
    assert items["Conv2d"]["insertText"] == "Conv2d: {out_channels: $1, kernel_size: $2}"
    assert items["Conv2d"]["insertTextFormat"] == 2
    assert items["ReLU"]["insertText"] == "ReLU"


def test_completes_arguments_inside_a_flow_mapping(server: LspClient) -> None:
    text = LENET.replace("{out_channels: 16, kernel_size: 5}", "{out_channels: 16, }")
    uri = _open(server, text, "lsp_complete_args.yaml")
    line, col = position_of(text, "{out_channels: 16, }", len("{out_channels: 16, "))
    items = _labels(server.at("textDocument/completion", uri, line, col))
    assert "kernel_size" in items and "out_channels" not in items
    assert "(int or list of 2 ints; required)" in items["kernel_size"]["documentation"]["value"]


def test_completes_blocks_their_parameters_and_variables(server: LspClient) -> None:
    uri = _open(server, TINY, "lsp_complete_blocks.yaml")
    line, col = position_of(TINY, "  pool:", 0)
    server.change(uri, TINY, 2)
    text = TINY.replace("  pool: {Adaptive", "  extra: \n  pool: {Adaptive")
    server.change(uri, text, 3)
    server.diagnostics(uri, timeout=60)
    line, col = position_of(text, "  extra: ", len("  extra: "))
    items = _labels(server.at("textDocument/completion", uri, line, col))
    assert items["BasicBlock"]["insertText"] == "BasicBlock: {planes: $1}"
    line, col = position_of(text, "{planes: $width}", 1)
    assert "stride" in _labels(server.at("textDocument/completion", uri, line, col))
    line, col = position_of(text, "$width}", 1)
    assert "$width" in _labels(server.at("textDocument/completion", uri, line, col))


def test_completes_losses_optimizers_and_datasets(server: LspClient) -> None:
    text = LENET.replace("loss: CrossEntropyLoss", "loss: Cr").replace(
        "optimizer: {SGD: {lr: 0.01, momentum: 0.9}}", "optimizer: A").replace(
        "dataset: {MNIST: {root: data, download: true}}", "dataset: M")
    uri = _open(server, text, "lsp_complete_named.yaml")
    for needle, expected in (("loss: Cr", "CrossEntropyLoss"), ("optimizer: A", "Adam"),
                             ("dataset: M", "MNIST")):
        line, col = position_of(text, needle, len(needle))
        items = _labels(server.at("textDocument/completion", uri, line, col))
        assert expected in items, needle
    line, col = position_of(text, "loss: Cr", len("loss: Cr"))
    docs = _labels(server.at("textDocument/completion", uri, line, col))
    assert "target = 1 when input1 should rank higher" in (
        docs["MarginRankingLoss"]["documentation"]["value"])


def test_go_to_definition_from_a_block_use(server: LspClient) -> None:
    uri = _open(server, TINY, "lsp_definition.yaml")
    server.diagnostics(uri)
    line, col = position_of(TINY, "BasicBlock: {planes", 2)
    found = server.at("textDocument/definition", uri, line, col)
    target = position_of(TINY, "BasicBlock:")
    assert found["uri"] == uri
    assert found["range"]["start"] == {"line": target[0], "character": target[1]}


def test_without_pygls_the_command_says_how_to_install_it(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "pygls", None)
    code, out, err = cli("lsp")
    assert code == 2 and out == ""
    assert "pip install 'nnspec[lsp]'" in err


def test_the_help_shows_the_extra_to_install() -> None:
    # Rich reads [lsp] as markup and would drop it from the help text
    code, out, _ = cli("lsp", "--help")
    assert code == 0
    assert "pip install 'nnspec[lsp]'" in " ".join(out.split())


def test_the_editor_modules_import_without_torch_or_pygls(tmp_path: Path) -> None:
    import subprocess

    code = ("import sys, nnspec.editor.features, nnspec.editor.analysis; "
            "print(sorted(m for m in ('torch', 'pygls') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.strip() == "[]"
