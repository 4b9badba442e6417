"""The tensor ops of attention networks (format 2): one catalogue entry each, like tensor_ops.

Slicing (``select``, ``narrow``), ``split``, ``roll``, ``matmul``, ``einsum``,
``scaled_dot_product_attention`` (with a mask or bias as a fourth input), ``softmax`` and
``log_softmax``, ``lookup`` (rows of a table at a tensor of indices: a relative position
bias gathered from its table by a buffer of indices), and ``expand_batch`` (a free tensor given
the batch of another value: ViT's class token).  Dimensions count the batch as 0, as in
``permute``; an op along the batch is refused.  Ops that multiply count their MACs
(``count``), which torchinfo does not: the oracle is torch.utils.flop_counter (FLOPs / 2).
"""

from __future__ import annotations

import operator
from typing import Any

from nnspec.catalogue import shape_rules as rules
from nnspec.catalogue.entry import Entry
from nnspec.catalogue.tensor_ops import REQUIRED, OpCode, _op

_INT = {"type": "integer"}
_INTS = {"type": "array", "items": _INT}
_NUMBER_OR_NULL = {"anyOf": [{"type": "number"}, {"type": "null"}]}


def _select(x: Any, dim: int, index: int) -> Any:
    return x.select(dim, index)


def _narrow(x: Any, dim: int, start: int, length: int) -> Any:
    return x.narrow(dim, start, length)


def _split(x: Any, split_size: Any, dim: int = 1) -> Any:
    return tuple(x.split(list(split_size) if isinstance(split_size, list | tuple)
                         else split_size, dim))


def _roll(x: Any, shifts: Any, dims: Any) -> Any:
    return x.roll(tuple(shifts) if isinstance(shifts, list | tuple) else shifts,
                  tuple(dims) if isinstance(dims, list | tuple) else dims)


def _normalize(x: Any, dim: int = -1) -> Any:
    import torch.nn.functional as F

    return F.normalize(x, dim=dim)


def _clamp(x: Any, min: float | None = None, max: float | None = None) -> Any:
    return x.clamp(min=min, max=max)


def _exp(x: Any) -> Any:
    return x.exp()


def _clamp_source(i: list[str], a: dict[str, Any]) -> str:
    bounds = [f"{k}={a[k]!r}" for k in ("min", "max") if a.get(k) is not None]
    return f"{i[0]}.clamp({', '.join(bounds)})"


def _matmul(a: Any, b: Any) -> Any:
    return a @ b


def _einsum(*xs: Any, equation: str) -> Any:
    import torch

    return torch.einsum(equation, *xs)


def _attention(q: Any, k: Any, v: Any, mask: Any = None, *, is_causal: bool = False,
               scale: float | None = None) -> Any:
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                          scale=scale)


def _softmax(x: Any, dim: int) -> Any:
    return x.softmax(dim)


def _log_softmax(x: Any, dim: int) -> Any:
    return x.log_softmax(dim)


def _lookup(table: Any, index: Any) -> Any:
    return table[index]


def _expand_batch(x: Any, like: Any) -> Any:
    return x.expand(like.shape[0], *x.shape[1:])


def _attention_source(i: list[str], a: dict[str, Any]) -> str:
    extra = [f"attn_mask={i[3]}"] if len(i) > 3 else []
    extra += [f"is_causal={a['is_causal']!r}"] if a.get("is_causal") else []
    extra += [f"scale={a['scale']!r}"] if a.get("scale") is not None else []
    return ("nn.functional.scaled_dot_product_attention("
            + ", ".join([*i[:3], *extra]) + ")")


# -- MACs per sample ---------------------------------------------------------------------------

def _matmul_macs(kwargs: dict[str, Any], inputs: list[Any], out: Any) -> int:
    """One multiply-add per output element per step of the shared (inner) dimension."""
    return rules.product(out.shape) * inputs[0].shape[-1] if inputs[0].shape else 0


def _attention_macs(kwargs: dict[str, Any], inputs: list[Any], out: Any) -> int:
    """q @ k^T then weights @ v: L*S*E + L*S*Ev per head (what FlopCounterMode counts)."""
    q, k, v = (_with_batch(value) for value in inputs[:3])
    heads = rules.product(q[:-2])
    length, source = q[-2], k[-2]
    return heads * length * source * (q[-1] + v[-1])


