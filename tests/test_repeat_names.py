"""Format 2: ``repeat: {times: N, name: PATTERN}`` names its copies from a pattern.

torchvision names DenseNet's layers ``denselayer1..N`` and RegNet's blocks ``block1-0..``; a
pattern with ``${index}`` says so for any depth.  Checked end to end: keys, the emitted Python
against the build, the locked YAML, the editor schema, and each mistake as a located error.
"""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

import nnspec
from nnspec.errors import SpecError
from nnspec.lang.loader import loads
from nnspec.lang.schema import strict_validator_class
from nnspec.lang.upgrade import upgrade
from nnspec.views.locked_yaml import locked_yaml
from tests.conftest import ROOT
from tests.parity import (
    assert_same_model,
    emitted_module,
    fill_weights,
    model_class_name,
    sample_inputs,
)

NAMED = """
nnspec: 2
input: [4]
vars: {depth: 3}
blocks:
  Dense:
    graph:
      fc: {Linear: {out_features: 2}}
      out: {cat: [input, fc]}
model:
  dense: {Dense: null, repeat: {times: $depth, name: "denselayer${index + 1}"}}
  trunk:
    sequential:
      - Linear: {out_features: 4}
    repeat: {times: 2, name: block1-$index}
  head: {Linear: {out_features: 3}}
"""


