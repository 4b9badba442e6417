"""Input and target transforms (torchvision.transforms.v2, by catalogue name), target encodings.

Input transforms that draw nothing at random are applied once to a whole in-memory dataset, as
one batched call, so a resident dataset costs nothing per step; a pipeline with a random
transform runs per sample, as augmentation must.  Target encodings are nnspec's own small table
(``data.target_encoding``: one_hot, multi_hot, label_list, signed, smooth, float): vectorised
functions over targets,
because the losses that need them (BCE, SoftMargin, MultiLabel*, KLDiv) want targets shaped in
ways a labelled dataset does not store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from nnspec.catalogue import torch_dtype
from nnspec.errors import Location, SpecError, SpecPath
from nnspec.lang.spec import Named, TargetEncoding
from nnspec.run.instantiate import construct, entry

# Transforms that draw nothing at random: safe to apply once to a whole batch of images.
STATIC = frozenset({"ToImage", "ToDtype", "ConvertImageDtype", "Normalize", "Resize",
                    "CenterCrop", "Pad", "Grayscale", "RGB", "Identity", "ToPureTensor",
                    "PILToTensor", "ToTensor", "LinearTransformation"})


def _convert(value: Any, key: str) -> Any:
    if key == "dtype" and isinstance(value, str):
        try:
            return torch_dtype(value)
        except ValueError:
            return value  # torchvision says what it takes
    return value


def input_transform(items: Sequence[Named], path: SpecPath) -> Callable[[Any], Any] | None:
    """A v2.Compose of the named transforms (names checked against the catalogue first).

    The everyday tensor pipeline (ToImage, ToDtype, Normalize) runs as nnspec's own tensor code
    until something else than a tensor arrives: importing torchvision's transforms costs about a
    second of start-up, more than a small run's training.  Tests hold it equal to torchvision's.
    """
    if not items:
        return None
    for i, named in enumerate(items):
        entry("transform", named.name, named.location, (*path, i))
    if all(_native_ok(n) for n in items):
        return _Native(items, path)
    return _torchvision(items, path)


def _torchvision(items: Sequence[Named], path: SpecPath) -> Callable[[Any], Any]:
    from torchvision.transforms import v2

    steps = []
    for i, named in enumerate(items):  # names already checked against the catalogue
        args = {k: _convert(v, k) for k, v in named.args.items()}
        if named.name == "ToDtype" and "dtype" not in args:
            args["dtype"] = torch.float32
        cls: Callable[..., Any] = getattr(v2, named.name)
        steps.append(construct(partial(_keywords, cls), args, named, (*path, i, named.name),
                               blame=False))
    return _Plain(v2.Compose(steps))


def _keywords(cls: Callable[..., Any], args: dict[str, Any]) -> Any:
    return cls(**args)


NATIVE = frozenset({"ToImage", "ToDtype", "Normalize"})


def _native_ok(named: Named) -> bool:
    if named.name not in NATIVE:
        return False
    if named.name == "Normalize":
        return not named.args.get("inplace", False)
    return True


class _Native:
    """ToImage, ToDtype and Normalize on tensors, as torchvision's v2 computes them."""

    def __init__(self, items: Sequence[Named], path: SpecPath) -> None:
        self.items, self.path = list(items), path
        self.fallback: Callable[[Any], Any] | None = None

    def __call__(self, x: Any) -> Any:
        if not isinstance(x, Tensor) or x.dim() < 2:
            if self.fallback is None:
                self.fallback = _torchvision(self.items, self.path)
            return self.fallback(x)
        for named in self.items:
            x = self._step(named, x)
        return x

    def _step(self, named: Named, x: Tensor) -> Tensor:
        args = named.args
        if named.name == "ToImage":
            return x.unsqueeze(0) if x.dim() == 2 else x
        if named.name == "ToDtype":
            dtype = _convert(args.get("dtype", "float32"), "dtype")
            if args.get("scale") and not x.is_floating_point() and dtype.is_floating_point:
                return x.to(dtype).mul_(1.0 / torch.iinfo(x.dtype).max)  # torchvision's bits
            if args.get("scale") and x.dtype != dtype and not (
                    x.is_floating_point() and dtype.is_floating_point):
                return _torchvision([named], self.path)(x)  # integer rescaling: torchvision's
            return x.to(dtype)
        if not x.is_floating_point() or 0 in list(args["std"]):
            return _torchvision([named], self.path)(x)  # torchvision's own error message
        mean = torch.as_tensor(args["mean"], dtype=x.dtype).view(-1, 1, 1)
        std = torch.as_tensor(args["std"], dtype=x.dtype).view(-1, 1, 1)
        return (x - mean) / std

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(n.name for n in self.items) + ")"


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


ENCODINGS: dict[str, Callable[..., Tensor]] = {
    "one_hot": _one_hot, "multi_hot": _multi_hot, "label_list": _label_list, "smooth": _smooth,
    "signed": lambda y: y.float() * 2 - 1, "float": lambda y: y.float(),
}
NEEDS_CLASSES = frozenset({"one_hot", "multi_hot", "label_list", "smooth"})


def target_encoder(cfg: TargetEncoding | None) -> Callable[[Tensor], Tensor] | None:
    """The target encoding as a function over a batch of targets (first dimension = samples)."""
    if cfg is None:
        return None
    if cfg.kind in NEEDS_CLASSES and cfg.num_classes is None:
        raise SpecError.at(Location(), ("data", "target_encoding", "num_classes"),
                           f"{cfg.kind} needs num_classes")
    fn = ENCODINGS[cfg.kind]
    if cfg.kind == "smooth":
        return lambda y: _smooth(y, cfg.num_classes or 0, cfg.smoothing)
    if cfg.kind in NEEDS_CLASSES:
        return lambda y: fn(y, cfg.num_classes)
    return fn
