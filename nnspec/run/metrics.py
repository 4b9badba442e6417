"""Per-epoch metrics, accumulated on the device and read once per epoch.

Each metric adds a (sum, count) pair of device tensors per batch; nothing is copied to the host
until ``Meter.read``, so a step costs no synchronisation.  ``accuracy`` and ``topK`` compare an
(N, C) output's ranking with class-index targets, or, when output and target have the same number
of elements (binary and multi-label), the output's side of a threshold with the target's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from nnspec.catalogue.losses import loss_info
from nnspec.errors import RunError
from nnspec.lang.spec import METRIC_NAMES, TOPK_PATTERN

NAMES = METRIC_NAMES
_TOPK = TOPK_PATTERN


def sum_dtype(device: torch.device) -> torch.dtype:
    """float64 accumulators (exact sums over an epoch), except where the device has none (MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def higher_is_better(metric: str) -> bool:
    return metric == "accuracy" or bool(_TOPK.match(metric))


class Meter:
    """Running sums of the loss and the chosen metrics over one epoch of one split."""

    def __init__(self, metrics: Sequence[str], loss_name: str, device: torch.device,
                 dist: Any = None) -> None:
        self.metrics = [m for m in metrics if m != "loss"]
        self.dist = dist  # a distributed.Dist: sums and counts are added over the ranks
        self.loss_name = loss_name
        self.sums = torch.zeros(1 + len(self.metrics), dtype=sum_dtype(device), device=device)
        self.counts = [0.0] * (1 + len(self.metrics))  # known on the host: no device traffic

    def add(self, loss: Tensor, n: int, output: Tensor | None, target: Tensor | None) -> None:
        self.sums[0].add_(loss.detach(), alpha=n)
        self.counts[0] += n
        for i, name in enumerate(self.metrics, 1):
            if output is None or target is None:
                raise RunError(f"metric {name} needs the model's output and a target field",
                               hint="this loss's batches have none; keep only loss")
            value, count = self._metric(name, output.detach(), target)
            self.sums[i].add_(value)
            self.counts[i] += count

    def _metric(self, name: str, out: Tensor, target: Tensor) -> tuple[Tensor, int]:
        if name in ("mae", "mse"):
            diff = out.float() - target.reshape(out.shape).float() if target.numel() == \
                out.numel() else None
            if diff is None:
                raise RunError(f"{name} needs output and target of equal size; got "
                               f"{list(out.shape)} and {list(target.shape)}")
            return (diff.abs().sum() if name == "mae" else diff.square().sum()), diff.numel()
        k = 1 if name == "accuracy" else int(name[3:])
        if out.dim() == 2 and out.shape[1] > 1 and target.dim() == 1 and \
                not target.is_floating_point():
            classes = out.shape[1]
            if k >= classes:  # the top k of k classes always hold the target: a silent 1.0
                raise RunError(f"{name} of an output with {classes} classes is always 1: K = "
                               f"{k} must be less than the number of classes",
                               hint=f"use top{classes - 1} or less, or accuracy" if classes > 2
                               else "use accuracy")
            top = out.topk(k, dim=1).indices
            return (top == target[:, None]).any(1).sum(), len(target)
        if target.numel() == out.numel():
            scale = loss_info(self.loss_name).scale
            cut = 0.5 if scale == "probabilities" else 0.0
            truth = target.reshape(out.shape) > (0.0 if scale == "signed" else 0.5)
            return ((out > cut) == truth).sum(), out.numel()
        raise RunError(f"{name} needs class-index targets for an (N, C) output, or 0/1 targets "
                       f"the size of the output; got {list(out.shape)} and "
                       f"{list(target.shape)}")

    def read(self) -> dict[str, float]:
        """The epoch's means: one host synchronisation (and one all_reduce under DDP)."""
        sums, counts = self._totals()
        return {name: s / c if c else float("nan")
                for name, s, c in zip(["loss", *self.metrics], sums, counts, strict=True)}

    def _totals(self) -> tuple[list[float], list[float]]:
        if self.dist is None or not self.dist.active:
            return self.sums.tolist(), self.counts
        counts = torch.tensor(self.counts, dtype=self.sums.dtype, device=self.sums.device)
        both = self.dist.sum_(torch.cat([self.sums, counts]))
        n = len(self.counts)
        return both[:n].tolist(), both[n:].tolist()

    def state(self) -> dict[str, Tensor]:
        """The partial sums (of every rank under DDP: a collective, so every rank calls it)."""
        sums, counts = self._totals()
        return {"sums": torch.tensor(sums, dtype=torch.float64),
                "counts": torch.tensor(counts, dtype=torch.float64)}

    def load(self, state: dict[str, Tensor]) -> None:
        if self.dist is not None and not self.dist.writer:
            return  # rank 0 carries the saved totals; the other ranks start from zero
        self.sums.copy_(state["sums"].to(self.sums.dtype))
        self.counts = [float(c) for c in state["counts"].tolist()]
