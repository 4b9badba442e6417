"""Output the README shows for a command is what the command prints, for the commands whose
output does not depend on the machine (the mistakes in examples/mistakes/)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, cli

README = (ROOT / "README.md").read_text()


def _shown(command: str) -> list[str]:
    """The lines the README shows under ``$ COMMAND``, up to the next prompt or fence."""
    block = README.split(f"$ {command}\n", 1)[1]
    return re.split(r"^(?:\$ |```)", block, maxsplit=1, flags=re.M)[0].splitlines()


@pytest.mark.parametrize("name", ["bad", "shape"])
def test_readme_mistakes_exist_and_print_what_the_readme_shows(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the repository
    path = f"examples/mistakes/{name}.yaml"
    assert (ROOT / path).is_file()
    code, out, err = cli("validate", path)
    assert code == 2 and not out
    assert err.splitlines() == _shown(f"nnspec validate {path}")


def _paragraphs(text: str) -> list[str]:
    """Paragraphs and table rows: where a figure and the machine it came from must meet."""
    return [part for block in re.split(r"\n\s*\n", text)
            for part in (block.splitlines() if block.lstrip().startswith("|") else [block])]


MACHINE = re.compile(r"\b(CPU|VM|H200|GPU|machine)\b")
SPEED = re.compile(r"\d[\d,.]*\s*(samples/s|s\b)")


@pytest.mark.parametrize("doc", ["README.md", "docs/training.md"])
def test_speed_figures_say_what_machine_they_came_from(doc: str) -> None:
    """A throughput or a duration without its machine misleads (the README once promised 1 s and
    15,000 samples/s that a loaded 2-core VM never saw)."""
    text = re.sub(r"```.*?```", "", (ROOT / doc).read_text(), flags=re.S)  # listings elide them
    bare = [p for p in _paragraphs(text) if "samples/s" in p and SPEED.search(p)
            and not MACHINE.search(p) and "x " not in p]
    assert not bare, bare


def test_readme_training_listing_elides_throughput() -> None:
    listing = _shown(".venv/bin/nnspec train examples/lenet_digits.yaml")
    assert listing and all("... samples/s" in line for line in listing if "samples/s" in line)
    assert "in ...s" in listing[-1]