def spec(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def keys(text: str) -> list[str]:
    return list(nnspec.compile(spec(text)).state_dict())


def errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        nnspec.validate(spec(text), shapes=False)
    return [p.render() for p in info.value.problems]


def test_copies_are_named_from_the_pattern() -> None:
    assert keys(NAMED) == [
        "dense.denselayer1.fc.weight", "dense.denselayer1.fc.bias",
        "dense.denselayer2.fc.weight", "dense.denselayer2.fc.bias",
        "dense.denselayer3.fc.weight", "dense.denselayer3.fc.bias",
        "trunk.block1-0.0.weight", "trunk.block1-0.0.bias",
        "trunk.block1-1.0.weight", "trunk.block1-1.0.bias",
        "head.weight", "head.bias"]


def test_a_depth_override_names_every_copy() -> None:
    graph = nnspec.infer(spec(NAMED), ["vars.depth=5"])
    assert [n.name for n in graph.root.nodes[0].body.nodes][-1] == "denselayer5"


def test_emitted_python_names_the_copies_as_the_build_does() -> None:
    source = nnspec.emit(spec(NAMED))
    assert '("block1-0", nn.Sequential(' in source  # an OrderedDict takes any name
    built = nnspec.compile(spec(NAMED))
    emitted = emitted_module(source)[model_class_name(source)]()
    fill_weights(built)
    assert_same_model(built, emitted, sample_inputs(nnspec.infer(spec(NAMED))))


def test_the_locked_yaml_writes_the_names_out_and_compiles_to_the_same_keys() -> None:
    graph = nnspec.infer(spec(NAMED))
    locked = locked_yaml(graph, nnspec.load_spec(spec(NAMED)))
    assert "denselayer3:" in locked and "block1-1:" in locked and "${" not in locked
    assert list(nnspec.compile(locked).state_dict()) == keys(NAMED)


def test_the_summary_shows_the_names() -> None:
    from nnspec.views.summary import summarise

    names = [row.name for row in summarise(nnspec.infer(spec(NAMED))).rows]
    assert "dense.denselayer2.fc" in names and "trunk.block1-0" in names


def test_times_alone_is_a_plain_repeat() -> None:
    plain = NAMED.replace('repeat: {times: $depth, name: "denselayer${index + 1}"}',
                          "repeat: {times: $depth}")
    assert keys(plain)[0] == "dense.0.fc.weight"


def test_format_1_reads_a_named_repeat_as_format_2_and_upgrade_keeps_it() -> None:
    text = spec("""
    nnspec: 1
    input: [4]
    model:
      stage: {Linear: {out_features: 4}, repeat: {times: 1, name: "layer${index + 1}"}}
    """)
    assert keys(text) == ["stage.layer1.weight", "stage.layer1.bias"]
    upgraded, _ = upgrade(loads(text, "v1.yaml"))
    assert "name: \"layer${index + 1}\"" in upgraded and keys(upgraded) == keys(text)


def test_the_editor_schema_takes_the_pattern_and_refuses_a_misspelt_key() -> None:
    schema = json.loads((ROOT / "schema" / "nnspec.schema.json").read_text())
    validator = strict_validator_class()(schema)
    good = {"nnspec": 2, "input": [4], "model": {"a": {
        "Linear": {"out_features": 4}, "repeat": {"times": 2, "name": "block1-${index}"}}}}
    assert list(validator.iter_errors(good)) == []
    bad = json.loads(json.dumps(good).replace('"name"', '"nmae"'))
    assert list(validator.iter_errors(bad))


def one_item(repeat: str) -> str:
    return ("nnspec: 2\ninput: [4]\nmodel:\n"
            f"  a: {{Linear: {{out_features: 4}}, repeat: {repeat}}}\n")


@pytest.mark.parametrize(("repeat", "message"), [
    ('{times: 3, name: "x${index // 2}"}',
     "4:59: error: model.a.repeat.name: the name pattern gives copies 0 and 1 the same name, "
     "'x0' (each copy needs a name of its own"),
    ('{times: 2, name: "layer"}', "the name pattern gives copies 0 and 1 the same name, 'layer'"),
    ('{times: 2, name: "a b${index}"}', "copy 0: 'a b0' is not a valid module name"),
    ('{times: 2, name: "${index}-a"}', None),  # '0-a' is a module name torch takes
    ('{times: 2, name: "-${index}"}', "copy 0: '-0' is not a valid module name"),
    ('{times: 1, name: "in"}', "copy 0: 'in' is a reserved word"),
    ('{times: 2, name: "x${index / 2}"}', "gives 0.0, not an integer or a string"),
    ('{times: 2, name: "x${depth}"}', "unknown variable 'depth'"),
    ('{times: 2, name: "x$"}', "has a $ that starts no ${expression} or $name"),
    ("{times: 2, name: 3}", "expected a name pattern (a string), found a number (3)"),
    ('{count: 2, name: "x${index}"}', "unexpected key 'count' in repeat"),
    ("{times: 0, name: \"x${index}\"}", "model.a.repeat.times: repeat must be a positive"),
])
def test_a_bad_pattern_is_a_located_error(repeat: str, message: str | None) -> None:
    text = one_item(repeat)
    if message is None:
        assert keys(text)[0] == "a.0-a.weight"
        return
    found = errors(text)
    assert any(message in p for p in found), found


def test_a_missing_times_is_said_once() -> None:
    (problem,) = errors(one_item('{name: "x${index}"}'))
    assert "repeat needs times" in problem


def test_a_misspelt_times_is_one_error_not_two() -> None:
    (problem,) = errors(one_item("{time: 2}"))
    assert "unexpected key 'time' in repeat (did you mean 'times'?)" in problem


def test_a_pattern_inside_a_block_reads_its_parameters() -> None:
    text = """
    nnspec: 2
    input: [4]
    blocks:
      Stage:
        params: {stage: int, depth: int}
        sequential:
          - {Linear: {out_features: 4}, repeat: {times: $depth, name: "block${stage}-${index}"}}
    model:
      trunk_output:
        sequential:
          - {Stage: {stage: "${index + 1}", depth: "${index + 1}"}, repeat: 2}
    """
    names = [k.rsplit(".", 1)[0] for k in keys(text)[::2]]
    assert names == ["trunk_output.0.0.0.block1-0", "trunk_output.0.1.0.block2-0",
                     "trunk_output.0.1.0.block2-1"]
    with torch.no_grad():
        assert nnspec.compile(spec(text))(torch.zeros(1, 4)).shape == (1, 4)
