"""The typed form of a spec (the output of the check pass).

Training sections are pydantic models parsed in strict mode.  Named things (a dataset, a loss, an
optimizer, ...) are written ``Name`` or ``{Name: {args}}`` and parsed into ``Named``.  The model
section is parsed by ``nnspec.lang.model_ast`` into small dataclasses.
Field descriptions here are the
descriptions users see in the JSON Schema and in an editor's hover help.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from nnspec.errors import Location, did_you_mean, format_path

# A reference to a variable (`$width`) or an expression (`${width * 2}`), resolved later.
EXPR_PATTERN = r"^\$([A-Za-z_][A-Za-z0-9_]*|\{[^{}]+\})$"
ExprStr = Annotated[str, Field(pattern=EXPR_PATTERN)]

PosInt = Annotated[int, Field(gt=0)]
# Bounds on counts a spec sets for the run: far above any real use, below what exhausts a machine.
# (batch sizes are not bounded: a batch is a slice of the dataset, never bigger than it)
MAX_WORKERS = 128
MAX_PREFETCH = 64  # batches ahead per worker
MAX_COUNT = 10**7
Count = Annotated[int, Field(gt=0, le=MAX_COUNT)]
# val_split: 0 (none) or a fraction that leaves both splits a real share of the data
MIN_VAL_SPLIT, MAX_VAL_SPLIT = 0.001, 0.99
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
# The element types an input may declare: the one table (the schema reads it; "long" is torch's
# other name for int64: catalogue.torch_dtype turns a name into the torch.dtype, everywhere).
Dtype = Literal["float32", "float64", "float16", "bfloat16", "int64", "int32", "long", "bool"]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Located(Strict):
    """A part of a spec that remembers where it was written, and where each of its values was:
    a run-time error about an argument points at the argument (or at the override that set it)."""

    location: SkipJsonSchema[Location] = Field(default_factory=Location, exclude=True)
    locations: SkipJsonSchema[dict[str, Location]] = Field(default_factory=dict, exclude=True)

    def locate(self, *path: str | int) -> Location:
        """Where the value at ``path`` inside this part was written, else its nearest parent."""
        while path:
            found = self.locations.get(format_path(path))
            if found is not None:
                return found
            path = path[:-1]
        return self.location


class Named(Located):
    """A catalogue entry chosen by name, with its keyword arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class TensorInput(Strict):
    shape: list[PosInt] = Field(description="Shape of one sample, without the batch dimension.")
    dtype: Dtype = Field("float32", description="Element type of the input tensor.")


class DataSplit(Located):
    """Per-split settings that override the data section's defaults."""

    dataset: Named | None = Field(
        None, description="The dataset of this split; default: the data section's dataset "
        "(its training part for train and val, its test part for test).")
    transforms: list[Named] | None = Field(
        None, description="torchvision.transforms.v2 for this split, replacing data.transforms.")
    range: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, min_length=2, max_length=2,
        description="Take samples [start, stop) of the dataset for this split.")
    batch_size: PosInt | None = Field(
        None, description="Batch size of this split (evaluation splits default to twice "
        "data.batch_size).")


class DataFallback(Located):
    """A stand-in dataset for when the data section's own cannot be found (its files absent, a
    download refused): a spec runs offline, and says plainly what it trained on instead."""

    note: str = Field(
        min_length=1, description="What the stand-in is, printed when it is used (e.g. "
        "'scikit-learn digits resized to 32x32: real images, not CIFAR-10').")
    dataset: Named = Field(description="The stand-in dataset, by name.")
    transforms: list[Named] | None = Field(
        None, description="Transforms for the stand-in, replacing data.transforms.")
    train: DataSplit | None = Field(None, description="Replaces data.train for the stand-in.")
    val: DataSplit | None = Field(None, description="Replaces data.val for the stand-in.")
    test: DataSplit | None = Field(None, description="Replaces data.test for the stand-in.")


class Arrange(Strict):
    """Draw training examples that compare samples, from a labelled dataset (per split)."""

    kind: Literal["pairs", "triplets", "sequences"] = Field(
        description="pairs: input1, input2, target; triplets: anchor, positive, negative; "
        "sequences: images side by side with target label sequences and their lengths.")
    target: Literal["same", "order"] = Field(
        "same", description="pairs only: same (+1 same class, -1 not; balanced) or order "
        "(sign of target1 - target2, ties dropped).")
    count: Count | None = Field(
        None, description="Examples to draw per split (default: the split's size).")
    min_length: PosInt = Field(1, description="sequences only: fewest samples in a sequence.")
    max_length: PosInt = Field(4, description="sequences only: most samples in a sequence.")
    seed: Annotated[int, Field(ge=0)] = Field(0, description="Seed of the draw.")


