"""IDX: images and labels in IDX files (the MNIST format) in any folder, read by nnspec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.datasets import STR, Context, Dataset, param

if TYPE_CHECKING:
    from nnspec.run.table import Source


def build(args: Mapping[str, Any], ctx: Context) -> Source:
    from nnspec.run.sources import idx_table

    return idx_table(ctx.root_path(args, "IDX"), ctx.partition, args.get("images"),
                     args.get("labels"))


DATASETS = [Dataset(
    "IDX", "Images and labels in IDX files (the MNIST format, gzip or not) in any directory.",
    [param("root", STR), param("images", STR, None), param("labels", STR, None)], build)]
