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
from nnspec.catalogue.shape_rules import BATCH, NO_RULE, ShapeProblem, product
from nnspec.compiler.inplace import check_inplace
from nnspec.compiler.ir import Graph, Layer, Net, Node, TensorInfo, Value, show
from nnspec.errors import Collector, format_path

OTHER_BATCH = 5  # a second batch size, to find where the batch sits in an output


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
    if not inferrer.errors.problems:  # the blocks only inference could expand, judged now
        check_inplace(root, lambda node, message, hint: inferrer.errors.add(
            node.source.location, node.source.path, message, hint))
    inferrer.errors.raise_if_any()
    return replace(graph, root=root, params=inferrer.params)


def meta_tensor(info: TensorInfo, batch: int = BATCH) -> Any:
    import torch

    dtype = catalogue.torch_dtype(info.dtype)
    return torch.empty(info.full(batch), dtype=dtype, device="meta")


def describe(value: Any, batched: bool = True, fold: int = 1, other: Any = None) -> Value:
    """A meta tensor (or tuple) as values; ``batched``: whether its inputs had a batch, and
    ``fold`` how many rows of it each sample has (dimensions folded into the batch).

    ``other`` is the same output for a batch of ``OTHER_BATCH``: the dimension whose size
    changed is the batch, wherever it is (an LSTM's h and c: [num_layers, N, hidden]).
    Without it, a leading dimension of ``BATCH`` (times ``fold``) is taken for the batch.
    """
    import torch

    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        shape = tuple(value.shape)
        if not batched:
            return TensorInfo(shape, dtype, batched=False)
        if other is not None:
            moved = [i for i, (a, b) in enumerate(zip(shape, other.shape, strict=False))
                     if a != b]
            if len(moved) != 1 or len(shape) != other.dim():
                return TensorInfo(shape, dtype, batched=False)
            dim = moved[0]
            rows = shape[dim] // BATCH if shape[dim] % BATCH == 0 else 1
            return TensorInfo((*shape[:dim], *shape[dim + 1:]), dtype, fold=rows, batch_dim=dim)
        if shape and shape[0] == BATCH * fold:
            return TensorInfo(shape[1:], dtype, fold=fold)
        return TensorInfo(shape[1:] if shape and shape[0] == BATCH else shape, dtype)
    if isinstance(value, tuple | list):
        others = other if isinstance(other, tuple | list) else [None] * len(value)
        return tuple(describe(v, batched, fold, o)
                     for v, o in zip(value, others, strict=False))
    raise TypeError(f"unexpected output {type(value).__name__}")


def to_meta(value: Value, batch: int = BATCH) -> Any:
    if isinstance(value, TensorInfo):
        return meta_tensor(value, batch)
    return tuple(to_meta(v, batch) for v in value)


def probe(fn: Any, inputs: list[Value], batched: bool = True) -> Value:
    """What ``fn`` returns for meta ``inputs``: run once, and where it returns several
    tensors or reads a batch that is not first, again at another batch size to find each
    output's batch dimension."""
    out = fn(*[to_meta(v) for v in inputs])
    fold = _fold(inputs)
    if not isinstance(out, tuple | list) and not _batch_moved(inputs):
        return describe(out, batched, fold)
    return describe(out, batched, fold, fn(*[to_meta(v, OTHER_BATCH) for v in inputs]))


def _batch_moved(values: list[Value]) -> bool:
    return any(v.batch_dim if isinstance(v, TensorInfo) else _batch_moved(list(v))
               for v in values)


