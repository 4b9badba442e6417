"""Losses, built from their catalogue entries, and the evaluation of their arguments.

``loss.inputs`` is parsed and checked by nnspec.lang.loss_inputs (no torch); here each distinct
expression is computed once per step, whatever the number of references, and targets are
adapted to what the loss wants.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nnspec.catalogue import TENSOR_ARGS
from nnspec.catalogue.losses import LossInfo, loss_info
from nnspec.errors import SpecError
from nnspec.lang.loss_inputs import Expr, input_problems, parse_inputs
from nnspec.lang.spec import Loss
from nnspec.run.instantiate import construct, entry

# The implementations of nnspec.lang.loss_inputs.FUNCTIONS (a test holds the names equal).
FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "log_softmax": lambda x, dim=-1: F.log_softmax(x, dim),
    "softmax": lambda x, dim=-1: F.softmax(x, dim),
    "sigmoid": torch.sigmoid,
    "exp": torch.exp,
    "softplus": F.softplus,
    "permute": lambda x, *dims: x.permute(*dims),
    "squeeze": lambda x, dim=-1: x.squeeze(dim),
    "column": lambda x, i: x[:, i],
    "distance": F.pairwise_distance,
}


@dataclass(frozen=True)
class LossPlan:
    """A built loss module and its parsed argument sources."""

    name: str
    module: nn.Module
    inputs: tuple[Expr, ...]

    @property
    def info(self) -> LossInfo:
        return loss_info(self.name)

    @property
    def fields(self) -> set[str]:
        return set().union(*(e.fields() for e in self.inputs))

    @property
    def model_fields(self) -> set[str]:
        found = set().union(*(e.model_fields() for e in self.inputs))
        return found | ({"output"} if "output" in self.fields else set())


class FunctionLoss(nn.Module):
    """A loss that is a function (torchvision.ops), called with the spec's keyword arguments."""

    def __init__(self, fn: Callable[..., Tensor], **kwargs: Any) -> None:
        super().__init__()
        self.fn = functools.partial(fn, **kwargs)

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.fn(*inputs)


def build_loss(loss: Loss) -> LossPlan:
    """Check the loss name, arguments and argument sources; build the torch module."""
    found = entry("loss", loss.name, loss.location, ("loss",))
    info = loss_info(loss.name)
    for at, message, hint in input_problems(loss.name, loss.inputs):
        raise SpecError.at(loss.locate(*at), ("loss", *at), message, hint)
    bad = set(loss.args) & info.callable_args
    if bad:
        first = sorted(bad)[0]
        raise SpecError.at(loss.locate(first), ("loss", loss.name, first),
                           "takes a Python function, which a spec cannot state", "leave it out")
    args = {k: torch.tensor(v, dtype=torch.float32) if k in TENSOR_ARGS and v is not None
            else v for k, v in loss.args.items()}
    if info.function:  # the catalogue's defaults are nnspec's (they may differ from the function's)
        args = {k: p.default for k, p in found.params.items() if not p.required} | args
    module = construct(_maker(info), args, loss, ("loss", loss.name))
    return LossPlan(loss.name, module, parse_inputs(loss.name, loss.inputs))


def _maker(info: LossInfo) -> Callable[[dict[str, Any]], nn.Module]:
    module_name, _, attr = info.target.partition(":")
    target = getattr(importlib.import_module(module_name), attr)
    if not info.function:
        return lambda a: target(**a)
    return lambda a: FunctionLoss(target, **a)


class Evaluator:
    """Computes loss arguments for one batch, each distinct expression once."""

    def __init__(self, model: nn.Module, input_names: Sequence[str], dtype: torch.dtype, *,
                 channels_last: bool = False) -> None:
        self.model = model
        self.input_names = list(input_names)
        self.dtype = dtype
        self.channels_last = channels_last  # train.memory_format: images go in as NHWC

    def __call__(self, expr: Expr | int, batch: Mapping[str, Tensor],
                 memo: dict[str, Any]) -> Any:
        if isinstance(expr, int):
            return expr
        key = str(expr)
        if key not in memo:
            memo[key] = self._compute(expr, batch, memo)
        return memo[key]

    def _compute(self, expr: Expr, batch: Mapping[str, Tensor], memo: dict[str, Any]) -> Any:
        if expr.name == "output" and not expr.call:
            return self._model([batch[n] for n in self.input_names])
        if not expr.call:
            return batch[expr.name]
        if expr.name == "model":
            return self._model([self(a, batch, memo) for a in expr.args])
        return FUNCTIONS[expr.name](*(self(a, batch, memo) for a in expr.args))

    def _model(self, xs: Sequence[Tensor]) -> Tensor:
        cast = [x.to(self.dtype) if x.dtype != self.dtype and self.dtype.is_floating_point
                else x for x in xs]
        if self.channels_last:
            cast = [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
                    for x in cast]
        out: Tensor = self.model(*cast)
        return out


def loss_args(name: str, values: Sequence[Any]) -> list[Any]:
    """Adapt targets to what the loss wants (shape and dtype), for the elementwise losses."""
    info = loss_info(name)
    if not info.elementwise or not values or not isinstance(values[0], Tensor):
        return list(values)
    ref = values[0]
    out = [ref]
    for v in values[1:]:
        if isinstance(v, Tensor):
            if v.shape != ref.shape and v.numel() == ref.numel() and info.reshape_targets:
                v = v.reshape(ref.shape)
            if not v.is_floating_point():
                v = v.to(ref.dtype)
        out.append(v)
    return out
