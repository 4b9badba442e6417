"""SKLearn: a dataset bundled with scikit-learn (offline)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.datasets import BOOL, Context, Dataset, param

if TYPE_CHECKING:
    from nnspec.run.table import Source

_SIZES = {"digits": 1797, "iris": 150, "wine": 178, "breast_cancer": 569, "diabetes": 442}


def build(args: Mapping[str, Any], ctx: Context) -> Source:
    from nnspec.run.sources import sklearn_table

    return sklearn_table(args["name"], bool(args.get("images", False)))


DATASETS = [Dataset("SKLearn", "A dataset bundled with scikit-learn (works offline).",
                    [param("name", {"enum": list(_SIZES)}), param("images", BOOL, False)], build,
                    test_part=False, size=lambda args: _SIZES.get(str(args.get("name"))))]
