"""The infer pass: a shape on every edge, every ``auto`` argument filled.

Each layer is instantiated on the ``meta`` device (no memory, no weights) with its arguments,
the inferred ones taken from the incoming shape, and run on meta tensors; torch itself says
what comes out.  A layer that refuses its input becomes a located error naming the layer, both
shapes and a fix.  A spec with 10^11 parameters validates in seconds with little memory.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from nnspec import catalogue, plugins
from nnspec.catalogue import AUTO
from nnspec.catalogue import tensor_ops as ops
from nnspec.compiler.ir import Graph, Layer, Net, Node, TensorInfo, Value, show
from nnspec.errors import Collector, format_path

NO_RULE = object()
BATCH = 3  # an odd batch: a sample dimension of 2 (directions, pairs) is not taken for it
_DTYPES = {"long": "int64"}


def infer(graph: Graph) -> Graph:
    if not graph.inputs:
        from nnspec.errors import Location, SpecError

        raise SpecError.at(Location(graph.file, 1, 1), ("input",),
                           "the spec has no 'input', so shapes cannot be inferred",
                           "add e.g. 'input: [1, 28, 28]' (one sample's shape)")
    inferrer = _Inferrer()
    values: list[Value] = list(graph.inputs.values())
    sources = [f"input '{name}'" for name in graph.inputs]
    root, _ = inferrer.net(graph.root, values, sources)
    inferrer.errors.raise_if_any()
    return replace(graph, root=root, params=inferrer.params)


def meta_tensor(info: TensorInfo) -> Any:
    import torch

    dtype = getattr(torch, _DTYPES.get(info.dtype, info.dtype))
    return torch.empty((BATCH, *info.shape), dtype=dtype, device="meta")


def describe(value: Any) -> Value:
    import torch

    if isinstance(value, torch.Tensor):
        shape = tuple(value.shape[1:]) if value.dim() and value.shape[0] == BATCH else tuple(
            value.shape)
        return TensorInfo(shape, str(value.dtype).removeprefix("torch."))
    if isinstance(value, tuple | list):
        return tuple(describe(v) for v in value)
    raise TypeError(f"unexpected output {type(value).__name__}")


def to_meta(value: Value) -> Any:
    if isinstance(value, TensorInfo):
        return meta_tensor(value)
    return tuple(to_meta(v) for v in value)


class _Inferrer:
    def __init__(self) -> None:
        self.errors = Collector()
        self.params = 0

    def net(self, net: Net, inputs: list[Value], sources: list[str]) -> tuple[Net, Value]:
        if net.chained:
            return self.chain(net, inputs, sources)
        env: dict[str, Value] = dict(zip(net.inputs, inputs, strict=False))
        where: dict[str, str] = dict(zip(net.inputs, sources, strict=False))
        done: dict[str, Node] = {}
        for node in net.topological():
            args = [env[ref] for ref in node.inputs if ref in env]
            if len(args) != len(node.inputs):
                return net, inputs[0]  # an earlier error left a hole
            new = self.node(node, args, [where[ref] for ref in node.inputs])
            done[node.name] = new
            if new.out is None:
                return net, inputs[0]
            env[node.name] = new.out
            where[node.name] = _label(new)
        nodes = tuple(done.get(n.name, n) for n in net.nodes)
        outs = tuple(env[o] for o in net.outputs)
        return replace(net, nodes=nodes), outs[0] if len(outs) == 1 else outs

    def chain(self, net: Net, inputs: list[Value], sources: list[str]) -> tuple[Net, Value]:
        value, source = inputs[0], sources[0]
        done: dict[str, Node] = {}
        for node in net.forward_nodes():
            new = self.node(node, [value], [source])
            done[node.name] = new
            out = new.out
            if out is None:
                return net, value
            value, source = out, _label(new)
        nodes = tuple(done.get(n.name, n) for n in net.nodes)
        return replace(net, nodes=nodes), value

    def node(self, node: Node, inputs: list[Value], sources: list[str]) -> Node:
        if isinstance(node.body, Net):
            body, net_out = self.net(node.body, inputs, sources)
            return node.with_(body=body, out=net_out) if not self.errors.problems else node
        layer = node.body
        if layer.kind == "op":
            return self.op(node, layer, inputs, sources)
        tensors = [v for v in inputs if isinstance(v, TensorInfo)]
        if len(tensors) != len(inputs):
            count = len(inputs[0]) if isinstance(inputs[0], tuple) else 1
            self.fail(node, f"{layer.op} takes a tensor, but {sources[0]} returns "
                      f"{count} outputs",
                      "select one with {getitem: 0}")
            return node
        kwargs = self.fill(node, layer, tensors, sources)
        if kwargs is None:
            return node
        result = self.run(node, layer.op, kwargs, tensors, sources)
        if result is None:
            return node
        return node.with_(body=replace(layer, kwargs=kwargs), out=result)

    def op(self, node: Node, layer: Layer, inputs: list[Value], sources: list[str]) -> Node:
        if layer.op == "getitem":
            value = inputs[0]
            index = layer.kwargs["index"]
            if not isinstance(value, tuple) or not -len(value) <= index < len(value):
                n = len(value) if isinstance(value, tuple) else 1
                self.fail(node, f"getitem {index}: {sources[0]} returns {n} output(s)",
                          "getitem selects one output of a layer that returns several")
                return node
            return node.with_(out=value[index])
        if isinstance(inputs[0], TensorInfo):
            problem = _op_problem(layer.op, layer.kwargs, inputs[0], sources[0])
            if problem:
                self.fail(node, *problem)
                return node
        try:
            if layer.op in ("add", "mul"):  # broadcasting, without meta kernels (slow to load)
                return node.with_(out=_broadcast(inputs))
            out = ops.apply(layer.op, [to_meta(v) for v in inputs], layer.kwargs)
        except Exception as exc:
            shapes = ", ".join(f"{show(v)} from {s}" for v, s in zip(inputs, sources,
                                                                        strict=False))
            hint = ("add and mul need equal sizes, or 1, in each dimension; a convolution keeps "
                    "its size with stride 1 and padding: kernel_size // 2"
                    if layer.op in ("add", "mul") else None)
            self.fail(node, f"{layer.op} cannot combine {shapes}: {_first_line(exc)}", hint)
            return node
        return node.with_(out=describe(out))

    def fill(self, node: Node, layer: Layer, inputs: list[TensorInfo],
             sources: list[str]) -> dict[str, Any] | None:
        entry = catalogue.layers()[layer.op]
        kwargs = dict(layer.kwargs)
        for name, param in entry.params.items():
            rule = param.inferred
            if rule is None or name not in kwargs:
                continue
            index = 1 if rule == "features2" else 0
            if index >= len(inputs) or not inputs[index].shape:
                if kwargs[name] == AUTO:
                    self.fail(node, f"cannot infer {name}: {sources[0]} gives a "
                              f"{show(inputs[0])} tensor", f"set {name} explicitly")
                    return None
                continue
            shape = inputs[index].shape
            actual = shape[0] if rule == "channels" else shape[-1]
            if kwargs[name] == AUTO:
                kwargs[name] = actual
            elif kwargs[name] != actual and not isinstance(kwargs[name], list):
                hint = f"set {name}: {actual}, or leave it out to infer it"
                if layer.op == "Linear" and len(shape) > 1:
                    flat = _product(shape)
                    hint = (f"add a Flatten before it (it gives [N, {flat}]"
                            + (f", which matches {name}={kwargs[name]}" if flat == kwargs[name]
                               else "")
                            + f"), or set {name}: {actual} to apply it to the last dimension")
                self.fail(node, f"{layer.op} expects {name}={kwargs[name]}, receives "
                          f"{show(inputs[index])} from {sources[index]}", hint)
                return None
        return kwargs

    def run(self, node: Node, op: str, kwargs: dict[str, Any], inputs: list[TensorInfo],
            sources: list[str]) -> Value | None:
        import torch

        try:
            with torch.device("meta"):
                module = plugins.layer_class(op)(**layer_kwargs(op, kwargs))
        except Exception as exc:
            if (meta := plugins.meta_failure(op, "__init__", exc)) is not None:
                self.fail(node, *meta)
                return None
            self.fail(node, f"{op} refuses these arguments: {_first_line(exc)}"
                      f"{_inferred_detail(op, kwargs, inputs, sources)}",
                      _divisor_hint(_first_line(exc), kwargs))
            return None
        self.params += sum(p.numel() for p in module.parameters())
        problem = _rank_problem(op, kwargs, inputs, sources)
        if problem:
            self.fail(node, *problem)
            return None
        ruled = self.rule(node, op, kwargs, inputs, sources)
        if ruled is not NO_RULE:
            return ruled  # type: ignore[return-value]
        tensors = [meta_tensor(v) for v in inputs]
        if op == "MultiheadAttention" and len(tensors) == 1:
            tensors = tensors * 3
        try:
            return describe(module(*tensors))
        except Exception as exc:
            if (meta := plugins.meta_failure(op, "forward", exc)) is not None:
                self.fail(node, *meta)
                return None
            shapes = ", ".join(f"{show(v)} from {s}" for v, s in zip(inputs, sources,
                                                                        strict=False))
            self.fail(node, f"{op} cannot take {shapes}: {_first_line(exc)}",
                      _runtime_hint(op, inputs, sources, exc))
            return None

    def rule(self, node: Node, op: str, kwargs: dict[str, Any], inputs: list[TensorInfo],
             sources: list[str]) -> Value | object | None:
        """The output by a shape rule, or NO_RULE to run the layer on the meta device.

        Rules cover the layers whose meta kernels live in torch's Python references (about a
        second to import on first use); every other layer is run, so torch has the last word.
        """
        if len(inputs) != 1 or kwargs.get("return_indices"):
            return NO_RULE
        value, source = inputs[0], sources[0]
        if op in catalogue.SAME_SHAPE and value.dtype.startswith(("float", "bfloat")):
            return self.same_shape(node, op, value, source)
        if op in catalogue.POOL:
            return self.pool(op, kwargs, value)
        if op in catalogue.CONV:
            return self.conv(op, kwargs, value)
        if op in catalogue.ADAPTIVE_POOL:
            return self.adaptive_pool(op, kwargs["output_size"], value)
        if op == "Linear" and value.shape and value.dtype.startswith(("float", "bfloat")):
            return TensorInfo((*value.shape[:-1], kwargs["out_features"]), value.dtype)
        if op == "Flatten":
            return _flatten(value, kwargs.get("start_dim", 1), kwargs.get("end_dim", -1))
        return NO_RULE

    def same_shape(self, node: Node, op: str, value: TensorInfo, source: str) -> Value | None:
        """Element-wise and normalisation layers: same shape out, if the rank is one they take."""
        ranks = catalogue.SAME_SHAPE[op]
        if ranks is not None and len(value.shape) not in ranks:
            names = {1: "C", 2: "C, L", 3: "C, H, W", 4: "C, D, H, W"}
            want = " or ".join(f"[N, {names[r]}]" for r in ranks)
            self.fail(node, f"{op} expects a {want} input, receives {value} from {source}",
                      "check the layer's dimension (1d, 2d, 3d) against the data")
            return None
        return value

    @staticmethod
    def pool(op: str, kwargs: dict[str, Any], value: TensorInfo) -> Value | object:
        """torch's output-size formula for MaxPool/AvgPool (see their documentation); the
        sample's rank was checked before (``_rank_problem``)."""
        dims = catalogue.POOL[op]

        def per_dim(name: str, default: Any) -> list[int]:
            raw = kwargs.get(name, default)
            raw = kwargs["kernel_size"] if raw is None else raw
            return list(raw) if isinstance(raw, list | tuple) else [raw] * dims

        kernel, stride = per_dim("kernel_size", None), per_dim("stride", None)
        padding, dilation = per_dim("padding", 0), per_dim("dilation", 1)
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
        return TensorInfo((*value.shape[:-dims], *sizes), value.dtype)

    def conv(self, op: str, kwargs: dict[str, Any], value: TensorInfo) -> Value | object:
        """torch's output-size formulas for Conv and ConvTranspose (their documentation).

        Anything unusual (another rank, a channel mismatch, a window larger than the input) is
        left to torch on the meta device, so that its own message reports it.
        """
        dims = catalogue.CONV[op]
        shape = value.shape
        if len(shape) != dims + 1 or shape[0] != kwargs.get("in_channels") or \
                not value.dtype.startswith(("float", "bfloat")):
            return NO_RULE

        def per_dim(name: str, default: Any) -> list[int]:
            raw = kwargs.get(name, default)
            return list(raw) if isinstance(raw, list | tuple) else [raw] * dims

        kernel, stride, dilation = (per_dim("kernel_size", 1), per_dim("stride", 1),
                                    per_dim("dilation", 1))
        padding = kwargs.get("padding", 0)
        transposed = op.startswith("ConvTranspose")
        if transposed and isinstance(padding, str):
            return NO_RULE  # torch refuses string padding in the forward
        if padding == "same":
            return TensorInfo((kwargs["out_channels"], *shape[1:]), value.dtype)
        pads = [0] * dims if padding == "valid" else per_dim("padding", 0)
        extra = per_dim("output_padding", 0)
        sizes = []
        for length, k, s, p, d, o in zip(shape[1:], kernel, stride, pads, dilation, extra,
                                         strict=True):
            span = d * (k - 1)
            out = ((length - 1) * s - 2 * p + span + o + 1 if transposed
                   else (length + 2 * p - span - 1) // s + 1)
            if out < 1 or (transposed and o >= max(s, d)):
                return NO_RULE
            sizes.append(out)
        return TensorInfo((kwargs["out_channels"], *sizes), value.dtype)

    @staticmethod
    def adaptive_pool(op: str, size: Any, value: TensorInfo) -> Value:
        """(C, *output_size), None keeping a dimension; the rank was checked before."""
        dims = catalogue.ADAPTIVE_POOL[op]
        sizes = list(size) if isinstance(size, list | tuple) else [size] * dims
        spatial = value.shape[-dims:]
        out = tuple(s if want is None else want for s, want in zip(spatial, sizes, strict=False))
        return TensorInfo((*value.shape[:-dims], *out), value.dtype)

    def fail(self, node: Node, message: str, hint: str | None = None) -> None:
        self.errors.add(node.source.location, node.source.path, message, hint)


def _product(sizes: Any) -> int:
    out = 1
    for size in sizes:
        out *= size
    return out


_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
_SEQUENCE_LAYERS = catalogue.BATCH_FIRST


def _rank_problem(op: str, kwargs: dict[str, Any], inputs: list[TensorInfo],
                  sources: list[str]) -> tuple[str, str] | None:
    """A sample rank that torch would take as an unbatched input, reading nnspec's batch
    dimension as channels or as the sequence: it would run here and mix samples later."""
    value, source = inputs[0], sources[0]
    rank = len(value.shape)
    if op in catalogue.CONV:
        dims = catalogue.CONV[op]
        if rank != dims + 1:
            hint = (f"add a channel dimension first, e.g. {{reshape: [1, "
                    f"{', '.join(map(str, value.shape))}]}}" if rank == dims and rank else
                    "Conv1d takes [N, C, L], Conv2d [N, C, H, W], Conv3d [N, C, D, H, W]: use "
                    "the one that matches the data, or reshape it")
            return (f"{op} expects a [N, C, {_SPATIAL[dims]}] input, receives {value} from "
                    f"{source}", hint)
    pooled = {**catalogue.POOL, **catalogue.ADAPTIVE_POOL, **catalogue.FRACTIONAL_POOL}
    if op in pooled and rank not in (pooled[op], pooled[op] + 1):
        return (f"{op} expects {pooled[op]} spatial dimensions after the channels, receives "
                f"{value} from {source}",
                "check the layer's dimension (1d, 2d, 3d) against the data")
    if op in _SEQUENCE_LAYERS:
        for info, src in zip(inputs, sources, strict=False):
            if len(info.shape) != 2:
                hint = (f"give each sample a sequence dimension, e.g. {{reshape: [1, "
                        f"{info.shape[0]}]}} for a sequence of one" if len(info.shape) == 1
                        else "reshape or flatten it to [N, L, features]")
                return (f"{op} expects a [N, L, features] input (batch_first), receives {info} "
                        f"from {src}", hint)
    if op in ("Softmax", "LogSoftmax", "Softmin") and kwargs.get("dim") is None and \
            rank in (0, 2):
        return (f"{op} without dim would normalise {value} from {source} over the batch "
                "dimension (torch's implicit choice)",
                "set dim, counting the batch as 0: e.g. dim: -1 for the last dimension")
    wanted = catalogue.SAMPLE_RANK.get(op)
    if op in catalogue.MIN_SAMPLE_RANK and rank < catalogue.MIN_SAMPLE_RANK[op]:
        wanted = catalogue.MIN_SAMPLE_RANK[op]
    if wanted and rank != wanted:
        names = {2: "C, L", 3: "C, H, W"}
        return (f"{op} expects a [N, {names[wanted]}] input, receives {value} from {source}",
                "reshape the data to that rank first")
    return None


def _op_problem(op: str, kwargs: dict[str, Any], value: TensorInfo,
                source: str) -> tuple[str, str | None] | None:
    """Ops that would move, reduce or join along the batch dimension, and reshapes or
    permutations that do not fit one sample: refused here, where torch's own message would
    show the batch size nnspec infers with."""
    rank = len(value.shape) + 1
    batch_hint = "dimensions count the batch as 0, so one sample's first dimension is 1"

    def batch(dim: Any) -> bool:
        return isinstance(dim, int) and -rank <= dim < rank and dim % rank == 0

    if op == "permute":
        dims = list(kwargs["dims"])
        if len(dims) != rank:
            return (f"permute dims {dims} has {len(dims)} entries, {value} from {source} has "
                    f"{rank} dimensions", f"list every dimension, the batch (0) first, e.g. "
                    f"{[0, *range(rank - 1, 0, -1)]}")
        if not batch(dims[0]):
            return (f"permute dims {dims} moves the batch dimension 0 of {value} from {source}",
                    f"keep 0 first; {batch_hint}")
    if op == "transpose" and (batch(kwargs["dim0"]) or batch(kwargs["dim1"])):
        return (f"transpose {kwargs['dim0']}, {kwargs['dim1']} moves the batch dimension 0 of "
                f"{value} from {source}", batch_hint)
    if op == "mean":
        means = kwargs["dim"] if isinstance(kwargs["dim"], list | tuple) else [kwargs["dim"]]
        if any(batch(d) for d in means):
            return (f"mean over dim {kwargs['dim']} averages {value} from {source} over the "
                    "batch", batch_hint)
    if op == "cat" and batch(kwargs.get("dim", 1)):
        return (f"cat along dim {kwargs.get('dim', 1)} joins batches, not samples", batch_hint)
    if op == "reshape":
        shape = list(kwargs["shape"])
        size, known = _product(value.shape), _product(s for s in shape if s != -1)
        fits = size % known == 0 if shape.count(-1) == 1 and known else size == known
        if shape.count(-1) <= 1 and not fits:
            return (f"reshape to {shape} needs {known} elements per sample, {value} from "
                    f"{source} has {size}",
                    "the shape is one sample's, without the batch; -1 infers one dimension")
    return None


def _runtime_hint(op: str, inputs: list[TensorInfo], sources: list[str],
                  exc: Exception) -> str | None:
    """A fix for what torch refused on the meta device."""
    text = str(exc)
    if any(not v.dtype.startswith("int") for v in inputs) and op in ("Embedding",
                                                                      "EmbeddingBag"):
        first = sources[0]
        if first.startswith("input "):
            return (f"{op} takes integer token ids: declare the input as "
                    f"{{shape: {list(inputs[0].shape)}, dtype: int64}}")
        return f"{op} takes integer token ids (int64), not the float output of {first}"
    if "too small" in text or "can't be greater" in text or "too large" in text:
        return ("the input is too small for this window: pad it (padding), use a smaller "
                "kernel_size or stride, or remove a downsampling layer before it")
    return None


def _flatten(value: TensorInfo, start: int, end: int) -> TensorInfo | object:
    full = (BATCH, *value.shape)
    rank = len(full)
    start, end = start % rank if rank else 0, end % rank if rank else 0
    if not 0 < start <= end < rank:
        return NO_RULE  # flattening the batch, or a bad range: torch decides
    merged = 1
    for size in full[start:end + 1]:
        merged *= size
    return TensorInfo((*full[1:start], merged, *full[end + 1:]), value.dtype)


def _broadcast(inputs: list[Value]) -> TensorInfo:
    import torch

    tensors = [v for v in inputs if isinstance(v, TensorInfo)]
    if len(tensors) != len(inputs):
        raise ValueError("an input is a tuple of outputs; select one with getitem")
    shape = _broadcast_shapes([(BATCH, *t.shape) for t in tensors])
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        promoted = torch.promote_types(getattr(torch, dtype), getattr(torch, t.dtype))
        dtype = str(promoted).removeprefix("torch.")
    return TensorInfo(tuple(shape[1:]), dtype)


def _inferred_detail(op: str, kwargs: dict[str, Any], inputs: list[TensorInfo],
                     sources: list[str]) -> str:
    """The arguments nnspec filled in from the input, which the user did not write."""
    entry = catalogue.layers().get(op)
    filled = [f"{k}={kwargs[k]}" for k, p in (entry.params.items() if entry else [])
              if p.inferred and k in kwargs]
    if not filled or not inputs:
        return ""
    return f" ({', '.join(filled)}, inferred from {show(inputs[0])} from {sources[0]})"


def _divisor_hint(message: str, kwargs: dict[str, Any]) -> str | None:
    """For 'X must be divisible by Y': the values of Y that would do."""
    found = re.match(r"(\w+)(?: \(\d+\))? must be divisible by (\w+)", message)
    if found is None:
        return None
    count, by = found.groups()
    if not isinstance(kwargs.get(count), int) or by not in kwargs:
        return None
    n = kwargs[count]
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return f"{by} must divide {count}={n}: one of {', '.join(map(str, divisors))}"


def _broadcast_shapes(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
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


def _tuples(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def layer_kwargs(op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A layer's arguments as its class takes them: lists as tuples for torch's layers, as
    lists for custom ones (annotated ``list[int]``, as the docs ask)."""
    if plugins.get(op) is not None:
        return {k: list(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return _tuples(kwargs)


def _label(node: Node) -> str:
    body = node.body
    kind = body.op if isinstance(body, Layer) else (body.block or body.kind)
    path = node.source.path
    if path and path[-1] == kind:
        path = path[:-1]
    return f"{format_path(path)} {kind}"



def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