class TargetEncoding(Strict):
    """How targets are encoded for losses that want more than a class index."""

    kind: Literal["one_hot", "multi_hot", "label_list", "signed", "smooth", "float"] = Field(
        description="one_hot: index -> one-hot vector; multi_hot: label list -> 0/1 vector "
        "(MultiLabelSoftMarginLoss); label_list: distinct labels then -1 (MultiLabelMarginLoss); "
        "signed: 0/1 -> -1/+1 (SoftMarginLoss); smooth: index -> smoothed distribution "
        "(KLDivLoss); float: targets as float32.")
    num_classes: PosInt | None = Field(
        None, description="Number of classes (one_hot, multi_hot, label_list, smooth).")
    smoothing: Fraction = Field(0.1, description="smooth only: probability spread evenly "
                                "over all classes.")


class Data(Strict):
    """Where samples come from and how they are batched."""

    dataset: Named = Field(description="The dataset, by name: {MNIST: {root: data}}.")
    root: str | None = Field(
        None, description="Directory that datasets without their own root read from "
        "(relative to the working directory); override it with data.root=/path.")
    transforms: list[Named] = Field(
        default_factory=list, description="torchvision.transforms.v2 applied to inputs.")
    target_transforms: list[Named] = Field(
        default_factory=list, description="torchvision.transforms.v2 applied to targets.")
    target_encoding: TargetEncoding | None = Field(
        None, description="Encode targets for the loss: one_hot, multi_hot, label_list, "
        "signed, smooth or float.")
    standardize: bool = Field(
        False, description="z-score each input feature with the training split's mean and std.")
    standardize_target: bool = Field(
        False, description="z-score a real-valued target with the training split's statistics.")
    arrange: Arrange | None = Field(
        None, description="Pairs, triplets or sequences drawn from the dataset's samples.")
    train: DataSplit | None = Field(None, description="Overrides for the training split.")
    val: DataSplit | None = Field(None, description="Overrides for the validation split.")
    test: DataSplit | None = Field(None, description="Overrides for the test split.")
    val_split: Fraction = Field(
        0.0, description="Fraction of training data held out for validation (fixed seed) "
        f"when no val split is given: 0 (none), or from {MIN_VAL_SPLIT} to {MAX_VAL_SPLIT}.")
    batch_size: PosInt = Field(64, description="Samples per training step.")
    shuffle: bool = Field(True, description="Shuffle the training split every epoch.")
    num_workers: Annotated[int, Field(ge=0, le=MAX_WORKERS)] | Literal["auto"] = Field(
        "auto", description="DataLoader worker processes (auto: 0 for in-memory data).")
    pin_memory: bool | Literal["auto"] = Field(
        "auto", description="Pin host memory for CUDA (auto: when training on CUDA).")
    prefetch_factor: Annotated[int, Field(ge=1, le=MAX_PREFETCH)] | Literal["auto"] = Field(
        "auto", description="Batches each DataLoader worker loads ahead (auto: 2, torch's "
        "default); needs num_workers above 0.")
    persistent_workers: bool | Literal["auto"] = Field(
        "auto", description="Keep DataLoader workers alive between epochs (auto: when there are "
        "workers; each sample's random transforms are seeded from the seed, epoch and sample, "
        "so a resumed run draws the same); needs num_workers above 0.")
    drop_last: bool = Field(False, description="Drop the last incomplete training batch.")
    resident: bool | Literal["auto"] = Field(
        "auto", description="Keep the whole dataset on the device and batch by index "
        "(auto: when it is held as tensors and smaller than 1 GiB).")
    fallback: DataFallback | None = Field(
        None, description="A stand-in used when the dataset cannot be found, so the spec runs "
        "offline: its note is printed and recorded in the run.")


