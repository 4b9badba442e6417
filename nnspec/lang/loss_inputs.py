"""Where each argument of a loss comes from (``loss.inputs``): parsed and checked, never run.

A loss argument is a small expression over the batch:

    output                      the model applied to the spec's input field(s)
    target, input_lengths, ...  a field of the batch
    model(anchor)               the model (same weights) applied to another field
    log_softmax(output, 1)      one of FUNCTIONS below, applied to expressions and integers

So TripletMarginLoss is ``[model(anchor), model(positive), model(negative)]``, CTCLoss is
``[permute(log_softmax(output, 1), 2, 0, 1), target, input_lengths, target_lengths]``.  The
runner (nnspec.run.losses) evaluates them; this module imports no torch, so ``validate
--no-shapes`` checks them too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from nnspec.catalogue.losses import loss_info
from nnspec.errors import did_you_mean

# The functions loss.inputs may call -> their documentation (nnspec.run.losses runs them).
FUNCTIONS: dict[str, str] = {
    "log_softmax": "log_softmax(x, dim=-1)",
    "softmax": "softmax(x, dim=-1)",
    "sigmoid": "sigmoid(x)",
    "exp": "exp(x)",
    "softplus": "softplus(x)",
    "permute": "permute(x, dims...)",
    "squeeze": "squeeze(x, dim=-1)",
    "column": "column(x, i): x[:, i]",
    "distance": "distance(a, b): Euclidean distance per sample",
}

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>-?[0-9]+)|(?P<p>[(),]))")

Problem = tuple[tuple[str | int, ...], str, str | None]  # (path inside loss, message, hint)


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

    def calls(self) -> set[str]:
        """Every function this expression calls, ``model`` included."""
        names = {self.name} if self.call else set()
        for a in self.args:
            if isinstance(a, Expr):
                names |= a.calls()
        return names


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


def default_inputs(name: str) -> list[str]:
    """Where the loss's arguments come from when ``loss.inputs`` is left out."""
    return list(loss_info(name).sources)


def input_problems(name: str, texts: Sequence[str] | None) -> list[Problem]:
    """What is wrong with a loss's inputs (their number, each one's text): validate's and
    train's check.  ``name`` must be a catalogue loss."""
    info = loss_info(name)
    texts = list(info.sources) if texts is None else list(texts)
    if len(texts) != len(info.inputs):
        return [(("inputs",), f"{name} takes {len(info.inputs)} inputs "
                 f"({', '.join(info.inputs)}), found {len(texts)}",
                 f"one entry per argument; by default [{', '.join(info.sources)}]")]
    found: list[Problem] = []
    for i, text in enumerate(texts):
        try:
            expr = parse(text)
        except ValueError as exc:
            found.append((("inputs", i), str(exc), None))
            continue
        for call in sorted(expr.calls()):
            if call != "model" and call not in FUNCTIONS:
                found.append((("inputs", i), f"unknown function '{call}'",
                              did_you_mean(call, [*FUNCTIONS, "model"])))
                break
    return found


def parse_inputs(name: str, texts: Sequence[str] | None) -> tuple[Expr, ...]:
    """The parsed inputs (default or written) of a loss whose input_problems are none."""
    return tuple(parse(t) for t in (loss_info(name).sources if texts is None else texts))
