"""The data section -> one ``Split`` per train / val / test, transforms applied where they can be.

A split's dataset is its own ``dataset:`` or the section's; train and val read the training part
and test the test part.  ``range: [start, stop)`` slices a split; ``val_split`` carves a fixed
fraction from training with a fixed seed (so changing ``train.seed`` never moves samples between
train and val).  Static input transforms and target encodings are applied once to in-memory
tables; anything random is left to run per sample.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from nnspec.catalogue import torch_dtype
from nnspec.catalogue.datasets import has_test_part
from nnspec.errors import Location, RunError, SpecError
from nnspec.lang.spec import Data, DataSplit, Spec, own_samples, val_count, val_split_problem
from nnspec.run.arrange import arrange
from nnspec.run.datasets import Context, build_source
from nnspec.run.metadata import describe
from nnspec.run.plan import SplitPlan, split_plan
from nnspec.run.table import Source, Table, take
from nnspec.run.transforms import input_transform, is_static, target_encoder

VAL_SPLIT_SEED = 0x5EED  # fixed: the validation carve-out never depends on train.seed
_CHUNK = 4096  # samples per batched transform call: bounds the temporary memory


@dataclass(frozen=True)
class Split:
    """One split ready to batch."""

    name: str
    source: Source
    plan: SplitPlan
    sample_transform: Callable[[Any], Any] | None = None  # per sample (random or PIL)
    target_transform: Callable[[Tensor], Tensor] | None = None  # per batch, loader path only
    model_fields: frozenset[str] = frozenset({"input"})
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # the training part's
    stand_in: str | None = None  # why data.fallback's dataset is used, and what it is
    random: bool = False  # sample_transform draws at random


def split_names(data: Data) -> list[str]:
    """The splits a data section defines (train always)."""
    names = ["train"]
    if data.val is not None or data.val_split > 0:
        names.append("val")
    if data.test is not None or _dataset_has_test(data):
        names.append("test")
    return names


def _dataset_has_test(data: Data) -> bool:
    return has_test_part(data.dataset.name)


def load_splits(spec: Spec, names: Collection[str],
                model_fields: Collection[str] = ("input",)) -> dict[str, Split]:
    """Build the named splits of ``spec.data`` (train/val share one load of the training part),
    or of ``data.fallback`` where the dataset cannot be found (each split says so)."""
    data = spec.data
    if data is None:
        raise SpecError.at(_loc(spec), ("data",), "this spec has no data section")
    try:
        return _load_splits(spec, data, names, model_fields)
    except RunError as exc:
        if data.fallback is None:
            raise
        why = f"{exc.message}; training on data.fallback: {data.fallback.note}" + \
            _own_splits(data)
    splits = _load_splits(spec, with_fallback(data), names, model_fields)
    return {k: dataclasses.replace(v, stand_in=why) for k, v in splits.items()}


def _own_splits(data: Data) -> str:
    """`` (its own splits: train range [0, 960], ...)``: what replaces data.train, data.val and
    data.test, which a user shortening a run (data.train.range=...) would otherwise expect to
    apply to the stand-in too."""
    fb = data.fallback
    assert fb is not None
    own = [k for k in ("train", "val", "test") if getattr(fb, k) is not None]
    if not own:
        return ""
    shown = [f"{k} range {getattr(fb, k).range}" if getattr(fb, k).range else k for k in own]
    one = len(own) == 1
    return (f" (its own {', '.join(shown)} {'replaces' if one else 'replace'} "
            f"data.{', data.'.join(own)}: change {'it' if one else 'them'} under data.fallback)")


def with_fallback(data: Data) -> Data:
    """The data section with its fallback's dataset, transforms and splits in place."""
    fb = data.fallback
    assert fb is not None
    return data.model_copy(update={
        "dataset": fb.dataset, "fallback": None,
        **{k: getattr(fb, k) for k in ("transforms", "train", "val", "test")
           if getattr(fb, k) is not None}})


def _load_splits(spec: Spec, data: Data, names: Collection[str],
                 model_fields: Collection[str]) -> dict[str, Split]:
    cache: dict[str, Source] = {}
    sources: dict[str, Source] = {}
    if "train" in names or "val" in names:
        sources["train"] = _base(data, "train", cache, spec.file)
        raw = sources["train"]
        if own_samples(data.val):
            sources["val"] = _base(data, "val", cache, spec.file)
        elif data.val_split > 0:
            _check_carve(spec, len(sources["train"]))
            sources["train"], sources["val"] = _carve(sources["train"], data.val_split)
        elif data.val is not None:
            raise SpecError.at(_where(data.dataset.location, spec.file), ("data", "val"),
                               "a val split without a range, a dataset or val_split "
                               "would repeat the training samples",
                               "give data.val.range, data.val.dataset or data.val_split")
    if "test" in names:
        sources["test"] = _base(data, "test", cache, spec.file)
    dtype = input_dtype(spec)
    stats = _stats(sources.get("train"), data) if "train" in sources else None
    splits = {name: _finish(name, sources[name], data, dtype, frozenset(model_fields), stats,
                            _loc(spec)) for name in names if name in sources}
    if "train" in splits:
        splits["train"] = dataclasses.replace(splits["train"], meta=describe(raw, data, stats))
    return splits


def _loc(spec: Spec) -> Location:
    return Location(spec.file)


def _where(location: Location, file: str) -> Location:
    """A named thing's own location, else at least the spec's file."""
    return location if location.line else Location(file)


