"""Free tensors (format 2): learned parameters and buffers that are graph nodes of their own.

``class_token: {parameter: {shape: [1, 1, 768]}}`` is a node with no input whose value is the
tensor; it becomes the module's ``nn.Parameter`` (a buffer: ``register_buffer``) under the
node's name, so ``state_dict`` keys read ``class_token``, ``encoder.pos_embedding`` or
``layer_scale`` exactly as torchvision writes them.  Its shape is the whole tensor's (no batch
dimension); ops broadcast it against batched values as torch does.  ``init`` says how it is
filled: a name from ``INITS``, ``{name: {args}}``, a number (every element that value), or a
computed constant from ``constants.CONSTANTS`` (``{relative_position_index: {window: [7, 7]}}``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnspec.catalogue import constants
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
    if name in constants.CONSTANTS:
        return name, {}
    wanted = INITS[name].args
    return name, ({wanted[0]: args} if args is not None and wanted else {})


def make(kwargs: dict[str, Any]) -> Any:
    """The tensor a free-tensor node holds, filled by its init."""
    import torch

    name, args = parse_init(kwargs.get("init", "zeros"))
    shape = tuple(kwargs["shape"])
    tensor = constants.make(name, args, shape) if name in constants.CONSTANTS else \
        INITS[name].make(torch, shape, args)
    from nnspec.catalogue import torch_dtype

    return tensor.to(torch_dtype(dtype_of(kwargs)))


def dtype_of(kwargs: dict[str, Any]) -> str:
    """The element type: as given, else the computed constant's own, else float32."""
    name, _ = parse_init(kwargs.get("init", "zeros"))
    natural = constants.CONSTANTS[name].dtype if name in constants.CONSTANTS else "float32"
    return str(kwargs.get("dtype") or natural)


def constant_problem(kwargs: dict[str, Any]) -> str | None:
    """Why a computed constant does not fit its free tensor (the shape pass locates it)."""
    name, args = parse_init(kwargs.get("init", "zeros"))
    if name not in constants.CONSTANTS:
        return None
    constant = constants.CONSTANTS[name]
    problem = constant.check(args)
    if problem:
        return f"{name}: {problem}"
    size, shape = constant.size(args), list(kwargs["shape"])
    count = 1
    for dim in shape:
        count *= dim
    if count != size:
        return (f"{name} {args} gives {size} values; shape {shape} holds {count}")
    return None


def problem(op: str, kwargs: dict[str, Any]) -> tuple[str, str] | None:
    """What would stop the builder making this tensor, as (message, hint); None when it can.

    One element is made on the CPU, so a huge shape allocates nothing while torch's own checks
    (a negative std, a uniform range the wrong way round) run."""
    import torch

    dtype = _torch_dtype(kwargs)
    if op == "parameter" and kwargs.get("requires_grad", True) and not (
            dtype.is_floating_point or dtype.is_complex):
        return (f"a parameter of dtype {dtype_of(kwargs)} cannot train (torch computes "
                "gradients of floating-point tensors only)",
                "write requires_grad: false, or make it a buffer")
    name, args = parse_init(kwargs.get("init", "zeros"))
    if name not in INITS:  # a computed constant: constant_problem checks it
        return None
    wanted = INITS[name].args
    unknown = sorted(set(args) - set(wanted))
    if unknown:
        close = difflib.get_close_matches(unknown[0], wanted, 1)
        hint = f"did you mean {close[0]!r}?" if close else "write one of those"
        return f"init {name} has no argument {unknown[0]!r} (it takes {', '.join(wanted)})", hint
    if name == "full" and not args:
        return "init full needs fill_value, the value of every element", "write init: 0.5"
    try:
        with torch.random.fork_rng(devices=[]):  # the run's random stream stays untouched
            INITS[name].make(torch, (1,), args)
    except (RuntimeError, ValueError, TypeError, ArithmeticError) as exc:  # std: 0
        return (f"init {name} cannot fill it: {exc or type(exc).__name__}",
                f"check the arguments of {name}")
    return None


def _torch_dtype(kwargs: dict[str, Any]) -> Any:
    from nnspec.catalogue import torch_dtype

    return torch_dtype(dtype_of(kwargs))


def source(kwargs: dict[str, Any], shape_code: str, literal: Callable[[Any], str],
           written: dict[str, Any] | None = None) -> str:
    """The Python expression that makes the tensor (its shape written as ``shape_code``);
    ``written``: a computed constant's arguments as ``constants.Sym`` (code, not numbers)."""
    name, args = parse_init(kwargs.get("init", "zeros"))
    args = {**args, **(written or {})}
    dtype = {"long": "int64"}.get(dtype_of(kwargs), dtype_of(kwargs))
    if name in constants.CONSTANTS:
        made = constants.source(name, args, shape_code)
        return made if dtype == constants.CONSTANTS[name].dtype else \
            f"torch.as_tensor({made}, dtype=torch.{dtype})"
    sized = shape_code if dtype == "float32" else f"{shape_code}, dtype=torch.{dtype}"
    return INITS[name].source(sized, {k: literal(v) for k, v in args.items()})


_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 1},
          "description": "The whole tensor's shape (no batch dimension)."}
_ARGS = {"type": "object", "additionalProperties": {"type": "number"}}
_INIT = {"anyOf": [
    {"enum": sorted(INITS)},
    {"type": "number"},
    {"type": "object", "minProperties": 1, "maxProperties": 1,
     "properties": {**{name: {"anyOf": [_ARGS, {"type": "number"}, {"type": "null"}],
                              "description": f"{name}, with keyword arguments "
                              f"({', '.join(init.args) or 'none'}) or its first one"}
                       for name, init in INITS.items()},
                    **{name: {"type": "object", "properties": c.params,
                              "required": sorted(c.params), "additionalProperties": False,
                              "description": c.doc}
                       for name, c in constants.CONSTANTS.items()}},
     "additionalProperties": False},
]}
_DTYPE = {"enum": ["float32", "float64", "float16", "bfloat16", "int64", "int32", "long", "bool"],
          "description": "The element type: float32 unless given, or a computed constant's own "
          "(int64 for relative_position_index)."}


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
