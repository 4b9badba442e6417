"""The JSON Schema: committed and current, fully described, and in agreement with pydantic.

The schema is what an editor and CI judge a spec by; the strict pydantic models are what the
runner gets.  If the two disagreed, a spec could pass ``nnspec validate`` in an editor and fail
at run time (or the reverse), so the agreement is tested property by property with hypothesis.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from nnspec.lang import checker, schema, spec
from tests.conftest import ROOT, run_cli

SCHEMA_FILE = ROOT / "schema" / "nnspec.schema.json"
REGENERATE = ".venv/bin/nnspec schema -o schema/nnspec.schema.json --force"


def test_committed_schema_is_what_nnspec_schema_prints() -> None:
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == schema.schema_text()
    assert SCHEMA_FILE.read_text() == result.stdout, (
        f"schema/nnspec.schema.json is stale; regenerate it with:\n    {REGENERATE}")


def test_checker_schema_file_is_the_schema_less_the_editors_part() -> None:
    """The checker's prebuilt schema (loaded as JSON: building it costs most of validate
    --no-shapes) is the generated one; model and blocks are left to the parser."""
    assert schema.CHECKER_FILE.read_text() == schema.checker_schema_text(), (
        "nnspec/lang/checker_schema.json is stale; regenerate it with:\n"
        "    .venv/bin/python -m nnspec.lang.schema")
    full = schema.without_annotations(schema.build_schema())
    checked = schema.load_checker_schema()
    assert set(full["definitions"]) - set(checked["definitions"]) == set(schema.EDITOR_ONLY)
    assert {k: v for k, v in checked["properties"].items() if k not in schema.MODEL_SECTIONS} \
        == {k: v for k, v in full["properties"].items() if k not in schema.MODEL_SECTIONS}
    assert "description" in checked["properties"]  # a property's name is no annotation


def test_catalogue_json_is_current_with_installed_torch() -> None:
    result = subprocess.run([sys.executable, "-m", "nnspec.catalogue._generate", "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, (
        "nnspec/catalogue/torch_api.json is stale; regenerate it with:\n"
        "    .venv/bin/python -m nnspec.catalogue._generate\n" + result.stdout + result.stderr)


def test_schema_is_a_valid_draft7_schema() -> None:
    from jsonschema import Draft7Validator

    Draft7Validator.check_schema(schema.build_schema())


def _properties(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    """Every property schema in the document, with a readable address."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{where}/properties/{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{where}/{i}")


def _described(prop: Any, definitions: dict[str, Any]) -> bool:
    if not isinstance(prop, dict):
        return False
    if prop.get("description"):
        return True
    ref = prop.get("$ref", "")
    return bool(ref) and bool(definitions.get(ref.rsplit("/", 1)[-1], {}).get("description"))


def test_every_property_has_a_description() -> None:
    document = schema.build_schema()
    undescribed = [where for where, prop in _properties(document)
                   if not _described(prop, document["definitions"])]
    assert undescribed == [], f"{len(undescribed)} properties lack a description, e.g. " + \
        ", ".join(undescribed[:10])


def test_property_walk_finds_the_nested_fields() -> None:
    """Guards the test above against walking nothing."""
    addresses = [where for where, _ in _properties(schema.build_schema())]
    assert "#/properties/train/properties/epochs" in addresses
    assert any(a.endswith("/properties/Conv2d") for a in addresses)
    assert len(addresses) > 1000


# -- jsonschema and pydantic agree on the training sections -----------------------------------

WORDS = ["", "auto", "3", "1.0", "yes", "no", "min", "max", "epoch", "step", "32", "bf16-mixed",
         "16-mixed", "cpu", "cuda:1", "val.loss", "pairs", "triplets", "same", "order", "runs",
         "float32", "x"]
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-3, max_value=3), st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([0.0, 1.0, 2.0, 0.5, 0.999, -0.5, 1e-9, 3.5]),
    # NaN and infinities never reach the checker: the loader refuses them (test_hostile.py)
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(WORDS),
    st.lists(st.one_of(st.integers(-2, 5), st.sampled_from([1.0, "a", True])), max_size=3),
)


