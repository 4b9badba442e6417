"""Datasets a spec may name, with their arguments (torch-free, for the schema and the checker).

The runner (nnspec.run.datasets) builds each one; this table is what a spec may say.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from nnspec.catalogue import Entry, Param

_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_INT = {"type": "integer"}
_STRS = {"type": "array", "items": _STR}
_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 1}}


def _p(name: str, schema: dict[str, Any], default: Any = "<required>") -> Param:
    required = default == "<required>"
    return Param(name, schema, required, None if required else default)


_VISION = ("root", "download")
_TABLE: dict[str, tuple[str, list[Param]]] = {
    "MNIST": ("MNIST handwritten digits (torchvision).",
              [_p("root", _STR, "data"), _p("download", _BOOL, False)]),
    "FashionMNIST": ("Fashion-MNIST clothing images (torchvision).",
                     [_p("root", _STR, "data"), _p("download", _BOOL, False)]),
    "KMNIST": ("Kuzushiji-MNIST (torchvision).",
               [_p("root", _STR, "data"), _p("download", _BOOL, False)]),
    "EMNIST": ("Extended MNIST (torchvision).",
               [_p("root", _STR, "data"), _p("download", _BOOL, False),
                _p("split", {"enum": ["byclass", "bymerge", "balanced", "letters", "digits",
                                      "mnist"]}, "balanced")]),
    "CIFAR10": ("CIFAR-10 (torchvision).",
                [_p("root", _STR, "data"), _p("download", _BOOL, False)]),
    "CIFAR100": ("CIFAR-100 (torchvision).",
                 [_p("root", _STR, "data"), _p("download", _BOOL, False)]),
    "SVHN": ("Street View House Numbers (torchvision).",
             [_p("root", _STR, "data"), _p("download", _BOOL, False)]),
    "ImageFolder": ("Images in class-named folders (torchvision).", [_p("root", _STR)]),
    "FakeData": ("Random images with random labels (torchvision), for smoke tests.",
                 [_p("size", _INT, 1000), _p("image_size", _SHAPE, [3, 224, 224]),
                  _p("num_classes", _INT, 10)]),
    "IDX": ("Images and labels in IDX files (the MNIST format, gzip or not) in any directory.",
            [_p("root", _STR), _p("images", _STR, None), _p("labels", _STR, None)]),
    "Tensors": ("Tensors from a .pt (weights-only) or .npz (no pickle) file.",
                [_p("path", _STR), _p("inputs", _STR, "inputs"), _p("targets", _STR, "targets")]),
    "CSV": ("A CSV table: feature columns and a target column.",
            [_p("path", _STR), _p("features", _STRS, None), _p("target", _STR),
             _p("delimiter", _STR, ",")]),
    "TextChars": ("A UTF-8 text file as blocks of character ids (a character-level language "
                  "model's data): input holds block_size ids, target the ids one character on; "
                  "ids index `vocabulary`, by default the file's distinct characters sorted. "
                  "Blocks start every `stride` characters (default: block_size, no overlap).",
                  [_p("path", _STR), _p("block_size", {"type": "integer", "minimum": 1}, 64),
                   _p("stride", {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
                      None),
                   _p("vocabulary", {"anyOf": [_STR, {"type": "null"}]}, None)]),
    "SKLearn": ("A dataset bundled with scikit-learn (works offline).",
                [_p("name", {"enum": ["digits", "iris", "wine", "breast_cancer", "diabetes"]}),
                 _p("images", _BOOL, False)]),
}


@cache
def dataset_entries() -> dict[str, Entry]:
    return {name: Entry(name, "dataset", doc, {p.name: p for p in params})
            for name, (doc, params) in _TABLE.items()}