def meta_device() -> Any:
    """A context that builds modules on the meta device without running their initializers.

    On meta tensors an initializer changes nothing, but torch runs it through its Python
    references (a second of imports on first use, then per-call overhead): a mode that returns
    the tensor unchanged gives the same module, faster.
    """
    import torch
    from torch.overrides import TorchFunctionMode

    class _Meta(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            if func in _initializers():
                return args[0] if args else (kwargs or {}).get("tensor")
            with torch.device("meta"):
                return func(*args, **(kwargs or {}))

    return _Meta()


_INITIALIZERS: set[Any] = set()


def _initializers() -> set[Any]:
    """nn.init's in-place initializers and the tensor methods they end in."""
    if not _INITIALIZERS:
        import torch
        from torch.nn import init

        _INITIALIZERS.update(getattr(init, name) for name in dir(init)
                             if name.endswith("_") and not name.startswith("_"))
        _INITIALIZERS.update(getattr(torch.Tensor, name) for name in
                             ("normal_", "uniform_", "zero_", "fill_", "bernoulli_",
                              "exponential_", "geometric_", "log_normal_", "cauchy_",
                              "random_"))
    return _INITIALIZERS


class _Inferrer:
    def __init__(self) -> None:
        self.errors = Collector()
        self.params = 0
        # (op, arguments, inputs) -> (parameters, output): a repeated layer is run once
        self.memo: dict[str, tuple[int, Value]] = {}
        # (id of a resolved container, its inputs) -> (it, inferred, output, parameters)
        self.nets: dict[tuple[int, Any], tuple[Net, Net, Value, int]] = {}

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
            froms = [where[ref] for ref in node.inputs]
            new = self.node(node, args, froms) if node.shares is None else self.reuse(
                node, done[node.shares], args, froms)
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
        for step, members in net.forward_steps():
            outs, labels = [], []
            for node in members:
                # a member the forward uses again is one module: its second use is checked
                # against the arguments its first use inferred, never inferred afresh
                first = done.get(node.name)
                new = self.node(first or node, [value], [source]) if first is None else \
                    self.reuse(node.with_(out=None), first, [value], [source])
                if new.out is None:
                    return net, value
                done.setdefault(node.name, new)
                outs.append(new.out)
                labels.append(_label(new))
            if step is None:
                value, source = outs[0], labels[0]
                continue
            combined = self.op(Node(step.op, Layer(step.op, "op", {}), (), step.source),
                               Layer(step.op, "op", {}), outs, labels)
            if combined.out is None:
                return net, value
            value, source = combined.out, f"{format_path(step.source.path)} {step.op}"
        nodes = tuple(done.get(n.name, n) for n in net.nodes)
        return replace(net, nodes=nodes), value

    def reuse(self, node: Node, target: Node, inputs: list[Value], sources: list[str]) -> Node:
        """A node that calls ``target``'s module again: its inferred layer (or net), with the
        sizes of its first use, must take these inputs; its parameters are counted once."""
        params, before = self.params, len(self.errors.problems)
        done = self.node(node.with_(body=target.body), inputs, sources)
        self.params = params
        found = self.errors.problems[before:]
        if not found:
            return done
        del self.errors.problems[before:]
        self.fail(node, f"reusing the module of '{target.name}': {found[0].message}",
                  f"a reused module keeps the sizes of its first use "
                  f"('{target.name}', {format_path(target.source.path)}); reuse it on inputs "
                  "of the same shape")
        return node

    def node(self, node: Node, inputs: list[Value], sources: list[str]) -> Node:
        if isinstance(node.body, Net) and node.body.expand is not None:  # reads its input
            net, problems = node.body.expand(inputs)
            self.errors.problems.extend(problems)
            return node if problems else self.node(node.with_(body=net), inputs, sources)
        if isinstance(node.body, Net):
            return self.subnet(node, node.body, inputs, sources)
        layer = node.body
        if layer.kind == "op":
            return self.op(node, layer, inputs, sources)
        if layer.kind == "tensor":
            return self.free_tensor(node, layer)
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
        entry = catalogue.layers()[layer.op]
        counter = entry.traits.count  # MACs from the input shapes
        given = {**{k: p.default for k, p in entry.params.items()}, **kwargs}
        return node.with_(body=replace(layer, kwargs=kwargs), out=result,
                          macs=counter(given, tensors, result) * _fold(list(tensors))
                          if counter else None)

    def subnet(self, node: Node, net: Net, inputs: list[Value], sources: list[str]) -> Node:
        """A container's shapes; the copies of a repeat share one body (resolve), which is
        inferred once per input it receives and reused, with its parameter count."""
        key: tuple[int, Any] | None = (id(net), tuple(inputs))
        try:
            hash(key)
        except TypeError:
            key = None
        known = self.nets.get(key) if key is not None else None
        if known is not None and known[0] is net:
            _, body, out, params = known
            self.params += params
            return node.with_(body=body, out=out)
        before = self.params
        body, out = self.net(net, inputs, sources)
        if self.errors.problems:
            return node
        if key is not None:
            self.nets[key] = (net, body, out, self.params - before)  # net: keeps its id taken
        return node.with_(body=body, out=out)

    def free_tensor(self, node: Node, layer: Layer) -> Node:
        """A parameter or buffer: its whole shape, no batch; a parameter counts its size."""
        from nnspec.catalogue.free_tensors import constant_problem, dtype_of, problem

        shape = tuple(layer.kwargs["shape"])
        unfit = constant_problem(layer.kwargs)
        if unfit:
            self.fail(node, unfit, "the values are laid out row by row and reshaped to "
                      "shape, which must hold exactly as many")
            return node
        found = problem(layer.op, layer.kwargs)
        if found is not None:
            self.fail(node, *found)
            return node
        if layer.op == "parameter":
            self.params += product(shape)
        dtype = dtype_of(layer.kwargs)
        return node.with_(out=TensorInfo(shape, catalogue.DTYPE_ALIASES.get(dtype, dtype),
                                         batched=False))

    def op(self, node: Node, layer: Layer, inputs: list[Value], sources: list[str]) -> Node:
        key = _memo_key(layer.op, layer.kwargs, inputs)
        if key is not None and key in self.memo:  # an op memoises its MACs, not parameters
            macs, known = self.memo[key]
            return node.with_(out=known, macs=macs)
        done = self.op_once(node, layer, inputs, sources)
        out = done.out
        if key is not None and out is not None and done is not node:
            self.memo[key] = (done.macs or 0, out)
        return done

    def op_once(self, node: Node, layer: Layer, inputs: list[Value],
                sources: list[str]) -> Node:
        entry = catalogue.ops()[layer.op]
        traits, code = entry.traits, entry.traits.code
        assert code is not None
        moved = _batch_moved(inputs)  # rules and checks count the batch as dimension 0
        if traits.check and isinstance(inputs[0], TensorInfo) and inputs[0].batched and \
                not moved:
            problem = traits.check(layer.op, layer.kwargs, inputs, sources)
            if problem:
                self.fail(node, *problem)
                return node
        try:
            ruled = traits.shape(layer.op, layer.kwargs, inputs, sources) if traits.shape \
                and not moved else NO_RULE
            value = ruled if ruled is not NO_RULE else probe(
                lambda *xs: code.apply(*xs, **layer.kwargs), inputs, _any_batched(inputs))
        except ShapeProblem as problem:
            self.fail(node, problem.message, problem.hint)
            return node
        except Exception as exc:
            shapes = ", ".join(f"{show(v)} from {s}" for v, s in zip(inputs, sources,
                                                                        strict=False))
            verb = "cannot combine" if len(inputs) > 1 else "cannot take"
            self.fail(node, f"{layer.op} {verb} {shapes}: {_first_line(exc).rstrip('.')}",
                      traits.hint)
            return node
        macs = traits.count(layer.kwargs, inputs, value) * _fold(inputs) if traits.count \
            else None
        return node.with_(out=value, macs=macs)

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
                explain = entry.traits.mismatch_hint
                hint = (explain and explain(name, kwargs[name], shape)) or (
                    f"set {name}: {actual}, or leave it out to infer it")
                self.fail(node, f"{layer.op} expects {name}={kwargs[name]}, receives "
                          f"{show(inputs[index])} from {sources[index]}", hint)
                return None
        return kwargs

    def run(self, node: Node, op: str, kwargs: dict[str, Any], inputs: list[TensorInfo],
            sources: list[str]) -> Value | None:
        key = _memo_key(op, kwargs, inputs)
        if key is not None and key in self.memo:
            params, known = self.memo[key]
            self.params += params
            return known
        before = self.params
        out = self.run_once(node, op, kwargs, inputs, sources)
        if key is not None and out is not None:
            self.memo[key] = (self.params - before, out)
        return out

    def run_once(self, node: Node, op: str, kwargs: dict[str, Any], inputs: list[TensorInfo],
                 sources: list[str]) -> Value | None:
        traits = catalogue.layers()[op].traits
        if traits.unbuilt and not _batch_moved(list(inputs)):  # no weights: the rule suffices
            problem = traits.check(op, kwargs, list(inputs), sources) if traits.check else None
            ruled = self.rule(node, op, kwargs, inputs, sources) if not problem else NO_RULE
            if ruled is not NO_RULE:
                return ruled  # type: ignore[return-value]
        try:
            with meta_device():
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
        problem = traits.check(op, kwargs, list(inputs), sources) if traits.check else None
        if problem:
            self.fail(node, *_free_tensor_problem(problem, inputs, sources))
            return None
        ruled = self.rule(node, op, kwargs, inputs, sources) if not _batch_moved(
            list(inputs)) else NO_RULE
        if ruled is not NO_RULE:
            return ruled  # type: ignore[return-value]
        given: list[Value] = [*inputs] * (traits.repeat_input if len(inputs) == 1 else 1)
        try:
            return probe(module, given, _any_batched(list(inputs)))
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
        """The output by the layer's shape rule, or NO_RULE to run it on the meta device.

        Rules cover the layers whose meta kernels live in torch's Python references (about a
        second to import on first use); every other layer is run, so torch has the last word.
        """
        traits = catalogue.layers()[op].traits
        rule = traits.shape  # a rule of several inputs is for a layer that takes several
        if rule is None or (len(inputs) != 1 and traits.inputs[1] == 1) or \
                kwargs.get("return_indices"):
            return NO_RULE
        try:
            return rule(op, kwargs, list(inputs), sources)
        except ShapeProblem as problem:
            self.fail(node, problem.message, problem.hint)
            return None

    def fail(self, node: Node, message: str, hint: str | None = None) -> None:
        self.errors.add(node.source.location, node.source.path, message, hint)


def _free_tensor_problem(problem: tuple[str, str | None], inputs: list[TensorInfo],
                         sources: list[str]) -> tuple[str, str | None]:
    """A layer's rank check failed on a free tensor: its shape has no N, which the message
    would seem to contradict ("expects [N, C, H, W], receives [1, 3, 1, 1]"): say why."""
    free = next((i for i, v in enumerate(inputs) if not v.batched), None)
    if free is None:
        return problem
    name = sources[free].split()[0].rsplit(".", 1)[-1]
    return (f"{problem[0]}: a free tensor, whose shape is the whole tensor's, with no batch "
            "dimension N",
            f"a layer reads batched values: give it the batch first with {{expand_batch: "
            f"[{name}, input]}}, its first size being 1, or use it in an op: add, mul, matmul")


def _memo_key(op: str, kwargs: dict[str, Any], inputs: list[Any]) -> str | None:
    import json

    try:
        return json.dumps([op, kwargs, [_plain(v) for v in inputs]], sort_keys=True)
    except (TypeError, ValueError):
        return None  # an argument JSON cannot write: not remembered


def _plain(value: Value) -> Any:
    if isinstance(value, TensorInfo):
        return [value.shape, value.dtype, value.batched, value.fold, value.batch_dim]
    return [_plain(v) for v in value]


def _runtime_hint(op: str, inputs: list[TensorInfo], sources: list[str],
                  exc: Exception) -> str | None:
    """A fix for what torch refused on the meta device."""
    text = str(exc)
    if any(not v.dtype.startswith("int") for v in inputs) and \
            catalogue.layers()[op].traits.token_ids:
        first = sources[0]
        if first.startswith("input "):
            return (f"{op} takes integer token ids: declare the input as "
                    f"{{shape: {list(inputs[0].shape)}, dtype: int64}}")
        return f"{op} takes integer token ids (int64), not the float output of {first}"
    if "too small" in text or "can't be greater" in text or "too large" in text:
        return ("the input is too small for this window: pad it (padding), use a smaller "
                "kernel_size or stride, or remove a downsampling layer before it")
    return None


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


def _any_batched(values: list[Value]) -> bool:
    """Whether an op's result has a batch: any of its inputs has one (or it has none)."""
    flat: list[TensorInfo] = []
    for value in values:
        flat += [value] if isinstance(value, TensorInfo) else [
            v for v in value if isinstance(v, TensorInfo)]
    return not flat or any(v.batched for v in flat)


def _fold(values: list[Value]) -> int:
    """The rows per sample of the first batched input's batch dimension (1: just the batch)."""
    for value in values:
        found = [value] if isinstance(value, TensorInfo) else [
            v for v in value if isinstance(v, TensorInfo)]
        for info in found:
            if info.batched:
                return info.fold
    return 1