def data_problems(data: Data) -> list[tuple[tuple[str | int, ...], str, str | None]]:
    """(path, message, hint) for data settings no dataset can satisfy: checked by validate."""
    owners: list[tuple[tuple[str, ...], Any]] = [(("data",), data)]
    if data.fallback is not None:
        owners.append((("data", "fallback"), data.fallback))
    out: list[tuple[tuple[str | int, ...], str, str | None]] = [
        ((*at, name, "range"), f"range [{split.range[0]}, {split.range[1]}) holds no "
         "samples", "need start < stop")
        for at, owner in owners for name in ("train", "val", "test")
        for split in [getattr(owner, name)]
        if split is not None and split.range is not None and split.range[0] >= split.range[1]]
    out.extend(_worker_problems(data))
    out.extend(p for at, owner in owners for p in _overlaps(data, at, owner))
    if data.val_split and not MIN_VAL_SPLIT <= data.val_split <= MAX_VAL_SPLIT:
        side = "validation" if data.val_split < MIN_VAL_SPLIT else "training"
        out.append((("data", "val_split"), f"val_split {data.val_split} leaves the {side} split "
                    "almost nothing", f"use 0 (no validation split) or a fraction from "
                    f"{MIN_VAL_SPLIT} to {MAX_VAL_SPLIT}"))
    elif data.val_split and not own_samples(data.val):
        n = _training_samples(data)
        if n is not None and (problem := val_split_problem(n, data.val_split)):
            out.append((("data", "val_split"), *problem))
    return out


def _overlaps(data: Data, at: tuple[str, ...], owner: Any
              ) -> list[tuple[tuple[str | int, ...], str, str | None]]:
    """A val (or test) range of the samples the training split also takes: it would measure the
    model on what it trained on.  ``owner`` is the data section or its fallback (whose splits
    replace the section's where it gives them)."""
    from nnspec.catalogue.datasets import has_test_part

    def split(name: str) -> DataSplit | None:
        own = getattr(owner, name)
        return own if own is not None or owner is data else getattr(data, name)

    train = split("train")
    if train is not None and train.dataset is not None:
        return []
    low, high = train.range if train is not None and train.range else (0, None)
    dataset = owner.dataset.name
    out: list[tuple[tuple[str | int, ...], str, str | None]] = []
    for name in ("val", "test"):
        cfg = split(name)
        if cfg is None or cfg.range is None or cfg.dataset is not None or (
                name == "test" and has_test_part(dataset)):
            continue
        start, stop = cfg.range
        if start < stop and start < (high if high is not None else stop) and low < stop:
            taken = f"data.train.range [{low}, {high})" if high is not None else \
                "the training split, which takes every sample (no data.train.range)"
            out.append(((*at, name, "range"), f"{name} range [{start}, {stop}) overlaps "
                        f"{taken}: the model would be measured on samples it trained on",
                        f"give data.train.range samples apart from {name}'s: before {start} "
                        f"or from {stop} on" if start else f"give data.train.range samples "
                        f"apart from {name}'s, from {stop} on"))
    return out


def _worker_problems(data: Data) -> list[tuple[tuple[str | int, ...], str, str | None]]:
    """Worker settings that mean nothing without workers (torch would refuse them at run time)."""
    if data.num_workers != 0:
        return []
    said = [name for name, value in (("prefetch_factor", data.prefetch_factor),
                                     ("persistent_workers", data.persistent_workers))
            if value not in ("auto", False)]
    return [(("data", name), f"{name} needs DataLoader workers, and num_workers is 0",
             "set data.num_workers above 0 (or auto), or drop data." + name) for name in said]


def val_count(samples: int, fraction: float) -> int:
    """How many of ``samples`` a val_split of ``fraction`` holds out: at least one."""
    return max(1, round(samples * fraction))


def val_split_problem(samples: int, fraction: float) -> tuple[str, str] | None:
    """(message, hint) when val_split would leave no training sample."""
    if samples - val_count(samples, fraction) > 0:
        return None
    some = f"{samples} training sample{'s' * (samples != 1)}"
    return (f"val_split {fraction} holds out all {some}, leaving none to train on",
            "lower data.val_split (it holds out at least one sample), use more samples, or "
            "give data.val its own dataset or range")


def own_samples(split: DataSplit | None) -> bool:
    """Whether a split names its own samples (a dataset or a range): val_split is unused."""
    return split is not None and (split.dataset is not None or split.range is not None)


def _training_samples(data: Data) -> int | None:
    """The training part's size, when the spec says it without loading the data."""
    from nnspec.catalogue.datasets import known_size

    train = data.train
    if train is not None and train.range is not None:  # an empty range has its own problem
        return train.range[1] - train.range[0] if train.range[1] > train.range[0] else None
    named = train.dataset if train is not None and train.dataset is not None else data.dataset
    return known_size(named.name, named.args)


