"""Every complete spec shown in the docs and README is validated and compiled, as written."""

from __future__ import annotations

import re

import pytest
import torch

import nnspec
from nnspec import plugins
from tests.conftest import ROOT

FENCE = re.compile(r"```(?:yaml|json)\n(.*?)```", re.S)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _examples() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for i, block in enumerate(FENCE.findall(path.read_text())):
            if block.lstrip().startswith(("nnspec: 1", "nnspec: 2", "# yaml-language-server",
                                          "# run with:")) or (
                    block.lstrip().startswith("{") and '"nnspec"' in block):
                found.append((f"{path.name}#{i}", block))
    return found


EXAMPLES = _examples()


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


def test_catalogue_doc_is_current() -> None:
    from nnspec.views.catalogue_docs import catalogue_markdown

    current = (ROOT / "docs" / "catalogue.md").read_text()
    assert current == catalogue_markdown(), (
        "docs/catalogue.md is stale: run "
        ".venv/bin/python -m nnspec.views.catalogue_docs > docs/catalogue.md")
