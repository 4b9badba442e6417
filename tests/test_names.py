"""The naming rule: a block named like a catalogue entry is a warning (v1), and the schema's
regular expression says exactly what the rule says."""

from __future__ import annotations

import random
import re
import string
from pathlib import Path

import pytest

from nnspec import catalogue
from nnspec.api import validate
from nnspec.catalogue.names import catalogue_clash, near_miss_pattern, within_one_edit
from nnspec.errors import SpecError


@pytest.mark.parametrize(("name", "entry"), [
    ("Conv2D", "Conv2d"), ("relu", "ReLU"), ("Linear", "Linear"), ("Lienar", "Linear"),
    ("Conv2dd", "Conv2d"), ("BatchNorm2", "BatchNorm1d"), ("ADD", "add"), ("Fold2", "Fold"),
    ("MLP", "MLP"),
])
def test_near_misses_and_other_cases_clash(name: str, entry: str) -> None:
    found = catalogue_clash(name)
    assert found is not None and found.lower()[:5] == entry.lower()[:5]


@pytest.mark.parametrize("name", ["BasicBlock", "Bottleneck", "DoubleConv", "ConvBNReLU6",
                                  "CNN", "FeedForward", "SElayer", "Stem", "Head", "Encoder", "Up",
                                  "Down"])
def test_ordinary_block_names_do_not_clash(name: str) -> None:
    assert catalogue_clash(name) is None


def test_one_edit_counts_a_swap_of_neighbours() -> None:
    assert within_one_edit("lienar", "linear") and not within_one_edit("lnieaR", "linear")


def _mutations(seed: int, count: int) -> list[str]:
    rnd, names, out = random.Random(seed), sorted(catalogue.callables()), []
    for _ in range(count):
        word = list(rnd.choice(names))
        for _ in range(rnd.choice((1, 1, 2))):
            at, ch = rnd.randrange(len(word)), rnd.choice(string.ascii_letters + "0123456789_")
            kind = rnd.randrange(5)
            if kind == 0:
                word[at] = ch
            elif kind == 1 and len(word) > 1:
                del word[at]
            elif kind == 2:
                word.insert(at, ch)
            elif kind == 3 and at < len(word) - 1:
                word[at], word[at + 1] = word[at + 1], word[at]
            else:
                word[at] = word[at].swapcase()
        out.append("".join(word))
    return out


def test_the_schema_pattern_is_the_same_rule() -> None:
    pattern = re.compile(near_miss_pattern())
    for word in [*_mutations(0, 3000), *catalogue.callables()]:
        assert (pattern.match(word) is not None) == (catalogue_clash(word) is not None), word


def test_a_block_named_like_a_layer_is_a_warning_in_v1(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("nnspec: 1\ninput: [4]\nblocks:\n  Lienar:\n"
                    "    sequential: [{Linear: {out_features: 3}}]\nmodel: [Lienar]\n")
    graph = validate(spec, shapes=False)
    [warning] = graph.warnings
    assert warning.render() == (
        f"{spec}:4:3: warning: blocks.Lienar: block 'Lienar' is named like a layer, 'Linear' "
        "(a misspelt 'Linear'? else rename the block; language v2 refuses such names)")


def test_a_catalogue_that_grows_does_not_break_a_v1_spec(tmp_path: Path) -> None:
    """MLP came with torchvision.ops: a v1 block named MLP still validates, with a warning."""
    spec = tmp_path / "s.yaml"
    spec.write_text("nnspec: 1\ninput: [4]\nblocks:\n  MLP:\n"
                    "    sequential: [{Linear: {out_features: 3}}]\nmodel: [MLP]\n")
    graph = validate(spec)
    assert [w.message for w in graph.warnings] == [
        "block 'MLP' takes the name of a layer: here MLP means the block"]
    assert graph.params == 15  # the block's Linear(4, 3), not torchvision's MLP


def test_warnings_are_listed_beside_errors(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("nnspec: 1\ninput: [4]\nblocks:\n  Lienar:\n"
                    "    sequential: [{Linear: {out_feature: 3}}]\nmodel: [Lienar]\n")
    with pytest.raises(SpecError) as caught:
        validate(spec, shapes=False)
    assert [p.severity for p in caught.value.problems] == ["warning", "error"]


def test_validate_prints_a_warning_and_passes(tmp_path: Path) -> None:
    from tests.conftest import cli

    spec = tmp_path / "s.yaml"
    spec.write_text("nnspec: 1\ninput: [4]\nblocks:\n  Conv2D:\n"
                    "    sequential: [{Linear: {out_features: 3}}]\nmodel: [Conv2D]\n")
    code, out, err = cli("validate", "--no-shapes", str(spec))
    assert code == 0 and out == f"{spec}: ok (s)\n"
    assert err == (f"{spec}:4:3: warning: blocks.Conv2D: block 'Conv2D' is named like a layer, "
                   "'Conv2d' (a misspelt 'Conv2d'? else rename the block; language v2 refuses "
                   "such names)\n")


def test_from_version_2_the_naming_rule_is_an_error() -> None:
    from nnspec.errors import Collector
    from nnspec.lang.model_ast import ModelParser

    for version, kind in ((1, "warnings"), (2, "problems")):
        errors = Collector()
        parser = ModelParser(lambda path, key=False: None, errors, version)
        parser.blocks({"Lienar": {"sequential": ["ReLU"]}}, ("blocks",))
        assert [p.message for p in getattr(errors, kind)] == [
            "block 'Lienar' is named like a layer, 'Linear'"]
