"""Batches for one epoch of one split, from any position: resident tables or a DataLoader.

The order of epoch ``e`` is a pure function of (seed, e), never of how many random numbers were
drawn before, so a resumed run can regenerate it and skip the batches already done.  A table
that fits is kept on the device and batched by ``index_select`` on a permutation drawn there: no
DataLoader, no per-sample Python, no host-to-device copy per step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from nnspec.run.data import Split
from nnspec.run.table import Batch, Source, Table

RESIDENT_BYTES = 1 << 30  # auto-resident below this size


def epoch_order(n: int, seed: int, epoch: int, device: torch.device) -> Tensor:
    """The sample order of one epoch, drawn on ``device`` from a generator seeded per epoch."""
    gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen, device=device)


class Batches:
    """Iterate one split in batches, shuffled or not, from batch ``start`` of an epoch."""

    def __init__(self, split: Split, device: torch.device, *, seed: int) -> None:
        self.split = split
        self.plan = plan = split.plan
        self.device = device
        self.seed = seed
        resident, num_workers, pin_memory = plan.resident, plan.num_workers, plan.pin_memory
        source = split.source
        self.table: Table | None = None
        if isinstance(source, Table) and split.sample_transform is None:
            keep = resident is True or (resident == "auto" and source.nbytes() < RESIDENT_BYTES)
            self.table = source.to(device) if keep else source
        self.resident = self.table is not None and bool(self.table.fields) and next(
            iter(self.table.fields.values())).device == device
        self.num_workers = (0 if self.table is not None else min(4, torch.get_num_threads())) \
            if num_workers == "auto" else int(num_workers)
        self.pin = (device.type == "cuda" and not self.resident) if pin_memory == "auto" \
            else bool(pin_memory)

    @property
    def samples(self) -> int:
        return len(self.split.source)

    def __len__(self) -> int:
        return self.plan.batch_count(self.samples)

    def describe(self) -> str:
        if self.resident:
            return f"resident on {self.device}"
        return "DataLoader" + (f" ({self.num_workers} workers)" if self.num_workers else "")

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of ``epoch`` from batch index ``start`` on."""
        if self.table is not None:
            return self._table_batches(self.table, epoch, start)
        return self._loader_batches(self.split.source, epoch, start)

    def _order(self, epoch: int, device: torch.device) -> Tensor | None:
        if not self.plan.shuffle:
            return None
        return epoch_order(self.samples, self.seed, epoch, device)

    def _table_batches(self, table: Table, epoch: int, start: int) -> Iterator[Batch]:
        store = next(iter(table.fields.values())).device
        order = self._order(epoch, store)
        size = self.plan.batch_size
        for b in range(start, len(self)):
            index: Tensor | slice = (slice(b * size, (b + 1) * size) if order is None
                                     else order[b * size:(b + 1) * size])
            batch = {k: v[index] for k, v in table.fields.items()}
            yield batch if self.resident else self._to_device(batch)

    def _loader_batches(self, source: Source, epoch: int, start: int) -> Iterator[Batch]:
        order = self._order(epoch, torch.device("cpu"))
        indices = (order if order is not None else torch.arange(self.samples)).tolist()
        size = self.plan.batch_size
        dataset: Dataset[Batch] = _Transformed(source, self.split.sample_transform)
        loader = DataLoader(dataset, batch_size=size, sampler=indices[start * size:],
                            drop_last=self.plan.drop_last, num_workers=self.num_workers,
                            pin_memory=self.pin, persistent_workers=False,
                            generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        for batch in loader:
            if self.split.target_transform is not None and "target" in batch:
                batch["target"] = self.split.target_transform(batch["target"])
            yield self._to_device(batch)

    def _to_device(self, batch: Batch) -> Batch:
        return {k: v.to(self.device, non_blocking=self.pin) for k, v in batch.items()}


class _Transformed(Dataset[Batch]):
    """Apply a per-sample input transform; PIL images left over become uint8 tensors."""

    def __init__(self, source: Source, transform: Any) -> None:
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Batch:
        sample: dict[str, Any] = dict(self.source[index]) if not isinstance(
            self.source, Table) else {k: v[index] for k, v in self.source.fields.items()}
        x = sample["input"]
        if self.transform is not None:
            x = self.transform(x)
        if not isinstance(x, Tensor):
            from torchvision.transforms.v2.functional import pil_to_tensor

            x = pil_to_tensor(x)
        sample["input"] = x
        return sample
