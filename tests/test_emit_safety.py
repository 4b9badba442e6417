"""Emitted code is injection-proof on its own (THREATS.md, "Emitted code").

Spec names and descriptions are validated upstream too; these tests build ir objects directly,
so they hold whatever the earlier passes let through.
"""

from __future__ import annotations

import ast
from typing import Any

import pytest
import torch

from nnspec.compiler.build import build
from nnspec.compiler.emit.emitter import emit
from nnspec.compiler.emit.names import literal
from nnspec.compiler.emit.safety import EmitCheckError, check_source
from nnspec.compiler.ir import Graph, Layer, Net, Node, TensorInfo
from nnspec.errors import Location, SpecError
from nnspec.lang.model_ast import Source
from tests.parity import assert_same_model, emitted_module, model_class_name

WHERE = Source(Location("hostile.yaml", 7, 3), ("model", "node"))


def _node(name: str, body: Layer | Net, inputs: tuple[str, ...] = ()) -> Node:
    return Node(name, body, inputs, WHERE, TensorInfo((4,)))


def _linear() -> Layer:
    return Layer("Linear", "layer", {"in_features": 4, "out_features": 4})


def _graph(root: Net, name: str = "model", description: str = "",
           file: str = "spec.yaml") -> Graph:
    return Graph(name, description, {"input": TensorInfo((4,))}, root, file, "0" * 64)


def _sequential(*nodes: Node, kind: str = "ordered") -> Net:
    return Net(kind, nodes, WHERE)


def _wired(*nodes: Node, outputs: tuple[str, ...]) -> Net:
    return Net("graph", nodes, WHERE, ("input",), outputs)


def _instantiate(source: str) -> torch.nn.Module:
    module: torch.nn.Module = emitted_module(source)[model_class_name(source)]()
    return module


HOSTILE_TEXT = {
    "triple-quote": 'x"""\nimport os\nos.system("echo pwned")\n"""',
    "single-triple-quote": "x'''\nimport os",
    "carriage-return": "a\rimport os",
    "trailing-backslash": "ends with \\",
    "escape-sequence": "\\N{BULLET} \\x41",
    "nul": "a\x00b",
    "bidi-override": "user\u202e\u2066 evil",
    "line-separator": "a\u2028import os",
    "next-line": "a\x85import os",
    "fullwidth": "ｉｍｐｏｒｔ ｏｓ",
    "format-braces": "{__import__('os')}",
}


def _printable(source: str) -> bool:
    return all(char == "\n" or char.isprintable() for char in source)


@pytest.mark.parametrize("field", ["name", "description", "file"])
@pytest.mark.parametrize("text", HOSTILE_TEXT.values(), ids=HOSTILE_TEXT.keys())
def test_hostile_text_stays_inside_the_docstring(field: str, text: str) -> None:
    graph = _graph(_sequential(_node("fc", _linear())), **{field: text})
    source = emit(graph)
    tree = ast.parse(source)
    assert _printable(source)
    assert [type(s).__name__ for s in tree.body] == ["Expr", "ImportFrom", "ClassDef"]
    if field != "name":
        assert " ".join(text.split()) in " ".join((ast.get_docstring(tree) or "").split())
    model = _instantiate(source)
    assert list(model.state_dict()) == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("name", [
    "class", "lambda", "match", "case", "_", "__class__", "__init__", "ｆｃ", "fc.1",
    "a b", "x; import os", "fc\nimport os", "", "forward", "training", "state_dict", "_modules",
    "eval"], ids=repr)
def test_graph_child_names_that_cannot_be_attributes_are_located_errors(name: str) -> None:
    graph = _graph(_wired(_node(name, _linear(), ("input",)), outputs=(name,)))
    with pytest.raises(SpecError) as info:
        emit(graph)
    problem = info.value.problems[0]
    assert problem.location == WHERE.location
    assert f"cannot emit Python for a module named {name!r}" in problem.message


@pytest.mark.parametrize("name", ["fc.1", "a b", "x; import os", "", "__class__", "ｆｃ"],
                         ids=repr)
def test_keys_of_named_containers_are_checked_too(name: str) -> None:
    graph = _graph(_sequential(_node(name, _linear())))
    with pytest.raises(SpecError, match="cannot emit Python for a module named"):
        emit(graph)


def test_named_children_that_are_python_keywords_use_the_ordereddict_form() -> None:
    nodes = (_node("class", _linear()), _node("match", Layer("ReLU", "layer", {})),
             _node("lambda", _linear()))
    graph = _graph(_sequential(*nodes), name="ordered_dict")
    source = emit(graph)
    assert '("class", nn.Linear(4, 4))' in source
    assert "class OrderedDict(" not in source
    assert_same_model(build(graph), _instantiate(source), [torch.randn(2, 4)])


