"""Input transforms (torchvision.transforms.v2, by catalogue name) and target encodings.

Input transforms that draw nothing at random are applied once to a whole in-memory dataset, as
one batched call, so a resident dataset costs nothing per step; a pipeline with a random
transform runs per sample, as augmentation must.  Target encodings are nnspec's own small table
(one_hot, multi_hot, label_list, signed, smooth, float): vectorised functions over targets,
because the losses that need them (BCE, SoftMargin, MultiLabel*, KLDiv) want targets shaped in
ways a labelled dataset does not store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from nnspec.catalogue import section
from nnspec.errors import Problem, SpecError, SpecPath, did_you_mean
from nnspec.spec import Named

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16, "uint8": torch.uint8, "int64": torch.int64,
          "int32": torch.int32, "long": torch.int64, "bool": torch.bool}

# Transforms that draw nothing at random: safe to apply once to a whole batch of images.
STATIC = frozenset({"ToImage", "ToDtype", "ConvertImageDtype", "Normalize", "Resize",
                    "CenterCrop", "Pad", "Grayscale", "RGB", "Identity", "ToPureTensor",
                    "PILToTensor", "ToTensor", "LinearTransformation"})


def _problem(named: Named, path: SpecPath, message: str, hint: str | None = None) -> SpecError:
    return SpecError([Problem(named.location, path, message, hint)])


def _convert(value: Any, key: str) -> Any:
    if key == "dtype" and isinstance(value, str):
        return DTYPES.get(value, value)
    return value


def input_transform(items: Sequence[Named], path: SpecPath) -> Callable[[Any], Any] | None:
    """A v2.Compose of the named transforms (names checked against the catalogue first)."""
    if not items:
        return None
    from torchvision.transforms import v2

    catalogue = section("transform")
    steps = []
    for i, named in enumerate(items):
        if named.name not in catalogue:
            raise _problem(named, (*path, i), f"unknown transform '{named.name}'",
                           did_you_mean(named.name, catalogue))
        args = {k: _convert(v, k) for k, v in named.args.items()}
        if named.name == "ToDtype" and "dtype" not in args:
            args["dtype"] = torch.float32
        try:
            steps.append(getattr(v2, named.name)(**args))
        except (TypeError, ValueError) as exc:
            raise _problem(named, (*path, i, named.name), str(exc)) from None
    return _Plain(v2.Compose(steps))


class _Plain:
    """Run a v2 pipeline and hand back a plain tensor (no tv_tensors subclass downstream)."""

    def __init__(self, compose: Callable[[Any], Any]) -> None:
        self.compose = compose

    def __call__(self, x: Any) -> Any:
        out = self.compose(x)
        return out.as_subclass(Tensor) if isinstance(out, Tensor) else out

    def __repr__(self) -> str:
        return repr(self.compose)


def is_static(items: Sequence[Named]) -> bool:
    return all(n.name in STATIC for n in items)


# ---- target encodings -------------------------------------------------------------------------

def _one_hot(y: Tensor, num_classes: int) -> Tensor:
    return F.one_hot(y.long(), num_classes).float()


def _multi_hot(y: Tensor, num_classes: int) -> Tensor:
    """Label lists padded with -1 (or single labels) -> 0/1 vectors over the classes."""
    labels = y.long() if y.dim() > 1 else y.long()[:, None]
    hot = torch.zeros(len(labels), num_classes + 1).scatter_(1, labels.clamp(-1) % (
        num_classes + 1), 1.0)
    return hot[:, :num_classes]


def _label_list(y: Tensor, num_classes: int) -> Tensor:
    """MultiLabelMarginLoss's target: each sample's distinct labels first, then -1 padding."""
    hot = _multi_hot(y, num_classes).bool()
    order = torch.arange(num_classes).expand_as(hot)
    keyed = torch.where(hot, order, num_classes + order)  # present labels sort first
    ranked = keyed.sort(1).values
    return torch.where(ranked < num_classes, ranked, -1)


def _smooth(y: Tensor, num_classes: int, smoothing: float = 0.1) -> Tensor:
    """A label as a distribution: 1 - smoothing on it, the rest spread evenly (KLDivLoss)."""
    return _one_hot(y, num_classes) * (1 - smoothing) + smoothing / num_classes


TARGET_TRANSFORMS: dict[str, tuple[Callable[..., Tensor], dict[str, Any], str]] = {
    "one_hot": (_one_hot, {"num_classes": {"type": "integer", "minimum": 1}},
                "Class index -> one-hot float vector."),
    "multi_hot": (_multi_hot, {"num_classes": {"type": "integer", "minimum": 1}},
                  "Label list (padded with -1) -> 0/1 vector (MultiLabelSoftMarginLoss)."),
    "label_list": (_label_list, {"num_classes": {"type": "integer", "minimum": 1}},
                   "Label list -> distinct labels then -1 padding (MultiLabelMarginLoss)."),
    "signed": (lambda y: y.float() * 2 - 1, {}, "0/1 labels -> -1/+1 (SoftMarginLoss)."),
    "smooth": (_smooth, {"num_classes": {"type": "integer", "minimum": 1},
                         "smoothing": {"type": "number", "minimum": 0, "maximum": 1}},
               "Class index -> smoothed distribution (KLDivLoss)."),
    "float": (lambda y: y.float(), {}, "Targets as float32."),
}


def target_transform(items: Sequence[Named], path: SpecPath) -> Callable[[Tensor], Tensor] | None:
    """Compose nnspec target encodings; each works on a whole batch of targets at once."""
    if not items:
        return None
    fns = []
    for i, named in enumerate(items):
        entry = TARGET_TRANSFORMS.get(named.name)
        if entry is None:
            raise _problem(named, (*path, i), f"unknown target transform '{named.name}'",
                           did_you_mean(named.name, TARGET_TRANSFORMS))
        fn, params, _doc = entry
        unknown = set(named.args) - set(params)
        if unknown:
            raise _problem(named, (*path, i, named.name), f"unknown argument(s) "
                           f"{sorted(unknown)}; {named.name} takes {sorted(params) or 'none'}")
        missing = {"num_classes"} & set(params) - set(named.args)
        if missing:
            raise _problem(named, (*path, i, named.name), "num_classes is required")
        fns.append((fn, dict(named.args)))
    return lambda y: _chain(fns, y)


def _chain(fns: Sequence[tuple[Callable[..., Tensor], Mapping[str, Any]]], y: Tensor) -> Tensor:
    """Targets arrive batched (a whole table, or a collated batch): first dimension = samples."""
    for fn, args in fns:
        y = fn(y, **args)
    return y
