"""The data plan: every batch size, resident flag and loader setting of a run, in one object.

A split's settings come from ``data.<split>`` where it says them, else from the data section
(evaluation splits batch twice ``data.batch_size``: they keep no activations for backward).
Everything that batches, shards, checks or captures a split reads its ``SplitPlan``, so no part
of the runner can read ``data.batch_size`` where the split says otherwise.  Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nnspec.lang.spec import Data


@dataclass(frozen=True)
class SplitPlan:
    """How one split is batched and fed."""

    name: str
    batch_size: int
    shuffle: bool = False
    drop_last: bool = False
    resident: bool | Literal["auto"] = "auto"
    num_workers: int | Literal["auto"] = "auto"
    pin_memory: bool | Literal["auto"] = "auto"
    prefetch_factor: int | Literal["auto"] = "auto"
    persistent_workers: bool | Literal["auto"] = "auto"

    def batch_count(self, samples: int) -> int:
        """Batches in one epoch of ``samples`` samples."""
        size = self.batch_size
        return samples // size if self.drop_last else -(-samples // size)

    def is_full(self, rows: int) -> bool:
        """Whether a batch of ``rows`` samples is a full one (what a CUDA graph captures)."""
        return rows == self.batch_size

    def holds_full_batch(self, samples: int) -> bool:
        return samples >= self.batch_size


def split_plan(data: Data, name: str) -> SplitPlan:
    """The plan of split ``name`` (train, val or test) of a data section."""
    own = getattr(data, name)
    size = own.batch_size if own is not None and own.batch_size else (
        data.batch_size if name == "train" else 2 * data.batch_size)
    train = name == "train"
    return SplitPlan(name, size, shuffle=data.shuffle and train,
                     drop_last=data.drop_last and train, resident=data.resident,
                     num_workers=data.num_workers, pin_memory=data.pin_memory,
                     prefetch_factor=data.prefetch_factor,
                     persistent_workers=data.persistent_workers)


AUTO_WORKERS = 4  # at most, for data read sample by sample


@dataclass(frozen=True)
class LoaderSettings:
    """What a split's DataLoader is built with (``prefetch_factor`` None: no workers)."""

    num_workers: int
    pin_memory: bool
    persistent_workers: bool
    prefetch_factor: int | None


def loader_settings(plan: SplitPlan, *, cuda: bool, in_memory: bool, resident: bool,
                    threads: int) -> LoaderSettings:
    """The loader settings of a split: ``auto`` resolved.

    ``in_memory``: held as tensors (auto: no workers); ``resident``: on the device (auto: no
    pinning).  Persistent workers are safe for exact resume: a worker seeds each sample's random
    transforms from (seed, epoch, sample), never from the draws of the epochs it served before.
    """
    workers = (0 if in_memory else min(AUTO_WORKERS, threads)) if plan.num_workers == "auto" \
        else int(plan.num_workers)
    pin = cuda and not resident if plan.pin_memory == "auto" else bool(plan.pin_memory)
    persistent = (plan.persistent_workers == "auto" or bool(plan.persistent_workers)) \
        and workers > 0
    prefetch = None if workers == 0 else (
        2 if plan.prefetch_factor == "auto" else int(plan.prefetch_factor))
    return LoaderSettings(workers, pin, persistent, prefetch)