def test_node_names_that_match_module_globals_do_not_shadow_them() -> None:
    nodes = (_node("torch", _linear(), ("input",)), _node("nn", _linear(), ("torch",)),
             _node("x", Layer("cat", "op", {"dim": 1}), ("torch", "nn")),
             _node("super", Layer("Linear", "layer", {"in_features": 8, "out_features": 2}),
                   ("x",)))
    graph = _graph(_wired(*nodes, outputs=("super",)))
    source = emit(graph)
    assert "self.torch = nn.Linear" in source
    assert_same_model(build(graph), _instantiate(source), [torch.randn(2, 4)])


@pytest.mark.parametrize("name", ["import os", "1st", "class", "x-y", "ｘ"], ids=repr)
def test_graph_input_names_become_safe_parameters(name: str) -> None:
    root = Net("graph", (_node("fc", _linear(), (name,)),), WHERE, (name,), ("fc",))
    graph = Graph("m", "", {name: TensorInfo((4,))}, root, "spec.yaml", "0" * 64)
    source = emit(graph)
    forward = next(f for f in ast.walk(ast.parse(source))
                   if isinstance(f, ast.FunctionDef) and f.name == "forward")
    param = forward.args.args[1].arg
    assert param.isascii() and param.isidentifier()
    assert _instantiate(source)(torch.randn(2, 4)).shape == (2, 4)


HOSTILE_VALUES: dict[str, Any] = {
    "quotes-and-newlines": 'tanh"""\nimport os\n',
    "single-quote": "it's",
    "both-quotes": "it's \"x\"",
    "backslashes": "\\\\n\\",
    "unicode": "ünïcödé\u202e",
    "nested": [1, [2, 3], {"k": "v'\""}],
}


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_argument_values_are_written_as_literals_of_the_same_value(value: Any) -> None:
    graph = _graph(_sequential(_node("act", Layer("GELU", "layer", {"approximate": value}))))
    source = emit(graph)
    keywords = [k for k in ast.walk(ast.parse(source)) if isinstance(k, ast.keyword)]
    assert [k.arg for k in keywords] == ["approximate"]
    assert ast.literal_eval(keywords[0].value) == _as_tuples(value)
    assert _printable(source)


@pytest.mark.parametrize(("value", "text"), [(3e38, "3e38"), (1e16, "1e16"), (1e-05, "1e-05"),
                                             (-2.5e300, "-2.5e300"), (0.1, "0.1")])
def test_floats_are_written_as_ruff_format_writes_them(value: float, text: str) -> None:
    assert literal(value) == text
    assert float(text) == value


def _as_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_tuples(v) for k, v in value.items()}
    return value


class _EvilInt(int):
    def __repr__(self) -> str:
        return "__import__('os').system('echo pwned')"


class _EvilStr(str):
    def __str__(self) -> str:
        return "__import__('os')"

    def __repr__(self) -> str:
        return "__import__('os')"


@pytest.mark.parametrize("value", [_EvilInt(4), _EvilStr("tanh")], ids=["int", "str"])
def test_a_value_cannot_choose_its_own_source_text(value: Any) -> None:
    graph = _graph(_sequential(_node("act", Layer("GELU", "layer", {"approximate": value}))))
    source = emit(graph)
    assert "__import__" not in source
    keyword = next(k for k in ast.walk(ast.parse(source)) if isinstance(k, ast.keyword))
    assert ast.literal_eval(keyword.value) == (4 if isinstance(value, int) else "tanh")


def test_a_graph_op_argument_cannot_choose_its_source_text() -> None:
    nodes = (_node("a", _linear(), ("input",)),
             _node("joined", Layer("cat", "op", {"dim": _EvilInt(1)}), ("a", "input")))
    source = emit(_graph(_wired(*nodes, outputs=("joined",))))
    assert "__import__" not in source and "torch.cat([a, input], dim=1)" in source


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}, b"bytes", object()],
                         ids=["nan", "inf", "set", "bytes", "object"])
def test_values_that_are_not_plain_data_are_refused(value: Any) -> None:
    graph = _graph(_sequential(_node("act", Layer("GELU", "layer", {"approximate": value}))))
    with pytest.raises(ValueError, match="cannot emit"):
        emit(graph)


