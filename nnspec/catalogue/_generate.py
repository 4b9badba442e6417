"""Regenerate ``torch_api.json`` from torch's own signatures (a development step).

    python -m nnspec.catalogue._generate          # rewrite the file
    python -m nnspec.catalogue._generate --check  # exit 1 if the committed file is stale

The catalogue is read at run time from the JSON file, so validating a spec never imports torch.
Each argument's JSON Schema comes from its annotation, else its default, else OVERRIDES below.
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

from nnspec import catalogue

OUT = Path(__file__).with_name("torch_api.json")

INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
STR: dict[str, Any] = {"type": "string"}
NULL: dict[str, Any] = {"type": "null"}
INTS: dict[str, Any] = {"type": "array", "items": INT}
NUMS: dict[str, Any] = {"type": "array", "items": NUM}


def any_of(*schemas: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": list(schemas)} if len(schemas) > 1 else dict(schemas[0])


_RNN_COMMON = {
    "input_size": INT, "hidden_size": INT, "num_layers": INT, "bias": BOOL,
    "batch_first": BOOL, "dropout": NUM, "bidirectional": BOOL,
}
_RNN_DEFAULTS = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                 "bidirectional": False}

# name -> {arg: (schema, default or REQUIRED)} for signatures torch does not annotate usefully.
REQUIRED = "<required>"
OVERRIDES: dict[str, dict[str, tuple[dict[str, Any], Any]]] = {
    "RNN": {**{k: (v, _RNN_DEFAULTS.get(k, REQUIRED)) for k, v in _RNN_COMMON.items()},
            "nonlinearity": ({"enum": ["tanh", "relu"]}, "tanh")},
    "LSTM": {**{k: (v, _RNN_DEFAULTS.get(k, REQUIRED)) for k, v in _RNN_COMMON.items()},
             "proj_size": (INT, 0)},
    "GRU": {k: (v, _RNN_DEFAULTS.get(k, REQUIRED)) for k, v in _RNN_COMMON.items()},
    "MultiheadAttention": {
        "embed_dim": (INT, REQUIRED), "num_heads": (INT, REQUIRED), "dropout": (NUM, 0.0),
        "bias": (BOOL, True), "add_bias_kv": (BOOL, False), "add_zero_attn": (BOOL, False),
        "kdim": (any_of(INT, NULL), None), "vdim": (any_of(INT, NULL), None),
        "batch_first": (BOOL, False),
    },
    "TransformerEncoderLayer": {"activation": ({"enum": ["relu", "gelu"]}, "relu")},
    "TransformerDecoderLayer": {"activation": ({"enum": ["relu", "gelu"]}, "relu")},
    "Transformer": {"activation": ({"enum": ["relu", "gelu"]}, "relu")},
    "LayerNorm": {"normalized_shape": (any_of(INT, INTS), REQUIRED)},
    "RMSNorm": {"normalized_shape": (any_of(INT, INTS), REQUIRED)},
    "Unflatten": {"unflattened_size": (INTS, REQUIRED)},
    "PReLU": {"init": (NUM, 0.25)},
    "Normalize": {"mean": (NUMS, REQUIRED), "std": (NUMS, REQUIRED)},
    "StochasticDepth": {"mode": ({"enum": ["batch", "row"]}, REQUIRED)},
    "ToDtype": {"dtype": ({"enum": ["float32", "float64", "float16", "bfloat16", "uint8",
                                    "int64", "int32"]}, "float32")},
}

SKIP_ARGS = {"self", "device", "dtype", "size_average", "reduce", "args", "kwargs",
             "process_group", "custom_encoder", "custom_decoder"}

LAYER_EXCLUDE = {
    "Module", "Container", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
    "ParameterDict", "DataParallel", "RNNBase", "RNNCellBase", "AdaptiveLogSoftmaxWithLoss",
    "CrossMapLRN2d", "NLLLoss2d", "TransformerEncoder", "TransformerDecoder",
    "LinearCrossEntropyLoss", "SyncBatchNorm",
}

# torchvision.ops layers a spec may name (by class name; torch.nn's wins a clash).  The others
# take boxes, offsets or dicts of feature maps, which a spec's tensors cannot be.
VISION_EXCLUDE = {"DeformConv2d", "FeaturePyramidNetwork", "MultiScaleRoIAlign", "PSRoIAlign",
                  "PSRoIPool", "RoIAlign", "RoIPool"}
VISION_MODULE = "torchvision.ops"
# Arguments that take a class or a callable (the norm or activation to build): not expressible
# in a spec, so left at torchvision's defaults.
VISION_SKIP = SKIP_ARGS | {"norm_layer", "activation_layer", "activation", "scale_activation"}
# Where the class's docstring only points elsewhere.
DOCS = {
    "DropBlock2d": "DropBlock (Ghiasi et al., 2018): zeroes contiguous block_size x block_size "
                   "regions of each feature map while training; identity in eval mode.",
    "DropBlock3d": "DropBlock (Ghiasi et al., 2018) on volumes: zeroes contiguous cubes of each "
                   "feature map while training; identity in eval mode.",
    "StochasticDepth": "Stochastic depth (Huang et al., 2016): zeroes the input with probability "
                       "p, per sample (mode: row) or for the whole batch (mode: batch), while "
                       "training, scaling the rest by 1 / (1 - p); put it on a residual branch.",
}


def _schema_of(annotation: Any, default: Any) -> dict[str, Any] | None:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return _schema_of_default(default)
    text = str(annotation)
    if annotation in (bool, int, float, str):
        return {bool: BOOL, int: INT, float: NUM, str: STR}[annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        parts = [_schema_of(a, inspect.Parameter.empty) for a in args]
        known = [p for p in parts if p is not None]
        return _merge(known) if known else None
    if origin is tuple or origin is list or "Sequence[int" in text or "torch.Size" in text or (
            origin in (collections.abc.Iterable, collections.abc.Sequence)):
        item = _without_tensor(args[0]) if args else int
        if item in (int, float):
            fixed = len(args) if origin is tuple and Ellipsis not in args else None
            schema: dict[str, Any] = {"type": "array", "items": INT if item is int else NUM}
            if fixed:
                schema.update(minItems=fixed, maxItems=fixed)
            return schema
        if "int" in text:
            return INTS
        return None
    if annotation is type(None):
        return NULL
    return None


def _without_tensor(annotation: Any) -> Any:
    """``float | Tensor`` (as torch annotates betas) -> ``float``: a spec writes the number."""
    parts = [a for a in typing.get_args(annotation) if "Tensor" not in str(a)]
    return parts[0] if len(parts) == 1 and typing.get_args(annotation) else annotation


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    unique: list[dict[str, Any]] = []
    for part in parts:
        if part not in unique:
            unique.append(part)
    return any_of(*unique)


def _schema_of_default(default: Any) -> dict[str, Any] | None:
    for kind, schema in ((bool, BOOL), (int, INT), (float, NUM), (str, STR)):
        if isinstance(default, kind):
            return schema
    return None


# Tensor arguments a spec writes as a list of numbers (the runner makes the tensor).
TENSOR_ARGS: dict[str, dict[str, Any]] = dict.fromkeys(catalogue.TENSOR_ARGS,
                                                       any_of(NUMS, NULL))

# String arguments whose accepted values torch documents but does not annotate.
STRING_CHOICES = {"padding": ["same", "valid"]}


def _narrow_strings(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    if name not in STRING_CHOICES:
        return schema
    enum = {"enum": STRING_CHOICES[name]}
    options = [enum if o == STR else o for o in schema.get("anyOf", [schema])]
    return any_of(*options)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, bool | int | float | str | list):
        return value
    return REQUIRED  # a default we cannot write down (a tensor, a callable): treat as unset


_TYPING_NAMES = {"Callable": collections.abc.Callable, "Iterable": collections.abc.Iterable,
                 "Sequence": collections.abc.Sequence, "Literal": typing.Literal,
                 "Any": typing.Any, "Optional": typing.Optional, "Union": typing.Union}


def describe(name: str, cls: Any, skip: set[str] = SKIP_ARGS) -> dict[str, Any]:
    """The catalogue entry of one torch class or function: its doc line and arguments."""
    overrides = OVERRIDES.get(name, {})
    params: dict[str, Any] = {}
    signature = None
    for eval_str in (True, False):  # lr_scheduler writes its annotations as strings
        try:  # naming what lr_scheduler imports only while type checking
            signature = inspect.signature(cls, eval_str=eval_str, locals=_TYPING_NAMES)
            break
        except (TypeError, ValueError, NameError):
            continue
    names = list(signature.parameters.values()) if signature else []
    for p in names:
        if p.name in skip or p.name.startswith("_") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = REQUIRED if p.default is inspect.Parameter.empty else _jsonable(p.default)
        if p.name in overrides:
            schema, default = overrides[p.name]
        else:
            found = _schema_of(p.annotation, p.default)
            if p.name in TENSOR_ARGS and "Tensor" in str(p.annotation):
                found = TENSOR_ARGS[p.name]
            if found is None:
                continue  # tensors, callables, modules: not expressible in a spec
            schema = _narrow_strings(p.name, found)
            if default is None and "null" not in json.dumps(schema):
                schema = _merge([*schema.get("anyOf", [schema]), NULL])
        params[p.name] = {"schema": schema} | ({} if default == REQUIRED else {"default": default})
    for extra, (schema, default) in overrides.items():
        if extra not in params:
            params[extra] = {"schema": schema} | ({} if default == REQUIRED else
                                                  {"default": default})
    doc = (inspect.getdoc(cls) or "").strip().split("\n\n")[0].replace("\n", " ")
    return {"doc": DOCS.get(name, re.sub(r"\s+", " ", doc)[:300]), "params": params}


def forward_inputs(cls: Any) -> list[str]:
    """The positional arguments of a loss's forward (every one of them is required)."""
    params = list(inspect.signature(cls.forward).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _classes(module: Any, base: type) -> list[str]:
    return sorted(n for n in dir(module) if not n.startswith("_")
                  and isinstance(getattr(module, n), type) and issubclass(getattr(module, n), base)
                  and getattr(module, n) is not base)


def generate() -> dict[str, Any]:
    import torch
    import torchvision
    from torch import nn, optim
    from torch.optim import lr_scheduler
    from torchvision import ops
    from torchvision.transforms import v2

    modules = _classes(nn, nn.Module)
    layers = [n for n in modules if n not in LAYER_EXCLUDE and not n.startswith("Lazy")
              and not n.endswith("Loss")]
    losses = [n for n in modules if n.endswith("Loss") and n not in LAYER_EXCLUDE]
    optimizers = [n for n in _classes(optim, optim.Optimizer)]
    schedulers = [n for n in _classes(lr_scheduler, lr_scheduler.LRScheduler)
                  if n not in {"LRScheduler", "_LRScheduler", "ChainedScheduler",
                               "SequentialLR"}]
    inits = sorted(n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")
                   and callable(getattr(nn.init, n)) and n != "uniform" )
    transforms = [n for n in _classes(v2, v2.Transform) if n not in {"Transform", "Compose",
                  "RandomApply", "RandomChoice", "RandomOrder", "Lambda"}]
    skip_optim = SKIP_ARGS | {"params", "optimizer", "foreach", "differentiable", "fused",
                              "capturable", "maximize", "lr_lambda", "schedulers"}
    return {
        "torch": torch.__version__.split("+")[0],
        "module_attributes": sorted(n for n in dir(nn.Module) if not n.startswith("__")),
        "torchvision": torchvision.__version__.split("+")[0],
        "layers": dict(sorted({**{n: describe(n, getattr(nn, n)) for n in layers},
                               **_vision_layers(ops, set(modules))}.items())),
        "losses": {n: {**describe(n, getattr(nn, n)), "inputs": forward_inputs(getattr(nn, n))}
                   for n in losses},
        "optimizers": {n: describe(n, getattr(optim, n), skip_optim) for n in optimizers},
        "schedulers": {n: describe(n, getattr(lr_scheduler, n), skip_optim) for n in schedulers},
        "init": {n: describe(n, getattr(nn.init, n), SKIP_ARGS | {"tensor", "generator"})
                 for n in inits},
        "transforms": {n: describe(n, getattr(v2, n)) for n in transforms},
    }


def _vision_layers(ops: Any, taken: set[str]) -> dict[str, Any]:
    """torchvision.ops layers, with the module emitted code imports them from."""
    from torch import nn

    names = [n for n in _classes(ops, nn.Module) if n not in VISION_EXCLUDE and n not in taken]
    return {n: {**describe(n, getattr(ops, n), VISION_SKIP), "module": VISION_MODULE}
            for n in names}


def render() -> str:
    return json.dumps(generate(), indent=1) + "\n"  # entries sorted; arguments in signature order


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run python -m nnspec.catalogue._generate", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