def _with_batch(value: Any) -> tuple[int, ...]:
    """A value's shape with the batch as a dimension of 1, so a per-sample vector has two."""
    return (1, *value.shape) if value.batched else tuple(value.shape)


def _einsum_macs(kwargs: dict[str, Any], inputs: list[Any], out: Any) -> int:
    """Every combination of the equation's indices once, the batch's excluded."""
    sizes: dict[str, int] = {}
    operands = kwargs["equation"].replace(" ", "").split("->")[0].split(",")
    for letters, value in zip(operands, inputs, strict=False):
        dims = (1, *value.shape) if value.batched else value.shape
        sizes.update(zip(letters, dims, strict=False))
    return rules.product(sizes.values())


def _not_batch(arg: str, what: str) -> Any:
    return rules.keeps_batch(arg, "{name} " + what + " {dim} of {value} from {source} would "
                             "mix the batch")


def _sizes(value: Any) -> tuple[int, ...] | None:
    """The whole shape of a tensor value (the batch as -1), None for a tuple or a vector."""
    if not hasattr(value, "shape"):
        return None
    shape = ((-1,) if value.batched else ()) + tuple(value.shape)
    return shape if len(shape) >= 2 else None


def _inner(name: str, a: Any, b: Any, sources: list[str], what: str,
           hint: str) -> tuple[str, str] | None:
    """``a``'s last dimension against ``b``'s ``what`` one (-1 or -2): a located refusal."""
    sa, sb = _sizes(a), _sizes(b)
    at = -1 if what.startswith("last") else -2
    if sa is None or sb is None or not sa or len(sb) < -at or sa[-1] == sb[at]:
        return None  # a vector operand, or sizes that agree: torch's own rule judges
    return (f"{name} needs the last dimension of {a} from {sources[0]} ({sa[-1]}) to equal "
            f"the {what} of {b} from {sources[1]} ({sb[at]})", hint)


def _matmul_check(name: str, kwargs: dict[str, Any], inputs: list[Any],
                  sources: list[str]) -> tuple[str, str] | None:
    if len(inputs) < 2:
        return None  # the input count is reported on its own
    return _inner(name, inputs[0], inputs[1], sources, "second-to-last",
                  "a @ b multiplies rows of a by columns of b; to use b's rows, transpose its "
                  "last two dimensions: {transpose: {dim0: -2, dim1: -1}}")


def _attention_check(name: str, kwargs: dict[str, Any], inputs: list[Any],
                     sources: list[str]) -> tuple[str, str] | None:
    if len(inputs) < 3:
        return None  # the input count is reported on its own
    found = _inner(name, inputs[0], inputs[1], sources[:2], "last dimension",
                   "queries and keys need the same size per head (inputs [q, k, v])")
    if found is None:
        sk, sv = _sizes(inputs[1]), _sizes(inputs[2])
        if sk is not None and sv is not None and min(len(sk), len(sv)) >= 2 and \
                sk[-2] != sv[-2]:
            found = (f"{name} needs as many keys as values: {inputs[1]} from {sources[1]} "
                     f"has {sk[-2]}, {inputs[2]} from {sources[2]} has {sv[-2]} (the "
                     "second-to-last dimension)", "k and v come from the same sequence")
    return found


def _then(first: Any, second: Any) -> Any:
    """Two checks in turn: the first's problem, else the second's."""
    def check(name: str, kwargs: dict[str, Any], inputs: list[Any],
              sources: list[str]) -> tuple[str, str] | None:
        return first(name, kwargs, inputs, sources) or second(name, kwargs, inputs, sources)

    return check


def _narrow_check(name: str, kwargs: dict[str, Any], inputs: list[Any],
                  sources: list[str]) -> tuple[str, str] | None:
    """start and length within the dimension (torch's own message names no dimension)."""
    value, dim, start, length = inputs[0], kwargs["dim"], kwargs["start"], kwargs["length"]
    size = value.shape[dim % (len(value.shape) + 1) - 1]
    first = start + size if start < 0 else start
    where = f"dimension {dim} of {value} from {sources[0]} has {size} entries"
    if length < 0:
        return f"{name} length {length} is negative", "length counts the entries kept, 0 or more"
    if not 0 <= first <= size:
        return (f"{name} start {start} is outside: {where}",
                f"start from 0 to {size}, or from -{size} to -1 counted from the end")
    if first + length > size:
        return (f"{name} takes {length} entries from {start} along dim {dim}, but {where}",
                f"start + length must be at most {size}: e.g. start: {first}, length: "
                f"{size - first}")
    return None


