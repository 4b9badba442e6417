"""What prediction needs that the spec alone does not hold, recorded in every checkpoint.

``describe`` reads it from the training part of the data once, when the run loads its data:

- ``classes``: the class names, where the dataset has them (a torchvision dataset's
  ``classes``, scikit-learn's ``target_names``, a CSV's text labels in index order);
- ``input``: the raw samples' element type, shape and value range (scikit-learn's digits count
  0-16, MNIST's IDX files 0-255), so that an image file is mapped onto the same range before
  the evaluation transforms run;
- ``standardize``: the mean and std ``data.standardize`` / ``standardize_target`` use;
- ``features``: a CSV's feature columns, in the order the model reads them.

A few hundred bytes (plus the statistics' vectors), plain types and tensors only, so the
checkpoint still loads with ``weights_only=True``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from torch import Tensor

from nnspec.lang.spec import Data
from nnspec.run.table import Source, Table

Stats = dict[str, tuple[Tensor, Tensor]]


def describe(source: Source, data: Data, stats: Stats | None) -> dict[str, Any]:
    """The metadata of a training part (before any transform, carve-out or range)."""
    meta: dict[str, Any] = {}
    classes = _classes(source, data)
    if classes:
        meta["classes"] = classes
    if isinstance(source, Table) and "input" in source.fields and len(source):
        x = source.fields["input"]
        meta["input"] = {"dtype": str(x.dtype).removeprefix("torch."), "shape": list(x.shape[1:]),
                         "min": float(x.min()), "max": float(x.max())}
    else:
        meta["input"] = {"dtype": "image"}  # decoded per sample (PIL): 0-255 pixels
    if stats:
        meta["standardize"] = {field: {"mean": mean.clone(), "std": std.clone()}
                               for field, (mean, std) in stats.items()}
    if data.dataset.name == "CSV":
        meta["features"] = _csv_features(data.dataset.args)
    return meta


def _classes(source: Source, data: Data) -> list[str] | None:
    names = getattr(getattr(source, "dataset", None), "classes", None)
    if names:
        return [str(c) for c in names]
    args = data.dataset.args
    if data.dataset.name == "SKLearn":
        return _sklearn_classes(str(args.get("name", "")))
    if data.dataset.name == "CSV":
        return _csv_classes(args)
    return None


def _sklearn_classes(name: str) -> list[str] | None:
    from sklearn import datasets

    loaders = {"digits": datasets.load_digits, "iris": datasets.load_iris,
               "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}
    if name not in loaders:
        return None  # diabetes: a regression target
    return [str(c) for c in loaders[name]().target_names]


def _rows(args: dict[str, Any]) -> list[dict[str, str]]:
    path = Path(str(args.get("path", ""))).expanduser()
    try:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh, delimiter=str(args.get("delimiter", ","))))
    except OSError:
        return []


def _csv_classes(args: dict[str, Any]) -> list[str] | None:
    target = args.get("target")
    if not isinstance(target, str):
        return None
    values = [row.get(target, "") for row in _rows(args)]
    try:
        [float(v) for v in values]
    except ValueError:
        return sorted(set(values))  # the order sources.csv_table gives them indices in
    return None


def _csv_features(args: dict[str, Any]) -> list[str]:
    features = args.get("features")
    if features:
        return [str(f) for f in features]
    rows = _rows(args)
    target = args.get("target")
    targets = [target] if isinstance(target, str) else list(target or [])
    return [c for c in (rows[0] if rows else {}) if c not in targets]
