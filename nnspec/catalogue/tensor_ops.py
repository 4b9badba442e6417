"""The tensor operations a graph node may use: one entry each, read by every pass.

An op's entry says its arguments and inputs, how the shape pass treats it (a ``check`` refusing
an op along the batch, a ``shape`` rule or, without one, the op itself run on meta tensors), and
its ``OpCode``: the function that runs it (inside a built container and on meta tensors), the
call a torch.fx graph records, and the line of Python the emitter writes, with the tensor
methods that line calls (the emit safety check allows exactly those).  Adding an op is adding
one entry here.  Nothing here imports torch until an op runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from typing import Any

from nnspec.catalogue import shape_rules as rules
from nnspec.catalogue.entry import Entry, Param, Traits

FxCall = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class OpCode:
    """How one op runs, is traced into a torch.fx graph and is written as Python."""

    apply: Callable[..., Any]  # over tensors: inputs positional, arguments as keywords
    source: Callable[[list[str], dict[str, Any]], str]  # one expression over named inputs
    methods: frozenset[str] = frozenset()  # tensor methods ``source`` calls (x.reshape(...))
    fold: Callable[[Any, Any], Any] | None = None  # fx: a binary operator folded over inputs
    fx: Callable[[list[Any], dict[str, Any]], FxCall] | None = None  # fx: target, args, kwargs
    takes: str = "torch.Tensor"  # the annotations of its module's forward (in a container)
    gives: str = "torch.Tensor"

    def call(self, args: list[Any], kwargs: dict[str, Any]) -> FxCall:
        """What a torch.fx graph calls (its generated code reads like the emitted code)."""
        if self.fx is not None:
            return self.fx(args, kwargs)
        return self.apply, tuple(args), dict(kwargs)

    def write(self, inputs: Sequence[str], kwargs: dict[str, Any]) -> str:
        """The Python expression over ``inputs``; list arguments are written as tuples."""
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        return self.source(list(inputs), args)


REQUIRED = object()
_INT = {"type": "integer"}
_INTS = {"type": "array", "items": _INT}
_SCALAR = {"anyOf": [{"type": "number"}, {"type": "null"}],
           "description": "A constant combined with the inputs (written among them)."}


def _op(name: str, doc: str, *params: tuple[str, dict[str, Any], Any], code: OpCode,
        **traits: Any) -> Entry:
    found = {p: Param(p, schema, default is REQUIRED, None if default is REQUIRED else default)
             for p, schema, default in params}
    return Entry(name, "op", doc, found, Traits(code=code, **traits))


def _cat(*xs: Any, dim: int = 1) -> Any:
    import torch

    return torch.cat(list(xs), dim=dim)


def _cat_call(args: list[Any], kwargs: dict[str, Any]) -> FxCall:
    import torch

    return torch.cat, (list(args),), {"dim": kwargs.get("dim", 1)}


def _add(*xs: Any, scalar: float | None = None) -> Any:
    return reduce(operator.add, [*xs, *([] if scalar is None else [scalar])])


def _mul(*xs: Any, scalar: float | None = None) -> Any:
    return reduce(operator.mul, [*xs, *([] if scalar is None else [scalar])])


def _joined(sign: str) -> Callable[[list[str], dict[str, Any]], str]:
    """``a + b``, with the constant last: ``conv * 1e-06``."""

    def source(inputs: list[str], args: dict[str, Any]) -> str:
        scalar = args.get("scalar")
        return f" {sign} ".join([*inputs, *([] if scalar is None else [repr(scalar)])])

    return source


def one_input_needs_a_scalar(name: str, kwargs: dict[str, Any], inputs: list[Any],
                             sources: list[str]) -> tuple[str, str | None] | None:
    if len(inputs) == 1 and kwargs.get("scalar") is None:
        return (f"{name} of one input needs a constant: {{{name}: [{sources[0].split()[0]}, "
                "0.5]}", "or name a second input: {" + name + ": [a, b]}")
    return None


def _reshape(x: Any, shape: Sequence[int]) -> Any:
    return x.reshape(x.shape[0], *shape)


def _permute(x: Any, dims: Sequence[int]) -> Any:
    return x.permute(*dims)


def _transpose(x: Any, dim0: int, dim1: int) -> Any:
    return x.transpose(dim0, dim1)


def _getitem(x: Any, index: int) -> Any:
    return x[index]


def _mean(x: Any, dim: int | Sequence[int], keepdim: bool = False) -> Any:
    return x.mean(dim=tuple(dim) if isinstance(dim, list | tuple) else dim, keepdim=keepdim)


def _chunk(x: Any, chunks: int, dim: int = 1) -> Any:
    return x.chunk(chunks, dim=dim)


def _chunk_shapes(name: str, kwargs: dict[str, Any], inputs: list[Any],
                  sources: list[str]) -> Any:
    """torch.chunk's parts: ceil(size / chunks) each, the last smaller, and fewer parts than
    asked when the size does not need them all (6 in 4 chunks: 2, 2, 2)."""
    value, chunks, dim = inputs[0], kwargs["chunks"], kwargs.get("dim", 1)
    full = (rules.BATCH, *value.shape)
    if not (isinstance(chunks, int) and chunks >= 1 and -len(full) <= dim < len(full)) or \
            not full[dim]:
        return rules.NO_RULE  # torch says what is wrong, or what an empty dimension gives
    dim %= len(full)
    step = -(-full[dim] // chunks)
    sizes = [step] * (-(-full[dim] // step))
    sizes[-1] = full[dim] - step * (len(sizes) - 1)
    return tuple(replace(value, shape=(*value.shape[:dim - 1], size, *value.shape[dim:]))
                 for size in sizes)


_JOIN_HINT = ("add and mul need equal sizes, or 1, in each dimension; a convolution keeps its "
              "size with stride 1 and padding: kernel_size // 2")

OPS: dict[str, Entry] = {op.name: op for op in [
    _op("add", "Element-wise sum of its inputs (residual connections), and of a constant "
        "written among them: {add: [x, 1.0]}.", ("scalar", _SCALAR, None),
        code=OpCode(_add, _joined("+"), fold=operator.add),
        inputs=(1, 16), shape=rules.broadcast, hint=_JOIN_HINT, check=one_input_needs_a_scalar),
    _op("mul", "Element-wise product of its inputs (gating), and of a constant written among "
        "them: {mul: [conv, 1e-6]}.", ("scalar", _SCALAR, None),
        code=OpCode(_mul, _joined("*"), fold=operator.mul),
        inputs=(1, 16), shape=rules.broadcast, hint=_JOIN_HINT, check=one_input_needs_a_scalar),
    _op("cat", "Concatenate inputs along `dim` (default 1, the channels).", ("dim", _INT, 1),
        code=OpCode(_cat, lambda i, a: f"torch.cat([{', '.join(i)}], dim={a.get('dim', 1)!r})",
                    fx=_cat_call),
        inputs=(2, 16), check=rules.keeps_batch("dim", "{name} along dim {dim} joins batches, "
                                                "not samples", default=1),
        shape=rules.joined),
    _op("reshape", "Reshape each sample to `shape` (the batch dimension is kept).",
        ("shape", _INTS, REQUIRED),
        code=OpCode(_reshape,
                    lambda i, a: f"{i[0]}.reshape({i[0]}.shape[0], *{a['shape']!r})",
                    frozenset({"reshape"})),
        check=rules.reshape_check, view=True),
    _op("permute", "Reorder all dimensions, the batch dimension (0) included.",
        ("dims", _INTS, REQUIRED),
        code=OpCode(_permute,
                    lambda i, a: f"{i[0]}.permute(*{a['dims']!r})", frozenset({"permute"})),
        check=rules.permutation("dims"), shape=rules.permuted("dims"), view=True),
    _op("transpose", "Swap two dimensions (0 is the batch dimension).",
        ("dim0", _INT, REQUIRED), ("dim1", _INT, REQUIRED),
        code=OpCode(_transpose,
                    lambda i, a: f"{i[0]}.transpose({a['dim0']!r}, {a['dim1']!r})",
                    frozenset({"transpose"})),
        check=rules.swap_check, view=True),
    _op("mean", "Mean over dimensions `dim` (0 is the batch dimension).",
        ("dim", {"anyOf": [_INT, _INTS]}, REQUIRED), ("keepdim", {"type": "boolean"}, False),
        code=OpCode(_mean, lambda i, a: f"{i[0]}.mean(dim={a['dim']!r}, "
                                        f"keepdim={a.get('keepdim', False)!r})",
                    frozenset({"mean"})),
        check=rules.keeps_batch("dim", "{name} over dim {dim} averages {value} from {source} "
                                "over the batch"), shape=rules.reduced),
    _op("chunk", "Split each sample into `chunks` parts along `dim` (default 1, not the "
        "batch); select one with getitem.", ("chunks", {**_INT, "minimum": 1}, REQUIRED),
        ("dim", _INT, 1),
        code=OpCode(_chunk, lambda i, a: f"{i[0]}.chunk({a['chunks']!r}, dim={a.get('dim', 1)!r})",
                    frozenset({"chunk"}), gives="tuple[torch.Tensor, ...]"),
        check=rules.keeps_batch("dim", "{name} along dim {dim} splits the batch, not samples",
                                default=1),
        shape=_chunk_shapes, view=True),
    _op("getitem", "Select one output of a layer that returns several (LSTM: 0 = outputs).",
        ("index", _INT, REQUIRED),
        code=OpCode(_getitem, lambda i, a: f"{i[0]}[{a['index']!r}]",
                    fx=lambda i, a: (operator.getitem, (i[0], a["index"]), {}),
                    takes="tuple[Any, ...]", gives="Any"),
        shape=rules.select, view=True),
]}
