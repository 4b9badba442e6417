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
from torch.utils.data import DataLoader, Dataset, Sampler

from nnspec.run.data import Split
from nnspec.run.plan import loader_settings
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
        source = split.source
        self.table: Table | None = None
        resident = plan.resident
        if isinstance(source, Table) and split.sample_transform is None:
            keep = resident is True or (resident == "auto" and source.nbytes() < RESIDENT_BYTES)
            self.table = source.to(device) if keep else source
        self.resident = self.table is not None and bool(self.table.fields) and next(
            iter(self.table.fields.values())).device == device
        self.loading = loader_settings(
            plan, cuda=device.type == "cuda", in_memory=self.table is not None,
            resident=self.resident, threads=torch.get_num_threads())
        self.num_workers = self.loading.num_workers
        self.pin = self.loading.pin_memory
        self._loader: DataLoader[Batch] | None = None
        self._sampler = _Indices()
        self._generator = torch.Generator()

    @property
    def samples(self) -> int:
        return len(self.split.source)

    def __len__(self) -> int:
        return self.plan.batch_count(self.samples)

    def describe(self) -> str:
        if self.resident:
            return f"resident on {self.device}"
        workers = self.num_workers
        return "DataLoader" + (f" ({workers} worker{'s' if workers != 1 else ''})" if workers
                               else "")

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
        self._sampler.indices = indices[start * self.plan.batch_size:]
        self._sampler.tag = (self.seed * 1_000_003 + epoch) if self._seeded() else None
        self._generator.manual_seed(self.seed * 1_000_003 + epoch)  # workers' seeds, per epoch
        for batch in self._dataloader(source):
            if self.split.target_transform is not None and "target" in batch:
                batch["target"] = self.split.target_transform(batch["target"])
            yield self._to_device(batch)

    def _seeded(self) -> bool:
        """Whether workers seed each sample's random transforms from (seed, epoch, sample)."""
        return self.split.random and self.num_workers > 0

    def _dataloader(self, source: Source) -> DataLoader[Batch]:
        """One DataLoader for every epoch (its workers kept when persistent); each epoch sets
        the sampler's indices and reseeds the generator before iterating it."""
        if self._loader is None:
            s = self.loading
            dataset: Dataset[Batch] = _Transformed(source, self.split.sample_transform)
            self._loader = DataLoader(
                dataset, batch_size=self.plan.batch_size, sampler=self._sampler,
                drop_last=self.plan.drop_last, num_workers=s.num_workers,
                pin_memory=s.pin_memory, persistent_workers=s.persistent_workers,
                prefetch_factor=s.prefetch_factor, generator=self._generator)
        return self._loader

    def _to_device(self, batch: Batch) -> Batch:
        return {k: v.to(self.device, non_blocking=self.pin) for k, v in batch.items()}


class _Indices(Sampler[Any]):
    """The sample indices of the epoch being read: set before each epoch, read in this process
    (persistent workers receive indices, not the sampler, so changing it reaches them).  With a
    ``tag`` each index goes out as ``(tag, index)``: the worker seeds the sample's random
    transforms from both."""

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.tag: int | None = None

    def __iter__(self) -> Iterator[Any]:
        tag = self.tag
        return iter(self.indices) if tag is None else ((tag, i) for i in self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _Transformed(Dataset[Batch]):
    """Apply a per-sample input transform; PIL images left over become uint8 tensors."""

    def __init__(self, source: Source, transform: Any) -> None:
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: int | tuple[int, int]) -> Batch:
        if isinstance(key, tuple):  # a worker: this sample's draws depend on nothing else
            tag, index = key
            torch.default_generator.manual_seed((tag * 1_000_003 + index) % (1 << 63))
        else:
            index = key
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
