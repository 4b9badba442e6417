"""Every dataset a spec may name: one module in this package per source, found by looking.

A module here (``idx.py``, ``torchvision_sets.py``, ...) declares ``DATASETS``, a list of
``Dataset`` records: the name a spec writes, its documentation, its arguments (``Param``s: what
the schema, the checker, the docs and the editor read, without torch), whether it has a test
part of its own, and ``build``, the function that loads it.  A builder imports torch and the
readers it needs inside its body, so that discovering the datasets (``nnspec --help``,
``validate --no-shapes``) never imports torch.  A builder receives the checked arguments and a
``Context`` (which part, train or test, and where the spec wrote the dataset) and returns a
``Table`` or a per-sample source (``nnspec.run.table``).

A new dataset is one new module here (and its test); nothing else names it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.entry import Entry, Param
from nnspec.errors import Location, SpecError, SpecPath

if TYPE_CHECKING:
    from nnspec.run.table import Source

STR: dict[str, Any] = {"type": "string"}
BOOL: dict[str, Any] = {"type": "boolean"}
INT: dict[str, Any] = {"type": "integer"}
STRS: dict[str, Any] = {"type": "array", "items": STR}
REQUIRED = "<required>"


def param(name: str, schema: Mapping[str, Any], default: Any = REQUIRED) -> Param:
    """An argument of a dataset: required unless given a default."""
    required = default == REQUIRED
    return Param(name, schema, required, None if required else default)


@dataclass(frozen=True)
class Context:
    """What a builder needs besides its arguments."""

    partition: str  # "train" (train and val splits) or "test"
    root: str | None = None  # data.root: the default for a dataset's own root
    path: SpecPath = ("data", "dataset")
    location: Location = field(default_factory=Location)

    def root_path(self, args: Mapping[str, Any], name: str) -> Path:
        """The dataset's own root, else data.root, else the catalogue's default."""
        root = args.get("root", self.root)
        if root is None:
            found = dataset_entries()[name].params.get("root")
            root = found.default if found is not None and not found.required else None
        if root is None:
            raise SpecError.at(self.location, (*self.path, name, "root"),
                               f"dataset {name} needs a root folder",
                               "give root: PATH, or data.root=PATH on the command line")
        return Path(root).expanduser()


Builder = Callable[[Mapping[str, Any], Context], "Source"]


@dataclass(frozen=True)
class Dataset:
    """One dataset source: what a spec may say about it, and how the runner loads it."""

    name: str
    doc: str
    params: Sequence[Param]
    build: Builder
    test_part: bool = True  # False: a test split must say which samples it takes (a range)
    # the samples of its training part when its arguments say it (no file is read): validate
    # checks what val_split leaves of them; None: known once the data is read
    size: Callable[[Mapping[str, Any]], Any] | None = None

    @property
    def entry(self) -> Entry:
        return Entry(self.name, "dataset", self.doc, {p.name: p for p in self.params})


@cache
def datasets() -> dict[str, Dataset]:
    """Every dataset declared by a module of this package, by name."""
    found: dict[str, Dataset] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        for dataset in importlib.import_module(f"{__name__}.{module.name}").DATASETS:
            if dataset.name in found:
                raise AssertionError(f"dataset {dataset.name} is declared twice")
            found[dataset.name] = dataset
    return dict(sorted(found.items()))


@cache
def dataset_entries() -> dict[str, Entry]:
    """The catalogue entries of every dataset (what the schema, checker and docs read)."""
    return {name: dataset.entry for name, dataset in datasets().items()}


def known_size(name: str, args: Mapping[str, Any]) -> int | None:
    """How many samples the training part of dataset ``name`` holds, if its arguments say it
    (None for data read from files, and for arguments the checker refuses anyway)."""
    dataset = datasets().get(name)
    if dataset is None or dataset.size is None or not isinstance(args, Mapping):
        return None
    size = dataset.size(args)
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def has_test_part(name: str) -> bool:
    """Whether a dataset has a test part of its own (an unknown name is reported elsewhere)."""
    dataset = datasets().get(name)
    return dataset is None or dataset.test_part