def _select_check(name: str, kwargs: dict[str, Any], inputs: list[Any],
                  sources: list[str]) -> tuple[str, str] | None:
    """index within the dimension (torch's message shows the probe's batch, not N)."""
    value, dim, index = inputs[0], kwargs["dim"], kwargs["index"]
    size = value.shape[dim % (len(value.shape) + 1) - 1]
    if -size <= index < size:
        return None
    return (f"{name} index {index} is outside dimension {dim} of {value} from {sources[0]}, "
            f"which has {size} entries", f"index from 0 to {size - 1}, or from -{size} to -1 "
            "counted from the end")


def _roll_check(name: str, kwargs: dict[str, Any], inputs: list[Any],
                sources: list[str]) -> tuple[str, str] | None:
    shifts, dims = kwargs["shifts"], kwargs["dims"]
    count = [len(x) if isinstance(x, list | tuple) else 1 for x in (shifts, dims)]
    if count[0] != count[1]:
        return (f"{name} needs one shift per dimension: shifts {shifts} gives {count[0]}, "
                f"dims {dims} names {count[1]}",
                "pair them up: {roll: {shifts: [1, 1], dims: [1, 2]}}, or one of each")
    return None


def _einsum_check(name: str, kwargs: dict[str, Any], inputs: list[Any],
                  sources: list[str]) -> tuple[str, str] | None:
    """One subscript per input, one letter per dimension, the batch's included."""
    equation = str(kwargs["equation"]).replace(" ", "")
    operands = equation.split("->")[0].split(",")
    if len(operands) != len(inputs):
        return (f"{name} equation {kwargs['equation']!r} has {len(operands)} operand"
                f"{'s' if len(operands) != 1 else ''}, given {len(inputs)} input"
                f"{'s' if len(inputs) != 1 else ''}",
                "one comma-separated subscript per input of in:, in order, e.g. "
                "nqd,nkd->nqk for in: [q, k]")
    for i, (letters, value, source) in enumerate(zip(operands, inputs, sources, strict=True)):
        if "." in letters or isinstance(value, tuple):
            continue  # an ellipsis, or a tuple: torch judges
        rank = len(value.shape) + (1 if value.batched else 0)
        if letters.isalpha() and len(letters) != rank:
            batch = "; the batch counts, so give it a letter too" if value.batched else ""
            return (f"{name} operand {i} of {kwargs['equation']!r}, {letters!r}, has "
                    f"{len(letters)} letters, but {value} from {source} has {rank} dimensions",
                    f"one letter per dimension{batch}")
    return None


