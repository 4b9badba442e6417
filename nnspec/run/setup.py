"""Everything a run needs, built from a spec in a fixed order so that a seed means one run.

Order (the oracle test and any hand-written comparison follow it): load the data (its own seeded
generators, no global random state); ``torch.manual_seed(train.seed)``; build the model on the CPU
(PyTorch's default initialisation draws from that seed in module order); apply the init rules in
order; move the model to the device; build the loss, optimizer and scheduler.  Epoch ``e`` visits
training samples in ``torch.randperm(n, generator=Generator().manual_seed(seed * 1000003 + e))``
order (see ``batches.epoch_order``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from nnspec.errors import Location, Problem, RunError, SpecError, format_path
from nnspec.lang.spec import DEVICE_HINT, Spec, metric_problems, train_problems
from nnspec.run import choices as auto
from nnspec.run import finetune, fsdp, weights
from nnspec.run import init as init_rules
from nnspec.run.batches import Batches
from nnspec.run.data import input_dtype, load_splits, split_names
from nnspec.run.distributed import Dist
from nnspec.run.losses import Evaluator, LossPlan, build_loss
from nnspec.run.metrics import higher_is_better
from nnspec.run.optim import Warmup, build_optimizer, build_scheduler


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA, then MPS, then CPU; a named device that is absent is a run error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise RunError(f"unknown device {name!r}", hint=DEVICE_HINT) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError("device cuda requested but CUDA is not available", hint="use --device cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # tensors report an index
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RunError("device mps requested but MPS is not available", hint="use --device cpu")
    return device


@dataclass
class Parts:
    """The built pieces of a run."""

    spec: Spec
    device: torch.device
    model: nn.Module
    loss: LossPlan
    evaluator: Evaluator
    optimizer: Optimizer
    scheduler: Any
    warmup: Warmup
    batches: dict[str, Batches]
    scaler: Any
    autocast: Callable[[], Any]
    init_matches: list[init_rules.Match]
    monitor: tuple[str, str]
    maximize: bool
    dist: Dist = dataclasses.field(default_factory=Dist)  # this process's rank (distributed.py)
    eval_model: nn.Module | None = None  # evaluation's module when the steps run a DDP wrapper
    # DDP's no_sync: backward without the all-reduce, for all but the last accumulated batch
    no_sync: Callable[[], Any] = contextlib.nullcontext
    tuning: finetune.Tuning | None = None  # weights loaded, freezing, parameter groups
    choices: auto.Choices | None = None  # what train's auto settings became (spec has them)


def monitor_of(spec: Spec, splits: list[str]) -> tuple[tuple[str, str], bool]:
    """(split, metric) of train.monitor, and whether higher is better."""
    split, _, metric = spec.train.monitor.partition(".")  # checked by _check_train
    if split == "val" and "val" not in splits:
        split = "train"  # no validation split: the training loss is all there is
    mode = spec.train.mode
    return (split, metric), (higher_is_better(metric) if mode == "auto" else mode == "max")


def _check_train(spec: Spec) -> None:
    """validate's check of metrics, monitor and device, for a Spec built in code."""
    found = [*train_problems(spec.train),
             *(metric_problems(spec.train, spec.loss.name) if spec.loss is not None else [])]
    problems = [Problem(Location(spec.file), path, message, hint)
                for path, message, hint in found]
    if problems:
        raise SpecError(problems)


def _precision(spec: Spec, device: torch.device) -> tuple[Any, Callable[[], Any]]:
    precision = str(spec.train.precision)
    if precision == "32":
        return None, contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if precision == "16-mixed" else None
    return scaler, lambda: torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def flushing_denormals(spec: Spec, device: torch.device) -> Iterator[None]:
    """train.flush_denormal on the CPU, for the duration of a run (the flag is process-wide)."""
    if not (spec.train.flush_denormal and device.type == "cpu"):
        yield
        return
    if not torch.set_flush_denormal(True):
        raise SpecError.at(Location(spec.file), ("train", "flush_denormal"),
                           "this CPU cannot flush denormals (it lacks SSE3)",
                           "set train.flush_denormal: false")
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _deterministic(on: bool) -> None:
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def _compile_model(spec: Spec) -> nn.Module:
    from nnspec import api

    model: nn.Module = api.compile(spec)
    return model


