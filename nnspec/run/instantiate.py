"""Runner objects from spec entries, over the closed catalogue (Hydra's ``instantiate``).

One check of a name against the catalogue and one construction, each failure a located
SpecError: at the argument torch refused when one alone is to blame (torch's messages name an
argument in its own words, "Invalid learning rate: -1", or not at all), else at the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from nnspec.catalogue import Entry, section
from nnspec.errors import Location, SpecError, SpecPath, did_you_mean
from nnspec.lang.spec import Located

T = TypeVar("T")

# What an error calls each kind of entry ("unknown init function 'x'").
NOUNS = {"loss": "loss", "optimizer": "optimizer", "scheduler": "scheduler",
         "init": "init function", "transform": "transform", "dataset": "dataset"}

Refusals = tuple[type[BaseException], ...]


def entries(kind: str) -> dict[str, Entry]:
    """The catalogue's entries of one kind (datasets included)."""
    if kind == "dataset":
        from nnspec.catalogue.datasets import dataset_entries

        return dataset_entries()
    return section(kind)


def entry(kind: str, name: str, location: Location, path: SpecPath) -> Entry:
    """The catalogue entry ``name`` of ``kind``, or a located error with a did-you-mean hint."""
    known = entries(kind)
    if name not in known:
        raise SpecError.at(location, path, f"unknown {NOUNS[kind]} '{name}'",
                           did_you_mean(name, known))
    return known[name]


def construct(make: Callable[[dict[str, Any]], T], args: Mapping[str, Any], where: Located,
              path: SpecPath, *, refusals: Refusals = (TypeError, ValueError),
              suspects: Collection[str] | None = None, blame: bool = True,
              describe: Callable[[BaseException], str] = str,
              probe: Callable[[dict[str, Any]], object] | None = None) -> T:
    """``make(args)``; a refusal is a SpecError at ``path`` (``("loss", name)``), extended by
    the argument to blame when ``blame`` and one alone is (of ``suspects``, default all; tried
    with ``probe``, default ``make``)."""
    try:
        return make(dict(args))
    except refusals as exc:
        arg = guilty_argument(probe or make, args, suspects) if blame else None
        at = (*path, *([arg] if arg else []))
        raise SpecError.at(where.locate(arg) if arg else where.location, at,
                           describe(exc)) from None


def guilty_argument(make: Callable[[dict[str, Any]], object], args: Mapping[str, Any],
                    suspects: Collection[str] | None = None) -> str | None:
    """The argument (of ``suspects``, default all) without which ``make`` succeeds, or None
    when no single one is to blame.

    Called only after ``make(args)`` raised, so the cost (one more construction per argument)
    is paid on the error path alone.
    """
    for name in args if suspects is None else [s for s in args if s in suspects]:
        try:
            make({k: v for k, v in args.items() if k != name})
        except Exception:  # still failing: another argument is to blame
            continue
        return name
    return None
