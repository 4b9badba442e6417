"""The build pass: shape-annotated ``Graph`` -> ``nn.Module``.

Containers become exactly what the spec asked for: ``nn.Sequential`` (plain or OrderedDict),
``ListNet``/``DictNet`` (an nn.ModuleList / nn.ModuleDict with the stated forward) or, for
graphs, a ``torch.fx.GraphModule`` whose generated forward is readable (``print(model.code)``)
and is the very code that runs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import fx, nn

from nnspec import catalogue, plugins
from nnspec.compiler.ir import Graph, Layer, Net, Node, Step
from nnspec.compiler.modules import DictNet, ListNet, Op
from nnspec.compiler.shapes import layer_kwargs
from nnspec.errors import Location, SpecError

DEFAULT_MAX_PARAMS = 2_000_000_000


def build(graph: Graph, *, max_params: int = DEFAULT_MAX_PARAMS) -> nn.Module:
    if graph.params is not None and graph.params > max_params:
        raise SpecError.at(Location(graph.file, 1, 1), ("model",),
                           f"the model has {graph.params:,} parameters, over the limit of "
                           f"{max_params:,}", "raise train.max_params if you mean it")
    return _net(graph.root, graph.name, top=True)


def _net(net: Net, name: str, top: bool = False) -> nn.Module:
    if net.kind == "graph":
        return _graph_module(net, net.block or name)
    children = [(node.name, _module(node)) for node in net.nodes]
    if net.kind == "sequential":
        return nn.Sequential(*(m for _, m in children))
    if net.kind == "ordered":
        return nn.Sequential(OrderedDict(children))
    if net.kind == "module_list":
        return ListNet((m for _, m in children), [_step(s, int) for s in net.order])
    return DictNet(dict(children), [_step(s, str) for s in net.order])


def _step(step: str | Step, member: type) -> Any:
    """A forward step as ListNet/DictNet take it: a member, or (op, members)."""
    if isinstance(step, str):
        return member(step)
    return step.op, tuple(member(m) for m in step.members)


def _module(node: Node) -> nn.Module:
    body = node.body
    if isinstance(body, Net):
        return _net(body, node.name)
    if body.kind == "op":
        return Op(body.op, **body.kwargs)
    return _layer(body)


def _layer(layer: Layer) -> nn.Module:
    module: nn.Module = plugins.layer_class(layer.op)(**layer_kwargs(layer.op, layer.kwargs))
    return module


def _graph_module(net: Net, class_name: str) -> fx.GraphModule:
    root = nn.Module()
    graph = fx.Graph()
    env: dict[str, fx.Node] = {name: graph.placeholder(name) for name in net.inputs}
    for node in net.topological():
        args = [env[ref] for ref in node.inputs]
        body = node.body
        if isinstance(body, Layer) and body.kind == "op":
            env[node.name] = _call_op(graph, body, args)
            continue
        if isinstance(body, Layer) and body.kind == "tensor":
            _register_tensor(root, node.name, body)
            env[node.name] = graph.get_attr(node.name)
            continue
        if node.shares is None:  # a reuse calls the module its target registered
            root.add_module(node.name, _module(node))
        if isinstance(body, Layer) and len(args) == 1:
            args = args * catalogue.layers()[body.op].traits.repeat_input
        env[node.name] = graph.call_module(node.shares or node.name, tuple(args))
    outputs = [env[o] for o in net.outputs]
    graph.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
    graph.lint()
    module = fx.GraphModule(root, graph, class_name=_class_name(class_name))
    for name in root._non_persistent_buffers_set:  # GraphModule copies buffers as persistent
        module.register_buffer(name, getattr(root, name), persistent=False)
    return module


def _register_tensor(root: nn.Module, name: str, layer: Layer) -> None:
    """A free tensor: the module's own parameter or buffer, under the node's name."""
    from nnspec.catalogue.free_tensors import make

    tensor = make(layer.kwargs)
    if layer.op == "parameter":
        root.register_parameter(name, nn.Parameter(
            tensor, requires_grad=layer.kwargs.get("requires_grad", True)))
    else:
        root.register_buffer(name, tensor, persistent=layer.kwargs.get("persistent", True))


def _call_op(graph: fx.Graph, layer: Layer, args: list[fx.Node]) -> fx.Node:
    code = catalogue.ops()[layer.op].traits.code
    assert code is not None
    if code.fold is not None:  # a constant among the inputs ({mul: [x, 0.5]}) folds too
        scalar = layer.kwargs.get("scalar")
        return _fold(graph, code.fold, [*args, *([] if scalar is None else [scalar])])
    target, call_args, kwargs = code.call(args, layer.kwargs)
    return graph.call_function(target, call_args, kwargs)


def _fold(graph: fx.Graph, fn: Any, args: list[Any]) -> fx.Node:
    out = args[0]
    for arg in args[1:]:
        out = graph.call_function(fn, (out, arg))
    return out


def _class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) or "Model"
