"""What nnspec knows about each loss beyond its constructor's arguments (torch-free).

torch.nn's losses come from ``torch_api.json`` (their arguments and the positional arguments of
their ``forward``, generated); ``NOTES`` adds what a signature cannot say, for the few losses
that need it.  A loss that is a function rather than an nn.Module (``torchvision.ops``) is a
``FUNCTION_LOSSES`` entry here, whole.  The schema, the checker (number of ``loss.inputs``),
the runner (how it is built, how targets are adapted), the accuracy metric and the CUDA-graph
decision all read ``loss_info``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from nnspec.catalogue import torch_api

OUTPUT_TARGET = ("output", "target")

# How accuracy reads an output against 0/1 targets: logits (> 0), probabilities (> 0.5), or
# scores against -1/+1 targets (> 0 both); "values": the loss fits real values (regression,
# counts, distributions), where accuracy and topK compare nothing: they are refused.
Scale = Literal["logits", "probabilities", "signed", "values"]


@dataclass(frozen=True)
class LossInfo:
    """One loss: how it is built, what it takes, and how the runner treats its targets."""

    name: str
    target: str  # "module:attribute" that builds it
    inputs: tuple[str, ...]  # the positional arguments of its forward (or function)
    sources: tuple[str, ...] = OUTPUT_TARGET  # default loss.inputs
    elementwise: bool = False  # targets reshaped to the output's shape, cast to its dtype
    reshape_targets: bool = True  # elementwise: reshape a target with as many elements
    scale: Scale = "logits"
    host_reads: str | None = None  # why a step with it cannot be captured as a CUDA graph
    callable_args: frozenset[str] = frozenset()  # Python functions a spec cannot state
    function: bool = False  # a function called with its keyword arguments, not a module


@dataclass(frozen=True)
class _Note:
    sources: tuple[str, ...] = OUTPUT_TARGET
    elementwise: bool = False
    reshape_targets: bool = True
    scale: Scale = "logits"
    host_reads: str | None = None
    callable_args: frozenset[str] = frozenset()


_MODEL_PAIR = ("model(input1)", "model(input2)", "target")
_TRIPLET = ("model(anchor)", "model(positive)", "model(negative)")
_ELEMENTWISE = _Note(elementwise=True)
_VALUES = _Note(elementwise=True, scale="values")

# The torch.nn losses that are not plain (output, target) classification losses.
NOTES: dict[str, _Note] = {
    "TripletMarginLoss": _Note(_TRIPLET),
    "TripletMarginWithDistanceLoss": _Note(_TRIPLET,
                                           callable_args=frozenset({"distance_function"})),
    "MarginRankingLoss": _Note(_MODEL_PAIR, elementwise=True),
    "CosineEmbeddingLoss": _Note(_MODEL_PAIR, elementwise=True, reshape_targets=False),
    "HingeEmbeddingLoss": _Note(("distance(model(input1), model(input2))", "target"),
                                elementwise=True, scale="signed"),
    "CTCLoss": _Note(("output", "target", "input_lengths", "target_lengths"),
                     host_reads="CTCLoss reads sequence lengths on the host"),
    "GaussianNLLLoss": _Note(("column(output, 0)", "target", "softplus(column(output, 1))"),
                             elementwise=True, scale="values"),
    "BCELoss": _Note(elementwise=True, scale="probabilities"),
    "SoftMarginLoss": _Note(elementwise=True, scale="signed"),
    **dict.fromkeys(("BCEWithLogitsLoss", "MultiLabelSoftMarginLoss"), _ELEMENTWISE),
    **dict.fromkeys(("L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "PoissonNLLLoss",
                     "KLDivLoss"), _VALUES),
}


@dataclass(frozen=True)
class LossFunction:
    """A loss that is a function of (inputs..., **arguments), whole: doc, arguments, inputs."""

    target: str
    doc: str
    params: Mapping[str, dict[str, Any]]  # name -> {"schema": ..., "default": ...}
    inputs: tuple[str, ...]
    note: _Note = field(default_factory=_Note)


# Losses that are functions (torchvision.ops); each is one entry.
FUNCTION_LOSSES: dict[str, LossFunction] = {
    "sigmoid_focal_loss": LossFunction(
        "torchvision.ops:sigmoid_focal_loss",
        "RetinaNet's focal loss (torchvision.ops): binary cross-entropy of logits against 0/1 "
        "targets of the output's shape, scaled by (1 - p_t) ** gamma so that easy examples "
        "count less, and weighted alpha for positives (0 <= alpha <= 1; -1: no weighting). "
        "reduction: mean (nnspec's default; torchvision's is none) or sum.",
        {"alpha": {"schema": {"type": "number"}, "default": 0.25},
         "gamma": {"schema": {"type": "number", "minimum": 0}, "default": 2},
         "reduction": {"schema": {"enum": ["mean", "sum"]}, "default": "mean"}},
        ("inputs", "targets"), _Note(elementwise=True)),
}


def function_entries() -> dict[str, dict[str, Any]]:
    """The function losses in torch_api.json's form ({doc, params}), for the catalogue."""
    return {n: {"doc": f.doc, "params": dict(f.params)} for n, f in FUNCTION_LOSSES.items()}


@cache
def loss_info(name: str) -> LossInfo:
    """Everything nnspec knows about the loss ``name`` (KeyError for an unknown name)."""
    if name in FUNCTION_LOSSES:
        f = FUNCTION_LOSSES[name]
        return LossInfo(name, f.target, f.inputs, **vars(f.note), function=True)
    entry = torch_api()["losses"][name]
    note = NOTES.get(name, _Note())
    return LossInfo(name, f"torch.nn:{name}", tuple(entry["inputs"]), **vars(note))
