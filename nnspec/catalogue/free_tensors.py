"""Free tensors (format 2): learned parameters and buffers that are graph nodes of their own.

``class_token: {parameter: {shape: [1, 1, 768]}}`` is a node with no input whose value is the
tensor; it becomes the module's ``nn.Parameter`` (a buffer: ``register_buffer``) under the
node's name, so ``state_dict`` keys read ``class_token``, ``encoder.pos_embedding`` or
``layer_scale`` exactly as torchvision writes them.  Its shape is the whole tensor's (no batch
dimension); ops broadcast it against batched values as torch does.  ``init`` says how it is
filled: a name from ``INITS``, ``{name: {args}}``, or a number (every element that value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnspec.catalogue.entry import Entry, Param, Traits


@dataclass(frozen=True)
class Init:
    """One way to fill a free tensor: torch's call, by the builder and in emitted code."""

    args: tuple[str, ...]  # its keyword arguments, in order
    make: Callable[[Any, tuple[int, ...], dict[str, Any]], Any]  # (torch, shape, args)
    source: Callable[[str, dict[str, str]], str]  # (shape code, argument code)


def _kw(args: dict[str, str]) -> str:
    return "".join(f", {k}={v}" for k, v in args.items())


def _full(sized: str, value: str) -> str:
    shape, _, dtype = sized.partition(", dtype=")
    return f"torch.full({shape}, {value}" + (f", dtype={dtype})" if dtype else ")")


INITS: dict[str, Init] = {
    "zeros": Init((), lambda t, s, a: t.zeros(s), lambda s, a: f"torch.zeros({s})"),
    "ones": Init((), lambda t, s, a: t.ones(s), lambda s, a: f"torch.ones({s})"),
    "full": Init(("fill_value",), lambda t, s, a: t.full(s, float(a["fill_value"])),
                 lambda s, a: _full(s, a["fill_value"])),
    "normal": Init(("mean", "std"), lambda t, s, a: t.nn.init.normal_(t.empty(s), **a),
                   lambda s, a: f"nn.init.normal_(torch.empty({s}){_kw(a)})"),
    "trunc_normal": Init(("mean", "std", "a", "b"),
                         lambda t, s, a: t.nn.init.trunc_normal_(t.empty(s), **a),
                         lambda s, a: f"nn.init.trunc_normal_(torch.empty({s}){_kw(a)})"),
    "uniform": Init(("a", "b"), lambda t, s, a: t.nn.init.uniform_(t.empty(s), **a),
                    lambda s, a: f"nn.init.uniform_(torch.empty({s}){_kw(a)})"),
}


def parse_init(init: Any) -> tuple[str, dict[str, Any]]:
    """``zeros``, ``{normal: {std: 0.02}}`` or a number -> (name, arguments)."""
    if isinstance(init, int | float) and not isinstance(init, bool):
        return "full", {"fill_value": init}
    if isinstance(init, str):
        return init, {}
    name, args = next(iter(init.items()))
    if isinstance(args, dict):
        return name, dict(args)
    wanted = INITS[name].args
    return name, ({wanted[0]: args} if args is not None and wanted else {})


def make(kwargs: dict[str, Any]) -> Any:
    """The tensor a free-tensor node holds, filled by its init."""
    import torch

    name, args = parse_init(kwargs.get("init", "zeros"))
    shape = tuple(kwargs["shape"])
    tensor = INITS[name].make(torch, shape, args)
    dtype = kwargs.get("dtype", "float32")
    from nnspec.catalogue import torch_dtype

    return tensor.to(torch_dtype(dtype))


def source(kwargs: dict[str, Any], shape_code: str, literal: Callable[[Any], str]) -> str:
    """The Python expression that makes the tensor (its shape written as ``shape_code``)."""
    name, args = parse_init(kwargs.get("init", "zeros"))
    dtype = {"long": "int64"}.get(kwargs.get("dtype", "float32"), kwargs.get("dtype", "float32"))
    sized = shape_code if dtype == "float32" else f"{shape_code}, dtype=torch.{dtype}"
    return INITS[name].source(sized, {k: literal(v) for k, v in args.items()})


_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 1},
          "description": "The whole tensor's shape (no batch dimension)."}
_ARGS = {"type": "object", "additionalProperties": {"type": "number"}}
_INIT = {"anyOf": [
    {"enum": sorted(INITS)},
    {"type": "number"},
    {"type": "object", "minProperties": 1, "maxProperties": 1,
     "properties": {name: {"anyOf": [_ARGS, {"type": "number"}, {"type": "null"}],
                           "description": f"{name}, with keyword arguments "
                           f"({', '.join(init.args) or 'none'}) or its first one"}
                    for name, init in INITS.items()}, "additionalProperties": False},
]}
_DTYPE = {"enum": ["float32", "float64", "float16", "bfloat16", "int64", "int32", "long", "bool"]}


def _entry(name: str, doc: str, flag: str, flag_doc: str) -> Entry:
    params = {
        "shape": Param("shape", _SHAPE, True),
        "init": Param("init", _INIT, False, "zeros"),
        "dtype": Param("dtype", _DTYPE, False, "float32"),
        flag: Param(flag, {"type": "boolean", "description": flag_doc}, False, True),
    }
    return Entry(name, "tensor", doc, params, Traits(inputs=(0, 0)))


FREE_TENSORS: dict[str, Entry] = {
    "parameter": _entry("parameter", "A learned tensor of its own (nn.Parameter): a graph node "
                        "with no input, named as its state_dict key (class_token, "
                        "pos_embedding, layer_scale).", "requires_grad",
                        "Whether the optimizer trains it."),
    "buffer": _entry("buffer", "A tensor the module keeps but does not train "
                     "(register_buffer): a graph node with no input.", "persistent",
                     "Whether it is saved in the state_dict."),
}
