"""Readers for data that lives in plain files or ships with a package: IDX, .pt/.npz, CSV, sklearn.

Every reader returns a ``Table``.  None of them unpickles anything: .pt files load with
``weights_only=True`` and .npz files with ``allow_pickle=False``, because a dataset file is as
untrusted as the spec that names it.
"""

from __future__ import annotations

import csv
import gzip
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nnspec.errors import RunError
from nnspec.run.table import Table

# IDX element types (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
                               0x0E: ">f8"}
_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> Tensor:
    """One IDX file (gzip-compressed or not) as a tensor of its stored shape."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise RunError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims))
    if len(raw) - 4 - 4 * ndim < count * dtype.itemsize:
        raise RunError(f"{path} is truncated: its header promises shape {list(dims)}")
    array = np.frombuffer(raw, dtype, count, offset=4 + 4 * ndim).reshape(dims)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def _idx_files(root: Path, partition: str, images: str | None,
               labels: str | None) -> tuple[Path, Path]:
    """The images and labels files: the ones named, else MNIST's names for this partition.

    A training partition falls back to the t10k files when the train files are absent (a
    directory holding only the MNIST test set is a common small benchmark); a test partition
    never falls back to the training files.
    """
    if images and labels:
        return root / images, root / labels
    if partition == "test" and not all(_find(root, stem) for stem in _IDX_NAMES["train"]):
        raise RunError(f"no IDX files for the test part in {root.resolve()}: without train-* "
                       "files its t10k files are the training data",
                       hint="hold a test range out of training with data.train.range and "
                       "data.val.range, or name other files in data.test.dataset")
    order = ["train", "test"] if partition == "train" else ["test"]
    for part in order:
        found = [_find(root, stem) for stem in _IDX_NAMES[part]]
        if found[0] and found[1]:
            return found[0], found[1]
    wanted = " or ".join(f"{a}[.gz] and {b}[.gz]" for a, b in (_IDX_NAMES[p] for p in order))
    raise RunError(f"no IDX files for the {partition} part in {root.resolve()}: looked for "
                   f"{wanted}", hint="point data.root (or the dataset's root) at the folder "
                   "holding them, or name the files with images: and labels:")


def idx_table(root: Path, partition: str, images: str | None = None,
              labels: str | None = None) -> Table:
    """Images (N, H, W) become (N, 1, H, W) so image transforms see one channel."""
    if not root.is_dir():
        raise RunError(f"IDX data folder {root.resolve()} does not exist",
                       hint="set data.root=/path/to/folder (it must hold the IDX files)")
    img_path, lbl_path = _idx_files(root, partition, images, labels)
    for path in (img_path, lbl_path):
        if not path.is_file():
            raise RunError(f"IDX file {path.resolve()} does not exist")
    x, y = read_idx(img_path), read_idx(lbl_path)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if len(x) != len(y):
        raise RunError(f"{img_path} has {len(x)} images but {lbl_path} has {len(y)} labels")
    return Table({"input": x, "target": y.long()})


def tensors_table(path: Path, inputs: str, targets: str) -> Table:
    """Arrays from a .pt (tensors only) or .npz (no pickles) file.

    The ``inputs`` array becomes the ``input`` field and ``targets`` the ``target`` field; any
    other arrays keep their names, so a loss can read them (``input_lengths``, ``var``, ...).
    """
    if not path.is_file():
        raise RunError(f"tensor file {path.resolve()} does not exist")
    arrays = _load_arrays(path)
    missing = [k for k in (inputs, targets) if k not in arrays]
    if missing:
        raise RunError(f"{path} has no arrays {missing}; it holds {sorted(arrays)}",
                       hint="name them with inputs: and targets:")
    names = {"input": inputs, "target": targets}
    renamed = {"input": arrays.pop(inputs), "target": arrays.pop(targets), **arrays}
    for field, array in renamed.items():
        _check_array(path, names.get(field, field), array)
    try:
        return Table(renamed)
    except ValueError as exc:
        raise RunError(f"{path}: {exc}") from exc


def _check_array(path: Path, name: str, array: Tensor) -> None:
    """One sample per index of the first dimension, of real numbers, all finite."""
    if array.dim() == 0:
        raise RunError(f"{path}: array {name!r} is a single number",
                       hint="its first dimension counts the samples: save one value per sample")
    if array.is_complex():
        raise RunError(f"{path}: array {name!r} holds complex numbers",
                       hint="save real numbers (e.g. the real and imaginary parts as two "
                       "channels)")
    if array.is_floating_point() and not bool(torch.isfinite(array).all()):
        sample = int((~torch.isfinite(array)).reshape(len(array), -1).any(1).nonzero()[0])
        raise RunError(f"{path}: array {name!r} holds a value that is not finite (nan or "
                       f"inf) in sample {sample}", hint="fill in or leave out the samples with "
                       "missing values; a non-finite input makes every loss after it nan")


def _load_arrays(path: Path) -> dict[str, Tensor]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return {k: torch.from_numpy(np.array(npz[k])) for k in npz.files}
        obj: Any = torch.load(path, weights_only=True, map_location="cpu")
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except Exception:  # a corrupt or hostile file: say so, never a traceback or its bytes
        raise RunError(f"cannot read {path}: not a .pt file of tensors (weights only) or a "
                       ".npz file without pickled objects") from None
    if isinstance(obj, dict) and all(isinstance(v, Tensor) for v in obj.values()):
        return {str(k): v for k, v in obj.items()}
    raise RunError(f"{path} must hold a dict of named tensors")


def csv_table(path: Path, target: str | list[str], features: list[str] | None,
              delimiter: str) -> Table:
    """Numeric feature columns -> ``input``; target columns -> ``target``.

    A single non-numeric target column (class names) becomes class indices in sorted order.
    """
    if not path.is_file():
        raise RunError(f"CSV file {path.resolve()} does not exist")
    # Errors name the file, rows and the spec's own column names, never what the file holds:
    # a spec from a stranger could point at any readable file and read it back in an error.
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter=delimiter))
    except (UnicodeDecodeError, csv.Error):
        raise RunError(f"{path} is not a UTF-8 CSV file") from None
    if not rows:
        raise RunError(f"{path} has no data rows")
    targets = [target] if isinstance(target, str) else target
    columns = list(rows[0])
    missing = [c for c in [*targets, *(features or [])] if c not in columns]
    if missing:
        raise RunError(f"{path} has no columns {missing} in its header line ({len(columns)} "
                       "columns)", hint="name columns exactly as the file's first line does")
    for line, row in enumerate(rows, 2):  # DictReader: None for missing and extra values
        if None in row or None in row.values():
            given = sum(v is not None for k, v in row.items() if k is not None) + \
                len(row.get(None) or [])
            raise RunError(f"{path}: line {line} has {given} values, its header line "
                           f"{len(columns)}", hint="every row needs one value per column")
    feats = features or [c for c in columns if c not in targets]
    x = torch.tensor([[_number(path, r, c, line) for c in feats]
                      for line, r in enumerate(rows, 2)], dtype=torch.float32)
    return Table({"input": x, "target": _csv_target(path, rows, targets)})


def _number(path: Path, row: dict[str, str], column: str, line: int) -> float:
    try:
        value = float(row[column])
    except (TypeError, ValueError):
        raise RunError(f"{path}: column {column!r} holds a value that is not a number") \
            from None
    if not math.isfinite(value):
        raise RunError(f"{path}: column {column!r} holds a value that is not finite on line "
                       f"{line} (nan or inf: a missing value?)",
                       hint="fill in or leave out the rows with missing values; a non-finite "
                       "input makes every loss after it nan")
    return value


def _csv_target(path: Path, rows: list[dict[str, str]], targets: list[str]) -> Tensor:
    if len(targets) == 1:
        values = [r[targets[0]] for r in rows]
        try:
            numbers = [float(v) for v in values]
        except ValueError:
            classes = {c: i for i, c in enumerate(sorted(set(values)))}
            return torch.tensor([classes[v] for v in values])
        bad = next((line for line, n in enumerate(numbers, 2) if not math.isfinite(n)), None)
        if bad is not None:
            _number(path, rows[bad - 2], targets[0], bad)  # raises, naming the line
        if all(n.is_integer() for n in numbers):
            return torch.tensor(numbers).long()
        return torch.tensor(numbers, dtype=torch.float32)
    return torch.tensor([[_number(path, r, c, line) for c in targets]
                         for line, r in enumerate(rows, 2)], dtype=torch.float32)


def sklearn_table(name: str, images: bool) -> Table:
    """One of scikit-learn's bundled datasets (real data, no network needed)."""
    try:
        from sklearn import datasets
    except ImportError:
        raise RunError(f"dataset SKLearn {name!r} needs scikit-learn",
                       hint="pip install 'nnspec[sklearn]'") from None
    loader = {"digits": datasets.load_digits, "iris": datasets.load_iris,
              "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer,
              "diabetes": datasets.load_diabetes}[name]
    bunch: Any = loader()
    x = torch.tensor(np.asarray(bunch.data), dtype=torch.float32)
    target = np.asarray(bunch.target)
    y = (torch.tensor(target, dtype=torch.float32) if target.dtype.kind == "f"
         else torch.tensor(target).long())
    if images and name == "digits":
        x = x.reshape(-1, 1, 8, 8)
    return Table({"input": x, "target": y})
