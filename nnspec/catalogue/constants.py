"""Computed constants: buffers whose values follow from a few numbers (format 2).

``relative_position_index: {window: [7, 7]}`` fills a buffer with Swin's index of each pair of
positions in a window into the relative position bias table; ``shifted_window_mask`` with the
additive mask of shifted-window attention (0 within a region, -100 across regions).  Each is
one function written against ``torch``'s functions and operators only: run on torch it makes the
tensor (build), run on ``SOURCE`` it writes the same calls as Python (emit), so the two cannot
disagree.  A constant's values are laid out row-major and reshaped to the buffer's ``shape``,
which must hold exactly ``size(args)`` elements.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _pair(what: str, low: int = 1) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "integer", "minimum": low}, "minItems": 2,
            "maxItems": 2, "description": what}


_WINDOW = _pair("The window's [height, width] in positions.")
_SIZE = _pair("The image's [height, width] in positions (multiples of the window).")
_SHIFT = _pair("How far the image was rolled back, [down, right] (torch.roll by -shift), each "
               "smaller than the window; 0 for no shift along that side.", low=0)


@dataclass(frozen=True)
class Constant:
    """One computed constant: its arguments, what it makes and how many elements."""

    doc: str
    params: dict[str, dict[str, Any]]  # argument -> JSON Schema (all required)
    dtype: str  # the element type it gives (the buffer's default dtype)
    size: Callable[[dict[str, Any]], int]  # number of elements
    values: Callable[[Any, dict[str, Any]], Any]  # (torch or SOURCE, args) -> tensor or _Code
    check: Callable[[dict[str, Any]], str | None] = lambda args: None


class _Code:
    """A Python expression: what a constant's function returns when run on ``SOURCE``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _op(self, sign: str, other: Any, flip: bool = False) -> _Code:
        left, right = (_write(other), self.text) if flip else (self.text, _write(other))
        return _Code(f"({left} {sign} {right})")

    def __add__(self, other: Any) -> _Code:
        return self._op("+", other)

    def __radd__(self, other: Any) -> _Code:
        return self._op("+", other, flip=True)

    def __mul__(self, other: Any) -> _Code:
        return self._op("*", other)

    def __rmul__(self, other: Any) -> _Code:
        return self._op("*", other, flip=True)


class Sym:
    """An integer argument written as code (``size[0]``) that still has its value in one use,
    so that a constant's function takes the branches it would (``if not shift``) while the
    code it writes reads the argument, not the number: one emitted class serves every use
    whose branches are the same (``skeleton``)."""

    def __init__(self, text: str, value: Any) -> None:
        self.text, self.value = text, value

    def _op(self, sign: str, other: Any, fn: Callable[[Any, Any], Any],
            flip: bool = False) -> Any:
        known = other.value if isinstance(other, Sym) else other
        if isinstance(known, _Code):
            return NotImplemented
        left, right = (_write(other), self.text) if flip else (self.text, _write(other))
        value = fn(known, self.value) if flip else fn(self.value, known)
        return Sym(f"({left} {sign} {right})", value)

    def __add__(self, other: Any) -> Any:
        return self._op("+", other, operator.add)

    def __radd__(self, other: Any) -> Any:
        return self._op("+", other, operator.add, flip=True)

    def __sub__(self, other: Any) -> Any:
        return self._op("-", other, operator.sub)

    def __rsub__(self, other: Any) -> Any:
        return self._op("-", other, operator.sub, flip=True)

    def __mul__(self, other: Any) -> Any:
        return self._op("*", other, operator.mul)

    def __rmul__(self, other: Any) -> Any:
        return self._op("*", other, operator.mul, flip=True)

    def __floordiv__(self, other: Any) -> Any:
        return self._op("//", other, operator.floordiv)

    def __rfloordiv__(self, other: Any) -> Any:
        return self._op("//", other, operator.floordiv, flip=True)

    def __neg__(self) -> Sym:
        return Sym(f"(-{self.text})", -self.value)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __eq__(self, other: object) -> bool:
        return bool(self.value == (other.value if isinstance(other, Sym) else other))

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __lt__(self, other: Any) -> bool:
        return bool(self.value < (other.value if isinstance(other, Sym) else other))

    def __gt__(self, other: Any) -> bool:
        return bool(self.value > (other.value if isinstance(other, Sym) else other))

    __hash__ = None  # type: ignore[assignment]


def _write(value: Any) -> str:
    if isinstance(value, _Code | Sym):
        return value.text
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_write, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


class _Source:
    """Stands for ``torch``: ``SOURCE.arange(4)`` is the code ``torch.arange(4)``."""

    def __getattr__(self, name: str) -> Callable[..., _Code]:
        def call(*args: Any, **kwargs: Any) -> _Code:
            parts = [_write(a) for a in args] + [f"{k}={_write(v)}" for k, v in kwargs.items()]
            return _Code(f"torch.{name}({', '.join(parts)})")

        return call


SOURCE = _Source()


def _relative_position_index(t: Any, args: dict[str, Any]) -> Any:
    """Swin's index of position q relative to p in a window, into a (2a-1)(2b-1) table:
    (row_p - row_q + a - 1) * (2b - 1) + col_p - col_q + b - 1, for p, q = 0 .. ab-1."""
    a, b = args["window"]
    count = a * b
    # row * (2b - 1) + col of each position: p + row * (b - 1)
    key = t.arange(count) + t.div(t.arange(count), b, rounding_mode="floor") * (b - 1)
    return t.sub(t.unsqueeze(key, 1), key) + ((a - 1) * (2 * b - 1) + b - 1)


