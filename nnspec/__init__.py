"""nnspec: neural networks written as YAML or JSON specs, compiled to PyTorch and trained.

The public API is re-exported lazily so that ``import nnspec`` (and ``nnspec --help``) stays
fast and never imports torch until a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "RunError",
    "SpecError",
    "compile",
    "emit",
    "infer",
    "load",
    "load_spec",
    "lock",
    "resolve",
    "train",
    "validate",
]

if TYPE_CHECKING:
    from nnspec.api import compile, emit, infer, load_spec, lock, resolve, validate
    from nnspec.errors import RunError, SpecError
    from nnspec.lang.loader import load


def __getattr__(name: str) -> Any:
    if name in ("compile", "emit", "infer", "load_spec", "lock", "resolve", "validate"):
        from nnspec import api

        return getattr(api, name)
    if name in ("SpecError", "RunError"):
        from nnspec import errors

        return getattr(errors, name)
    if name == "load":
        from nnspec.lang.loader import load

        return load
    if name == "train":
        from nnspec.run import train

        return train
    raise AttributeError(f"module 'nnspec' has no attribute {name!r}")
