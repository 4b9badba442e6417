"""Every complete spec shown in the docs and README is validated and compiled, as written."""

from __future__ import annotations

import json
import re

import pytest
import torch

import nnspec
from nnspec import plugins
from tests.conftest import ROOT

# A YAML or JSON block, and the HTML comment on the line before it, if any: a block that is
# part of a spec says which (<!-- fragment of: examples/x.yaml -->), a block that is no spec
# says so (<!-- not a spec: ... -->); every other block must be a whole spec.
FENCE = re.compile(r"(?:<!-- ([^>]*) -->\n)?```(?:yaml|json)\n(.*?)```", re.S)
DOCS = [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs").glob("*.md"))]
WHOLE = re.compile(r'^(?:nnspec: [12]\b|\{\s*"nnspec")', re.M)


def _blocks() -> list[tuple[str, str, str]]:
    """Every YAML/JSON block of the docs: (where, the comment before it, the block)."""
    return [(f"{path.name}#{i}", note, block) for path in DOCS
            for i, (note, block) in enumerate(FENCE.findall(path.read_text()))]


BLOCKS = _blocks()
EXAMPLES = [(where, block) for where, note, block in BLOCKS if WHOLE.search(block)]
FRAGMENTS = [(where, note.removeprefix("fragment of: ").strip(), block)
             for where, note, block in BLOCKS if note.startswith("fragment of: ")]


def test_every_yaml_block_of_the_docs_is_run() -> None:
    """A block that is neither a whole spec nor a marked fragment would go untested."""
    unmarked = [where for where, note, block in BLOCKS if not WHOLE.search(block) and not
                note.startswith(("fragment of: ", "not a spec"))]
    assert not unmarked, (
        f"{unmarked}: give each a whole spec (nnspec: 2 ...), or mark it on the line before "
        "the fence: <!-- fragment of: examples/SPEC.yaml --> (tested merged into that spec's "
        "sections) or <!-- not a spec: why -->")


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_documented_spec_validates_and_runs(where: str, text: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = re.findall(r"--plugin (\S+)", text.split("\n", 1)[0])  # "# run with: ..." line
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugins"))
    with plugins.loaded(*wanted):
        _validate_and_run(text)


def _validate_and_run(text: str) -> None:
    graph = nnspec.validate(text if "\n" in text else text + "\n")
    if not graph.inputs:
        return
    model = nnspec.compile(text)
    model.eval()
    inputs = [torch.zeros(2, *i.shape, dtype=getattr(torch, i.dtype)) for i in
              graph.inputs.values()]
    with torch.no_grad():
        model(*inputs)


@pytest.mark.parametrize(("where", "base", "text"), FRAGMENTS, ids=[w for w, _, _ in FRAGMENTS])
def test_documented_fragment_validates_in_its_spec(where: str, base: str, text: str) -> None:
    """A fragment's sections replace those of the spec it names; the whole must validate."""
    from ruamel.yaml import YAML

    from nnspec.lang.loader import loads

    whole = YAML(typ="safe").load((ROOT / base).read_text())
    whole.update(YAML(typ="safe").load(text))
    nnspec.validate(loads(json.dumps(whole), str(ROOT / base).removesuffix(".yaml") + ".json"))


def test_catalogue_doc_is_current() -> None:
    from nnspec.views.catalogue_docs import catalogue_markdown

    current = (ROOT / "docs" / "catalogue.md").read_text()
    assert current == catalogue_markdown(), (
        "docs/catalogue.md is stale: run "
        ".venv/bin/python -m nnspec.views.catalogue_docs > docs/catalogue.md")
