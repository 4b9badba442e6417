"""The locked form of a spec: what ``nnspec compile SPEC`` prints.

The model exactly as it was built, written back in the spec language: every ``auto`` filled in,
variables evaluated, blocks expanded into the containers they stand for, repeats written out,
graph inputs named on every node.  A user can diff two locked specs to see what changed in the
model, and share one knowing it compiles to the same state_dict.  Blocks are expanded rather than
kept with resolved arguments: a locked spec must say everything without the reader evaluating
anything.  Training sections are kept as written: their own text, comments included, when the
spec is block YAML.
"""

from __future__ import annotations

import io
import itertools
import textwrap
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import FoldedScalarString

from nnspec import catalogue
from nnspec.compiler.emit.names import doc_text
from nnspec.compiler.ir import Graph, Layer, Net, Node, Step, TensorInfo
from nnspec.errors import SpecError
from nnspec.lang.loader import Document, loads
from nnspec.lang.overrides import apply_overrides
from nnspec.lang.spec import Spec

TRAINING = ("data", "init", "weights", "freeze", "loss", "optimizer", "scheduler", "train",
            "log")
FLOW_WIDTH = 76  # a mapping or list that reads shorter than this in flow style stays on one line


def locked_yaml(graph: Graph, spec: Spec, overrides: Sequence[str] = ()) -> str:
    """The shape-inferred ``graph`` (from ``spec``) as a spec that needs no evaluation.

    Training sections come from the spec's text, comments and all; with ``overrides`` (the same
    ones ``graph`` was built with) they are written out with the overridden values instead.
    """
    out = CommentedMap()
    out["nnspec"] = spec.version
    out["name"] = graph.name
    if graph.description:
        out["description"] = _text(graph.description)
    out["input"] = _inputs(graph.inputs)
    out["model"] = _model(graph.root)
    doc = _document(spec, overrides)
    if doc is None:
        return _header(graph) + _dump(out)
    raw = doc.data if isinstance(doc.data, dict) else {}
    training = {key: raw[key] for key in TRAINING if raw.get(key) is not None}
    verbatim = None if doc.overrides else _verbatim(doc, training)
    if verbatim is None:
        out.update((key, _fit(value)) for key, value in training.items())
    return _header(graph) + _dump(out) + (verbatim or "")


def _document(spec: Spec, overrides: Sequence[str]) -> Document | None:
    """The spec's checked document (loaded once, by the check pass), else its text loaded."""
    if isinstance(spec.document, Document) and (not overrides or
                                                spec.document.overrides == tuple(overrides)):
        return spec.document
    if not spec.source_text:
        return None
    doc = loads(spec.source_text, spec.file)
    return apply_overrides(doc, overrides) if overrides else doc


def _verbatim(doc: Document, training: dict[str, Any]) -> str | None:
    """The training sections cut from the spec's own text, comments and all, when it is block
    YAML and the cut reads back as the same data; None otherwise (they are dumped instead)."""
    if not training or doc.file.endswith(".json") or doc.text.lstrip().startswith(("{", "[")):
        return None
    starts = sorted((loc.line, key) for key in doc.data
                    if (loc := doc.key_locations.get((key,))) and loc.column == 1)
    if len(starts) != len(doc.data):
        return None
    lines = doc.text.splitlines(keepends=True)
    ends = [line for line, _ in starts[1:]] + [len(lines) + 1]
    text = "".join("".join(lines[start - 1:end - 1]).rstrip() + "\n"
                   for (start, key), end in zip(starts, ends, strict=True) if key in training)
    try:
        same = loads(text, doc.file).data == training
    except SpecError:
        same = False
    return text if same else None


def _header(graph: Graph) -> str:
    return (f"# The locked form of {doc_text(graph.file)}, written by `nnspec compile`:\n"
            "# every auto filled in, variables evaluated, blocks and repeats expanded.\n"
            f"# source sha256: {doc_text(graph.sha256)}\n")


def _dump(data: CommentedMap) -> str:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096  # _fit keeps lines short; ruamel's own wrapping leaves trailing spaces
    yaml.indent(mapping=2, sequence=4, offset=2)
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _text(text: str) -> Any:
    """A long one-line text folded over several lines (``>-``), as a person writes it; any
    other text as ruamel quotes it, since folding would change its spaces or line breaks."""
    simple = text.isprintable() and text == text.strip() and "  " not in text
    if not simple or len(text) <= FLOW_WIDTH:
        return text
    folded = FoldedScalarString(text)
    lines = textwrap.wrap(text, FLOW_WIDTH + 10, break_long_words=False, break_on_hyphens=False)
    ends = itertools.accumulate(len(line) + 1 for line in lines[:-1])
    folded.fold_pos = [end - 1 for end in ends]  # the space after each line
    return folded