@pytest.mark.parametrize("layer", [
    Layer("os.system", "layer", {}), Layer("__import__", "layer", {}),
    Layer("Linear", "layer", {"in_features); import os; (": 1}),
    Layer("exec", "op", {}),
], ids=["dotted-layer", "dunder-layer", "argument-name", "unknown-op"])
def test_names_outside_the_catalogue_are_refused(layer: Layer) -> None:
    with pytest.raises(ValueError, match="cannot emit"):
        emit(_graph(_sequential(_node("bad", layer), kind="sequential")))


# -- the final gate ---------------------------------------------------------------------------

DOC = '"""Doc."""\nfrom torch import nn\n'
OK_CLASS = ("class M(nn.Module):\n    def forward(self, x):\n        return {body}\n")
REFUSED = {
    "import-os": DOC + "import os\n",
    "from-os": DOC + "from os import system\n",
    "import-as": DOC + "import torch as t\n",
    "relative-import": DOC + "from . import nn\n",
    "top-level-call": DOC + "print(1)\n",
    "top-level-assign": DOC + "x = 1\n",
    "top-level-function": DOC + "def f():\n    pass\n",
    "unknown-class": DOC + "class Other(nn.Module):\n    pass\n",
    "decorated-class": DOC + "@nn.Module\nclass M(nn.Module):\n    pass\n",
    "other-base": DOC + "class M(object):\n    pass\n",
    "other-method": DOC + "class M(nn.Module):\n    def __del__(self):\n        return 1\n",
    "builtin-call": DOC + OK_CLASS.format(body="eval('1')"),
    "getattr": DOC + OK_CLASS.format(body="getattr(x, 'y')"),
    "dunder-attribute": DOC + OK_CLASS.format(body="x.__class__"),
    "private-attribute": DOC + OK_CLASS.format(body="self._modules"),
    "lambda": DOC + OK_CLASS.format(body="lambda: 1"),
    "unknown-name": DOC + OK_CLASS.format(body="os"),
    "method-on-local": DOC + OK_CLASS.format(body="x.numpy()"),
    "call-a-parameter": DOC + "class M(nn.Module):\n    def __init__(self, f):\n"
                        "        f()\n",
    "loop-over-a-list": DOC + "class M(nn.Module):\n    def forward(self, x):\n"
                        "        for i in [x]:\n            x = i\n        return x\n",
    "while-loop": DOC + "class M(nn.Module):\n    def forward(self, x):\n"
                  "        while x:\n            x = x\n        return x\n",
    "constant-not-a-literal": DOC + "N = print(1)\n",
    "for-loop": DOC + "class M(nn.Module):\n    def forward(self, x):\n"
                "        for i in x:\n            x = i\n        return x\n",
    "call-in-a-condition": DOC + "class M(nn.Module):\n    def forward(self, x):\n"
                           "        if print(x):\n            x = x\n        return x\n",
    "no-docstring": "from torch import nn\n",
    "syntax-error": DOC + "class M(nn.Module\n",
}


@pytest.mark.parametrize("source", REFUSED.values(), ids=REFUSED.keys())
def test_the_final_gate_refuses_code_the_emitter_never_writes(source: str) -> None:
    with pytest.raises(EmitCheckError):
        check_source(source, {"M"}, constants={"N"})


def test_the_final_gate_accepts_what_the_emitter_writes() -> None:
    check_source(DOC + OK_CLASS.format(body="torch.cat([x, x], dim=1)").replace(
        "from torch import nn", "import torch\nfrom torch import nn"), {"M"})


def test_the_final_gate_accepts_conditions_lists_and_layer_classes() -> None:
    init = ("class M(nn.Sequential):\n"
            "    def __init__(self, c: int, act: type[nn.Module] = nn.ReLU, k: int | None = None"
            ") -> None:\n"
            "        if k is None:\n            k = max(1, c // 4)\n"
            "        layers: list[nn.Module] = []\n"
            "        if c != 1 and not k % 2 == 0:\n            layers.append(act())\n"
            "        for index in range(c):\n            layers.append(nn.Linear(k, index + 1))\n"
            "        super().__init__(*layers)\n")
    check_source(DOC + init, {"M"})


def test_module_list_members_must_be_indices() -> None:
    root = Net("module_list", (_node("abc", _linear()),), WHERE, order=("abc",))
    with pytest.raises(ValueError, match="not an index"):
        emit(_graph(root))


def test_a_graph_without_inferred_arguments_is_refused() -> None:
    import nnspec

    with pytest.raises(ValueError, match="'auto' argument"):
        emit(nnspec.resolve("nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: 2}}]\n"))
