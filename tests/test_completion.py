"""Shell completion: typer's bash, zsh and fish scripts, generated explicitly (typer would pick
the shell from the parent process) and checked by that shell; spec paths and catalogue names.

A shell that is not installed skips its tests, saying so (apt-get install zsh fish).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnspec.completion import catalogue_names, spec_paths
from tests.conftest import ROOT

SYNTAX = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}


def _env(tmp_path: Path) -> dict[str, str]:
    """PATH with an ``nnspec`` that runs this checkout (the scripts call ``nnspec`` back)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "nnspec"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nnspec "$@"\n')
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


def _script(shell: str, tmp_path: Path) -> Path:
    out = subprocess.run([sys.executable, "-m", "nnspec", "--show-completion", shell],
                         capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT,
                         timeout=60, check=True).stdout
    assert "_NNSPEC_COMPLETE" in out
    path = tmp_path / f"nnspec.{shell}"
    path.write_text(out)
    return path


def _need(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (apt-get install {shell})")


@pytest.mark.parametrize("shell", list(SYNTAX))
def test_each_completion_script_is_valid_for_its_shell(shell: str, tmp_path: Path) -> None:
    _need(shell)
    script = _script(shell, tmp_path)
    checked = subprocess.run([*SYNTAX[shell], str(script)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_bash_completes_layer_names_and_spec_paths(tmp_path: Path) -> None:
    _need("bash")
    script = _script("bash", tmp_path)
    probe = (f"source {script}\n"
             "COMP_WORDS=(nnspec layers ConvTranspose2); COMP_CWORD=2; _nnspec_completion nnspec\n"
             "echo \"${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(nnspec summary specs/le); COMP_CWORD=2; _nnspec_completion nnspec\n"
             "echo \"${COMPREPLY[*]}\"\n")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         env=_env(tmp_path), timeout=120).stdout.splitlines()
    assert out == ["ConvTranspose2d", "specs/lenet.yaml"]


def test_fish_completes_layer_names_and_spec_paths(tmp_path: Path) -> None:
    _need("fish")
    script = _script("fish", tmp_path)
    probe = (f"source {script}; complete -C 'nnspec layers MSE'; "
             "complete -C 'nnspec validate specs/len'")
    out = subprocess.run(["fish", "--no-config", "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, env=_env(tmp_path), timeout=120).stdout.splitlines()
    assert [line.split("\t")[0] for line in out] == ["MSELoss", "specs/lenet.yaml"]
    assert "mean squared error" in out[0]


def test_zsh_is_answered_with_names_and_their_docs(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "nnspec"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env={
                             **_env(tmp_path), "_NNSPEC_COMPLETE": "complete_zsh",
                             "_TYPER_COMPLETE_ARGS": "nnspec layers CrossEnt"}).stdout
    assert '"CrossEntropyLoss":"This criterion computes the cross entropy loss' in out


def test_spec_paths_list_spec_files_and_open_a_lone_folder(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    (tmp_path / "nets").mkdir()
    for name in ("a.yaml", "b.json", "notes.txt"):
        (tmp_path / "nets" / name).write_text("")
    (tmp_path / "nets" / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert spec_paths("ne") == ["nets/", "nets/a.yaml", "nets/b.json", "nets/sub/"]
    assert spec_paths("nets/a") == ["nets/a.yaml"]
    assert spec_paths("missing/x") == []


def test_catalogue_names_cover_every_section() -> None:
    names = dict(catalogue_names(""))
    for name in ("Conv2d", "add", "CrossEntropyLoss", "Adam", "StepLR", "kaiming_normal_",
                 "Normalize", "MNIST"):
        assert name in names
    assert [n for n, _ in catalogue_names("crossent")] == ["CrossEntropyLoss"]