class InitMatch(Strict):
    """Which parameters an init rule applies to; every given condition must hold."""

    type: list[str] | str | None = Field(
        None, description="Layer types to match (Conv2d, Linear, ...).")
    name: list[str] | str | None = Field(
        None, description="Glob over module names (layer1.*.conv1), or a list of globs.")
    param: list[str] | str | None = Field(
        None, description="Glob over parameter names (weight, bias), or a list of globs.")


class InitRule(Strict):
    """One initialisation rule; rules apply in order, a later match overriding an earlier."""

    match: InitMatch = Field(default_factory=InitMatch,
                             description="Which parameters this rule applies to.")
    fn: str = Field(description="A torch.nn.init function, e.g. kaiming_normal_.")
    args: dict[str, Any] = Field(default_factory=dict,
                                 description="Keyword arguments of the init function.")
    location: Location = Field(default_factory=Location, exclude=True)


class Weights(Located):
    """Start from weights in a file: its tensors replace the initial values of the model's."""

    model_config = ConfigDict(populate_by_name=True)

    source: str = Field(
        alias="from", min_length=1,
        description="The weights file: a PyTorch .pt/.pth state_dict (torchvision's), a "
        ".safetensors file, an nnspec checkpoint, or a run directory (its best.pt). A relative "
        "path is read from the spec file's folder (from the working directory when given as "
        "an override). Read without unpickling objects.")
    key: str | None = Field(
        None, description="The entry of the file that holds the state_dict (state_dict, "
        "model_ema, ...); default: the file itself, or its single state_dict-like entry.")
    strip_prefix: list[str] | str = Field(
        default_factory=list, description="Remove this prefix (or the first of these) from "
        "the file's keys: 'module.' (DDP), 'model.' (Lightning).")
    rename: dict[str, str] = Field(
        default_factory=dict, description="Replace a key prefix, after strip_prefix: "
        "{'head.': 'fc.'}; the first prefix that fits a key applies.")
    skip: list[str] = Field(
        default_factory=list, description="Globs over the (mapped) keys not to load, such as "
        "a head replaced for other classes: ['fc.*']. Their tensors keep their initial values.")
    strict: bool = Field(
        True, description="Every tensor of the model must get a weight and every key of the "
        "file must be used (skip aside), and shapes must agree. false: load what fits; the "
        "rest is listed at the start of the run.")

    @property
    def prefixes(self) -> list[str]:
        return [self.strip_prefix] if isinstance(self.strip_prefix, str) else self.strip_prefix


class Selection(Located):
    """Parameters chosen by name globs and layer types (the matcher of init rules)."""

    match: InitMatch = Field(description="The parameters chosen: every given condition holds.")
    unless: InitMatch | None = Field(
        None, description="Leave out the parameters this also matches (the new head, say).")


class FreezeRule(Selection):
    """Parameters that do not train: requires_grad off, left out of the optimizer."""

    stats: bool = Field(
        False, description="Also freeze the running statistics of matched BatchNorm layers: "
        "they stay in eval mode while training.")
    epochs: PosInt | None = Field(
        None, description="Frozen for the first N epochs only, then trained (staged "
        "unfreezing); default: the whole run.")


class GroupRule(Selection):
    """Optimizer settings for the parameters a rule matches (a parameter group)."""

    args: dict[str, Any] = Field(
        default_factory=dict, description="Optimizer settings for these parameters: lr, "
        "weight_decay, ...; a number or an expression of depth and max_depth.")


class Optimizer(Named):
    """A torch.optim optimizer, and settings per group of parameters."""

    groups: list[GroupRule] = Field(
        default_factory=list, description="Rules giving matched parameters their own settings, "
        "in order, a later rule overriding an earlier one; parameters with equal settings form "
        "one parameter group.")


class Loss(Located):
    """A torch.nn loss and where each of its arguments comes from."""

    name: str = Field(description="A torch.nn loss, e.g. CrossEntropyLoss.")
    args: dict[str, Any] = Field(default_factory=dict,
                                 description="Keyword arguments of the loss.")
    inputs: list[str] | None = Field(
        None, description="Where each positional loss argument comes from: output, a batch "
        "field (target, input_lengths, ...), model(FIELD), or a function of those such as "
        "log_softmax(output, 1) or distance(model(input1), model(input2)). "
        "Default: [output, target].")


