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
                     num_workers=data.num_workers, pin_memory=data.pin_memory)
