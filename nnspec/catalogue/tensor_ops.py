"""The tensor operations a graph node may use, in one table for infer, build and emit.

Each op is a plain function over tensors (``apply``) and a line of Python (``source``); the
catalogue (nnspec.catalogue.OPS) holds their arguments and docs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any


def _add(*xs: Any) -> Any:
    return reduce(operator.add, xs)


def _mul(*xs: Any) -> Any:
    return reduce(operator.mul, xs)


def _cat(*xs: Any, dim: int = 1) -> Any:
    import torch

    return torch.cat(list(xs), dim=dim)


def _reshape(x: Any, shape: Sequence[int]) -> Any:
    return x.reshape(x.shape[0], *shape)


def _permute(x: Any, dims: Sequence[int]) -> Any:
    return x.permute(*dims)


def _transpose(x: Any, dim0: int, dim1: int) -> Any:
    return x.transpose(dim0, dim1)


def _mean(x: Any, dim: int | Sequence[int], keepdim: bool = False) -> Any:
    return x.mean(dim=tuple(dim) if isinstance(dim, list | tuple) else dim, keepdim=keepdim)


def _getitem(x: Any, index: int) -> Any:
    return x[index]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "add": _add, "mul": _mul, "cat": _cat, "reshape": _reshape, "permute": _permute,
    "transpose": _transpose, "mean": _mean, "getitem": _getitem,
}


def apply(op: str, inputs: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    return FUNCTIONS[op](*inputs, **kwargs)


def source(op: str, inputs: Sequence[str], kwargs: dict[str, Any]) -> str:
    """One Python expression computing ``op`` over the named inputs (for emitted code)."""
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    if op == "add":
        return " + ".join(inputs)
    if op == "mul":
        return " * ".join(inputs)
    if op == "cat":
        return f"torch.cat([{', '.join(inputs)}], dim={args.get('dim', 1)!r})"
    x = inputs[0]
    if op == "reshape":
        return f"{x}.reshape({x}.shape[0], *{args['shape']!r})"
    if op == "permute":
        return f"{x}.permute(*{args['dims']!r})"
    if op == "transpose":
        return f"{x}.transpose({args['dim0']!r}, {args['dim1']!r})"
    if op == "mean":
        return f"{x}.mean(dim={args['dim']!r}, keepdim={args.get('keepdim', False)!r})"
    if op == "getitem":
        return f"{x}[{args['index']!r}]"
    raise KeyError(op)