def build(spec: Spec, device_name: str | None = None, model: nn.Module | None = None,
          splits: list[str] | None = None, dist: Dist | None = None, *,
          start_weights: bool = False) -> Parts:
    """Build every part of the run (see the module docstring for the order).

    ``start_weights``: read the spec's weights file (a new training run; evaluation and resume
    take their weights from a checkpoint instead).
    """
    if spec.data is None or spec.loss is None:
        missing = "data" if spec.data is None else "loss"
        raise SpecError.at(Location(spec.file), (missing,),
                           f"training needs a {missing} section")
    _check_train(spec)
    init_rules.check_rules(spec.init)
    loss = build_loss(spec.loss)
    device = resolve_device(device_name or spec.train.device)
    dist = dist or Dist()
    # a wrong path fails before the data; under FSDP rank 0 alone reads it (_sharded_model)
    source = weights.read(spec) if start_weights and not dist.sharded else None
    _deterministic(spec.train.deterministic)
    names = splits or [s for s in split_names(spec.data) if s != "test"]
    model_fields = (loss.model_fields - {"output"}) | set(input_fields(spec))
    data = load_splits(spec, names, model_fields)
    batches = {n: Batches(s, device, seed=spec.train.seed) for n, s in data.items()}
    batches = dist.shard(batches)  # one rank's share of each epoch (a no-op on one process)
    _check_not_empty(spec, batches)
    _check_shares(batches, dist)
    _check_fields(spec, loss, data["train" if "train" in data else names[0]].source)
    for split in data.values():
        _check_shapes(spec, split.source, model_fields)
    torch.manual_seed(spec.train.seed)
    if dist.sharded:
        model, matches, tuning = _sharded_model(spec, model, dist, device, start_weights)
    else:
        model = model if model is not None else _compile_model(spec)
        matches = init_rules.apply(model, spec.init)
        tuning = finetune.prepare(model, spec, source)  # the file's weights over the init rules'
        model.to(device)
    steps = -(-len(batches["train"]) // spec.train.accumulate) if "train" in batches else 1
    chosen = auto.choose(spec.train, _facts(spec, model, device,
                                            steps * spec.train.epochs if "train" in batches
                                            else 0, dist))
    spec = _with_choices(spec, chosen)
    if chosen.memory_format.value == "channels_last":
        model.to(memory_format=torch.channels_last)
    # DDP after the init rules, before the optimizer; it registers staged-frozen parameters too
    stepped = dist.wrap(model, device, find_unused=tuning.staged)
    tuning.begin_epoch(0)
    optimizer = build_optimizer(spec.optimizer, tuning.optimizer_params(model))
    scheduler = build_scheduler(spec.scheduler, optimizer, spec.train.epochs, steps)
    scaler, autocast = _precision(spec, device)
    monitor, maximize = monitor_of(spec, list(batches))
    dtype = input_dtype(spec)
    # torch.compile wraps the module for the steps; checkpoints keep the plain module's keys.
    runner = _compiled(stepped) if spec.train.compile else stepped
    evaluator = Evaluator(runner, input_fields(spec), dtype,
                          channels_last=chosen.memory_format.value == "channels_last")
    plain: nn.Module | None = None
    if stepped is not model:  # evaluation skips DDP: no collective per batch of an uneven shard
        plain = _compiled(model) if spec.train.compile else model
    warmup = Warmup(optimizer, spec.scheduler.warmup_steps if spec.scheduler else 0)
    no_sync = fsdp.gradient_sync_paused(model) if dist.sharded else \
        getattr(stepped, "no_sync", contextlib.nullcontext)
    return Parts(spec, device, model, loss, evaluator, optimizer, scheduler, warmup, batches,
                 scaler, autocast, matches, monitor, maximize, dist, plain, no_sync, tuning,
                 chosen)


def _facts(spec: Spec, model: nn.Module, device: torch.device, steps: int,
           dist: Dist) -> auto.Facts:
    """What ``choices.choose`` needs to know about this run (under FSDP: never compiled)."""
    cuda = device.type == "cuda"
    images = any(len(i.shape) == 3 for i in spec.inputs.values()) and any(
        isinstance(m, nn.Conv2d) for m in model.modules())
    compiler = False
    if cuda and not dist.sharded:
        from torch.utils._triton import has_triton

        compiler = has_triton()
    return auto.Facts(device.type, sum(p.numel() for p in model.parameters()), steps, images,
                      bf16=cuda and torch.cuda.is_bf16_supported(), compiler=compiler)


def _with_choices(spec: Spec, chosen: auto.Choices) -> Spec:
    """The spec with train's auto settings replaced by what they became."""
    train = spec.train.model_copy(update={
        "precision": chosen.precision.value, "memory_format": chosen.memory_format.value,
        "compile": chosen.compile.value})
    return spec.model_copy(update={"train": train})


def _compiled(module: nn.Module) -> nn.Module:
    """``torch.compile(module)``, with inductor's cache kept across runs (see compile_cache)."""
    compile_cache()
    return torch.compile(module)  # type: ignore[return-value]


def compile_cache() -> Path:
    """Inductor's cache folder: $TORCHINDUCTOR_CACHE_DIR where set, else nnspec's folder in the
    user's cache ($XDG_CACHE_HOME or ~/.cache), which outlives /tmp (inductor's default), so a
    second run of a spec reuses the first one's kernels."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if given and os.path.abspath(given) != os.path.abspath(default_cache_dir()):
        return Path(given)  # the user's (inductor writes its /tmp default there on import)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "nnspec" / "inductor"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return folder


def _sharded_model(spec: Spec, given: nn.Module | None, dist: Dist, device: torch.device,
                   start_weights: bool) -> \
        tuple[nn.Module, list[init_rules.Match], finetune.Tuning]:
    """The model sharded with FSDP2, starting from the weights a one-process run starts from
    (fsdp.py): rank 0 applies the init rules and reads the weights file, then sends the
    values (a failure there ends every rank)."""
    def prepare(full: nn.Module) -> weights.Report | None:
        init_rules.apply(full, spec.init)
        source = weights.read(spec) if start_weights and dist.writer else None
        if source is not None and spec.weights is not None:
            return weights.apply(full, source, spec.weights)
        return None

    model, report = fsdp.build(lambda: given if given is not None else _compile_model(spec),
                               dist, device, prepare)
    tuning = finetune.prepare(model, spec, None)  # freezing and groups, on the shards
    tuning.report = report
    return model, init_rules.explain(model, spec.init), tuning


def _check_shares(batches: dict[str, Batches], dist: Dist) -> None:
    """Under FSDP every rank runs every evaluation forward, so each needs a sample of each split."""
    for name, b in batches.items():
        total = len(b.split.source)
        if dist.sharded and total < dist.world:
            raise RunError(f"the {name} split has {total} sample(s), fewer than the "
                           f"{dist.world} processes that share it under FSDP",
                           hint="use more data (data.val_split) or fewer processes")


def _check_not_empty(spec: Spec, batches: dict[str, Batches]) -> None:
    """A training split with no batch would "train" without a step and report a nan loss."""
    train = batches.get("train")
    if train is None or len(train) > 0:
        return
    n, size = train.samples, train.plan.batch_size
    if n == 0:  # val_split cannot empty it (load_splits checks that): the data itself is empty
        problem = Problem(spec.locate("data", "dataset"), ("data", "dataset"),
                          "the training split holds no samples",
                          "check the dataset's files, or data.train.range")
    else:
        problem = Problem(spec.locate("data", "drop_last"), ("data", "drop_last"),
                          f"drop_last drops the only batch: {n} training samples are fewer "
                          f"than the batch size {size}",
                          "lower data.batch_size or set data.drop_last: false")
    raise SpecError([problem])


def input_fields(spec: Spec) -> list[str]:
    """Batch fields ``output`` feeds the model: ``input`` for a one-input spec, else the names."""
    return ["input"] if len(spec.inputs) <= 1 else list(spec.inputs)


def _check_fields(spec: Spec, loss: LossPlan, source: Any) -> None:
    """Every field the loss reads must exist in the data: a located error, not a KeyError."""
    fields = set(source.fields) if hasattr(source, "fields") else {"input", "target"}
    assert spec.loss is not None
    # written inputs: each entry at its own place; the loss's defaults: one problem at the loss
    groups = [((i,), [e]) for i, e in enumerate(loss.inputs)] if spec.loss.inputs is not None \
        else [((), list(loss.inputs))]
    problems = []
    for at, exprs in groups:
        used = set().union(*(e.fields() for e in exprs))
        wanted = (used - {"output"}) | (set(input_fields(spec)) if "output" in used else set())
        missing = sorted(wanted - fields)
        if missing:
            problems.append(Problem(spec.loss.locate("inputs", *at) if at else spec.loss.location,
                                    ("loss", "inputs", *at),
                                    f"the data has no field(s) {missing}; it has {sorted(fields)}",
                                    _input_hint(spec, missing)))
    if problems:
        raise SpecError(problems)


def _check_shapes(spec: Spec, source: Any, fields: set[str]) -> None:
    """Samples the model reads must have the shape the spec's input declares."""
    if not hasattr(source, "fields"):
        return
    one = next(iter(spec.inputs.values())) if len(spec.inputs) == 1 else None
    for field in sorted(fields & set(source.fields)):
        declared = spec.inputs.get(field, one)
        got = list(source.fields[field].shape[1:])
        if declared is not None and got != list(declared.shape):
            at = ("input",) if one is not None else ("input", field)
            raise SpecError.at(spec.locate(*at), at, f"the data's {field} samples have shape "
                               f"{got}, the spec's input is {list(declared.shape)}",
                               f"set {format_path(at)}: {got}, or reshape the data with "
                               "transforms")


def _input_hint(spec: Spec, missing: list[str]) -> str:
    if "input" in missing:
        return "this dataset gives pairs or triplets: name its fields, e.g. model(anchor)"
    return "state where each loss argument comes from in loss.inputs"
