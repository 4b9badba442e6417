"""Tensors: named tensors from a .pt (weights-only) or .npz (no pickle) file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.datasets import STR, Context, Dataset, param

if TYPE_CHECKING:
    from nnspec.run.table import Source


def build(args: Mapping[str, Any], ctx: Context) -> Source:
    from nnspec.run.sources import tensors_table

    return tensors_table(Path(args["path"]).expanduser(), args.get("inputs", "inputs"),
                         args.get("targets", "targets"))


DATASETS = [Dataset("Tensors", "Tensors from a .pt (weights-only) or .npz (no pickle) file.",
                    [param("path", STR), param("inputs", STR, "inputs"),
                     param("targets", STR, "targets")], build, test_part=False)]