def _region(t: Any, coords: Any, length: int, window: int, shift: int, weight: int) -> list[Any]:
    """Terms of the region number (0, 1, 2: before the last window, in it before the shifted
    strip, in the strip) times ``weight``; none when nothing is shifted."""
    if not shift:
        return []
    return [t.clamp(coords + (edge - length + 1), 0, 1) * weight if weight != 1 else
            t.clamp(coords + (edge - length + 1), 0, 1) for edge in (window, shift)]


def _shifted_window_mask(t: Any, args: dict[str, Any]) -> Any:
    """torchvision's shifted-window attention mask: [windows, a*b, a*b], -100 between two
    positions of a window that come from different regions of the rolled image, else 0."""
    (height, width), (a, b), (s, u) = args["size"], args["window"], args["shift"]
    rows, cols = height // a, width // b
    terms = [*_region(t, t.reshape(t.arange(height), (rows, 1, a, 1)), height, a, s, 3),
             *_region(t, t.reshape(t.arange(width), (1, cols, 1, b)), width, b, u, 1)]
    if not terms:
        return t.zeros((rows * cols, a * b, a * b))
    regions = terms[0]
    for term in terms[1:]:  # a flat sum, as emitted code writes it
        regions = regions + term
    ids = t.reshape(t.broadcast_to(regions, (rows, cols, a, b)), (rows * cols, a * b))
    return t.where(t.ne(t.unsqueeze(ids, 1), t.unsqueeze(ids, 2)), -100.0, 0.0)


def _relative_coords_table(t: Any, args: dict[str, Any]) -> Any:
    """Swin V2's log-spaced relative coordinates of a window [a, b]: [2a-1, 2b-1, 2] pairs
    (dy, dx), each scaled to [-8, 8] and mapped to sign(x) * log2(|x| + 1) / 3."""
    a, b = args["window"]

    def axis(n: int) -> Any:
        scaled = t.mul(t.div(t.arange(-(n - 1), n), n - 1), 8)
        return t.div(t.mul(t.sign(scaled), t.log2(t.abs(scaled) + 1.0)), 3.0)

    return t.permute(t.stack(t.meshgrid(axis(a), axis(b), indexing="ij")), (1, 2, 0))


def _mask_check(args: dict[str, Any]) -> str | None:
    (height, width), (a, b), (s, u) = args["size"], args["window"], args["shift"]
    if height % a or width % b:
        return f"size {[height, width]} is not a multiple of the window {[a, b]}"
    if s >= a or u >= b:
        return f"shift {[s, u]} must be smaller than the window {[a, b]}"
    return None


CONSTANTS: dict[str, Constant] = {
    "relative_position_index": Constant(
        "Swin's relative position index of a window [a, b]: (ab)^2 int64 indices into a "
        "(2a-1)(2b-1)-row bias table (torchvision's relative_position_index buffer).",
        {"window": _WINDOW}, "int64",
        lambda args: (args["window"][0] * args["window"][1]) ** 2, _relative_position_index),
    "relative_coords_table": Constant(
        "Swin V2's relative coordinates of a window [a, b]: (2a-1)(2b-1) pairs (dy, dx) "
        "scaled to [-8, 8] and log-spaced, sign(x) * log2(|x| + 1) / 3 (torchvision's "
        "relative_coords_table buffer, [1, 2a-1, 2b-1, 2]).",
        {"window": _WINDOW}, "float32",
        lambda args: (2 * args["window"][0] - 1) * (2 * args["window"][1] - 1) * 2,
        _relative_coords_table, lambda args: (
            None if min(args["window"]) > 1 else "the window must be at least 2 on each side")),
    "shifted_window_mask": Constant(
        "The additive mask of shifted-window attention for an image of `size` cut into "
        "windows of `window` after rolling it by -`shift`: windows x (ab) x (ab) values, -100 "
        "between positions from different regions, else 0.",
        {"size": _SIZE, "window": _WINDOW, "shift": _SHIFT}, "float32",
        lambda args: (args["size"][0] // args["window"][0]) * (args["size"][1]
                                                              // args["window"][1])
        * (args["window"][0] * args["window"][1]) ** 2,
        _shifted_window_mask, _mask_check),
}


def make(name: str, args: dict[str, Any], shape: tuple[int, ...]) -> Any:
    import torch

    return torch.reshape(CONSTANTS[name].values(torch, args), shape)


def source(name: str, args: dict[str, Any], shape_code: str) -> str:
    return f"torch.reshape({CONSTANTS[name].values(SOURCE, args).text}, {shape_code})"


def skeleton(name: str, args: dict[str, Any]) -> str:
    """The code of ``name`` with every integer argument written as a name: equal for two
    uses exactly when the constant's function takes the same branches for both."""
    count = iter(range(10**6))

    def named(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [named(v) for v in value]
        return Sym(f"a{next(count)}", value) if isinstance(value, int) else value

    return CONSTANTS[name].values(SOURCE, {k: named(v) for k, v in args.items()}).text
