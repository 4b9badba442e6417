"""Shared fixtures: paths to the repository, the specs, and a helper to run the CLI."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
EXAMPLES = ROOT / "examples"


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write spec text to a file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def run_cli(*args: str, stdin: str | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``nnspec ARGS`` in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "nnspec", *args], input=stdin,
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout)


def cli(*args: str) -> tuple[int, str, str]:
    """``nnspec ARGS`` through the CLI's own entry point, in this process: (code, out, err)."""
    from nnspec.cli import app

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            app(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()