def _likely_valid(annotation: Any, depth: int) -> st.SearchStrategy[Any]:
    """Values that fit the annotation's type (constraints mostly met too), so that about half
    the generated sections are accepted and the agreement is tested on both sides."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _likely_valid(args[0], depth)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_likely_valid(a, depth) for a in args))
    if origin is list:
        return st.lists(_likely_valid(args[0], depth), min_size=2, max_size=2)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _section(annotation, depth + 1, valid=True) if depth < 2 else st.just({})
    simple: dict[Any, st.SearchStrategy[Any]] = {
        int: st.integers(1, 1000), float: st.sampled_from([0.01, 0.5, 0.9, 1, 3]),
        bool: st.booleans(), str: st.sampled_from(WORDS[1:]), type(None): st.none()}
    return simple.get(annotation, SCALARS)


SKIP = {"dataset", "transforms", "target_transforms", "location"}  # named things: own tests


def _section(model: type[BaseModel], depth: int = 0, *,
             valid: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings of the model's own fields to likely-valid or mixed values (plus, unless
    ``valid``, a stray key now and then)."""
    def values(annotation: Any) -> st.SearchStrategy[Any]:
        good = _likely_valid(annotation, depth)
        return good if valid else st.one_of(good, good, SCALARS)

    fields = {name: values(f.annotation) for name, f in model.model_fields.items()
              if name not in SKIP}
    extra = {} if valid else {"stray": SCALARS}
    return st.fixed_dictionaries({}, optional={**fields, **extra})


def _either(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(_section(model, valid=True), _section(model))


def _schema_accepts(document: dict[str, Any]) -> bool:
    return not any(True for _ in checker._document_validator().iter_errors(document))


def _pydantic_accepts(model: type[BaseModel], value: Any) -> bool:
    try:
        model.model_validate(value, strict=True)
    except ValidationError:
        return False
    return True


def _agree(section: str, model: type[BaseModel], value: Any, parsed: Any = None) -> None:
    document = {"nnspec": 1, "model": ["ReLU"], section: value}
    by_schema = _schema_accepts(document)
    by_pydantic = _pydantic_accepts(model, value if parsed is None else parsed)
    assert by_schema == by_pydantic, (
        f"{section}: {value!r} -> jsonschema {'accepts' if by_schema else 'refuses'}, "
        f"pydantic {'accepts' if by_pydantic else 'refuses'}")


AGREEMENT = settings(max_examples=300, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("section, model", [("train", spec.Train), ("log", spec.Log)],
                         ids=["train", "log"])
@AGREEMENT
@given(data=st.data())
def test_schema_and_pydantic_agree_on(section: str, model: type[BaseModel],
                                      data: st.DataObject) -> None:
    _agree(section, model, data.draw(st.one_of(_either(model), SCALARS)))


@AGREEMENT
@given(_either(spec.Data))
def test_schema_and_pydantic_agree_on_data(value: dict[str, Any]) -> None:
    value = {"dataset": "MNIST", **value}
    _agree("data", spec.Data, value, checker._data_input(value))


@AGREEMENT
@given(_either(spec.InitMatch))
def test_schema_and_pydantic_agree_on_init_match(value: dict[str, Any]) -> None:
    _agree("init", spec.InitMatch, [{"fn": "zeros_", "match": value}], value)


@pytest.mark.parametrize("section, value", [
    ("train", {"epochs": 1.0}), ("train", {"epochs": True}), ("train", {"epochs": "3"}),
    ("train", {"grad_clip": 0}), ("train", {"grad_clip": 1}), ("train", {"seed": -1}),
    ("train", {"precision": 32}), ("log", {"every_n_steps": 0}), ("log", {"dir": None}),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else v)
def test_schema_and_pydantic_agree_on_known_traps(section: str, value: dict[str, Any]) -> None:
    _agree(section, {"train": spec.Train, "log": spec.Log}[section], value)