class Scheduler(Located):
    """A torch.optim.lr_scheduler, stepped per epoch or per optimizer step."""

    name: str = Field(description="A torch.optim.lr_scheduler class, e.g. StepLR.")
    args: dict[str, Any] = Field(default_factory=dict,
                                 description="Keyword arguments of the scheduler.")
    interval: Literal["epoch", "step"] = Field("epoch", description="Step it per epoch or step.")
    warmup_steps: Annotated[int, Field(ge=0)] = Field(
        0, description="Linear warm-up over this many optimizer steps before the scheduler.")


# Schedulers a spec can name but not use as written.
SCHEDULERS_NEEDING_A_FUNCTION = {"LambdaLR": "lr_lambda", "MultiplicativeLR": "lr_lambda"}
SCHEDULERS_STEPPED_ON_A_METRIC = frozenset({"ReduceLROnPlateau"})
# Arguments torch takes unchecked but cannot run with when <= 0: a step size or period of 0
# divides by zero, a negative one decays every step, a negative gamma makes the rate negative.
SCHEDULER_POSITIVE_ARGS = {
    "StepLR": ("step_size", "gamma"), "MultiStepLR": ("gamma",), "ExponentialLR": ("gamma",),
    "CosineAnnealingLR": ("T_max",), "CyclicLR": ("step_size_up",),
    "LinearLR": ("total_iters",), "PolynomialLR": ("total_iters",),
}


def scheduler_problems(sched: Scheduler) -> list[tuple[tuple[str, ...], str, str]]:
    """(path, message, hint) for a scheduler the runner could not step: checked by validate."""
    if sched.name in SCHEDULERS_NEEDING_A_FUNCTION:
        return [((sched.name,), f"{sched.name} needs a Python function "
                 f"({SCHEDULERS_NEEDING_A_FUNCTION[sched.name]}), which a spec cannot state",
                 "use LinearLR, ExponentialLR, StepLR, ...")]
    if sched.name in SCHEDULERS_STEPPED_ON_A_METRIC and sched.interval == "step":
        return [(("interval",), f"{sched.name} is stepped with the monitored metric, which "
                 "exists once per epoch", "use 'interval: epoch', the default")]
    return [((sched.name, arg), f"{arg} must be greater than 0, found {value}",
             "the schedule would divide by zero, or decay the wrong way")
            for arg in SCHEDULER_POSITIVE_ARGS.get(sched.name, ())
            for value in [sched.args.get(arg)]
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0]


# Optimizer arguments every torch.optim optimizer refuses below 0 (torch checks them only when
# the optimizer is built, after the data is loaded): refused by validate instead.
OPTIMIZER_NONNEGATIVE_ARGS = {"lr": "learning rate", "eps": "epsilon", "weight_decay":
                              "weight decay"}


def optimizer_problems(named: Named) -> list[tuple[tuple[str, ...], str, str]]:
    """(path, message, hint) for optimizer arguments torch refuses: checked by validate."""
    return [((named.name, arg), f"{arg} must not be negative, found {value}",
             f"torch.optim refuses a negative {what}")
            for arg, what in OPTIMIZER_NONNEGATIVE_ARGS.items()
            for value in [named.args.get(arg)]
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0]


class EarlyStopping(Strict):
    """End the run when the monitored metric stops improving."""

    patience: PosInt = Field(
        5, description="Epochs without an improvement after which the run stops.")
    min_delta: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.0, description="An improvement is a change of more than this in the right direction.")
    monitor: str | None = Field(
        None, description="SPLIT.METRIC to watch; default: train.monitor.")
    mode: Literal["min", "max", "auto"] | None = Field(
        None, description="Whether lower or higher is better; default: train.mode.")


