"""The load pass: bytes -> ``Document`` (plain data plus the source location of every node).

YAML is read as a stream of parser events and turned into plain Python data here, so nothing
the file says can pick a constructor: tags are refused, aliases are refused (no billion laughs),
depth, size and node count are bounded before anything walks the result, and plain scalars are
typed by the YAML 1.2 core schema (``no`` stays a string) with the ambiguous cases refused.
JSON is checked by the standard parser first (duplicate keys and NaN refused) and then read by
the same event walker, which is what gives it line and column numbers.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnspec import limits
from nnspec.errors import Location, SpecError, SpecPath
from nnspec.limits import Limits

# The defaults; the limits in force (which a user can raise) come from nnspec.limits.current().
MAX_BYTES = Limits().max_bytes
MAX_DEPTH = Limits().max_depth
MAX_NODES = Limits().max_values
MAX_INT = 2**63 - 1

_INT = re.compile(r"[-+]?[0-9]+$")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+$")
_OCT = re.compile(r"0o[0-7]+$")
_HEX = re.compile(r"0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_NONFINITE = re.compile(r"[-+]?\.(inf|Inf|INF)$|\.(nan|NaN|NAN)$")
_NULL = {"null", "Null", "NULL", "~", ""}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_JSON_NONFINITE = {"NaN", "Infinity", "-Infinity"}
_CORE_TAG = "tag:yaml.org,2002:"
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?$")


@dataclass
class Document:
    """A parsed spec: plain data and where each piece came from."""

    data: Any
    file: str
    value_locations: dict[SpecPath, Location] = field(default_factory=dict)
    key_locations: dict[SpecPath, Location] = field(default_factory=dict)
    text: str = ""
    overrides: tuple[str, ...] = ()  # applied to ``text``'s data to give ``data``

    def locate(self, path: SpecPath, *, key: bool = False) -> Location:
        """The location of the node at ``path`` (its key if ``key``), else its nearest parent."""
        path = tuple(path)
        while True:
            if key and path in self.key_locations:
                return self.key_locations[path]
            if path in self.value_locations:
                return self.value_locations[path]
            if path in self.key_locations:
                return self.key_locations[path]
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]


def _fail(file: str, line: int, col: int, path: SpecPath, message: str,
          hint: str | None = None) -> SpecError:

    return SpecError.at(Location(file, line, col), tuple(path), message, hint)


def load(source: str | Path, *, max_bytes: int | None = None) -> Document:
    """Load a spec from a path, ``-`` (standard input) or, if it contains a newline or
    starts like a document, from text."""
    max_bytes = max_bytes or limits.current().max_bytes
    text, name = _read(source, max_bytes)
    return loads(text, name, max_bytes=max_bytes)


def _missing_hint(name: str) -> str:
    """``train.epochs`` given where a spec file goes: an override that lost its ``=``."""
    looks_like_key = "." in name and "/" not in name and "\\" not in name and \
        not name.endswith((".yaml", ".yml", ".json"))
    if "=" in name and "/" not in name.partition("=")[0]:
        return f"the spec file comes first, then the override: SPEC {name}"
    return f"an override needs its value: {name}=VALUE" if looks_like_key else "check the path"


def _read(source: str | Path, max_bytes: int) -> tuple[str, str]:
    if isinstance(source, str) and source == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
        return _decode(data, "<stdin>", max_bytes), "<stdin>"
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith(("{", "nnspec"))):
        return source, "<text>"
    path = Path(source)
    name = str(source)
    if not path.exists():
        raise _fail(name, 0, 0, (), "no such file", _missing_hint(name))
    if path.is_dir():
        raise _fail(name, 0, 0, (), "is a directory, not a spec file")
    size = path.stat().st_size
    if size > max_bytes:
        raise _fail(name, 1, 1, (), f"file is {size} bytes, over the {max_bytes}-byte limit",
                    _TOO_BIG_HINT)
    with path.open("rb") as fh:
        return _decode(fh.read(max_bytes + 1), name, max_bytes), name


_TOO_BIG_HINT = "specs are small text files; " + limits.hint("max_bytes")


def _decode(data: bytes, name: str, max_bytes: int) -> str:
    if len(data) > max_bytes:
        raise _fail(name, 1, 1, (), f"input is over the {max_bytes}-byte limit", _TOO_BIG_HINT)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # everything before the bad byte decoded, so line and column can be counted in text
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start:exc.start].decode("utf-8-sig")) + 1
        raise _fail(name, data.count(b"\n", 0, exc.start) + 1, column, (),
                    f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
                    "save the file as UTF-8") from None


def loads(text: str, file: str = "<text>", *, max_bytes: int | None = None) -> Document:
    """Load a spec from text: JSON if the file name ends in .json, YAML if it ends in .yaml or
    .yml (a flow mapping ``{nnspec: 1, ...}`` is YAML too), else JSON if the text starts with
    '{' or '['."""
    max_bytes = max_bytes or limits.current().max_bytes
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise _fail(file, 1, 1, (), f"input is over the {max_bytes}-byte limit", _TOO_BIG_HINT)
    is_json = file.endswith(".json") or (not file.endswith((".yaml", ".yml")) and
                                         text.lstrip().startswith(("{", "[")))
    if is_json:
        _check_json(text, file)
    doc = _EventReader(text, file, json_mode=is_json).read()
    doc.text = text
    return doc


def _check_json(text: str, file: str) -> None:
    def reject_constant(name: str) -> Any:
        raise ValueError(f"non-finite number {name} is not allowed")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                raise ValueError(f"duplicate key '{key}'")
            seen[key] = value
        return seen

    try:
        json.loads(text, object_pairs_hook=pairs, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise _fail(file, exc.lineno, exc.colno, (), f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        return  # the event reader below stops at MAX_DEPTH (far below Python's limit), located
    except ValueError:
        # duplicate keys, NaN and integers over Python's 4300-digit limit: valid JSON syntax
        # that the event reader below refuses with a precise location
        return


class _EventReader:
    """Builds plain data from YAML parser events, refusing everything a spec must not hold."""

    def __init__(self, text: str, file: str, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.text = text
        self.file = file
        self.doc = Document(data=None, file=file)
        self.nodes = 0

    def read(self) -> Document:
        from ruamel.yaml import YAML

        events = YAML(typ="safe", pure=True).parse(io.StringIO(self.text))
        try:
            self._read_stream(events)
        except SpecError:
            raise
        except Exception as exc:  # the parser's many error classes, fuzzed: all become located
            raise self._parser_error(exc) from None
        return self.doc

    def _parser_error(self, exc: Exception) -> SpecError:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0] if str(exc) else ""
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        kind = "JSON" if self.file.endswith(".json") else "YAML"
        lines = self.text.splitlines()
        near = " ".join(lines[max(0, line - 2):line]) if lines else ""
        hint = ("inside {...} quote expressions: \"${a * 2}\"" if "${" in near else None)
        return _fail(self.file, line, col, (), f"invalid {kind}: {problem or type(exc).__name__}",
                     hint)

    def _read_stream(self, events: Iterator[Any]) -> None:
        from ruamel.yaml import events as ev

        documents = 0
        for event in events:
            if isinstance(event, ev.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self._at(event, (), "a spec file holds one YAML document, found a second")
                self.doc.data = self._value(events, next(events), (), 1)
            elif isinstance(event, ev.StreamEndEvent):
                break
        if documents == 0:
            raise _fail(self.file, 1, 1, (), "the file is empty", "a spec starts with 'nnspec: 1'")

    def _at(self, event: Any, path: SpecPath, message: str, hint: str | None = None) -> SpecError:
        mark = event.start_mark
        return _fail(self.file, mark.line + 1, mark.column + 1, path, message, hint)

    def _value(self, events: Iterator[Any], event: Any, path: SpecPath, depth: int) -> Any:
        from ruamel.yaml import events as ev

        self.nodes += 1
        bounds = limits.current()
        if self.nodes > bounds.max_values:
            raise self._at(event, path, f"more than {bounds.max_values} values in one spec",
                           "write long models with repeat and blocks, or "
                           + limits.hint("max_values"))
        if depth > bounds.max_depth:
            raise self._at(event, path, f"nesting deeper than {bounds.max_depth} levels")
        if isinstance(event, ev.AliasEvent):
            raise self._at(event, path, "YAML aliases (*name) are not allowed",
                           "write the value out, or use vars / blocks to reuse it")
        if getattr(event, "anchor", None):
            raise self._at(event, path, f"YAML anchors (&{event.anchor}) are not allowed",
                           "use vars or blocks to reuse values")
        self._check_tag(event, path)
        mark = event.start_mark
        self.doc.value_locations[path] = Location(self.file, mark.line + 1, mark.column + 1)
        if isinstance(event, ev.ScalarEvent):
            return self._scalar(event, path)
        if isinstance(event, ev.SequenceStartEvent):
            return self._sequence(events, path, depth)
        if isinstance(event, ev.MappingStartEvent):
            return self._mapping(events, path, depth)
        raise self._at(event, path, f"unexpected YAML event {type(event).__name__}")

    def _check_tag(self, event: Any, path: SpecPath) -> None:
        tag = getattr(event, "tag", None)
        if tag is None or tag == "!":
            return
        shown = "!!" + tag.removeprefix(_CORE_TAG) if tag.startswith(_CORE_TAG) else tag
        raise self._at(event, path, f"YAML tags are not allowed (found '{shown}')",
                       "a spec is plain data: remove the tag")

    def _sequence(self, events: Iterator[Any], path: SpecPath, depth: int) -> list[Any]:
        from ruamel.yaml import events as ev

        items: list[Any] = []
        for event in events:
            if isinstance(event, ev.SequenceEndEvent):
                return items
            items.append(self._value(events, event, (*path, len(items)), depth + 1))
        return items

    def _mapping(self, events: Iterator[Any], path: SpecPath, depth: int) -> dict[str, Any]:
        from ruamel.yaml import events as ev

        out: dict[str, Any] = {}
        for event in events:
            if isinstance(event, ev.MappingEndEvent):
                return out
            key = self._key(event, path)
            if key in out:
                first = self.doc.key_locations[(*path, key)]
                raise self._at(event, (*path, key), f"duplicate key '{key}'",
                               f"first defined at line {first.line}")
            mark = event.start_mark
            self.doc.key_locations[(*path, key)] = Location(self.file, mark.line + 1,
                                                            mark.column + 1)
            out[key] = self._value(events, next(events), (*path, key), depth + 1)
        return out

    def _key(self, event: Any, path: SpecPath) -> str:
        from ruamel.yaml import events as ev

        if not isinstance(event, ev.ScalarEvent):
            if isinstance(event, ev.AliasEvent):
                raise self._at(event, path, "YAML aliases (*name) are not allowed")
            raise self._at(event, path, "mapping keys must be plain strings, found a "
                           + ("list" if isinstance(event, ev.SequenceStartEvent) else "mapping"))
        self._check_tag(event, path)
        if getattr(event, "anchor", None):
            raise self._at(event, path, f"YAML anchors (&{event.anchor}) are not allowed")
        if event.style is None and event.value == "<<":
            raise self._at(event, path, "YAML merge keys (<<) are not allowed")
        value = self._scalar(event, path) if event.style is None else event.value
        if not isinstance(value, str):
            raise self._at(event, path, f"mapping keys must be strings, found {event.value!r}",
                           f"quote it: '{event.value}'")
        return value

    def _scalar(self, event: Any, path: SpecPath) -> Any:
        value: str = event.value
        if event.style is not None:  # quoted or block scalar: always a string
            return value
        if value in _NULL:
            return None
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        if _LEADING_ZERO.match(value):
            raise self._at(event, path, f"ambiguous number {value} (leading zero)",
                           f"write {int(value)} for a number, or quote '{value}' for text")
        if _INT.match(value) or _OCT.match(value) or _HEX.match(value):
            return self._int(event, path, value)
        if _NONFINITE.match(value) or (self.json_mode and value in _JSON_NONFINITE):
            raise self._at(event, path, f"non-finite number {value} is not allowed")
        if _FLOAT.match(value):
            number = float(value)
            if not math.isfinite(number):
                raise self._at(event, path, f"number {value} is out of range")
            return number
        if _DATE.match(value):
            raise self._at(event, path, f"'{value}' looks like a date; dates are not spec values",
                           "quote it if you mean text")
        return value

    def _int(self, event: Any, path: SpecPath, value: str) -> int:
        digits = len(value.lstrip("+-"))
        if digits > 30:
            raise self._at(event, path, f"integer with {digits} digits is out of range",
                           f"integers must lie within ±{MAX_INT}")
        number = int(value, 0) if value.startswith(("0o", "0x")) else int(value)
        if abs(number) > MAX_INT:
            raise self._at(event, path, f"integer {value} is out of range",
                           f"integers must lie within ±{MAX_INT}")
        return number
