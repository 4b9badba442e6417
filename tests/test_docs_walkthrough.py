"""What a new user meets following the docs literally, and the neighbours of each command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SPECS, cli

LENET = str(SPECS / "lenet.yaml")


# -- -o FILE: compile, graph and schema share one writer --------------------------------------

@pytest.mark.parametrize("command", [["compile", LENET], ["graph", LENET], ["schema"]])
def test_output_into_a_missing_folder_is_a_usage_error(command: list[str], tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "out.txt"
    code, _, err = cli(*command, "-o", str(target))
    assert code == 2, err
    assert f"cannot write {target}: there is no folder {target.parent}" in err
    assert "Traceback" not in err and not target.parent.exists()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_output_naming_a_folder_is_refused_and_leaves_nothing_behind(force: list[str],
                                                                    tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = cli("compile", LENET, "-o", str(folder), *force)
    assert code == 2, err
    assert f"{folder} is a folder (name a file in it: -o {folder / 'NAME'})" in err
    assert "--force" not in err and "Traceback" not in err
    assert folder.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- nnspec graph -o FILE picks the format FILE's suffix names --------------------------------

@pytest.mark.parametrize(("name", "start"), [("arch.svg", "<svg "), ("arch.dot", "digraph "),
                                             ("arch.gv", "digraph "), ("arch.mmd", "flowchart "),
                                             ("arch.md", "flowchart ")])
def test_graph_output_suffix_chooses_the_format(name: str, start: str, tmp_path: Path) -> None:
    code, _, err = cli("graph", LENET, "-o", str(tmp_path / name))
    assert code == 0, err
    assert (tmp_path / name).read_text().startswith(start)


def test_graph_format_given_wins_over_the_suffix(tmp_path: Path) -> None:
    code, _, err = cli("graph", LENET, "--format", "mermaid", "-o", str(tmp_path / "x.svg"))
    assert code == 0, err
    assert (tmp_path / "x.svg").read_text().startswith("flowchart ")


def test_graph_to_stdout_is_mermaid_by_default() -> None:
    code, out, _ = cli("graph", LENET)
    assert code == 0 and out.startswith("flowchart TB\n")


# -- nnspec layers ----------------------------------------------------------------------------

def test_layers_list_names_every_section_in_plain_english() -> None:
    code, out, _ = cli("layers")
    assert code == 0
    headings = [line.split(" (")[0] for line in out.splitlines() if line.endswith("):")]
    assert headings == ["layers", "ops", "losses", "optimizers", "schedulers", "init functions",
                        "transforms", "datasets"]
