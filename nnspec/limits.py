"""Limits that keep a hostile spec from exhausting the machine, and that a user can raise.

A spec cannot raise its own limits (that would defeat them); the person running nnspec can,
for one command: ``nnspec --limit max_nodes=50000 validate big.yaml``, or from Python with
``with nnspec.limits.raised(max_nodes=50_000): ...``.  The loader and the resolver read the
limits in force through ``current()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 4 * 1024 * 1024  # size of a spec file
    max_values: int = 20_000  # scalars, lists and mappings in one file (~0.6 s of parsing)
    max_depth: int = 64  # nesting of lists and mappings
    max_repeat: int = 10_000  # one repeat count
    max_nodes: int = 10_000  # model nodes after blocks and repeats are expanded


NAMES = tuple(f.name for f in fields(Limits))
_CURRENT: ContextVar[Limits] = ContextVar("nnspec_limits", default=Limits())  # noqa: B039 (frozen)


def current() -> Limits:
    return _CURRENT.get()


@contextmanager
def raised(**values: int) -> Iterator[Limits]:
    """Run a block with some limits changed (unknown names are a TypeError)."""
    token = _CURRENT.set(replace(current(), **values))
    try:
        yield current()
    finally:
        _CURRENT.reset(token)


def hint(name: str) -> str:
    return f"if you trust this spec, raise the limit: nnspec --limit {name}=N ..."
