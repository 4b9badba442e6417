"""``nnspec upgrade``: rewrite a format-1 spec as format 2, keeping its model's keys.

Format 2 changed one meaning: ``repeat: 1`` makes an ``nn.Sequential`` of one copy (children
``0``), where format 1 made the item itself.  So every ``repeat`` that format 1 evaluated to 1
is written out as what it meant, a plain item (its key deleted), and the version becomes 2.
The text is edited in place, so comments and layout stay.  A repeat that is 1 for some uses of
a block and more for others has no single format-2 spelling: it is reported, not guessed.
Names format 2 gives a meaning (``index`` under repeat, ``input`` for the input's shape) may
not be variables or block parameters.  The result is checked: the upgraded spec must resolve to
the same module names as the original.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nnspec.errors import Collector, SpecPath, format_path
from nnspec.lang.checker import check
from nnspec.lang.loader import Document, loads

RESERVED = ("index", "input")


@dataclass(frozen=True)
class Change:
    line: int
    column: int
    what: str


def upgrade(doc: Document) -> tuple[str, list[Change]]:
    """The format-2 text of a format-1 spec and what was changed; SpecError when it cannot."""
    from nnspec.compiler.resolve import repeat_counts

    spec = check(doc)
    if spec.version >= 2:
        return doc.text, []
    errors = Collector()
    _reserved_names(doc, errors)
    counts = repeat_counts(spec)
    errors.raise_if_any()
    lines = doc.text.splitlines(keepends=True)
    changes: list[Change] = []
    for path in sorted(_repeat_sites(doc.data), key=lambda p: doc.locate(p, key=True),
                       reverse=True):  # bottom up, so earlier positions stay valid
        seen = counts.get(path, set())
        literal = _value(doc, path)
        if seen == {1} or (not seen and literal == 1):
            at = doc.locate(path, key=True)
            _delete_key(lines, at.line, at.column, at.file)
            changes.append(Change(at.line, at.column, f"{format_path(path[:-1])}: removed "
                                  "repeat: 1 (format 1 made the item itself, so its keys have "
                                  "no index level; format 2 would add one)"))
        elif 1 in seen:
            where = doc.locate(path)
            errors.add(where, path, f"repeat is 1 for some uses and {max(seen)} for others: "
                       "format 1 dropped the index level only where it was 1, which format 2 "
                       "cannot say in one item",
                       "write two items with if: ${n == 1} and if: ${n > 1}, then upgrade")
    errors.raise_if_any()
    version = doc.locate(("nnspec",))
    _replace_value(lines, version.line, version.column, "1", "2")
    changes.append(Change(version.line, version.column, "nnspec: 1 -> 2"))
    text = "".join(lines)
    _same_modules(doc, text)
    return text, sorted(changes, key=lambda c: (c.line, c.column))


def _reserved_names(doc: Document, errors: Collector) -> None:
    data = doc.data
    found: list[SpecPath] = [("vars", n) for n in data.get("vars") or {} if n in RESERVED]
    for name, block in (data.get("blocks") or {}).items():
        params = block.get("params") if isinstance(block, dict) else None
        found += [("blocks", name, "params", p) for p in params or {} if p in RESERVED]
    for path in found:
        errors.add(doc.locate(path, key=True), path, f"format 2 gives '{path[-1]}' a meaning "
                   "(index: the repetition under repeat; input: the input tensor)",
                   "rename it, then upgrade")


def _repeat_sites(data: object, path: SpecPath = ()) -> list[SpecPath]:
    """The path of every ``repeat`` key in the model and the blocks."""
    if not path:
        return [*_repeat_sites(data.get("model") if isinstance(data, dict) else None,
                               ("model",)),
                *_repeat_sites(data.get("blocks") if isinstance(data, dict) else None,
                               ("blocks",))]
    out: list[SpecPath] = []
    if isinstance(data, dict):
        if "repeat" in data:
            out.append((*path, "repeat"))
        for key, value in data.items():
            out += _repeat_sites(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _repeat_sites(value, (*path, i))
    return out


def _value(doc: Document, path: SpecPath) -> object:
    value: object = doc.data
    for part in path:
        value = value[part]  # type: ignore[index]
    return value


_KEY = re.compile(r"""(["']?)repeat\1\s*:\s*""")


def _delete_key(lines: list[str], line: int, column: int, file: str) -> None:
    """Delete ``repeat: VALUE`` starting at (line, column): its line if nothing else is on it,
    else the pair and one comma beside it (a flow mapping)."""
    text = lines[line - 1]
    start = column - 1
    key = _KEY.match(text, start)
    if key is None:
        raise ValueError(f"{file}:{line}:{column}: no repeat key here")
    end = key.end()
    depth = 0
    while end < len(text) and (depth or text[end] not in ",}#\n"):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(text[end], 0)
        end += 1
    before, after = text[:start], text[end:]
    if not before.strip() and not after.split("#")[0].strip(" \r\n,"):
        del lines[line - 1]  # a line of its own (a block mapping), its comment with it
        return
    comma_before = re.search(r",\s*$", before)
    if comma_before:
        before = before[:comma_before.start()]
    else:
        after = re.sub(r"^\s*,\s*", "", after)
    lines[line - 1] = before + after


def _replace_value(lines: list[str], line: int, column: int, old: str, new: str) -> None:
    text = lines[line - 1]
    start = column - 1
    if text[start:start + len(old)] == old:
        lines[line - 1] = text[:start] + new + text[start + len(old):]


def _same_modules(doc: Document, text: str) -> None:
    """The upgraded spec must name the same modules as the original (an nnspec bug if not)."""
    from nnspec.compiler.resolve import resolve

    before = _module_names(resolve(check(doc)).root)
    after = _module_names(resolve(check(loads(text, doc.file))).root)
    if before != after:
        raise AssertionError(f"upgrade changed the module names: {sorted(before ^ after)[:5]}")


def _module_names(net: object, prefix: str = "") -> set[str]:
    from nnspec.compiler.ir import Layer, Net

    out: set[str] = set()
    assert isinstance(net, Net)
    for node in net.nodes:
        name = f"{prefix}{node.name}"
        if isinstance(node.body, Net):
            out |= _module_names(node.body, name + ".")
        elif isinstance(node.body, Layer) and node.body.kind == "layer":
            out.add(name)
    return out
