"""Shape rules and input checks, by family; catalogue entries name them in their ``Traits``.

A ``Check`` refuses an input torch would take but misread (a sample of a rank torch treats as
unbatched, reading nnspec's batch dimension as channels or as the sequence; an op along the batch):
it returns a message and a hint.  A ``ShapeRule`` gives the output by torch's documented formula
instead of running the layer on the meta device, whose element-wise, normalisation and
convolution kernels cost up to a second of imports on first use; it returns ``NO_RULE`` for
anything unusual, so that torch itself has the last word, or raises ``ShapeProblem``.

Values are the compiler's ``TensorInfo`` (one sample's shape and dtype) or tuples of them; this
module only reads them and makes new ones with ``dataclasses.replace``, so it imports neither the
compiler nor torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnspec.compiler.ir import TensorInfo

NO_RULE: Any = object()
Problem = tuple[str, str | None]
Check = Callable[[str, dict[str, Any], list[Any], list[str]], Problem | None]
ShapeRule = Callable[[str, dict[str, Any], list[Any], list[str]], Any]

BATCH = 3  # an odd batch: a sample dimension of 2 (directions, pairs) is not taken for it
_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
_SAMPLE = {1: "C", 2: "C, L", 3: "C, H, W", 4: "C, D, H, W"}
BATCH_HINT = "dimensions count the batch as 0, so one sample's first dimension is 1"


class ShapeProblem(Exception):
    """An input a rule knows torch refuses: the message and a hint, located by the shape pass."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def product(sizes: Iterable[int]) -> int:
    out = 1
    for size in sizes:
        out *= size
    return out


def _floating(value: TensorInfo) -> bool:
    return value.dtype.startswith(("float", "bfloat"))


def _per_dim(kwargs: dict[str, Any], name: str, default: Any, dims: int) -> list[Any]:
    raw = kwargs.get(name, default)
    return list(raw) if isinstance(raw, list | tuple) else [raw] * dims


def _at_least(low: int, *values: Iterable[Any]) -> bool:
    """Every value an integer >= low (the checker says so already; the rules guard it)."""
    return all(isinstance(v, int) and v >= low for group in values for v in group)


# -- shape rules for layers (one input) -------------------------------------------------------

