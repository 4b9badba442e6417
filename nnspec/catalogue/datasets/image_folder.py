"""ImageFolder: images in class-named folders (torchvision), read one sample at a time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.datasets import STR, Context, Dataset, param

if TYPE_CHECKING:
    from nnspec.run.table import Source


def build(args: Mapping[str, Any], ctx: Context) -> Source:
    from torchvision.datasets import ImageFolder

    from nnspec.errors import RunError
    from nnspec.run.table import MapSource

    root = ctx.root_path(args, "ImageFolder")
    try:
        ds = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise RunError(f"no images under {root.resolve()} ({exc})",
                       hint="ImageFolder wants ROOT/CLASS_NAME/IMAGE files") from None
    return MapSource(ds, len(ds))


DATASETS = [Dataset("ImageFolder", "Images in class-named folders (torchvision).",
                    [param("root", STR)], build, test_part=False)]
