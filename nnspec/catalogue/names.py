"""Which free names (blocks) are too like a catalogue name: the one naming rule.

Blocks are named freely, so a misspelt layer (``Conv2D``, ``Lienar``) would otherwise read as a
block nobody defined, or a block could silently take a layer's name.  A block name *clashes* with
a catalogue entry (a layer or an op) when it is

* the same name (``Linear``), or the same name in another case (``Conv2D``, ``relu``), or
* one edit away from it, ignoring case: one letter added, removed or changed, or two
  neighbours swapped (``Lienar``, ``Conv2dd``, ``BatchNorm2``).  Only for entry names of four
  letters or more: one edit from ``RNN`` or ``add`` is half the short words there are (``CNN``).

The checker warns about a clash in spec version 1 (a torch release adding ``MLP`` does not break
a v1 spec) and language v2 refuses it.  ``near_miss_pattern`` writes the very same rule as one
regular expression, which the JSON Schema uses to flag such names in an editor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from nnspec import catalogue

MIN_EDIT_LENGTH = 4  # entry names shorter than this clash only by case


def within_one_edit(a: str, b: str) -> bool:
    """True when ``a`` becomes ``b`` by at most one insertion, deletion, substitution or swap
    of two neighbours (the optimal-string-alignment distance is at most 1)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1:] == b[i + 1:] or (a[i + 2:] == b[i + 2:] and a[i:i + 2] == b[i:i + 2][::-1])
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1:] == shorter[i:]


def clashes_with(name: str, entry: str) -> bool:
    """The naming rule for one pair: ``name`` (a block) is too like ``entry`` (a catalogue name)."""
    low, target = name.lower(), entry.lower()
    if low == target:
        return True
    return len(entry) >= MIN_EDIT_LENGTH and within_one_edit(low, target)


def catalogue_clash(name: str, entries: Iterable[str] | None = None) -> str | None:
    """The catalogue name that ``name`` is too like (itself first), else None."""
    names = list(catalogue.callables() if entries is None else entries)
    same = [e for e in names if e.lower() == name.lower()]
    if same:
        return name if name in same else same[0]
    return next((e for e in names if clashes_with(name, e)), None)


# -- the same rule as a regular expression, for the JSON Schema ------------------------------

def _letter(c: str) -> str:
    if c.isalpha() and c.lower() != c.upper():
        return f"[{c.lower()}{c.upper()}]"
    return re.escape(c)


def _exact(s: str) -> str:
    return "".join(_letter(c) for c in s)


def _one_edit(s: str) -> str:
    """A regex for every string within one edit of ``s`` (ignoring case), ``s`` included."""
    if not s:
        return ".?"
    c, rest = s[0], s[1:]
    options = [_letter(c) + _group(_one_edit(rest)), f"(?:.{_letter(c)}?)?" + _exact(rest)]
    if rest:
        options.append(_letter(rest[0]) + _letter(c) + _exact(rest[1:]))
    return "|".join(options)


def _group(regex: str) -> str:
    return f"(?:{regex})" if "|" in regex else regex


def _entry_pattern(entry: str) -> str:
    return _one_edit(entry) if len(entry) >= MIN_EDIT_LENGTH else _exact(entry)


@cache
def near_miss_pattern(entries: tuple[str, ...] | None = None) -> str:
    """An ECMAScript (and Python) regex matching every name that clashes with an entry,
    the entries' exact names included: the schema pairs it with the exact names allowed."""
    names = sorted(catalogue.callables() if entries is None else entries)
    return "^(?:" + "|".join(f"(?:{_entry_pattern(n)})" for n in names) + ")$"
