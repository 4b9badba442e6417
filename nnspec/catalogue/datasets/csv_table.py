"""CSV: a table of feature columns and a target column."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.datasets import STR, STRS, Context, Dataset, param

if TYPE_CHECKING:
    from nnspec.run.table import Source


def build(args: Mapping[str, Any], ctx: Context) -> Source:
    from nnspec.run.sources import csv_table

    return csv_table(Path(args["path"]).expanduser(), args["target"], args.get("features"),
                     args.get("delimiter", ","))


DATASETS = [Dataset("CSV", "A CSV table: feature columns and a target column.",
                    [param("path", STR), param("features", STRS, None), param("target", STR),
                     param("delimiter", STR, ",")], build, test_part=False)]
