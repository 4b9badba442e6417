"""torchvision's downloadable image sets: the MNIST family, CIFAR and SVHN."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.datasets import BOOL, STR, Builder, Context, Dataset, param

if TYPE_CHECKING:
    from nnspec.run.table import Source, Table

# where torchvision looks for each one's files under root (the MNIST family: NAME/raw)
_FOLDERS = {"CIFAR10": "cifar-10-batches-py", "CIFAR100": "cifar-100-python", "SVHN": "."}


def _torchvision(name: str) -> Builder:
    def build(args: Mapping[str, Any], ctx: Context) -> Source:
        import torchvision.datasets as tvd

        from nnspec.errors import RunError

        cls = {"MNIST": tvd.MNIST, "FashionMNIST": tvd.FashionMNIST, "KMNIST": tvd.KMNIST,
               "EMNIST": tvd.EMNIST, "CIFAR10": tvd.CIFAR10, "CIFAR100": tvd.CIFAR100,
               "SVHN": tvd.SVHN}[name]
        root = ctx.root_path(args, name)
        kwargs: dict[str, Any] = {"download": bool(args.get("download", False))}
        if name == "SVHN":
            kwargs["split"] = ctx.partition
        else:
            kwargs["train"] = ctx.partition == "train"
        if name == "EMNIST":
            kwargs["split"] = args.get("split", "balanced")
        try:
            ds: Any = cls(str(root), **kwargs)
        except RuntimeError as exc:
            detail = str(exc).strip().splitlines()[0].rstrip(":")
            place = root.resolve() / _FOLDERS.get(name, f"{name}/raw")
            hint = (f"the download failed: check the network, or put {name}'s files in {place}"
                    if kwargs.get("download") else
                    f"set download: true in data.dataset.{name} where a network exists, or "
                    f"put {name}'s files in {place}")
            raise RunError(f"{name} not found under {root.resolve()} ({detail})",
                           hint=hint) from None
        return _vision_table(ds)
    return build


def _vision_table(ds: Any) -> Table:
    """torchvision's in-memory image sets as (N, C, H, W) uint8 and int64 labels."""
    import torch

    from nnspec.run.table import Table

    data = torch.as_tensor(ds.data)
    if data.dim() == 3:
        data = data.unsqueeze(1)
    elif data.shape[-1] in (1, 3):  # CIFAR stores (N, H, W, C)
        data = data.permute(0, 3, 1, 2).contiguous()
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    return Table({"input": data, "target": torch.as_tensor(labels).long()})


def _vision(name: str, doc: str, *extra: Any, size: int | None = None) -> Dataset:
    return Dataset(name, doc, [param("root", STR, "data"), param("download", BOOL, False),
                               *extra], _torchvision(name),
                   size=None if size is None else lambda args: size)


_EMNIST_SPLITS = ["byclass", "bymerge", "balanced", "letters", "digits", "mnist"]

DATASETS = [
    _vision("MNIST", "MNIST handwritten digits (torchvision).", size=60000),
    _vision("FashionMNIST", "Fashion-MNIST clothing images (torchvision).", size=60000),
    _vision("KMNIST", "Kuzushiji-MNIST (torchvision).", size=60000),
    _vision("EMNIST", "Extended MNIST (torchvision).",
            param("split", {"enum": _EMNIST_SPLITS}, "balanced")),
    _vision("CIFAR10", "CIFAR-10 (torchvision).", size=50000),
    _vision("CIFAR100", "CIFAR-100 (torchvision).", size=50000),
    _vision("SVHN", "Street View House Numbers (torchvision).", size=73257),
]