def _inputs(inputs: dict[str, TensorInfo]) -> Any:
    def one(info: TensorInfo) -> Any:
        if info.dtype == "float32":
            return _fit(list(info.shape))
        return _fit({"shape": list(info.shape), "dtype": info.dtype})

    if list(inputs) == ["input"]:
        return one(inputs["input"])
    return CommentedMap((name, one(info)) for name, info in inputs.items())


def _model(net: Net) -> Any:
    if net.kind == "sequential":
        return CommentedSeq(_item(n, net) for n in net.nodes)
    if net.kind == "ordered":
        return CommentedMap((n.name, _item(n, net)) for n in net.nodes)
    return _container(net)


def _container(net: Net) -> CommentedMap:
    """``{graph: ..., inputs, outputs}``, ``{module_list: ..., forward}``, ``{sequential: ...}``."""
    out = CommentedMap()
    if net.kind == "graph":
        out["graph"] = CommentedMap((n.name, _item(n, net)) for n in net.nodes)
        out["inputs"] = _fit(list(net.inputs))
        out["outputs"] = _fit(list(net.outputs))
    elif net.kind == "module_list":
        out["module_list"] = CommentedSeq(_item(n, net) for n in net.nodes)
        out["forward"] = _fit([_step(s, int) for s in net.order] or
                              list(range(len(net.nodes))))
    elif net.kind == "module_dict":
        out["module_dict"] = CommentedMap((n.name, _item(n, net)) for n in net.nodes)
        out["forward"] = _fit([_step(s, str) for s in net.order] or
                              [n.name for n in net.nodes])
    else:
        out["sequential"] = _model(net)
    return out


def _step(step: str | Step, member: type) -> Any:
    """A forward step as written: a member, or ``{add: [0, 1]}``."""
    if isinstance(step, str):
        return member(step)
    return {step.op: [member(m) for m in step.members]}


def _item(node: Node, parent: Net) -> Any:
    body = node.body
    wired = parent.kind == "graph"
    if node.shares is not None:
        return _fit({"reuse": node.shares, "in": _names(node.inputs)})
    if isinstance(body, Net):
        container = _container(body)
        if wired:
            container["in"] = _names(node.inputs)
        return container
    if wired and body.kind == "op" and not body.kwargs and len(node.inputs) > 1:
        return _fit({body.op: list(node.inputs)})  # {add: [bn2, input]}
    if not wired and not body.kwargs:
        return body.op  # ReLU
    item: dict[str, Any] = {body.op: _ordered_args(body)}
    if wired and node.inputs:  # a free tensor reads none
        item["in"] = _names(node.inputs)
    if parent.kind in ("sequential", "module_list"):
        return CommentedMap((k, _fit(v)) for k, v in item.items())  # - Conv2d: {...}
    return _fit(item)


def _ordered_args(layer: Layer) -> dict[str, Any]:
    """Arguments in the order of torch's signature, so in_channels comes first again."""
    keys = catalogue.in_signature_order(layer.op, layer.kwargs)
    return {k: layer.kwargs[k] for k in keys}


def _names(names: tuple[str, ...]) -> Any:
    return names[0] if len(names) == 1 else list(names)


def _flow(value: dict[str, Any] | list[Any]) -> Any:
    """A mapping or list written on one line: ``{out_channels: 6, kernel_size: 5}``."""
    out = CommentedMap(value) if isinstance(value, dict) else CommentedSeq(value)
    out.fa.set_flow_style()
    return out


def _fit(value: Any) -> Any:
    """Plain data as ruamel containers: on one line when it is short, as blocks otherwise
    (inner parts again on one line where they fit), as a person lays out a spec."""
    if isinstance(value, dict):
        if len(_flow_text(value)) <= FLOW_WIDTH:
            return _flow({k: _fit(v) for k, v in value.items()})
        return CommentedMap((k, _fit(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        if len(_flow_text(value)) <= FLOW_WIDTH:
            return _flow([_fit(v) for v in value])
        return CommentedSeq(_fit(v) for v in value)
    return value


def _flow_text(value: Any) -> str:
    """Roughly how ``value`` reads in YAML flow style (to decide whether it fits a line)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow_text(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)