class Train(Strict):
    """How the loop runs."""

    epochs: Count = Field(10, description="Number of passes over the training split.")
    device: str = Field("auto", description="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1.")
    precision: Literal["auto", "32", 32, "bf16-mixed", "16-mixed"] = Field(
        "auto", description="Numerical precision of the training step: 32, bf16-mixed (autocast "
        "to bfloat16) or 16-mixed (autocast to float16 with a gradient scaler); auto: 32 on the "
        "CPU and MPS, bf16-mixed on a CUDA device that has it for models of a million "
        "parameters or more. The run's first line says what auto chose.")
    memory_format: Literal["auto", "contiguous", "channels_last"] = Field(
        "auto", description="Memory layout of the model's 4-D weights and image inputs; auto: "
        "contiguous on the CPU and MPS, channels_last on CUDA for a convolutional model on "
        "images trained in bf16-mixed or 16-mixed.")
    seed: Annotated[int, Field(ge=0)] = Field(0, description="Seed of every random generator.")
    deterministic: bool = Field(False, description="Use deterministic algorithms only.")
    flush_denormal: bool = Field(
        False, description="On the CPU, flush denormal floats to zero while training "
        "(torch.set_flush_denormal), so that steps do not slow down as values grow tiny. "
        "Results differ from an unflushed run in the last bits.")
    grad_clip: PosFloat | None = Field(None, description="Clip the gradient norm to this value.")
    accumulate: Annotated[int, Field(gt=0, le=MAX_COUNT)] = Field(
        1, description="Accumulate gradients over this many batches.")
    metrics: list[str] = Field(
        default_factory=list,
        description="accuracy, top5 (topK), mae, mse, per epoch and split; loss is always kept.")
    monitor: str = Field(
        "val.loss", description="SPLIT.METRIC that picks the best checkpoint (val.accuracy); "
        "falls back to train.loss when there is no validation split.")
    mode: Literal["min", "max", "auto"] = Field(
        "auto", description="Whether lower or higher is better (auto: max for accuracy and "
        "top-k, min otherwise).")
    compile: bool | Literal["auto"] = Field(
        "auto", description="torch.compile the model for the training and evaluation steps "
        "(checkpoints keep the plain module's keys; inductor's cache is kept across runs); "
        "auto: never on the CPU or MPS, on CUDA for models of a million parameters or more "
        "trained for 500 steps or more (smaller ones replay a CUDA graph instead).")
    cuda_graph: bool | Literal["auto"] = Field(
        "auto", description="Capture the training step as one CUDA graph: auto where it is safe "
        "(CUDA, resident data, full batches, precision 32 or bf16-mixed, accumulate 1, no "
        "scheduler, no LBFGS, not compiled, one process); true refuses a setting where it is "
        "not.")
    max_params: PosInt = Field(2_000_000_000, description="Refuse to build bigger models.")
    early_stopping: EarlyStopping | None = Field(
        None, description="Stop when the monitored metric has not improved for `patience` "
        "epochs; the state survives --resume.")
    max_time: PosFloat | None = Field(
        None, description="Stop after this many seconds of training (counted over resumes), "
        "after the step in flight, with a checkpoint to --resume from.")
    strategy: Literal["auto", "ddp", "fsdp"] = Field(
        "auto", description="How the processes that --nproc-per-node (or torchrun) starts share "
        "the work: ddp (each holds the whole model; gradients are averaged), fsdp (parameters, "
        "gradients and optimizer state sharded over the processes with FSDP2, for a model that "
        "does not fit one device; checkpoints are folders). auto: ddp for more than one "
        "process, nothing to share for one. fsdp needs at least two processes.")


METRIC_NAMES = ("loss", "accuracy", "top1", "top5", "mae", "mse")
TOPK_PATTERN = re.compile(r"top([1-9][0-9]*)$")
DEVICE_PATTERN = re.compile(r"(auto|cpu|mps|cuda(:[0-9]+)?)$")
DEVICE_HINT = "use auto, cpu, cuda, cuda:N or mps"


def device_problem(name: str) -> str | None:
    """Why ``name`` is not a device nnspec can train on, or None (whether it is present is a
    question for the run)."""
    return None if DEVICE_PATTERN.match(name) else f"unknown device {name!r}"