def same_shape(ranks: tuple[int, ...] | None = None) -> ShapeRule:
    """Element-wise and normalisation layers: same shape out, if the rank is one they take."""

    def rule(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
        value = inputs[0]
        if not _floating(value):
            return NO_RULE
        if ranks is not None and len(value.shape) not in ranks:
            want = " or ".join(f"[N, {_SAMPLE[r]}]" for r in ranks)
            raise ShapeProblem(f"{name} expects a {want} input, receives {value} from "
                               f"{sources[0]}", "check the layer's dimension (1d, 2d, 3d) "
                               "against the data")
        return value

    return rule


def like_input(name: str, kwargs: dict[str, Any], inputs: list[Any],
               sources: list[str]) -> Any:
    """A float32 input's shape and type out (a transformer layer: its weights are float32, so
    another type runs on meta, where torch refuses the mix as the CPU does)."""
    value = inputs[0]
    return value if value.dtype == "float32" else NO_RULE


def attention(name: str, kwargs: dict[str, Any], inputs: list[Any],
              sources: list[str]) -> Any:
    """MultiheadAttention, batch_first, of float32 [L, E] queries and [S, E] keys and values
    (one input: all three): its output [L, E] and averaged weights [L, S].  Anything else
    (extra keys, kdim/vdim, other types, sizes that do not fit) runs on meta: torch says."""
    given = inputs * 3 if len(inputs) == 1 else inputs
    embed = kwargs.get("embed_dim")
    if len(given) != 3 or not kwargs.get("batch_first") or any(
            kwargs.get(k) for k in ("add_bias_kv", "add_zero_attn", "kdim", "vdim")):
        return NO_RULE
    if any(isinstance(v, tuple) or not v.batched or v.dtype != "float32" or len(v.shape) != 2
           or v.shape[1] != embed for v in given) or len({v.fold for v in given}) != 1:
        return NO_RULE
    query, key, value = given
    if key.shape[0] != value.shape[0]:
        return NO_RULE
    return (query, replace(query, shape=(query.shape[0], key.shape[0])))


def embedding(name: str, kwargs: dict[str, Any], inputs: list[Any],
              sources: list[str]) -> Any:
    """Integer ids of any shape -> that shape and embedding_dim float32 features."""
    value, dim = inputs[0], kwargs.get("embedding_dim")
    if value.dtype not in ("int64", "int32", "long") or not isinstance(dim, int):
        return NO_RULE  # torch says what is wrong with the ids or the argument
    return replace(value, shape=(*value.shape, dim), dtype="float32")


def reduced(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """``mean`` over ``dim`` (one or a list, the batch counted as 0 and refused by the op's
    check): those dimensions dropped, or kept as 1 with ``keepdim``."""
    value, given = inputs[0], kwargs.get("dim")
    rank = len(value.shape) + 1
    dims: list[Any] = list(given) if isinstance(given, list | tuple) else [given]
    if not _floating(value) or not dims or not all(
            isinstance(d, int) and not isinstance(d, bool) and -rank <= d < rank for d in dims):
        return NO_RULE  # torch says what is wrong
    chosen = {d % rank for d in dims}
    if len(chosen) != len(dims) or 0 in chosen:
        return NO_RULE
    keep = bool(kwargs.get("keepdim", False))
    shape = tuple(1 if i + 1 in chosen else size for i, size in enumerate(value.shape)
                  if keep or i + 1 not in chosen)
    return replace(value, shape=shape)


def pool(dims: int) -> ShapeRule:
    """torch's output-size formula for MaxPool/AvgPool (see their documentation)."""

    def rule(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
        value = inputs[0]
        kernel = _per_dim(kwargs, "kernel_size", None, dims)
        stride = kernel if kwargs.get("stride") is None else _per_dim(kwargs, "stride", 1, dims)
        padding, dilation = _per_dim(kwargs, "padding", 0, dims), _per_dim(kwargs, "dilation",
                                                                            1, dims)
        if not (_at_least(1, kernel, stride, dilation) and _at_least(0, padding)):
            return NO_RULE
        sizes = []
        for length, k, s, p, d in zip(value.shape[-dims:], kernel, stride, padding, dilation,
                                      strict=False):
            span = length + 2 * p - d * (k - 1) - 1
            out = (-(-span // s) if kwargs.get("ceil_mode") else span // s) + 1
            if kwargs.get("ceil_mode") and (out - 1) * s >= length + p:
                out -= 1
            if out < 1 or p > k // 2:
                return NO_RULE  # let torch itself say what is wrong
            sizes.append(out)
        return replace(value, shape=(*value.shape[:-dims], *sizes))

    return rule


def conv(dims: int, *, transposed: bool = False) -> ShapeRule:
    """torch's output-size formulas for Conv and, ``transposed``, ConvTranspose (their
    documentation); the catalogue entry says which its layer is.

    Anything unusual (another rank, a channel mismatch, a window larger than the input) is left
    to torch on the meta device, so that its own message reports it.
    """

    def rule(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
        value = inputs[0]
        shape = value.shape
        if len(shape) != dims + 1 or shape[0] != kwargs.get("in_channels") or \
                not _floating(value):
            return NO_RULE
        kernel, stride, dilation = (_per_dim(kwargs, "kernel_size", 1, dims),
                                    _per_dim(kwargs, "stride", 1, dims),
                                    _per_dim(kwargs, "dilation", 1, dims))
        if not _at_least(1, kernel, stride, dilation):
            return NO_RULE
        padding = kwargs.get("padding", 0)
        if transposed and isinstance(padding, str):
            return NO_RULE  # torch refuses string padding in the forward
        if padding == "same":
            return replace(value, shape=(kwargs["out_channels"], *shape[1:]))
        pads = [0] * dims if padding == "valid" else _per_dim(kwargs, "padding", 0, dims)
        extra = _per_dim(kwargs, "output_padding", 0, dims)
        if not _at_least(0, pads, extra):
            return NO_RULE
        sizes = []
        for length, k, s, p, d, o in zip(shape[1:], kernel, stride, pads, dilation, extra,
                                         strict=True):
            span = d * (k - 1)
            out = ((length - 1) * s - 2 * p + span + o + 1 if transposed
                   else (length + 2 * p - span - 1) // s + 1)
            if out < 1 or (transposed and o >= max(s, d)):
                return NO_RULE
            sizes.append(out)
        return replace(value, shape=(kwargs["out_channels"], *sizes))

    return rule


def adaptive_pool(dims: int) -> ShapeRule:
    """(C, *output_size), None keeping a dimension; the rank is checked before."""

    def rule(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
        value = inputs[0]
        if kwargs.get("output_size") is None:  # None keeps a size inside a list, not alone
            raise ShapeProblem(f"{name} needs an output_size", "e.g. output_size: 1; a "
                               "dimension to keep is null inside a list: [4, null]")
        sizes = _per_dim(kwargs, "output_size", None, dims)
        spatial = value.shape[-dims:]
        out = tuple(s if want is None else want for s, want in zip(spatial, sizes, strict=False))
        return replace(value, shape=(*value.shape[:-dims], *out))

    return rule


def linear(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    value = inputs[0]
    if not value.shape or not _floating(value):
        return NO_RULE
    return replace(value, shape=(*value.shape[:-1], kwargs["out_features"]))


def flatten(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """Flatten dimensions start_dim..end_dim; from dimension 0 it folds them into the batch
    (window partition: [N, 8, 8, 7, 7, C] from 0 to 2 is [N*64, 7, 7, C])."""
    value = inputs[0]
    if not value.batched:
        return NO_RULE  # a free tensor: its whole shape, as torch flattens it
    full = (BATCH, *value.shape)
    rank = len(full)
    start, end = kwargs.get("start_dim", 1), kwargs.get("end_dim", -1)
    if not (isinstance(start, int) and isinstance(end, int) and -rank <= start < rank
            and -rank <= end < rank):
        return NO_RULE  # torch says what is out of range
    start, end = start % rank, end % rank
    if start == 0 < end:
        return replace(value, shape=full[end + 1:], fold=value.fold * product(full[1:end + 1]))
    if not 0 < start <= end < rank:
        return NO_RULE  # a bad range: torch decides
    merged = product(full[start:end + 1])
    return replace(value, shape=(*full[1:start], merged, *full[end + 1:]))


_UNFOLD_HINT = ("a Flatten from start_dim 0 folds dimensions into the batch; an Unflatten of "
                "dimension 0 takes them out again, the batch first as -1: [-1, 8, 8]")


def unflatten(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """Unflatten of dimension 0 takes dimensions folded into the batch out again: [N*64, ...]
    with [-1, 8, 8] is [N, 8, 8, ...]; another dimension is split as torch splits it."""
    value = inputs[0]
    dim, sizes = kwargs.get("dim"), list(kwargs.get("unflattened_size") or [])
    rank = len(value.shape) + 1
    if not value.batched or not isinstance(dim, int) or not -rank <= dim < rank or \
            not sizes or not all(isinstance(s, int) for s in sizes):
        return NO_RULE
    if dim % rank:
        return NO_RULE  # a sample's dimension: torch's meta kernel
    rest = product(sizes[1:])
    if sizes[0] != -1 or -1 in sizes[1:] or rest < 1:
        raise ShapeProblem(f"{name} of the batch dimension 0 of {value} from {sources[0]} "
                           f"must keep the batch first, as -1: found {sizes}", _UNFOLD_HINT)
    if value.fold % rest:
        held = ("nothing is folded into it" if value.fold == 1
                else f"it holds {value.fold} per sample")
        raise ShapeProblem(f"{name} {sizes} takes {rest} rows per sample out of the batch of "
                           f"{value} from {sources[0]}, but {held}", _UNFOLD_HINT)
    return replace(value, shape=(*sizes[1:], *value.shape), fold=value.fold // rest)


def flatten_hint(name: str, given: Any, shape: tuple[int, ...]) -> str | None:
    """Linear given a sample of several dimensions: it applies to the last one; say Flatten."""
    if len(shape) <= 1:
        return None
    flat = product(shape)
    return (f"add a Flatten before it (it gives [N, {flat}]"
            + (f", which matches {name}={given}" if flat == given else "")
            + f"), or set {name}: {shape[-1]} to apply it to the last dimension")


# -- checks: a rank torch would misread --------------------------------------------------------

def conv_rank(dims: int) -> Check:
    def check(name: str, kwargs: dict[str, Any], inputs: list[Any],
              sources: list[str]) -> Problem | None:
        value, rank = inputs[0], len(inputs[0].shape)
        if rank == dims + 1:
            return None
        hint = (f"add a channel dimension first, e.g. {{reshape: [1, "
                f"{', '.join(map(str, value.shape))}]}}" if rank == dims and rank else
                "Conv1d takes [N, C, L], Conv2d [N, C, H, W], Conv3d [N, C, D, H, W]: use "
                "the one that matches the data, or reshape it")
        return (f"{name} expects a [N, C, {_SPATIAL[dims]}] input, receives {value} from "
                f"{sources[0]}", hint)

    return check


def spatial_rank(dims: int) -> Check:
    """Pools: ``dims`` spatial dimensions, with or without the channels before them."""

    def check(name: str, kwargs: dict[str, Any], inputs: list[Any],
              sources: list[str]) -> Problem | None:
        if len(inputs[0].shape) in (dims, dims + 1):
            return None
        return (f"{name} expects {dims} spatial dimensions after the channels, receives "
                f"{inputs[0]} from {sources[0]}",
                "check the layer's dimension (1d, 2d, 3d) against the data")

    return check


def sequence_rank(name: str, kwargs: dict[str, Any], inputs: list[Any],
                  sources: list[str]) -> Problem | None:
    """Recurrent and attention layers read [N, L, features] (batch_first)."""
    for info, src in zip(inputs, sources, strict=False):
        if len(info.shape) != 2:
            hint = (f"give each sample a sequence dimension, e.g. {{reshape: [1, "
                    f"{info.shape[0]}]}} for a sequence of one" if len(info.shape) == 1
                    else "reshape or flatten it to [N, L, features]")
            return (f"{name} expects a [N, L, features] input (batch_first), receives {info} "
                    f"from {src}", hint)
    return None


def explicit_dim(name: str, kwargs: dict[str, Any], inputs: list[Any],
                 sources: list[str]) -> Problem | None:
    """Softmax and kin without ``dim``: torch picks one that may be the batch."""
    if kwargs.get("dim") is None and len(inputs[0].shape) in (0, 2):
        return (f"{name} without dim would normalise {inputs[0]} from {sources[0]} over the "
                "batch dimension (torch's implicit choice)",
                "set dim, counting the batch as 0: e.g. dim: -1 for the last dimension")
    return None


def sample_rank(rank: int, at_least: bool = False) -> Check:
    """Exactly (or at least) this sample rank: one lower would be read as unbatched."""

    def check(name: str, kwargs: dict[str, Any], inputs: list[Any],
              sources: list[str]) -> Problem | None:
        have = len(inputs[0].shape)
        if have == rank or (at_least and have > rank):
            return None
        return (f"{name} expects a [N, {_SAMPLE[rank]}] input, receives {inputs[0]} from "
                f"{sources[0]}", "reshape the data to that rank first")

    return check


# -- checks and rules for ops ------------------------------------------------------------------

def _is_batch(dim: Any, rank: int) -> bool:
    return isinstance(dim, int) and -rank <= dim < rank and dim % rank == 0


def out_of_range(name: str, arg: str, dim: int, value: Any, source: str) -> Problem:
    """A dimension the value does not have: which ones it has, the batch counted as 0."""
    last = len(value.shape)  # the batch is 0, one sample's dimensions 1 .. last
    if last == 0:
        return (f"{name} {arg} {dim} is out of range: {value} from {source} has only the batch "
                "dimension 0", "its samples are scalars: reshape them first, e.g. "
                "{reshape: {shape: [1]}}")
    sample = "1 (or -1)" if last == 1 else f"1 to {last} (or -{last} to -1)"
    return (f"{name} {arg} {dim} is out of range: {value} from {source} has dimensions 0 to "
            f"{last}", f"the batch is dimension 0: one sample's dimensions are {sample}")


def keeps_batch(arg: str, what: str, default: Any = None) -> Check:
    """An op along ``arg`` (one dim or a list of them) that must not be the batch (0)."""

    def check(name: str, kwargs: dict[str, Any], inputs: list[Any],
              sources: list[str]) -> Problem | None:
        value, rank = inputs[0], len(inputs[0].shape) + 1
        given = kwargs.get(arg, default)
        dims = given if isinstance(given, list | tuple) else [given]
        outside = [d for d in dims if isinstance(d, int) and not -rank <= d < rank]
        if outside:
            return out_of_range(name, arg, outside[0], value, sources[0])
        if any(_is_batch(d, rank) for d in dims):
            return (what.format(name=name, dim=given, value=value, source=sources[0]),
                    BATCH_HINT)
        return None

    return check


def permutation(arg: str) -> Check:
    """``dims`` lists every dimension, the batch (0) first and kept there."""

    def check(name: str, kwargs: dict[str, Any], inputs: list[Any],
              sources: list[str]) -> Problem | None:
        value, rank = inputs[0], len(inputs[0].shape) + 1
        dims = list(kwargs[arg])
        if len(dims) != rank:
            return (f"{name} {arg} {dims} has {len(dims)} entries, {value} from {sources[0]} "
                    f"has {rank} dimensions", f"list every dimension, the batch (0) first, "
                    f"e.g. {[0, *range(rank - 1, 0, -1)]}")
        if not _is_batch(dims[0], rank):
            return (f"{name} {arg} {dims} moves the batch dimension 0 of {value} from "
                    f"{sources[0]}", f"keep 0 first; {BATCH_HINT}")
        return None

    return check


def swap_check(name: str, kwargs: dict[str, Any], inputs: list[Any],
               sources: list[str]) -> Problem | None:
    rank = len(inputs[0].shape) + 1
    if _is_batch(kwargs["dim0"], rank) or _is_batch(kwargs["dim1"], rank):
        return (f"{name} {kwargs['dim0']}, {kwargs['dim1']} moves the batch dimension 0 of "
                f"{inputs[0]} from {sources[0]}", BATCH_HINT)
    return None


def reshape_check(name: str, kwargs: dict[str, Any], inputs: list[Any],
                  sources: list[str]) -> Problem | None:
    value, shape = inputs[0], list(kwargs["shape"])
    size, known = product(value.shape), product(s for s in shape if s != -1)
    fits = size % known == 0 if shape.count(-1) == 1 and known else size == known
    if shape.count(-1) <= 1 and not fits:
        return (f"{name} to {shape} needs {known} elements per sample, {value} from "
                f"{sources[0]} has {size}",
                "the shape is one sample's, without the batch; -1 infers one dimension")
    return None


def permuted(arg: str) -> ShapeRule:
    """A permutation of every dimension with the batch (0) kept first: the sizes reordered."""

    def rule(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
        value = inputs[0]
        full = (BATCH, *value.shape)
        rank, dims = len(full), list(kwargs[arg])
        if not all(isinstance(d, int) and -rank <= d < rank for d in dims):
            return NO_RULE
        order = [d % rank for d in dims]
        if sorted(order) != list(range(rank)) or order[0] != 0:
            return NO_RULE  # a repeated dimension, the batch moved: torch says what is wrong
        return replace(value, shape=tuple(full[d] for d in order[1:]))

    return rule


def select(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """getitem: one part of a tuple of outputs."""
    value, index = inputs[0], kwargs["index"]
    if not isinstance(value, tuple) or not -len(value) <= index < len(value):
        count = len(value) if isinstance(value, tuple) else 1
        raise ShapeProblem(f"{name} {index}: {sources[0]} returns {count} output(s)",
                           f"{name} selects one output of a layer that returns several")
    return value[index]


def broadcast(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """Element-wise ops: torch's broadcasting and type promotion, without meta kernels."""
    import torch

    tensors: list[TensorInfo] = [v for v in inputs if not isinstance(v, tuple)]
    if len(tensors) != len(inputs):
        raise ValueError("an input is a tuple of outputs; select one with getitem")
    batched = any(t.batched for t in tensors) or not tensors
    folds = {t.fold for t in tensors if t.batched}
    if len(folds) > 1:
        shown = ", ".join(f"{t} from {s}" for t, s in zip(tensors, sources, strict=False))
        raise ShapeProblem(f"{name} of {shown}: their batch dimensions hold different numbers "
                           "of rows per sample", _UNFOLD_HINT)
    fold = folds.pop() if folds else 1
    shape = broadcast_shapes([(BATCH * fold, *t.shape) if t.batched else t.shape
                              for t in tensors])
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        promoted = torch.promote_types(getattr(torch, dtype), getattr(torch, t.dtype))
        dtype = str(promoted).removeprefix("torch.")
    if not batched:  # free tensors only: their whole shape
        return replace(tensors[0], shape=tuple(shape), dtype=dtype)
    rank = max(len(t.shape) for t in tensors if t.batched)  # of one sample
    for t in tensors:
        if not t.batched and (len(t.shape) > rank + 1 or (
                len(t.shape) == rank + 1 and t.shape[0] != 1)):
            raise ShapeProblem(f"{name} of the free tensor {t} with samples of rank {rank} "
                               "would broadcast it against the batch dimension",
                               f"give it at most {rank} dimensions, or a leading 1 for the "
                               "batch")
    return replace(tensors[0], shape=tuple(shape[1:]), dtype=dtype, batched=True, fold=fold)


def joined(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """cat of batched tensors of one type and fold: the sizes along ``dim`` summed, the others
    equal (else torch's meta-kernel message).  Free tensors, mixed types or folds, a ``dim``
    out of range: NO_RULE, torch decides (and promotes)."""
    tensors: list[TensorInfo] = [v for v in inputs if not isinstance(v, tuple)]
    dim = kwargs.get("dim", 1)
    if len(tensors) != len(inputs) or not all(t.batched for t in tensors) or \
            len({(t.dtype, t.fold) for t in tensors}) != 1 or not isinstance(dim, int):
        return NO_RULE
    ranks = [len(t.shape) + 1 for t in tensors]
    if not -ranks[0] <= dim < ranks[0] or dim % ranks[0] == 0 or 0 in ranks:
        return NO_RULE
    dim %= ranks[0]
    for number, (t, rank) in enumerate(zip(tensors, ranks, strict=True)):
        if rank != ranks[0]:
            raise ValueError(f"Number of dimensions of tensors must match.  Expected "
                             f"{ranks[0]}-D tensors, but got {rank}-D for tensor number "
                             f"{number} in the list")
        for d in range(1, rank):
            want, got = tensors[0].shape[d - 1], t.shape[d - 1]
            if d != dim and want != got:
                raise ValueError(f"Sizes of tensors must match except in dimension {dim}. "
                                 f"Expected {want} in dimension {d} but got {got} for tensor "
                                 f"number {number} in the list")
    size = sum(t.shape[dim - 1] for t in tensors)
    first = tensors[0]
    return replace(first, shape=(*first.shape[:dim - 1], size, *first.shape[dim:]))


def broadcast_shapes(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """torch.broadcast_shapes, whose implementation imports sympy (0.3 s) on first use."""
    rank = max(len(s) for s in shapes)
    out = []
    for dim in range(rank):
        sizes = {s[dim - rank + len(s)] for s in shapes if dim - rank + len(s) >= 0} - {1}
        if len(sizes) > 1:
            raise ValueError(f"shapes cannot be broadcast together: sizes {sorted(sizes)} "
                             f"in dimension {dim}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)



def expand_batch(name: str, kwargs: dict[str, Any], inputs: list[Any],
                 sources: list[str]) -> Any:
    """A free tensor of shape [1, ...] repeated for each sample of a batched value."""
    tensor, like = inputs
    if isinstance(tensor, tuple) or tensor.batched or not tensor.shape or tensor.shape[0] != 1:
        raise ShapeProblem(f"{name} takes a free tensor whose first dimension is 1 (such as a "
                           f"class token [1, 1, D]), found {tensor} from {sources[0]}",
                           "declare it as {parameter: {shape: [1, ...]}}")
    if isinstance(like, tuple) or not like.batched:
        raise ShapeProblem(f"{name} copies the batch of its second input, but {sources[1]} "
                           "has no batch", "give it a batched value as its second input")
    return replace(tensor, shape=tensor.shape[1:], batched=True, fold=like.fold)


def same_value(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """Element-wise ops of one input: the same shape, batch and type."""
    value = inputs[0]
    return value if not isinstance(value, tuple) and _floating(value) else NO_RULE


def along_dim(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """softmax, log_softmax, normalize: a float input's shape and type, where ``dim`` (-1 if
    not given, normalize's default) is one of its dimensions (a free tensor's too, which no
    check sees); otherwise torch's message."""
    value, dim = inputs[0], kwargs.get("dim", -1)
    if isinstance(value, tuple) or not isinstance(dim, int) or isinstance(dim, bool):
        return NO_RULE
    rank = len(value.shape) + value.batched
    return same_value(name, kwargs, inputs, sources) if -rank <= dim < rank else NO_RULE


def dropped(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """StochasticDepth: a float input's shape, where its p and mode are ones torch takes."""
    p, mode = kwargs.get("p"), kwargs.get("mode")
    if not isinstance(p, int | float) or isinstance(p, bool) or not 0 <= p <= 1 or \
            mode not in ("batch", "row"):
        return NO_RULE
    return same_value(name, kwargs, inputs, sources)


def rolled(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """roll: the input's shape and type, where shifts and dims pair up within its rank."""
    value, shifts, dims = inputs[0], kwargs.get("shifts"), kwargs.get("dims")
    shifts, dims = ([x] if isinstance(x, int) else x for x in (shifts, dims))
    if isinstance(value, tuple) or not isinstance(shifts, list) or not isinstance(dims, list) \
            or not dims or len(shifts) != len(dims):
        return NO_RULE
    rank = len(value.shape) + 1
    numbers = [*shifts, *dims]
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in numbers) or \
            not all(-rank <= d < rank for d in dims):
        return NO_RULE
    return value


def looked_up(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """table[index] of free tensors, int64 indices: index's shape then the table's rows' shape
    (a relative position bias).  Batched inputs, other index types: torch decides."""
    table, index = inputs
    if not isinstance(index, tuple) and index.dtype.startswith(("float", "bfloat", "complex")):
        raise ShapeProblem(f"{name} needs integer indices: {index} from {sources[1]} holds "
                           f"{index.dtype}", "give the index tensor dtype: int64, on the "
                           "buffer or on the input")
    if isinstance(table, tuple) or isinstance(index, tuple) or table.batched or \
            index.batched or index.dtype != "int64" or not table.shape:
        return NO_RULE
    return replace(table, shape=(*index.shape, *table.shape[1:]))




def multiplied(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """matmul of float tensors of one type and fold, each of two dimensions or more (the batch
    counted): [..., n, m] @ [..., m, p] is [..., n, p], the leading dimensions broadcast.  A
    batched operand must reach the result's first dimension and a free one may meet it only
    with a 1, so that it stays the batch.  Vectors, inner sizes that differ, anything else:
    NO_RULE, torch decides."""
    a, b = inputs
    if isinstance(a, tuple) or isinstance(b, tuple) or a.dtype != b.dtype or \
            not _floating(a) or a.batch_dim or b.batch_dim or \
            len({t.fold for t in (a, b) if t.batched}) > 1:
        return NO_RULE
    whole = [(BATCH * t.fold, *t.shape) if t.batched else t.shape for t in (a, b)]
    rank = max(len(w) for w in whole)
    if min(len(w) for w in whole) < 2 or whole[0][-1] != whole[1][-2] or \
            (b.batched and len(whole[1]) == 2) or any(  # b's rows would be the batch
            len(w) < rank if t.batched else len(w) == rank > 2 and w[0] != 1
            for t, w in zip((a, b), whole, strict=True) if a.batched or b.batched):
        return NO_RULE
    try:
        lead = broadcast_shapes([whole[0][:-2], whole[1][:-2]]) if rank > 2 else ()
    except ValueError:
        return NO_RULE
    shape = (*lead, whole[0][-2], whole[1][-1])
    batched = [t for t in (a, b) if t.batched]
    return replace(batched[0], shape=shape[1:]) if batched else replace(a, shape=shape)

_THE_BATCH: Any = object()  # the batch's size among einsum's letters: no number stands for it


def _letter_sizes(operands: list[str], values: list[Any]) -> dict[str, Any] | None:
    """Each letter's size, or None where a letter has two (torch broadcasts a 1) or an
    operand's letters do not name its dimensions once each."""
    sizes: dict[str, Any] = {}
    for names, value in zip(operands, values, strict=True):
        dims = (_THE_BATCH, *value.shape) if value.batched else value.shape
        if len(names) != len(dims) or len(set(names)) != len(names) or any(
                sizes.setdefault(letter, size) != size
                for letter, size in zip(names, dims, strict=True)):
            return None
    return sizes


def contracted(name: str, kwargs: dict[str, Any], inputs: list[Any], sources: list[str]) -> Any:
    """einsum with an explicit output and one letter for each dimension (no ``...``, no letter
    twice in one operand), float inputs of one type: each output letter's size; a batched
    output's first letter is its inputs' batch.  A letter of two sizes, the batch elsewhere or
    summed away, mixed types or folds: NO_RULE, torch decides."""
    equation = kwargs.get("equation")
    values = [v for v in inputs if not isinstance(v, tuple)]
    if not isinstance(equation, str) or "->" not in equation or len(values) != len(inputs) \
            or len({v.dtype for v in values}) != 1 or not _floating(values[0]) \
            or len({v.fold for v in values if v.batched}) > 1 \
            or any(v.batch_dim for v in values):
        return NO_RULE
    left, out = "".join(equation.split()).split("->", 1)
    operands = left.split(",")
    if len(operands) != len(values) or len(set(out)) != len(out) or \
            not ((left + out).replace(",", "").isascii() and
                 (left + out).replace(",", "").isalpha()):
        return NO_RULE
    sizes = _letter_sizes(operands, values)
    if sizes is None or not set(out) <= set(sizes):
        return NO_RULE
    shape = [sizes[letter] for letter in out]
    batched = [v for v in values if v.batched]
    if not batched:
        return replace(values[0], shape=tuple(shape))
    if not shape or shape[0] is not _THE_BATCH or _THE_BATCH in shape[1:]:
        return NO_RULE
    return replace(batched[0], shape=tuple(shape[1:]))