def _split_cfg(data: Data, name: str) -> DataSplit | None:
    cfg: DataSplit | None = getattr(data, name)
    return cfg


def _base(data: Data, name: str, cache: dict[str, Source], file: str) -> Source:
    cfg = _split_cfg(data, name)
    named = cfg.dataset if cfg is not None and cfg.dataset is not None else data.dataset
    own = cfg is not None and cfg.dataset is not None
    path = ("data", name, "dataset") if own else ("data", "dataset")
    partition = "test" if name == "test" else "train"
    if partition == "test" and not own and (cfg is None or cfg.range is None) and (
            not has_test_part(named.name)):
        raise SpecError.at(_where(named.location, file), ("data", "test"),
                           f"{named.name} has no separate test part",
                           "give data.test.range (samples kept out of training) or "
                           "data.test.dataset")
    key = json.dumps([named.name, named.args, partition], sort_keys=True, default=str)
    if key not in cache:
        ctx = Context(partition, data.root, path, _where(named.location, file))
        cache[key] = build_source(named.name, named.args, ctx)
    source = cache[key]
    if cfg is not None and cfg.range is not None:
        source = _range(source, cfg.range, name, _where(cfg.locate("range"), file))
    return source


def _range(source: Source, bounds: Sequence[int], name: str, location: Location) -> Source:
    start, stop = bounds
    if not start < stop <= len(source):
        raise SpecError.at(location, ("data", name, "range"),
                           f"range [{start}, {stop}) does not fit a dataset of "
                           f"{len(source)} samples", "need start < stop <= size")
    if isinstance(source, Table):
        return source.take(slice(start, stop))
    return take(source, torch.arange(start, stop))


def _check_carve(spec: Spec, samples: int) -> None:
    """val_split must leave training samples (validate checks it where the size is known
    without loading; here, before anything else is done with the data, for the rest)."""
    assert spec.data is not None
    problem = val_split_problem(samples, spec.data.val_split)
    if problem:
        raise SpecError.at(spec.locate("data", "val_split"), ("data", "val_split"), *problem)


def _carve(source: Source, fraction: float) -> tuple[Source, Source]:
    n = len(source)
    k = val_count(n, fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    return take(source, perm[k:].sort().values), take(source, perm[:k].sort().values)


def input_dtype(spec: Spec) -> torch.dtype:
    """The model's input element type: the inputs' one dtype, else float32."""
    dtypes = {torch_dtype(i.dtype) for i in spec.inputs.values()}
    return dtypes.pop() if len(dtypes) == 1 else torch.float32


Stats = dict[str, tuple[Tensor, Tensor]]


def _stats(source: Source | None, data: Data) -> Stats | None:
    """Mean and std of the training split's inputs (and target), for ``standardize``."""
    if not (data.standardize or data.standardize_target):
        return None
    if not isinstance(source, Table):
        raise SpecError.at(data.dataset.location, ("data", "standardize"),
                           "standardize needs a dataset held as tensors",
                           "use a Normalize transform for image datasets")
    stats: Stats = {}
    for field, on in (("input", data.standardize), ("target", data.standardize_target)):
        values = source.fields[field]
        if on and values.is_floating_point():
            stats[field] = (values.mean(0), values.std(0).clamp_min(1e-8))
    return stats


def _target_fn(data: Data) -> Callable[[Tensor], Tensor] | None:
    """torchvision target transforms, then the target encoding, over a batch of targets."""
    fns = [f for f in (input_transform(data.target_transforms, ("data", "target_transforms")),
                       target_encoder(data.target_encoding)) if f is not None]
    if not fns:
        return None

    def apply(y: Tensor) -> Tensor:
        for f in fns:
            y = f(y)
        return y
    return apply


def _finish(name: str, source: Source, data: Data, dtype: torch.dtype,
            model_fields: frozenset[str], stats: Stats | None, location: Any) -> Split:
    """Transforms, standardisation, arrangement and target encodings, in that order."""
    cfg = _split_cfg(data, name)
    items = cfg.transforms if cfg is not None and cfg.transforms is not None else data.transforms
    path = ("data", name, "transforms") if cfg is not None and cfg.transforms is not None \
        else ("data", "transforms")
    transform = input_transform(items, path)
    targets = _target_fn(data)
    plan = split_plan(data, name)
    if not isinstance(source, Table) or not is_static(items):
        if data.arrange is not None:
            raise SpecError.at(location, ("data", "arrange"),
                               "arrange needs a dataset held as tensors and transforms "
                               "that draw nothing at random")
        return Split(name, source, plan, transform, targets, model_fields,
                     random=not is_static(items))
    fields = dict(source.fields)
    if transform is not None and len(fields["input"]):
        fields["input"] = torch.cat([transform(p) for p in fields["input"].split(_CHUNK)])
    for field, (mean, std) in (stats or {}).items():
        fields[field] = (fields[field] - mean) / std
    table = Table(fields)
    if data.arrange is not None:
        table = arrange(table, data.arrange, name, location)
    fields = dict(table.fields)
    for field in model_fields & set(fields):
        x = fields[field]
        fields[field] = x.to(dtype) if x.dtype != dtype and dtype.is_floating_point else x
    if targets is not None and "target" in fields:
        fields["target"] = targets(fields["target"])
    return Split(name, Table(fields), plan, None, None, model_fields)
