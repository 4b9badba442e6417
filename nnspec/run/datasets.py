"""Builders for every dataset the catalogue lets a spec name.

What a spec may say (names, arguments, docs) lives in ``nnspec.catalogue.datasets`` so that
validating a spec never imports torch; this module maps each of those names to the function that
builds it, and a test keeps the two tables equal.  A builder receives the checked arguments and
a ``Context`` (which part, train or test, and the data section's root) and returns a ``Table`` or
a per-sample source.  A spec never reaches an attribute of torchvision by a string it chose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import torch

from nnspec.catalogue.datasets import dataset_entries
from nnspec.errors import Location, Problem, RunError, SpecError, SpecPath
from nnspec.run import sources
from nnspec.run.instantiate import entry
from nnspec.run.table import MapSource, Source, Table


@dataclass(frozen=True)
class Context:
    """What a builder needs besides its arguments."""

    partition: str  # "train" (train and val splits) or "test"
    root: str | None = None  # data.root: the default for a dataset's own root
    path: SpecPath = ("data", "dataset")
    location: Location = field(default_factory=Location)

    def root_path(self, args: Mapping[str, Any], name: str) -> Path:
        """The dataset's own root, else data.root, else the catalogue's default."""
        root = args.get("root", self.root)
        if root is None:
            param = dataset_entries()[name].params.get("root")
            root = param.default if param is not None and not param.required else None
        if root is None:
            raise SpecError.at(self.location, (*self.path, name, "root"),
                               f"dataset {name} needs a root folder",
                               "give root: PATH, or data.root=PATH on the command line")
        return Path(root).expanduser()


Builder = Callable[[Mapping[str, Any], Context], Source]

_VISION = ("MNIST", "FashionMNIST", "KMNIST", "EMNIST", "CIFAR10", "CIFAR100", "SVHN")
# where torchvision looks for each one's files under root (the MNIST family: NAME/raw)
_VISION_FOLDERS = {"CIFAR10": "cifar-10-batches-py", "CIFAR100": "cifar-100-python", "SVHN": "."}


def _torchvision(name: str) -> Builder:
    def build(args: Mapping[str, Any], ctx: Context) -> Source:
        import torchvision.datasets as tvd

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
            place = root.resolve() / _VISION_FOLDERS.get(name, f"{name}/raw")
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
    data = torch.as_tensor(ds.data)
    if data.dim() == 3:
        data = data.unsqueeze(1)
    elif data.shape[-1] in (1, 3):  # CIFAR stores (N, H, W, C)
        data = data.permute(0, 3, 1, 2).contiguous()
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    return Table({"input": data, "target": torch.as_tensor(labels).long()})


def _image_folder(args: Mapping[str, Any], ctx: Context) -> Source:
    from torchvision.datasets import ImageFolder

    root = ctx.root_path(args, "ImageFolder")
    try:
        ds = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise RunError(f"no images under {root.resolve()} ({exc})",
                       hint="ImageFolder wants ROOT/CLASS_NAME/IMAGE files") from None
    return MapSource(ds, len(ds))


def _fake(args: Mapping[str, Any], ctx: Context) -> Source:
    """torchvision's FakeData; the test part draws other images than the train part."""
    from torchvision.datasets import FakeData

    size = int(args.get("size", 1000))
    ds = FakeData(size, tuple(args.get("image_size", [3, 224, 224])),
                  int(args.get("num_classes", 10)),
                  random_offset=0 if ctx.partition == "train" else size)
    return MapSource(ds, size)


def _idx(args: Mapping[str, Any], ctx: Context) -> Source:
    return sources.idx_table(ctx.root_path(args, "IDX"), ctx.partition,
                             args.get("images"), args.get("labels"))


def _tensors(args: Mapping[str, Any], ctx: Context) -> Source:
    return sources.tensors_table(Path(args["path"]).expanduser(),
                                 args.get("inputs", "inputs"), args.get("targets", "targets"))


def _csv(args: Mapping[str, Any], ctx: Context) -> Source:
    return sources.csv_table(Path(args["path"]).expanduser(), args["target"],
                             args.get("features"), args.get("delimiter", ","))


def _text_chars(args: Mapping[str, Any], ctx: Context) -> Source:
    """Blocks of character ids and the ids one character on (next-character targets)."""
    path = Path(args["path"]).expanduser()
    text = _read_text(path, ctx)
    vocabulary = args.get("vocabulary") or "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(vocabulary)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise SpecError.at(ctx.location, (*ctx.path, "TextChars", "vocabulary"),
                           f"{path} holds characters the vocabulary lacks: {unknown[:10]}",
                           "add them, or leave vocabulary out (the file's own characters)")
    block = int(args.get("block_size", 64))
    stride = int(args.get("stride") or block)
    if len(text) <= block:
        raise SpecError.at(ctx.location, (*ctx.path, "TextChars", "block_size"),
                           f"{path} holds {len(text)} characters, too few for one block of "
                           f"{block} and its next-character targets ({block + 1})",
                           "lower block_size, or give a longer text file")
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    starts = torch.arange(0, max(len(ids) - block, 0), stride)
    rows = starts[:, None] + torch.arange(block + 1)
    windows = ids[rows] if len(starts) else torch.zeros(0, block + 1, dtype=torch.long)
    return Table({"input": windows[:, :-1], "target": windows[:, 1:]})


def _read_text(path: Path, ctx: Context) -> str:
    """The file as UTF-8 text; a missing file, a folder or other bytes are the spec's error."""
    where = (*ctx.path, "TextChars", "path")
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise SpecError.at(ctx.location, where, f"{path}: {what}",
                           "name a UTF-8 text file (a relative path is read from the "
                           "working directory)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError.at(ctx.location, where,
                           f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded)",
                           "TextChars reads a UTF-8 text file") from None
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror}",
                       hint="check the file's permissions") from None


def _sklearn(args: Mapping[str, Any], ctx: Context) -> Source:
    return sources.sklearn_table(args["name"], bool(args.get("images", False)))


DATASETS: dict[str, Builder] = {
    **{name: _torchvision(name) for name in _VISION},
    "ImageFolder": _image_folder,
    "FakeData": _fake,
    "IDX": _idx,
    "Tensors": _tensors,
    "CSV": _csv,
    "SKLearn": _sklearn,
    "TextChars": _text_chars,
}

# Datasets with no separate test part: a test split must say which samples it takes.
NO_TEST_PART = frozenset({"SKLearn", "Tensors", "CSV", "ImageFolder", "TextChars"})


def _args_schema(name: str) -> dict[str, Any]:
    entry = dataset_entries()[name]
    return {"type": "object", "additionalProperties": False,
            "properties": {p.name: dict(p.schema) for p in entry.params.values()},
            "required": [p.name for p in entry.params.values() if p.required]}


def build_source(name: str, args: Mapping[str, Any], ctx: Context) -> Source:
    """Check the name and arguments (located errors), then build the dataset."""
    entry("dataset", name, ctx.location, ctx.path)
    if ctx.root is not None and "root" in dataset_entries()[name].params:
        args = {"root": ctx.root, **args}  # data.root stands in for a root left out
    validator = jsonschema.Draft202012Validator(_args_schema(name))
    errors = sorted(validator.iter_errors(dict(args)), key=lambda e: list(e.absolute_path))
    if errors:
        raise SpecError([Problem(ctx.location, (*ctx.path, name, *e.absolute_path), e.message)
                         for e in errors])
    return DATASETS[name](args, ctx)
