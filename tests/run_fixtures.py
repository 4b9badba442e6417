"""Helpers for the runner tests: tiny specs, tiny IDX data, the MNIST t10k location.

The tiny specs pin ``device: cpu``: the tests that use them check CPU-exact behaviour
(bit-identical resume, the oracle), which holds whatever accelerator the machine has.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import Any

import pytest
import torch

from nnspec.api import load_spec
from nnspec.lang.spec import Log, Spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

LENET_MODEL = """
model:
  - Conv2d: {out_channels: 6, kernel_size: 5, padding: 2}
  - ReLU
  - MaxPool2d: {kernel_size: 2}
  - Conv2d: {out_channels: 16, kernel_size: 5}
  - ReLU
  - MaxPool2d: {kernel_size: 2}
  - Flatten
  - Linear: {out_features: 120}
  - ReLU
  - Linear: {out_features: 84}
  - ReLU
  - Linear: {out_features: 10}
"""

DIGITS_MLP = """
nnspec: 1
name: digits_mlp
input: [64]
model:
  - Linear: {out_features: 16}
  - ReLU
  - Linear: {out_features: 10}
data:
  dataset: {SKLearn: {name: digits}}
  standardize: true
  val_split: 0.2
  batch_size: 64
loss: CrossEntropyLoss
optimizer: {SGD: {lr: 0.1, momentum: 0.9}}
train: {epochs: 2, device: cpu, metrics: [accuracy], monitor: val.accuracy}
log: {tensorboard: false}
"""


def mnist_dir() -> Path:
    """The MNIST t10k IDX folder (NNSPEC_MNIST_DIR, default ../shared/data/mnist-t10k)."""
    path = Path(os.environ.get("NNSPEC_MNIST_DIR", ROOT.parent / "shared" / "data" /
                               "mnist-t10k"))
    if not (path / "t10k-images-idx3-ubyte.gz").exists() and not (
            path / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST t10k IDX files not found in {path} (set NNSPEC_MNIST_DIR)")
    return path


def write_idx(path: Path, array: torch.Tensor, compress: bool = False) -> Path:
    """Write a uint8 tensor as an IDX file (the MNIST format)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.dim())
    header += struct.pack(f">{array.dim()}I", *array.shape)
    raw = header + array.to(torch.uint8).numpy().tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def tiny_mnist(folder: Path, n: int = 256, seed: int = 0, compress: bool = True) -> Path:
    """A folder of t10k-named IDX files holding ``n`` learnable 28x28 images.

    Each class is a bright square at its own place plus noise, so a LeNet learns it quickly.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=gen)
    images = torch.randint(0, 60, (n, 28, 28), generator=gen)
    for i, c in enumerate(labels.tolist()):
        r, col = 2 + (c // 5) * 12, 2 + (c % 5) * 5
        images[i, r:r + 10, col:col + 5] = 255
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "t10k-images-idx3-ubyte", images, compress)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels, compress)
    return folder


def lenet_text(root: Path, *, epochs: int = 1, extra: str = "", train: str = "",
               optimizer: str = "{SGD: {lr: 0.05, momentum: 0.9}}") -> str:
    """A LeNet training spec over the IDX files in ``root``."""
    return f"""
nnspec: 1
name: lenet_tiny
input: [1, 28, 28]
{LENET_MODEL}
data:
  root: {root}
  dataset: IDX
  transforms: [ToImage, {{ToDtype: {{scale: true}}}}]
  train: {{range: [0, 192]}}
  val: {{range: [192, 256]}}
  batch_size: 32
loss: CrossEntropyLoss
optimizer: {optimizer}
train: {{epochs: {epochs}, seed: 0, device: cpu, metrics: [accuracy]{train}}}
{extra}
"""


def spec_from(text: str, tmp_path: Path, overrides: list[str] | None = None,
              **log: Any) -> tuple[Spec, Path]:
    """Write ``text`` to tmp_path/spec.yaml, load it, and send its runs under tmp_path."""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    spec = load_spec(str(path), overrides or [])
    settings = {"tensorboard": False, "dir": str(tmp_path / "runs"), **log}
    return spec.model_copy(update={"log": Log(**settings)}), path


def example(name: str, overrides: list[str] | None = None) -> Spec:
    return load_spec(str(EXAMPLES / name), overrides or [])
