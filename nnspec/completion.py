"""Shell completion values for the CLI (typer's bash, zsh and fish scripts call back into
``nnspec``): spec paths, and catalogue names after ``nnspec layers``.  Torch-free and quick:
the shell waits for these on every Tab.

Paths are listed here rather than left to the shell because typer's fish script turns the
shell's own file completion off; a folder that is the only match is opened one level, so that
bash (which adds a space after a lone completion) does not end the word at ``specs/``.
"""

from __future__ import annotations

import os
from pathlib import Path

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
MAX_ITEMS = 200


def spec_paths(incomplete: str) -> list[str]:
    """Spec files and folders that start with ``incomplete`` (a path as typed)."""
    found = _matches(incomplete)
    folders = [f for f in found if f.endswith("/")]
    if folders and len(folders) == len(found) == 1:
        found = [*folders, *_matches(folders[0])]
    return found[:MAX_ITEMS]


def _matches(incomplete: str) -> list[str]:
    head, _, stem = incomplete.rpartition("/")
    folder = Path(os.path.expanduser(head + "/" if head else "."))
    prefix = head + "/" if head or incomplete.startswith("/") else ""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem):
            continue
        if entry.is_dir():
            out.append(f"{prefix}{entry.name}/")
        elif entry.name.endswith(SPEC_SUFFIXES):
            out.append(prefix + entry.name)
    return out


def catalogue_names(incomplete: str) -> list[tuple[str, str]]:
    """Every name ``nnspec layers NAME`` knows (layers, ops, losses, ...), with its one-line
    doc, that starts with ``incomplete`` (case-insensitively)."""
    from nnspec.catalogue.text import one_line
    from nnspec.views.catalogue_docs import SECTIONS, entries

    low = incomplete.lower()
    names: dict[str, str] = {}
    for kind in SECTIONS:
        for name, entry in entries(kind).items():
            if name.lower().startswith(low):
                names.setdefault(name, one_line(entry.doc, 70))
    return sorted(names.items())
