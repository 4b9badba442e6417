"""FakeData: torchvision's random images with random labels, for smoke tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.datasets import INT, Context, Dataset, param

if TYPE_CHECKING:
    from nnspec.run.table import Source

_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 1}}


def build(args: Mapping[str, Any], ctx: Context) -> Source:
    """torchvision's FakeData; the test part draws other images than the train part."""
    from torchvision.datasets import FakeData

    from nnspec.run.table import MapSource

    size = int(args.get("size", 1000))
    ds = FakeData(size, tuple(args.get("image_size", [3, 224, 224])),
                  int(args.get("num_classes", 10)),
                  random_offset=0 if ctx.partition == "train" else size)
    return MapSource(ds, size)


DATASETS = [Dataset("FakeData", "Random images with random labels (torchvision), for smoke tests.",
                    [param("size", {**INT, "minimum": 1}, 1000),
                     param("image_size", _SHAPE, [3, 224, 224]), param("num_classes", INT, 10)],
                    build, size=lambda args: args.get("size", 1000))]
