"""Datasets held as tensors: the fast, common case, and the form every other source becomes.

A ``Table`` is a set of named fields (``input``, ``target`` and any others a loss needs, such as
``input_lengths``), each a tensor whose first dimension counts samples.  Holding data this way lets
the loop keep a small dataset resident on the device and batch it by index, with no DataLoader,
no per-sample Python and no host-to-device copy per step.  Datasets that cannot be tensors
(ImageFolder, FakeData) stay ``torch.utils.data.Dataset`` objects and go through a DataLoader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

Batch = dict[str, Tensor]


@dataclass(frozen=True)
class Table:
    """Named tensors of equal length; row ``i`` of each field is sample ``i``."""

    fields: Mapping[str, Tensor]

    def __post_init__(self) -> None:
        lengths = {name: len(t) for name, t in self.fields.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"fields of different lengths: {lengths}")

    def __len__(self) -> int:
        return len(next(iter(self.fields.values()))) if self.fields else 0

    def take(self, index: Tensor | slice) -> Table:
        """Rows ``index`` of every field (a view for a slice, a copy for an index tensor)."""
        return Table({name: t[index] for name, t in self.fields.items()})

    def to(self, device: torch.device) -> Table:
        return Table({name: t.to(device) for name, t in self.fields.items()})

    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in self.fields.values())


class MapSource(Dataset[Batch]):
    """A per-sample torch ``Dataset`` of ``(input, target)`` pairs seen as batch dicts."""

    def __init__(self, dataset: Dataset[tuple[object, object]], size: int) -> None:
        self.dataset = dataset
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Batch:
        x, y = self.dataset[index]
        return {"input": x, "target": torch.as_tensor(y)}  # type: ignore[dict-item]


class SubsetSource(Dataset[Batch]):
    """Rows ``indices`` of a ``MapSource`` (a range or a validation carve-out)."""

    def __init__(self, source: Dataset[Batch], indices: list[int]) -> None:
        self.source = source
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Batch:
        return self.source[self.indices[index]]


Source = Table | MapSource | SubsetSource


def take(source: Source, index: Tensor) -> Source:
    """Rows ``index`` (a 1-D int64 tensor) of any source."""
    if isinstance(source, Table):
        return source.take(index)
    return SubsetSource(source, index.tolist())
