"""Specs the fuzz campaign of seed 1 (65,483 cases on main) found ending in a traceback: each is
now one located error, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnspec.cli import app

CASES = {
    "repeated matmul": ("nnspec: 2\ninput: [4, 8]\nmodel:\n  graph:\n    a: {Linear: 8}\n"
                        "    b: {matmul: [a, a], repeat: 2}\n"),
    "init fn a mapping": ("nnspec: 1\ninput: [4]\nmodel: [{Linear: 2}]\n"
                          "init:\n  - {match: {param: weight}, fn: {normal_: 1}}\n"),
    "trunc_normal std 0": ("nnspec: 2\ninput: [4]\nmodel:\n  graph:\n"
                           "    w: {parameter: {shape: [4], init: {trunc_normal: {std: 0}}}}\n"
                           "    out: {mul: [input, w]}\n"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_fuzz_finding_is_a_located_error(case: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(CASES[case])
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert result.output.startswith(f"{spec}:") or f"{spec}:" in result.output