ATTENTION_OPS: dict[str, Entry] = {op.name: op for op in [
    _op("select", "Take index `index` along `dim` and drop that dimension (x[:, 0] is "
        "dim 1, index 0; 0 is the batch dimension).",
        ("dim", _INT, REQUIRED), ("index", _INT, REQUIRED),
        code=OpCode(_select, lambda i, a: f"{i[0]}.select({a['dim']!r}, {a['index']!r})",
                    frozenset({"select"})),
        check=_then(_not_batch("dim", "along dim"), _select_check), view=True),
    _op("narrow", "Keep `length` entries from `start` along `dim` (x[:, 1:3] is dim 1, "
        "start 1, length 2).",
        ("dim", _INT, REQUIRED), ("start", _INT, REQUIRED), ("length", _INT, REQUIRED),
        code=OpCode(_narrow, lambda i, a: f"{i[0]}.narrow({a['dim']!r}, {a['start']!r}, "
                                          f"{a['length']!r})", frozenset({"narrow"})),
        check=_then(_not_batch("dim", "along dim"), _narrow_check), view=True),
    _op("split", "Split into pieces of `split_size` (a number, or a list of sizes) along "
        "`dim` (default 1): several outputs, taken with getitem.",
        ("split_size", {"anyOf": [_INT, _INTS]}, REQUIRED), ("dim", _INT, 1),
        code=OpCode(_split, lambda i, a: f"{i[0]}.split({a['split_size']!r}, "
                                         f"{a.get('dim', 1)!r})", frozenset({"split"}),
                    gives="tuple[torch.Tensor, ...]"),
        check=_not_batch("dim", "along dim"), view=True),
    _op("roll", "Roll along `dims` by `shifts` (a shifted window); 0 is the batch dimension.",
        ("shifts", {"anyOf": [_INT, _INTS]}, REQUIRED), ("dims", {"anyOf": [_INT, _INTS]},
                                                         REQUIRED),
        code=OpCode(_roll, lambda i, a: f"{i[0]}.roll({a['shifts']!r}, {a['dims']!r})",
                    frozenset({"roll"})),
        check=_then(_roll_check, _not_batch("dims", "along dims")), shape=rules.rolled),
    _op("matmul", "Matrix product of two inputs (a @ b), batched over leading dimensions.",
        code=OpCode(_matmul, lambda i, a: f"{i[0]} @ {i[1]}", fold=operator.matmul),
        inputs=(2, 2), count=_matmul_macs, check=_matmul_check,
        shape=rules.multiplied),
    _op("einsum", "torch.einsum over its inputs; the equation names the batch dimension too "
        "(bhqd,bhkd->bhqk).", ("equation", {"type": "string"}, REQUIRED),
        code=OpCode(_einsum, lambda i, a: f"torch.einsum({a['equation']!r}, {', '.join(i)})"),
        inputs=(1, 8), count=_einsum_macs, check=_einsum_check, shape=rules.contracted,
        hint="one subscript per input, one letter per dimension (the batch's too), every output "
        "letter taken from an input: nqd,nkd->nqk"),
    _op("scaled_dot_product_attention",
        "softmax(q @ k^T * scale + mask) @ v over inputs [q, k, v] or [q, k, v, mask] (a "
        "boolean mask or an additive bias); is_causal masks the future.",
        ("is_causal", {"type": "boolean"}, False), ("scale", _NUMBER_OR_NULL, None),
        code=OpCode(_attention, _attention_source),
        inputs=(3, 4), count=_attention_macs, check=_attention_check,
        hint="inputs [q, k, v] or [q, k, v, mask]; the mask or bias broadcasts to the scores, "
        "[..., L, S]: L queries by S keys"),
    _op("softmax", "Softmax along `dim` (0 is the batch dimension).", ("dim", _INT, REQUIRED),
        code=OpCode(_softmax, lambda i, a: f"{i[0]}.softmax({a['dim']!r})",
                    frozenset({"softmax"})),
        check=_not_batch("dim", "along dim"), saves_output="always",
        shape=rules.along_dim),
    _op("log_softmax", "Log-softmax along `dim` (0 is the batch dimension).",
        ("dim", _INT, REQUIRED),
        code=OpCode(_log_softmax, lambda i, a: f"{i[0]}.log_softmax({a['dim']!r})",
                    frozenset({"log_softmax"})),
        check=_not_batch("dim", "along dim"), saves_output="always",
        shape=rules.along_dim),
    _op("normalize", "Divide by the Euclidean norm along `dim` (default -1; "
        "torch.nn.functional.normalize): Swin V2's cosine attention.", ("dim", _INT, -1),
        code=OpCode(_normalize, lambda i, a: f"nn.functional.normalize({i[0]}, "
                                             f"dim={a.get('dim', -1)!r})"),
        check=_not_batch("dim", "along dim"), shape=rules.along_dim),
    _op("clamp", "Limit every element to [min, max] (either may be left out).",
        ("min", _NUMBER_OR_NULL, None), ("max", _NUMBER_OR_NULL, None),
        code=OpCode(_clamp, _clamp_source, frozenset({"clamp"})), shape=rules.same_value),
    _op("exp", "The exponential of every element.",
        code=OpCode(_exp, lambda i, a: f"{i[0]}.exp()", frozenset({"exp"})),
        shape=rules.same_value, saves_output="always"),
    _op("lookup", "Rows of the first input at the integer indices of the second (table[index]): "
        "a relative position bias gathered from its table by a buffer of indices.",
        code=OpCode(_lookup, lambda i, a: f"{i[0]}[{i[1]}]",
                    fx=lambda i, a: (operator.getitem, (i[0], i[1]), {})),
        inputs=(2, 2), shape=rules.looked_up,
        hint="lookup: [table, index], the index holding integers below the table's first size"),
    _op("expand_batch", "The first input (a free tensor whose first dimension is 1) repeated "
        "for each sample of the second: ViT's class token before cat.",
        code=OpCode(_expand_batch, lambda i, a: f"{i[0]}.expand({i[1]}.shape[0], "
                                                f"*{i[0]}.shape[1:])", frozenset({"expand"})),
        inputs=(2, 2), shape=rules.expand_batch, view=True),
]}
