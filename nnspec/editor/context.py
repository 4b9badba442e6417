"""Where the cursor is in a spec being typed: read from the text, which is often not valid YAML.

``context_at(text, line, column)`` gives the word under the cursor, the chain of keys that
encloses it (by indentation and open flow mappings), whether it stands where a key or a value
goes, and the keys already written in an open ``{...}``.  Completion and hover decide from this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[$A-Za-z0-9_.]")
_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)*([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")


@dataclass(frozen=True)
class Context:
    word: str  # the word under the cursor (the part before it, for completion: ``prefix``)
    prefix: str
    start: int  # column where the word starts
    chain: tuple[str, ...]  # enclosing keys, outermost first (list items add nothing)
    at_key: bool  # a key goes here (``{out_channels: 6, |}``, ``- |``), else a value
    key: str | None = None  # at a value: the key it belongs to (``loss: |`` -> 'loss')
    given: tuple[str, ...] = ()  # keys already written in the open flow mapping
    in_flow: bool = False
    list_item: bool = False  # right after ``- ``


def word_at(line: str, column: int) -> tuple[str, int]:
    """The word (identifier, ``$var`` or dotted name) around ``column``, and where it starts."""
    start = column
    while start > 0 and _WORD.match(line[start - 1]):
        start -= 1
    end = column
    while end < len(line) and _WORD.match(line[end]):
        end += 1
    return line[start:end], start


def _strip_comment(line: str) -> str:
    quote = None
    for i, c in enumerate(line):
        if c in "'\"" and quote in (None, c):
            quote = None if quote else c
        elif c == "#" and quote is None and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _block_chain(lines: list[str], row: int, indent: int, item: bool) -> list[str]:
    """Keys of the lines above that enclose line ``row`` (outermost first).

    A line encloses the one below when it is indented less, or equally when the line below is
    a list item and it is a key (YAML lets ``model:`` and ``- ReLU`` share a column).  Of an
    enclosing ``- Conv2d:`` or ``conv1:`` with nothing after the colon, the key is in the chain;
    of ``- Conv2d: {...}`` (whose mapping continues below with ``repeat: 2``) nothing is.
    """
    chain: list[str] = []
    for above in range(row - 1, -1, -1):
        text = _strip_comment(lines[above]).rstrip()
        if not text.strip():
            continue
        own = len(text) - len(text.lstrip())
        dash = text.lstrip().startswith("-")
        if not (own < indent or (item and own == indent and not dash)):
            continue
        match = _KEY_LINE.match(text)
        if match and not match.group(3).strip():
            chain.append(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*:", text)[-1])
        indent, item = own, dash
        if own == 0 and not dash:
            break
    return chain[::-1]


def _open_flow(before: str) -> tuple[list[str], str] | None:
    """The keys owning each open ``{`` in ``before`` (outermost first), and the open mapping's
    text so far; None outside a flow mapping."""
    stack: list[int] = []
    quote = None
    for i, c in enumerate(before):
        if c in "'\"" and quote in (None, c):
            quote = None if quote else c
        elif quote is None and c in "{[":
            stack.append(i)
        elif quote is None and c in "}]" and stack:
            stack.pop()
    braces = [i for i in stack if before[i] == "{"]
    if not braces or stack[-1] != braces[-1]:
        return None
    owners = []
    for i in braces:
        found = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*:\s*$", before[:i])
        owners.append(found.group(1) if found else "")
    return owners, before[braces[-1] + 1:]


def context_at(text: str, line: int, column: int) -> Context:
    lines = text.split("\n")
    current = lines[line] if line < len(lines) else ""
    column = min(column, len(current))
    word, start = word_at(current, column)
    prefix = current[start:column]
    before = _strip_comment(current[:start])
    indent = len(current) - len(current.lstrip())
    item = re.match(r"^\s*(-\s+)+", current)
    content_col = item.end() if item else indent
    chain = _block_chain(lines, line, indent, bool(item))
    flow = _open_flow(before)
    if flow is not None:
        owners, inside = flow
        segment = inside.rsplit(",", 1)[-1]
        given = tuple(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*:", inside))
        at_key = ":" not in segment
        key = None if at_key else segment.split(":", 1)[0].strip().lstrip("{")
        full = tuple([*chain, *[o for o in owners if o]])
        return Context(word, prefix, start, full, at_key, key, given, True, False)
    rest = before[content_col:] if len(before) >= content_col else ""
    if ":" in rest:  # "key: |" on this line
        keys = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*:", rest)
        return Context(word, prefix, start, tuple([*chain, *keys[:-1]]), False, keys[-1],
                       list_item=bool(item))
    return Context(word, prefix, start, tuple(chain), True, None, list_item=bool(item))
