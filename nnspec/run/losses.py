"""Every torch.nn loss, and where each of its arguments comes from (``loss.inputs``).

A loss argument is a small expression over the batch, parsed here (never evaluated by Python):

    output                      the model applied to the spec's input field(s)
    target, input_lengths, ...  a field of the batch
    model(anchor)               the model (same weights) applied to another field
    log_softmax(output, 1)      one of FUNCTIONS below, applied to expressions and integers

So TripletMarginLoss is ``[model(anchor), model(positive), model(negative)]``, CTCLoss is
``[permute(log_softmax(output, 1), 2, 0, 1), target, input_lengths, target_lengths]``.  Each
distinct expression is computed once per step, whatever the number of references.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nnspec.catalogue import TENSOR_ARGS, section
from nnspec.errors import SpecError, did_you_mean
from nnspec.lang.spec import Loss
from nnspec.run.arguments import guilty_argument

FUNCTIONS: dict[str, tuple[Callable[..., Tensor], str]] = {
    "log_softmax": (lambda x, dim=-1: F.log_softmax(x, dim), "log_softmax(x, dim=-1)"),
    "softmax": (lambda x, dim=-1: F.softmax(x, dim), "softmax(x, dim=-1)"),
    "sigmoid": (torch.sigmoid, "sigmoid(x)"),
    "exp": (torch.exp, "exp(x)"),
    "softplus": (F.softplus, "softplus(x)"),
    "permute": (lambda x, *dims: x.permute(*dims), "permute(x, dims...)"),
    "squeeze": (lambda x, dim=-1: x.squeeze(dim), "squeeze(x, dim=-1)"),
    "column": (lambda x, i: x[:, i], "column(x, i): x[:, i]"),
    "distance": (F.pairwise_distance, "distance(a, b): Euclidean distance per sample"),
}

# Default argument sources where torch's losses are not (input, target).
DEFAULT_INPUTS: dict[str, list[str]] = {
    "TripletMarginLoss": ["model(anchor)", "model(positive)", "model(negative)"],
    "TripletMarginWithDistanceLoss": ["model(anchor)", "model(positive)", "model(negative)"],
    "MarginRankingLoss": ["model(input1)", "model(input2)", "target"],
    "CosineEmbeddingLoss": ["model(input1)", "model(input2)", "target"],
    "HingeEmbeddingLoss": ["distance(model(input1), model(input2))", "target"],
    "CTCLoss": ["output", "target", "input_lengths", "target_lengths"],
    "GaussianNLLLoss": ["column(output, 0)", "target", "softplus(column(output, 1))"],
}

# Losses comparing element by element: a target with as many elements as the output is reshaped
# to the output's shape, and integer targets become the output's dtype.
ELEMENTWISE = frozenset({
    "L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
    "SoftMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "PoissonNLLLoss",
    "GaussianNLLLoss", "KLDivLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss"})

# Loss arguments a spec cannot state (they are Python callables).
CALLABLE_ARGS = frozenset({"distance_function"})

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>-?[0-9]+)|(?P<p>[(),]))")


@dataclass(frozen=True)
class Expr:
    """A parsed loss argument: a field or ``output`` (no args), a call, or an integer."""

    name: str
    args: tuple[Expr | int, ...] = ()
    call: bool = False

    def __str__(self) -> str:
        if not self.call:
            return self.name
        return f"{self.name}({', '.join(str(a) for a in self.args)})"

    def fields(self) -> set[str]:
        """Batch fields this expression reads (``output`` counts as the model's inputs)."""
        if not self.call:
            return {self.name}
        return set().union(*(a.fields() for a in self.args if isinstance(a, Expr)))

    def model_fields(self) -> set[str]:
        """Fields the model is applied to."""
        found = {a.name for a in self.args if isinstance(a, Expr)} if self.name == "model" \
            else set()
        for a in self.args:
            if isinstance(a, Expr):
                found |= a.model_fields()
        return found


def parse(text: str) -> Expr:
    """Parse one ``loss.inputs`` entry; ValueError says what is wrong."""
    tokens = [(m.lastgroup, m.group(m.lastgroup or "")) for m in _TOKEN.finditer(text)]
    if "".join(t for _, t in tokens) != re.sub(r"\s+", "", text):
        raise ValueError(f"cannot read {text!r}: use names, integers, commas and parentheses")
    expr, rest = _parse(tokens)
    if rest or not isinstance(expr, Expr):
        raise ValueError(f"cannot read {text!r}: expected one expression such as model(anchor)")
    return expr


def _parse(tokens: list[tuple[str | None, str]]) -> tuple[Expr | int, list[tuple[str | None,
                                                                                 str]]]:
    if not tokens:
        raise ValueError("expression ends too early")
    (kind, value), rest = tokens[0], tokens[1:]
    if kind == "int":
        return int(value), rest
    if kind != "name":
        raise ValueError(f"unexpected {value!r}")
    if not rest or rest[0][1] != "(":
        return Expr(value), rest
    rest, args = rest[1:], []
    while True:
        arg, rest = _parse(rest)
        args.append(arg)
        if not rest:
            raise ValueError("missing ')'")
        sep, rest = rest[0][1], rest[1:]
        if sep == ")":
            return Expr(value, tuple(args), call=True), rest
        if sep != ",":
            raise ValueError(f"expected ',' or ')', found {sep!r}")


@dataclass(frozen=True)
class LossPlan:
    """A built loss module and its parsed argument sources."""

    name: str
    module: nn.Module
    inputs: tuple[Expr, ...]

    @property
    def fields(self) -> set[str]:
        return set().union(*(e.fields() for e in self.inputs))

    @property
    def model_fields(self) -> set[str]:
        found = set().union(*(e.model_fields() for e in self.inputs))
        return found | ({"output"} if "output" in self.fields else set())


def build_loss(loss: Loss) -> LossPlan:
    """Check the loss name, arguments and argument sources; build the torch module."""
    catalogue = section("loss")
    loc = loss.location
    if loss.name not in catalogue:
        raise SpecError.at(loc, ("loss",), f"unknown loss '{loss.name}'",
                           did_you_mean(loss.name, catalogue))
    exprs = tuple(_parse_inputs(loss))
    bad = set(loss.args) & CALLABLE_ARGS
    if bad:
        first = sorted(bad)[0]
        raise SpecError.at(loss.locate(first), ("loss", loss.name, first),
                           "takes a Python function, which a spec cannot state", "leave it out")
    args = {k: torch.tensor(v, dtype=torch.float32) if k in TENSOR_ARGS and v is not None
            else v for k, v in loss.args.items()}
    cls = getattr(nn, loss.name)
    try:
        module = cls(**args)
    except (TypeError, ValueError) as exc:
        arg = guilty_argument(lambda a: cls(**a), args)
        path = ("loss", loss.name, *([arg] if arg else []))
        raise SpecError.at(loss.locate(*path[2:]), path, str(exc)) from None
    return LossPlan(loss.name, module, exprs)


def forward_arguments(name: str) -> list[str]:
    """The positional arguments of a torch loss's forward (every one of them is required)."""
    params = list(inspect.signature(getattr(nn, name).forward).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _parse_inputs(loss: Loss) -> list[Expr]:
    texts = loss.inputs if loss.inputs is not None else DEFAULT_INPUTS.get(
        loss.name, ["output", "target"])
    wanted = forward_arguments(loss.name)
    if len(texts) != len(wanted):
        raise SpecError.at(loss.locate("inputs"), ("loss", "inputs"),
                           f"{loss.name} takes {len(wanted)} inputs ({', '.join(wanted)}), "
                           f"found {len(texts)}", "one entry per argument; by default "
                           f"[{', '.join(DEFAULT_INPUTS.get(loss.name, ['output', 'target']))}]")
    exprs = []
    for i, text in enumerate(texts):
        try:
            expr = parse(text)
        except ValueError as exc:
            raise SpecError.at(loss.locate("inputs", i), ("loss", "inputs", i), str(exc)) from None
        for name in _calls(expr):
            if name != "model" and name not in FUNCTIONS:
                raise SpecError.at(loss.locate("inputs", i), ("loss", "inputs", i),
                                   f"unknown function '{name}'",
                                   did_you_mean(name, [*FUNCTIONS, "model"]))
        exprs.append(expr)
    return exprs


def _calls(expr: Expr) -> set[str]:
    names = {expr.name} if expr.call else set()
    for a in expr.args:
        if isinstance(a, Expr):
            names |= _calls(a)
    return names



class Evaluator:
    """Computes loss arguments for one batch, each distinct expression once."""

    def __init__(self, model: nn.Module, input_names: Sequence[str], dtype: torch.dtype) -> None:
        self.model = model
        self.input_names = list(input_names)
        self.dtype = dtype

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
        return FUNCTIONS[expr.name][0](*(self(a, batch, memo) for a in expr.args))

    def _model(self, xs: Sequence[Tensor]) -> Tensor:
        cast = [x.to(self.dtype) if x.dtype != self.dtype and self.dtype.is_floating_point
                else x for x in xs]
        out: Tensor = self.model(*cast)
        return out


def loss_args(name: str, values: Sequence[Any]) -> list[Any]:
    """Adapt targets to what the loss wants (shape and dtype), for the elementwise losses."""
    if name not in ELEMENTWISE or not values or not isinstance(values[0], Tensor):
        return list(values)
    ref = values[0]
    out = [ref]
    for v in values[1:]:
        if isinstance(v, Tensor):
            if v.shape != ref.shape and v.numel() == ref.numel() and name != "CosineEmbeddingLoss":
                v = v.reshape(ref.shape)
            if not v.is_floating_point():
                v = v.to(ref.dtype)
        out.append(v)
    return out
