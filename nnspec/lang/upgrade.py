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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from nnspec.errors import Collector, Problem, SpecPath, format_path
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
    edits: list[tuple[int, int, Callable[[list[str]], None], Change]] = []
    for path in _repeat_sites(doc.data):
        seen = counts.get(path, set())
        if seen == {1} or (not seen and _value(doc, path) == 1):
            at = doc.locate(path, key=True)
            edits.append((at.line, at.column, partial(
                _delete_key, line=at.line, column=at.column, file=at.file),
                Change(at.line, at.column, _removed(format_path(path[:-1]),
                                                    _value(doc, path)))))
        elif 1 in seen:
            errors.add(doc.locate(path), path, f"repeat is 1 for some uses and {max(seen)} "
                       "for others: format 1 dropped the index level only where it was 1, "
                       "which format 2 cannot say in one item",
                       _split_hint(_value(doc, path)))
    errors.raise_if_any()
    edits += _block_renames(doc, spec.warnings)
    version = doc.locate(("nnspec",))
    edits.append((version.line, version.column, partial(
        _replace_value, line=version.line, column=version.column, old="1", new="2"),
        Change(version.line, version.column, "nnspec: 1 -> 2")))
    lines = doc.text.splitlines(keepends=True)
    for _, _, edit, _ in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        edit(lines)  # from the end, so that every position still holds when it is edited
    text = "".join(lines)
    _same_modules(doc, text)
    return text, sorted((e[3] for e in edits), key=lambda c: (c.line, c.column))


Edit = tuple[int, int, "Callable[[list[str]], None]", Change]


def _block_renames(doc: Document, warnings: Sequence[Problem]) -> list[Edit]:
    """A block named like a catalogue entry (a warning in format 1, refused in format 2) is
    renamed NAMEBlock where it is defined and wherever it is used: block names are no module
    names, so the keys stay."""
    clashing = {str(w.path[1]) for w in warnings if w.path[:1] == ("blocks",) and len(w.path) == 2}
    edits: list[Edit] = []
    for name in sorted(clashing):
        new = f"{name}Block"
        for path, key in [(("blocks", name), True), *_uses(doc.data, name)]:
            at = doc.locate(path, key=key)
            edits.append((at.line, at.column, partial(
                _replace_value, line=at.line, column=at.column, old=name, new=new),
                Change(at.line, at.column, f"{format_path(path)}: block {name} renamed {new} "
                       "(format 2 refuses a block named like a layer)")))
    return edits


def _uses(data: object, name: str, path: SpecPath = ()) -> list[tuple[SpecPath, bool]]:
    """Where a layer position names ``name``: a mapping key or a string item."""
    if not path:
        return [*_uses((data or {}).get("model"), name, ("model",)),  # type: ignore[attr-defined]
                *_uses((data or {}).get("blocks"), name, ("blocks",))]  # type: ignore[attr-defined]
    out: list[tuple[SpecPath, bool]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == name and path[-1:] != ("blocks",):
                out.append(((*path, key), True))
            out += _uses(value, name, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            if value == name:
                out.append(((*path, i), False))
            else:
                out += _uses(value, name, (*path, i))
    elif data == name and path[-1] not in ("name", "description"):
        out.append((path, False))
    return out


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


def _removed(where: str, repeat: object) -> str:
    """What removing a repeat of 1 did; for an expression, that its names no longer count."""
    said = (f"{where}: removed repeat: 1 (format 1 made the item itself, so its keys have no "
            "index level; format 2 would add one)")
    if isinstance(repeat, int) and not isinstance(repeat, bool):
        return said
    keep = _split_hint(repeat).removesuffix(", then upgrade")
    return (f"{said}; it was repeat: {repeat}, 1 with this spec's values, so changing them "
            f"no longer repeats the item: to keep that, {keep}")


def _split_hint(repeat: object) -> str:
    """``write two items with if: ${k == 1} and if: ${k > 1}``, quoting the repeat's own
    expression (``$k``, ``${2 * k}``, or a mapping's ``times``)."""
    if isinstance(repeat, dict):
        repeat = repeat.get("times")
    text = str(repeat).strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1].strip()
    elif text.startswith("$"):
        text = text[1:]
    if not text.isidentifier():
        text = f"({text})"
    return (f"write two items, one with if: ${{{text} == 1}} and no repeat, the other with "
            f"if: ${{{text} > 1}} and the repeat, then upgrade")


def _value(doc: Document, path: SpecPath) -> object:
    value: object = doc.data
    for part in path:
        value = value[part]  # type: ignore[index]
    return value


_KEY = re.compile(r"""(["']?)repeat\1\s*:\s*""")


def _delete_key(lines: list[str], *, line: int, column: int, file: str) -> None:
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


def _replace_value(lines: list[str], *, line: int, column: int, old: str, new: str) -> None:
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