def train_problems(train: Train) -> list[tuple[tuple[str | int, ...], str, str | None]]:
    """(path, message, hint) for metrics and a monitor the runner cannot compute: validate's."""
    out: list[tuple[tuple[str | int, ...], str, str | None]] = [
        (("train", "metrics", i), f"unknown metric '{name}'", did_you_mean(name, METRIC_NAMES))
        for i, name in enumerate(train.metrics)
        if name not in METRIC_NAMES and not TOPK_PATTERN.match(name)]
    watched: list[tuple[tuple[str, ...], str]] = [(("train", "monitor"), train.monitor)]
    if train.early_stopping is not None and train.early_stopping.monitor is not None:
        watched.append((("train", "early_stopping", "monitor"), train.early_stopping.monitor))
    for path, monitor in watched:
        split, _, metric = monitor.partition(".")
        known = ["loss", *train.metrics]
        if split not in ("train", "val") or metric not in known:
            hint = (f"add {metric} to train.metrics" if split in ("train", "val") and (
                metric in METRIC_NAMES or TOPK_PATTERN.match(metric)) else
                f"SPLIT.METRIC with SPLIT train or val and METRIC one of {', '.join(known)}")
            out.append((path, f"cannot monitor {monitor!r}", hint))
    bad_device = device_problem(train.device)
    if bad_device:
        out.append((("train", "device"), bad_device, DEVICE_HINT))
    return out + _strategy_problems(train)


def metric_problems(train: Train, loss: str) -> list[tuple[tuple[str | int, ...], str, str]]:
    """accuracy and topK with a loss that fits real values: they would compare nothing."""
    from nnspec.catalogue.losses import loss_info

    try:
        fits_values = loss_info(loss).scale == "values"
    except KeyError:
        return []  # an unknown loss is reported on its own
    return [(("train", "metrics", i), f"{name} compares classes, and {loss} fits real values",
             "use mae or mse, or a classification loss")
            for i, name in enumerate(train.metrics)
            if fits_values and (name == "accuracy" or TOPK_PATTERN.match(name))]


def _strategy_problems(train: Train) -> list[tuple[tuple[str | int, ...], str, str | None]]:
    """Settings FSDP does not run with (yet): refused before any process starts."""
    if train.strategy != "fsdp":
        return []
    out: list[tuple[tuple[str | int, ...], str, str | None]] = []
    if str(train.precision) == "16-mixed":
        out.append((("train", "precision"), "16-mixed cannot be used with strategy fsdp: "
                    "each process would decide alone whether to skip a step on overflow",
                    "use bf16-mixed (no gradient scaler) or 32"))
    if train.compile is True:
        out.append((("train", "compile"), "compile cannot be used with strategy fsdp yet",
                    "set train.compile: false, or train.strategy: ddp"))
    if train.cuda_graph is True:
        out.append((("train", "cuda_graph"), "cuda_graph cannot be used with strategy fsdp",
                    "set train.cuda_graph: auto or false"))
    return out


class Log(Strict):
    """What a run writes besides checkpoints."""

    tensorboard: bool = Field(True, description="Write TensorBoard event files.")
    every_n_steps: PosInt = Field(50, description="Log training scalars every N steps.")
    dir: str = Field("runs", description="Parent directory of run directories.")
    graph: bool = Field(True, description="Write the model graph to TensorBoard.")


class Spec(BaseModel):
    """A checked spec: typed sections, the model as an AST, and where it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    version: int
    name: str
    description: str = ""
    inputs: dict[str, TensorInput]
    vars: dict[str, Any]
    var_locations: dict[str, Location] = Field(default_factory=dict, exclude=True)
    blocks: dict[str, Any]  # name -> nnspec.lang.model_ast.BlockDef
    model: Any  # nnspec.lang.model_ast.Container
    data: Data | None = None
    init: list[InitRule] = Field(default_factory=list)
    weights: Weights | None = None
    freeze: list[FreezeRule] = Field(default_factory=list)
    loss: Loss | None = None
    optimizer: Optimizer | None = None
    scheduler: Scheduler | None = None
    train: Train = Field(default_factory=Train)
    log: Log = Field(default_factory=Log)
    file: str = "<spec>"
    source_text: str = ""
    # the checked Document (nnspec.lang.loader), overrides applied: later passes read it
    # instead of loading source_text again; None for a Spec built in code
    document: Any = Field(None, exclude=True, repr=False)
    warnings: tuple[Any, ...] = ()  # nnspec.errors.Problem with severity "warning"

    def locate(self, *path: str | int) -> Location:
        """Where the value at ``path`` was written (its nearest parent's place if it was not),
        for an error found while running; the file alone for a spec built in code."""
        if self.document is None:
            return Location(self.file)
        found: Location = self.document.locate(path)
        return found

    @property
    def is_trainable(self) -> bool:
        return self.data is not None and self.loss is not None

    @property
    def groups(self) -> list[GroupRule]:
        """The optimizer's group rules (none for a plain ``Named`` optimizer set in code)."""
        return list(getattr(self.optimizer, "groups", None) or [])
