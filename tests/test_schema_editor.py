"""The JSON Schema as an editor uses it, alone: judged by a real yaml-language-server.

yaml-language-server comes from npm (``setup.sh`` installs it into tools/yaml-ls when npm is
there; ``NNSPEC_YAML_LS`` may name another binary).  Without Node the server tests skip with the
reason.  Documents are opened at their real place under specs/, so the modeline's relative
``$schema=../schema/nnspec.schema.json`` resolves to the committed schema.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nnspec.lang.loader import load
from nnspec.lang.schema import NAME_HINT, strict_validator_class
from tests.conftest import EXAMPLES, ROOT, SPECS
from tests.lsp_client import LspClient, position_of

SCHEMA = json.loads((ROOT / "schema" / "nnspec.schema.json").read_text())
ALL_SPECS = sorted([*SPECS.glob("*.yaml"), *EXAMPLES.glob("*.yaml"),
                    *(ROOT / "tests" / "specs_v2").glob("*.yaml")])  # format 2's features


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_every_committed_spec_passes_the_whole_schema(path: Path) -> None:
    """Model section included: what an editor checks must not flag a valid spec."""
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}"
              for e in strict_validator_class()(SCHEMA).iter_errors(load(path).data)]
    assert errors == []


@pytest.mark.parametrize("name", ["Conv2D", "Lienar", "relu", "Conv2dd"])
def test_the_schema_refuses_near_misses_of_layer_names(name: str) -> None:
    spec = {"nnspec": 1, "input": [3], "model": [name, {name: {"out_channels": 3}}]}
    errors = list(strict_validator_class()(SCHEMA).iter_errors(spec))
    assert errors and all(e.absolute_path[0] == "model" for e in errors)


def test_a_block_cannot_take_a_layer_name_in_the_schema() -> None:
    pattern = re.compile(SCHEMA["properties"]["blocks"]["propertyNames"]["pattern"])
    assert [n for n in ("Linear", "Lienar", "BasicBlock") if pattern.match(n)] == ["BasicBlock"]


def test_layer_snippets_are_valid_flow_mappings() -> None:
    props = next(branch["properties"] for branch in SCHEMA["definitions"]["item"]["anyOf"]
                 if "Conv2d" in branch.get("properties", {}))
    assert props["Conv2d"]["defaultSnippets"][0]["body"] == "{out_channels: $1, kernel_size: $2}"
    assert props["ReLU"]["defaultSnippets"][0]["body"] is None


def test_hover_texts_are_plain_one_liners() -> None:
    text = json.dumps(SCHEMA)
    assert ":math:" not in text and ":class:" not in text
    assert "examples" not in json.dumps(SCHEMA["definitions"]["item"])


# -- a real yaml-language-server -------------------------------------------------------------

def _server() -> str | None:
    named = os.environ.get("NNSPEC_YAML_LS")
    local = ROOT / "tools" / "yaml-ls" / "node_modules" / ".bin" / "yaml-language-server"
    for candidate in (named, str(local) if local.exists() else None,
                      shutil.which("yaml-language-server")):
        if candidate and shutil.which("node"):
            return candidate
    return None


PLANTED = {  # what is changed in specs/lenet.yaml -> what the server must say about it
    "misspelt layer": ("- Conv2d: {out_channels: 16, kernel_size: 5}",
                       "- Conv2D: {out_channels: 16, kernel_size: 5}", "Conv2D", NAME_HINT),
    "misspelt argument": ("Linear: {out_features: 120}", "Linear: {out_feature: 120}",
                          "out_feature", "Not an argument of Linear; it takes in_features, "
                          "out_features, bias."),
    "wrong type": ("Linear: {out_features: 84}", "Linear: {out_features: '84'}", "'84'",
                   'Incorrect type. Expected "integer".'),
    "unknown section": ("loss: CrossEntropyLoss", "loss: CrossEntropyLoss\nlosss: 1", "losss",
                        "Property losss is not allowed."),
    "missing argument": ("Conv2d: {out_channels: 6, kernel_size: 5, padding: 2}",
                         "Conv2d: {out_channels: 6, padding: 2}", "Conv2d: {out_channels: 6,",
                         'Missing property "kernel_size".'),
    # a word left in a mapping (a layer typed inside the previous one's arguments); a bare
    # *known* argument (`{kernel_size}`, null) passes yaml-language-server, which skips null
    # values: `nnspec lsp` flags that one ("found null")
    "stray bare key": ("MaxPool2d: {kernel_size: 2}\n  - Flatten",
                       "MaxPool2d: {kernel_size: 2, ReLU}\n  - Flatten", "ReLU}",
                       "Not an argument of MaxPool2d"),
}


@pytest.fixture(scope="module")
def yaml_ls() -> Iterator[LspClient]:
    server = _server()
    if server is None:
        pytest.skip("yaml-language-server is not installed (needs Node and npm: ./setup.sh "
                    "installs it into tools/yaml-ls, or set NNSPEC_YAML_LS)")
    settings = {"validate": True, "hover": True, "completion": True,
                "schemaStore": {"enable": False}}
    client = LspClient([server, "--stdio"], cwd=ROOT,
                       settings=lambda item: settings if item.get("section") == "yaml" else None)
    client.initialize(ROOT)
    client.notify("workspace/didChangeConfiguration", {"settings": {"yaml": settings}})
    yield client
    client.close()


def _open(client: LspClient, text: str, name: str) -> str:
    return client.open(SPECS / name, text)  # never written: the server reads the text sent


def _lenet() -> str:
    return (SPECS / "lenet.yaml").read_text()


def test_the_pristine_spec_has_no_diagnostics(yaml_ls: LspClient) -> None:
    uri = _open(yaml_ls, _lenet(), "editor_pristine.yaml")
    assert yaml_ls.diagnostics(uri, timeout=60) == []


@pytest.mark.parametrize("mistake", list(PLANTED))
def test_each_planted_mistake_is_flagged(yaml_ls: LspClient, mistake: str) -> None:
    old, new, where, message = PLANTED[mistake]
    text = _lenet()
    assert old in text
    text = text.replace(old, new, 1)
    uri = _open(yaml_ls, text, f"editor_{mistake.replace(' ', '_')}.yaml")
    found = yaml_ls.diagnostics(uri, timeout=60)
    line = position_of(text, where)[0]
    assert any(d["range"]["start"]["line"] == line and message in d["message"] for d in found), \
        found


def _completion_labels(result: Any) -> list[str]:
    items = result["items"] if isinstance(result, dict) else result or []
    return [i["label"] for i in items]


def test_completes_arguments_in_a_flow_mapping_after_one_letter(yaml_ls: LspClient) -> None:
    text = _lenet().replace("Conv2d: {out_channels: 16, kernel_size: 5}",
                            "Conv2d: {out_channels: 16, kernel_size: 5, p}")
    uri = _open(yaml_ls, text, "editor_complete.yaml")
    line, col = position_of(text, "kernel_size: 5, p}", len("kernel_size: 5, p"))
    labels = _completion_labels(yaml_ls.at("textDocument/completion", uri, line, col))
    assert {"padding", "padding_mode"} <= set(labels)


def test_completing_a_layer_name_inserts_a_valid_snippet(yaml_ls: LspClient) -> None:
    text = _lenet().replace("  - ReLU\n  - MaxPool2d: {kernel_size: 2}\n  - Conv2d",
                            "  - Co\n  - MaxPool2d: {kernel_size: 2}\n  - Conv2d", 1)
    uri = _open(yaml_ls, text, "editor_layer.yaml")
    line, col = position_of(text, "  - Co\n", len("  - Co"))
    result = yaml_ls.at("textDocument/completion", uri, line, col)
    items = {i["label"]: i for i in (result["items"] if isinstance(result, dict) else result)}
    assert items["Conv2d"]["insertText"] == "Conv2d: {out_channels: $1, kernel_size: $2}"


def test_hover_on_an_argument_shows_its_type_and_default(yaml_ls: LspClient) -> None:
    text = _lenet()
    uri = _open(yaml_ls, text, "editor_hover.yaml")
    line, col = position_of(text, "padding: 2", 2)
    hover = yaml_ls.at("textDocument/hover", uri, line, col)
    value = hover["contents"]["value"]
    assert "padding (one of 'same', 'valid' or int or list of 2 ints; default 0)" in value
    line, col = position_of(text, "- Flatten", 3)
    flatten = yaml_ls.at("textDocument/hover", uri, line, col)["contents"]["value"]
    assert len(flatten) < 300 and "Example" not in flatten
