"""The load pass on ordinary input: YAML 1.2 typing, JSON, locations, sources.

Hostile input has its own file (test_hostile.py); this one pins what a well-meaning spec gets.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest

from nnspec.errors import Location, SpecError
from nnspec.lang import loader


def value_of(scalar: str) -> Any:
    return loader.loads(f"v: {scalar}\n", "t.yaml").data["v"]


@pytest.mark.parametrize(("scalar", "expected"), [
    ("3", 3), ("-3", -3), ("+3", 3), ("0", 0), ("0x1F", 31), ("0o17", 15),
    ("1.5", 1.5), (".5", 0.5), ("1e3", 1000.0), ("-2.5e-3", -0.0025), ("3.", 3.0),
    ("true", True), ("True", True), ("FALSE", False),
    ("null", None), ("~", None), ("", None),
    ("no", "no"), ("yes", "yes"), ("on", "on"), ("off", "off"), ("y", "y"),
    ("1_000", "1_000"), ("1:20", "1:20"), ("'3'", "3"), ('"true"', "true"), ("'0755'", "0755"),
    ("'2024-01-01'", "2024-01-01"), ("ReLU", "ReLU"), ("$width", "$width"),
    ("9223372036854775807", 2**63 - 1), ("-9223372036854775807", -(2**63) + 1),
], ids=lambda v: repr(v) if isinstance(v, str) else None)
def test_plain_scalars_follow_the_yaml_12_core_schema(scalar: str, expected: Any) -> None:
    value = value_of(scalar)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("scalar", ["0755", "-007", "2024-01-01", "2024-1-1 10:00", ".nan",
                                    ".inf", "-.Inf", "9223372036854775808", "1e999"])
def test_ambiguous_or_unrepresentable_scalars_are_refused(scalar: str) -> None:
    with pytest.raises(SpecError) as info:
        value_of(scalar)
    assert info.value.problems[0].location == Location("t.yaml", 1, 4)


SPEC = """\
# a comment
nnspec: 1
model:
  - Conv2d: {out_channels: 6, kernel_size: 5}
  - ReLU
train:
  epochs: 3
"""


@pytest.mark.parametrize(("path", "key", "line", "column"), [
    ((), False, 2, 1),
    (("nnspec",), False, 2, 9),
    (("nnspec",), True, 2, 1),
    (("model", 0, "Conv2d", "kernel_size"), False, 4, 44),
    (("model", 0, "Conv2d", "kernel_size"), True, 4, 31),
    (("model", 1), False, 5, 5),
    (("train", "epochs"), False, 7, 11),
    (("train", "epochs", "nothing", 3), False, 7, 11),  # falls back to the nearest parent
], ids=lambda v: str(v))
def test_every_node_keeps_its_line_and_column(path: tuple[Any, ...], key: bool, line: int,
                                              column: int) -> None:
    doc = loader.loads(SPEC, "s.yaml")
    assert doc.locate(path, key=key) == Location("s.yaml", line, column)


@pytest.mark.parametrize("variant", ["crlf", "bom", "bom+crlf"])
def test_crlf_and_bom_keep_locations(variant: str, tmp_path: Path) -> None:
    text = SPEC.replace("\n", "\r\n") if "crlf" in variant else SPEC
    data = ("\ufeff" + text if "bom" in variant else text).encode()
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    doc = loader.load(path)
    assert doc.data["train"] == {"epochs": 3}
    assert doc.locate(("model", 0, "Conv2d", "kernel_size")) == Location(str(path), 4, 44)


JSON = '{\n  "nnspec": 1,\n  "model": [\n    {"Linear": {"out_features": 10}}\n  ]\n}\n'


def test_json_is_read_with_locations() -> None:
    doc = loader.loads(JSON, "s.json")
    assert doc.data == {"nnspec": 1, "model": [{"Linear": {"out_features": 10}}]}
    assert doc.locate(("model", 0, "Linear", "out_features")) == Location("s.json", 4, 33)


def test_json_is_recognised_by_content_too() -> None:
    with pytest.raises(SpecError, match="invalid JSON"):
        loader.loads('{"nnspec": 1,}', "spec.txt")


def test_a_yaml_file_in_flow_style_is_yaml() -> None:
    """A .yaml file starting with '{' was read as JSON: 'invalid JSON: Expecting property name
    enclosed in double quotes' for valid YAML (found by the fuzzer's flow-style cases)."""
    doc = loader.loads("{nnspec: 1, input: [4], model: [ReLU]}\n", "s.yaml")
    assert doc.data == {"nnspec": 1, "input": [4], "model": ["ReLU"]}
    assert doc.locate(("model", 0)) == Location("s.yaml", 1, 33)


def test_yaml_only_syntax_in_a_json_file_is_refused() -> None:
    with pytest.raises(SpecError, match="invalid JSON"):
        loader.loads("nnspec: 1\nmodel: [ReLU]\n", "s.json")


def test_load_reads_a_path_text_or_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC)
    assert loader.load(path).file == str(path)
    assert loader.load(str(path)).data == loader.load(SPEC).data
    assert loader.load(SPEC).file == "<text>"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SPEC.encode())))
    stdin = loader.load("-")
    assert stdin.file == "<stdin>" and stdin.data["train"] == {"epochs": 3}


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "missing.yaml", "no such file"),
    (lambda p: p, "is a directory"),
], ids=["missing", "directory"])
def test_bad_paths_are_spec_errors(tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        loader.load(make(tmp_path))


@pytest.mark.parametrize(("given", "hint"), [
    ("train.epochs", "an override needs its value: train.epochs=VALUE"),
    ("train.epochs=3", "the spec file comes first, then the override: SPEC train.epochs=3"),
    ("specs/lenet2.yaml", "check the path")])
def test_a_missing_file_that_looks_like_an_override_says_so(given: str, hint: str) -> None:
    with pytest.raises(SpecError) as info:
        loader.load(given)
    assert info.value.problems[0].hint == hint


def test_size_limit_can_be_raised_by_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC + "#" + "x" * 200 + "\n")
    with pytest.raises(SpecError, match="over the 100-byte limit"):
        loader.load(path, max_bytes=100)
    assert loader.load(path, max_bytes=10_000).data["nnspec"] == 1


def test_explicit_document_markers_are_fine() -> None:
    assert loader.loads("---\nnnspec: 1\n...\n").data == {"nnspec": 1}


def test_quoted_keys_are_strings_even_when_they_look_like_numbers() -> None:
    assert loader.loads("nnspec: 1\nvars: {'1': a, 'null': b}\n").data["vars"] == {
        "1": "a", "null": "b"}


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = loader.MAX_DEPTH - 1
    doc = loader.loads("v: " + "[" * depth + "]" * depth + "\n")
    assert doc.data["v"] is not None
