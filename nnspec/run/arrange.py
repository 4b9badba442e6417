"""Examples that compare samples, drawn from a labelled split (``data.arrange``).

``pairs`` (input1, input2 and a similarity or order target: CosineEmbedding, HingeEmbedding,
MarginRanking), ``triplets`` (anchor, positive, negative: TripletMargin) and ``sequences``
(several images side by side with their label sequence and lengths: CTC, multi-label losses).
Each split draws from its own samples only, so validation pairs never reuse training images, and
with its own seed, so the same spec always gives the same examples.  The fields made here are
the names ``loss.inputs`` refers to.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nnspec.errors import Location, SpecError
from nnspec.lang.spec import Arrange
from nnspec.run.table import Table

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def arrange(table: Table, cfg: Arrange, split: str, location: Location) -> Table:
    """The split's examples arranged as ``cfg`` says."""
    x, y = table.fields["input"], table.fields["target"]
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + SPLIT_SEEDS.get(split, 3))
    n = cfg.count or len(y)
    if cfg.kind == "sequences":
        return _sequences(x, y, n, cfg, gen, location)
    if len(y.unique()) < 2:
        raise SpecError.at(location, ("data", "arrange"),
                           f"the {split} split has fewer than two classes to compare")
    if cfg.kind == "pairs":
        return _pairs(x, y, n, cfg.target, gen)
    return _triplets(x, y, n, gen)


def _pick_each(pools: list[Tensor], gen: torch.Generator) -> Tensor:
    """One random member of each pool."""
    return torch.stack([p[torch.randint(len(p), (), generator=gen)] for p in pools])


def _same(y: Tensor, index: Tensor) -> list[Tensor]:
    classes = {int(c): (y == c).nonzero().flatten() for c in y.unique()}
    return [classes[int(y[i])] for i in index]


def _other(y: Tensor, index: Tensor) -> list[Tensor]:
    classes = {int(c): (y != c).nonzero().flatten() for c in y.unique()}
    return [classes[int(y[i])] for i in index]


def _pairs(x: Tensor, y: Tensor, n: int, target: str, gen: torch.Generator) -> Table:
    first = torch.randint(len(y), (n,), generator=gen)
    if target == "order":
        second = torch.randint(len(y), (n,), generator=gen)
        keep = y[first] != y[second]  # a tie says nothing about order
        first, second = first[keep], second[keep]
        sign = torch.sign(y[first].float() - y[second].float())
        return Table({"input1": x[first], "input2": x[second], "target": sign})
    same = torch.rand(n, generator=gen) < 0.5  # balanced similar / dissimilar pairs
    positive, negative = _pick_each(_same(y, first), gen), _pick_each(_other(y, first), gen)
    second = torch.where(same, positive, negative)
    return Table({"input1": x[first], "input2": x[second],
                  "target": torch.where(same, 1.0, -1.0)})


def _triplets(x: Tensor, y: Tensor, n: int, gen: torch.Generator) -> Table:
    anchor = torch.randint(len(y), (n,), generator=gen)
    positive = _pick_each(_same(y, anchor), gen)
    negative = _pick_each(_other(y, anchor), gen)
    return Table({"anchor": x[anchor], "positive": x[positive], "negative": x[negative],
                  "target": y[anchor]})


def _sequences(x: Tensor, y: Tensor, n: int, cfg: Arrange, gen: torch.Generator,
               location: Location) -> Table:
    """Images (C, H, W) side by side -> (C*H, W*max_length): one column per time step."""
    if x.dim() != 4:
        raise SpecError.at(location, ("data", "arrange"),
                           f"sequences need images (C, H, W); the samples have shape "
                           f"{list(x.shape[1:])}", "SKLearn digits takes images: true")
    lo, hi = cfg.min_length, max(cfg.min_length, cfg.max_length)
    lengths = torch.randint(lo, hi + 1, (n,), generator=gen)
    picks = torch.randint(len(y), (n, hi), generator=gen)
    valid = torch.arange(hi) < lengths[:, None]
    c, h, w = x.shape[1:]
    images = x[picks] * valid[:, :, None, None, None].to(x.dtype)  # (n, hi, C, H, W)
    seq = images.permute(0, 2, 3, 1, 4).reshape(n, c * h, hi * w)
    labels = torch.where(valid, y[picks], -1)
    return Table({"input": seq, "target": labels, "input_lengths": lengths * w,
                  "target_lengths": lengths})
