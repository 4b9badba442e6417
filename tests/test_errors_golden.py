"""Golden error messages: the exact stderr of ``nnspec validate`` for mistakes users make.

Each ``tests/golden/errors/cases/NAME.yaml`` is one mistake; ``tests/golden/errors/NAME.txt``
is what the CLI prints for it, compared exactly.  To accept new output after reading it:

    NNSPEC_ACCEPT=1 .venv/bin/python -m pytest tests/test_errors_golden.py

The CLI runs in-process (its own ``app``, the very code ``nnspec`` runs) so that forty cases
cost one torch import; one case also goes through a fresh ``python -m nnspec`` to prove the two
agree.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli, run_cli

GOLDEN = ROOT / "tests" / "golden" / "errors"
CASES = sorted((GOLDEN / "cases").glob("*.yaml"))
ACCEPT = os.environ.get("NNSPEC_ACCEPT") == "1"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): error: "
                  r"(?:(?P<path>\S+): )?(?P<msg>.+)$")


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_there_are_at_least_30_distinct_mistakes() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_error_message_matches_golden(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = cli("validate", relative(case))
    assert code == 2, f"expected exit 2, got {code}\n{out}{err}"
    assert out == ""
    for line in err.splitlines():
        match = LINE.match(line)
        assert match, f"not a located FILE:LINE:COL: error: PATH: message line: {line!r}"
        assert match["file"] == relative(case) and int(match["line"]) >= 1
    expected = GOLDEN / f"{case.stem}.txt"
    if ACCEPT:
        expected.write_text(err)
    assert expected.exists(), (
        f"no golden file {relative(expected)}; create it (after reading the output) with:\n"
        f"    NNSPEC_ACCEPT=1 .venv/bin/python -m pytest {relative(Path(__file__))} "
        f"-k {case.stem}")
    assert err == expected.read_text()


def test_every_golden_file_has_its_case() -> None:
    stems = {p.stem for p in CASES}
    orphans = [p.name for p in GOLDEN.glob("*.txt") if p.stem not in stems]
    assert orphans == []


def test_in_process_cli_matches_python_m_nnspec() -> None:
    case = relative(GOLDEN / "cases" / "typo_in_layer_name.yaml")
    fresh = run_cli("validate", case)
    assert (fresh.returncode, fresh.stderr) == (2, (GOLDEN / "typo_in_layer_name.txt").read_text())


FIVE_ERRORS = """\
nnspec: 1
input: [1, 28, 28]
model:
  - Conv2d: {out_channels: 6, kernel_sise: 5}
  - Relu
  - {MaxPool2d: {kernel_size: 2}, repeat: 0}
optimizer: {Adma: {lr: 0.1}}
train: {epochs: "3"}
"""


def test_unrelated_errors_are_all_reported_sorted_by_position(tmp_path: Path) -> None:
    spec = tmp_path / "five.yaml"
    spec.write_text(FIVE_ERRORS)
    code, _, err = cli("validate", str(spec))
    assert code == 2
    lines = err.splitlines()
    positions = [(int(m["line"]), int(m["col"])) for m in map(LINE.match, lines) if m]
    assert len(positions) == len(lines) == 5, err
    assert positions == sorted(positions)
    assert [line for line, _ in positions] == [4, 5, 6, 7, 8]


def test_json_format_lists_every_problem_with_its_fields(tmp_path: Path) -> None:
    spec = tmp_path / "five.yaml"
    spec.write_text(FIVE_ERRORS)
    code, out, err = cli("validate", "--format", "json", str(spec))
    assert code == 2 and err == ""
    problems = json.loads(out)
    assert len(problems) == 5
    for problem in problems:
        assert set(problem) == {"file", "line", "column", "path", "message", "hint",
                                "severity"}
        assert problem["file"] == str(spec)
        assert isinstance(problem["line"], int) and isinstance(problem["column"], int)
        assert isinstance(problem["message"], str) and problem["message"]
        assert problem["hint"] is None or isinstance(problem["hint"], str)
    first = problems[0]
    assert (first["line"], first["column"], first["path"]) == (4, 31, "model[0].Conv2d.kernel_sise")
    assert first["hint"] == "did you mean 'kernel_size'?"


def test_json_format_of_a_valid_spec_is_an_empty_list() -> None:
    code, out, _ = cli("validate", "--format", "json", str(ROOT / "specs" / "lenet.yaml"))
    assert (code, json.loads(out)) == (0, [])


def test_errors_from_several_files_are_all_reported(tmp_path: Path) -> None:
    good, bad = ROOT / "specs" / "lenet.yaml", GOLDEN / "cases" / "unknown_loss.yaml"
    code, out, err = cli("validate", "--no-shapes", str(good), str(bad))
    assert code == 2
    assert out.startswith(f"{good}: ok")
    assert err.startswith(f"{bad}:")
