"""The emit pass: emitted source is the built model, reads as written by hand, and is safe.

Golden files in tests/golden/emit/ pin the emitted code of every spec in specs/; rewrite them
with ``NNSPEC_ACCEPT=1 .venv/bin/python -m pytest tests/test_emit.py``.  The oracle for every
spec in specs/ and examples/, and for generated specs, is
nspec.compiler.build.build (tests/parity.py).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

import nnspec
from nnspec.cli import app
from nnspec.compiler.build import build
from nnspec.compiler.emit.emitter import emit
from tests.conftest import EXAMPLES, ROOT, SPECS
from tests.parity import (
    assert_same_model,
    computed_buffers,
    emitted_module,
    inferred,
    instantiate_emitted,
    model_class_name,
    sample_inputs,
    small_graph,
)
from tests.spec_strategies import specs
from tests.test_torchvision_ops import VISION

GOLDEN = ROOT / "tests" / "golden" / "emit"
SPEC_FILES = sorted(SPECS.glob("*.yaml"))
ALL_FILES = SPEC_FILES + sorted(EXAMPLES.glob("*.yaml"))
ACCEPT = os.environ.get("NNSPEC_ACCEPT") == "1"


def _emit_relative(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Emit with the path as a user types it from the repository root (it is in the code)."""
    monkeypatch.chdir(ROOT)
    return emit(inferred(str(path.relative_to(ROOT))))


def _parity(path: Path) -> None:
    graph = small_graph(path)
    with torch.device("meta"):
        built = build(graph)
    meta = not computed_buffers(built)
    if not meta:
        built = build(graph)
    assert_same_model(built, instantiate_emitted(emit(graph), meta), sample_inputs(graph))


# -- golden files ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_emitted_code_matches_its_golden_file(path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    text = _emit_relative(path, monkeypatch)
    golden = GOLDEN / f"{path.stem}.py"
    if ACCEPT:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    if not golden.exists():
        pytest.fail(f"no golden file {golden.relative_to(ROOT)}; create it with: "
                    f"NNSPEC_ACCEPT=1 .venv/bin/python -m pytest tests/test_emit.py -k "
                    f"'golden and {path.stem}'")
    assert text == golden.read_text(), (
        "emitted code changed; if that is intended, accept it with: NNSPEC_ACCEPT=1 "
        f".venv/bin/python -m pytest tests/test_emit.py -k 'golden and {path.stem}'")


def test_every_golden_file_belongs_to_a_spec() -> None:
    stale = {p.stem for p in GOLDEN.glob("*.py")} - {p.stem for p in SPEC_FILES}
    assert not stale, f"golden files without a spec (delete them): {sorted(stale)}"


# -- parity with the builder -----------------------------------------------------------------

@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_emitted_model_is_the_built_model(path: Path) -> None:
    _parity(path)


def test_graph_nodes_named_in_capitals_become_lowercase_local_variables(write_spec) -> None:
    path = write_spec("""nnspec: 1
name: capitals
input: [4]
model:
  graph:
    Mixed_5b: {Linear: {out_features: 4}}
    mixed_5b: ReLU
    out: {add: [Mixed_5b, mixed_5b]}
""")
    source = emit(nnspec.infer(path))
    assert "mixed_5b = self.Mixed_5b(input)" in source
    assert "mixed_5b_2 = self.mixed_5b(mixed_5b)" in source
    _parity(path)


def test_block_used_with_different_sizes_is_one_class_with_those_parameters(write_spec) -> None:
    path = write_spec("""nnspec: 1
name: widths
input: [4]
blocks:
  Dense:
    params: {width: int}
    sequential: [{Linear: {out_features: $width}}, ReLU]
model:
  - {Dense: {width: 8}}
  - {Dense: {width: 16}, repeat: 2}
  - {Dense: {width: 3}}
""")
    source = emit(nnspec.infer(path))
    tree = ast.parse(source)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    assert set(classes) == {"Dense", "Widths"}
    init = classes["Dense"].body[1]
    assert isinstance(init, ast.FunctionDef)
    assert [a.arg for a in init.args.args] == ["self", "in_features", "width"]
    assert "nn.Linear(in_features, width)" in source
    assert "Dense(in_features=8, width=16)" in source
    _parity(path)


BLOCK_FORMS = """nnspec: 2
name: block_forms
input: [8, 6, 6]
vars: {widths: [8, 16, 16, 24]}
blocks:
  Unit:
    params:
      stage: int
      out: {default: "${widths[stage]}"}
      stride: {type: int, default: 1}
      act: {type: layer, default: ReLU}
      squeeze: {type: bool, default: false}
    graph:
      conv: {Conv2d: {out_channels: $out, kernel_size: 3, stride: $stride, padding: 1},
             in: input}
      norm: BatchNorm2d
      act: $act
      pool: {AdaptiveAvgPool2d: {output_size: 1}, if: $squeeze}
      scale: {mul: [act, pool], if: $squeeze}
      skip: {Conv2d: {out_channels: $out, kernel_size: 1, stride: $stride}, in: input,
             if: "${stride != 1 or input.channels != out}"}
      sum: {add: [scale, skip]}
  Stack:
    params: {first: bool, act: {type: layer, default: ReLU}}
    sequential:
      - {Conv2d: {out_channels: 8, kernel_size: 1}, if: $first}
      - $act
model:
  - {Unit: {stage: 0}}
  - {Unit: {stage: 1, stride: 2, act: Hardswish, squeeze: true}}
  - {Unit: {stage: 2, act: Hardswish}}
  - {Unit: {stage: 3, out: 24, stride: 2}}
  - {Stack: {first: true}}
  - {Stack: {first: false, act: GELU}}
"""


def test_a_block_whose_structure_depends_on_its_arguments_is_one_class() -> None:
    graph = nnspec.infer(BLOCK_FORMS)
    source = emit(graph)
    classes = [n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    assert classes == ["Unit", "Stack", "BlockForms"]
    assert ("def __init__(\n        self,\n        in_channels: int,\n        stage: int,\n"
            "        out: int | None = None,\n        stride: int = 1,\n"
            "        act: type[nn.Module] = nn.ReLU,\n        squeeze: bool = False,\n"
            "    ) -> None:") in source
    assert "WIDTHS = (8, 16, 16, 24)\n" in source
    assert "        if out is None:\n            out = WIDTHS[stage]\n" in source
    assert "self.use_skip = stride != 1 or in_channels != out" in source
    assert "        if self.use_pool:\n            self.pool = " in source
    assert ("        pool = act\n        scale = act\n        if self.use_pool:\n"
            "            pool = self.pool(act)\n            scale = act * pool\n") in source
    assert "self.act = act()" in source
    assert "Unit(in_channels=8, stage=1, stride=2, act=nn.Hardswish, squeeze=True)" in source
    assert "Unit(in_channels=16, stage=3, out=24, stride=2)" in source
    assert ("        if first:\n            layers.append(nn.Conv2d(in_channels, 8, kernel_size=1))"
            "\n") in source
    assert "Stack(in_channels=8, first=False, act=nn.GELU)" in source
    assert_same_model(build(graph), emitted_module(source)[model_class_name(source)](),
                      sample_inputs(graph))


def test_a_repeat_inside_a_block_is_a_loop_over_index(write_spec) -> None:
    path = write_spec("""nnspec: 2
name: loops
input: [4]
blocks:
  Stage:
    params: {n: int, width: int}
    sequential:
      - {Linear: {out_features: $width, bias: "${index == 0}"}, repeat: $n}
      - ReLU
model:
  - {Stage: {n: 2, width: 4}}
  - {Stage: {n: 3, width: 2}}
""")
    source = emit(nnspec.infer(path))
    assert source.count("class Stage(") == 1 and "class Stage2(" not in source
    assert ("        layers: list[nn.Module] = []\n        for index in range(n):\n"
            "            layers.append(nn.Linear(4 if index == 0 else width, width, "
            "bias=index == 0))\n        super().__init__(\n"
            "            nn.Sequential(*layers),\n") in source
    assert "Stage(n=3, width=2)" in source
    _parity(path)


def test_the_zoo_emits_one_class_per_block() -> None:
    for stem, blocks in [("mobilenet_v3_large", ["InvertedResidual", "Layers"]),
                         ("resnet50", ["Bottleneck"]), ("regnet_y_400mf", ["ResBottleneckBlock"]),
                         ("efficientnet_b0", ["MBConv"]),  # an if: item in a nested list
                         ("maxvit_t", ["MaxVitBlock"]),  # a repeat whose count differs
                         ("swin_t", ["WindowMask", "ShiftedWindowAttention",
                                     "SwinTransformerBlock"])]:
        source = emit(inferred(SPECS / f"{stem}.yaml"))
        for block in blocks:
            assert source.count(f"class {block}(") == 1 and f"class {block}2(" not in source


@pytest.mark.parametrize("stem", ["swin_t", "swin_v2_t"])
def test_a_computed_mask_is_written_from_the_class_arguments(stem: str) -> None:
    """Swin's attention mask, computed from the image size, at three sizes in one class (the
    parity run on small inputs has no shifted windows: here windows of 4 on 32, 16, 8)."""
    graph = inferred(SPECS / f"{stem}.yaml", ("input=[3, 128, 128]", "vars.window=4"))
    source = emit(graph)
    assert source.count("class WindowMask(") == 1 and "torch.arange(size[0])" in source
    assert_same_model(build(graph), instantiate_emitted(source, meta=False),
                      sample_inputs(graph))


NESTED = """nnspec: 1
name: nested_forms
input: {a: [4], b: [4]}
blocks:
  Mix:
    params: {w: int}
    inputs: [left, right]
    graph:
      l: {Linear: {out_features: $w}, in: left}
      r: {Linear: {out_features: $w}, in: right}
      s: {add: [l, r]}
    outputs: [s, l]
model:
  graph:
    m1: {Mix: {w: 4}, in: [a, b]}
    first: {getitem: {index: 0}, in: m1}
    m2: {Mix: {w: 6}, in: [first, b]}
    pick: {getitem: {index: 0}}
    lst: {module_list: [{Linear: {out_features: 3}}, ReLU], forward: [1, 0]}
    dct: {module_dict: {x: Tanh, y: {Linear: {out_features: 2}}}, forward: [y, x]}
    seq: {sequential: {fc: {Linear: {out_features: 2}}, act: ReLU}, in: pick}
    out: {cat: [dct, seq]}
  outputs: [out, m1]
"""


LONG = "a_node_name_that_is_long_enough_to_matter"
LONG_SPECS = {
    "long-graph": f"""nnspec: 1
name: long_graph
input: [4, 6]
model:
  graph:
    {LONG}_1: {{Linear: {{out_features: 6}}}}
    {LONG}_2: {{Linear: {{out_features: 6}}, in: input}}
    {LONG}_3: {{cat: {{dim: 2}}, in: [{LONG}_1, {LONG}_2, input]}}
    {LONG}_4: {{reshape: {{shape: [3, 2, 12]}}, in: {LONG}_3}}
    {LONG}_5: {{mean: {{dim: [1, 2], keepdim: false}}, in: {LONG}_4}}
    {LONG}_6: {{mul: [{LONG}_1, {LONG}_2, {LONG}_1, {LONG}_2]}}
    {LONG}_7: {{module_dict: {{{LONG}_x: Tanh, {LONG}_y: {{Linear: {{out_features: 6}}}}}},
               forward: [{LONG}_y, {LONG}_x], in: {LONG}_6}}
  outputs: [{LONG}_5, {LONG}_7, {LONG}_6]
""",
    "long-block": """nnspec: 1
name: a_really_quite_long_model_name_that_goes_on_and_on_forever_and_ever_more
input: [3, 8, 8]
blocks:
  AVeryLongBlockNameThatIsLongerThanUsualForSureYes:
    params: {w: int, k: int}
    graph:
      the_first_convolution_layer_with_a_long_name:
        Conv2d: {out_channels: $w, kernel_size: $k, padding: 1, bias: false,
                 padding_mode: reflect}
      another_extremely_long_node_name_for_batchnorm: BatchNorm2d
      summed_output_of_the_block_with_a_long_name:
        add: [another_extremely_long_node_name_for_batchnorm,
              the_first_convolution_layer_with_a_long_name,
              another_extremely_long_node_name_for_batchnorm]
model:
  an_exceptionally_long_layer_name_for_the_first_conv:
    Conv2d: {out_channels: 4, kernel_size: [3, 3], padding: [1, 1], dilation: [1, 1],
             stride: [1, 1], bias: true}
  blocks_repeated_several_times_with_long_names:
    AVeryLongBlockNameThatIsLongerThanUsualForSureYes: {w: 4, k: 3}
    repeat: 2
  other: {AVeryLongBlockNameThatIsLongerThanUsualForSureYes: {w: 4, k: 3}}
  pool: {AdaptiveAvgPool2d: {output_size: [1, 1]}}
  flat: Flatten
  x_head: {Linear: {out_features: 10}}
  reshaped_output_with_a_long_name: {reshape: {shape: [2, 5]}}
""",
}


@pytest.mark.parametrize("text", LONG_SPECS.values(), ids=LONG_SPECS.keys())
def test_long_names_emit_the_built_model(text: str) -> None:
    graph = nnspec.infer(text)
    source = emit(graph)
    assert_same_model(build(graph), emitted_module(source)[model_class_name(source)](),
                      sample_inputs(graph))


def test_nested_containers_and_multi_input_blocks_emit_the_built_model() -> None:
    graph = nnspec.infer(NESTED)
    source = emit(graph)
    assert "class Mix(nn.Module)" in source and "l_2 = self.l(left)" in source
    assert_same_model(build(graph), emitted_module(source)[model_class_name(source)](),
                      sample_inputs(graph))


def test_identical_block_instances_share_a_class_without_parameters() -> None:
    source = emit(inferred(SPECS / "resnet_tiny.yaml"))
    assert source.count("class BasicBlock(") == 1
    assert "BasicBlock(in_channels=WIDTH, planes=WIDTH)" in source
    assert "def __init__(self, in_channels: int, planes: int, stride: int = 1)" in source


# -- the standalone module -------------------------------------------------------------------

RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed")
def test_emitted_code_passes_ruff_check_and_format(tmp_path: Path) -> None:
    for path in ALL_FILES:
        (tmp_path / f"{path.parent.name}_{path.stem}.py").write_text(emit(small_graph(path)))
    for op, cases in OP_CASES.items():
        for where, text in cases:
            (tmp_path / f"op_{op}_{where}.py").write_text(emit(nnspec.infer(text)))
    (tmp_path / "nested.py").write_text(emit(nnspec.infer(NESTED)))
    (tmp_path / "block_forms.py").write_text(emit(nnspec.infer(BLOCK_FORMS)))
    (tmp_path / "vision.py").write_text(emit(nnspec.infer(VISION)))
    for name, text in LONG_SPECS.items():
        (tmp_path / f"{name.replace('-', '_')}.py").write_text(emit(nnspec.infer(text)))
    for number, spec in enumerate(_specs_far_away(tmp_path / "far")):
        (tmp_path / f"far_{number}.py").write_text(emit(nnspec.infer(spec)))
    assert RUFF is not None
    common = ["--isolated", "--target-version", "py311"]
    fmt = subprocess.run([RUFF, "format", "--check", "--diff", *common, str(tmp_path)],
                         capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run([RUFF, "check", *common, "--select", "E,F,W,I,B,UP,SIM,RUF,N",
                           str(tmp_path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _specs_far_away(root: Path) -> list[Path]:
    """LeNet saved where the path, or even the file name, is longer than a line."""
    deep = root / ("checkout" * 8) / ("work" * 10)
    deep.mkdir(parents=True)
    text = (SPECS / "lenet.yaml").read_text()
    names = ["lenet.yaml", "my lenet " * 12 + ".yaml", "lenet_" + "x" * 100 + ".yaml"]
    for name in names:
        (deep / name).write_text(text)
    return [deep / name for name in names]


def test_emitted_docstring_names_the_spec_within_the_line_length(tmp_path: Path) -> None:
    shown = [emit(nnspec.infer(spec)).split('"""')[1] for spec in _specs_far_away(tmp_path)]
    assert all(len(line) <= 88 for doc in shown for line in doc.splitlines())
    assert "Generated by nnspec from lenet.yaml\n" in shown[0]
    assert str(tmp_path) not in "".join(shown), "a long path falls back to the file's name"


def test_emitted_module_runs_without_nnspec(tmp_path: Path) -> None:
    (tmp_path / "lenet_model.py").write_text(emit(inferred(SPECS / "lenet.yaml")))
    script = ("import sys, torch, lenet_model\n"
              "out = lenet_model.Lenet5()(torch.zeros(1, 1, 28, 28))\n"
              "print(tuple(out.shape), any(m.startswith('nnspec') for m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(1,", "10)", "False"]


@pytest.mark.parametrize("path", SPEC_FILES[:3], ids=lambda p: p.stem)
def test_emitted_imports_are_only_torch_and_the_standard_library(path: Path) -> None:
    tree = ast.parse(emit(inferred(path)))
    modules = {n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
               for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)}
    assert modules <= {"torch", "collections", "typing", "torchvision.ops"}  # its layers only


def test_docstring_names_the_spec_file_and_its_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _emit_relative(SPECS / "lenet.yaml", monkeypatch)
    doc = ast.get_docstring(ast.parse(text)) or ""
    graph = inferred(SPECS / "lenet.yaml")
    assert "specs/lenet.yaml" in doc
    assert f"sha256: {graph.sha256}" in doc


@pytest.mark.parametrize("stem", ["lenet", "resnet_tiny"])
def test_docs_show_the_real_emitted_code(stem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _emit_relative(SPECS / f"{stem}.yaml", monkeypatch)
    assert f"```python\n{text}```" in (ROOT / "docs" / "compile.md").read_text(), (
        f"docs/compile.md shows stale emitted code for {stem}: paste the output of "
        f"`nnspec compile specs/{stem}.yaml --emit-python`")


# -- the command line ------------------------------------------------------------------------

def test_cli_emit_python_writes_a_file_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    command = ["compile", str(SPECS / "mlp.yaml"), "--emit-python", "-o", str(out)]
    first = CliRunner().invoke(app, command)
    assert first.exit_code == 0, first.output
    assert out.read_text() == emit(inferred(SPECS / "mlp.yaml"))
    out.write_text("# mine\n")
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 2
    assert f"{out} exists" in again.output and "--force" in again.output
    assert out.read_text() == "# mine\n"
    forced = CliRunner().invoke(app, [*command, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "class Mlp(nn.Sequential)" in out.read_text()


def test_cli_emit_python_reports_a_name_it_cannot_emit_as_a_located_error(write_spec) -> None:
    path = write_spec("nnspec: 1\ninput: [4]\nmodel:\n  graph:\n"
                      "    class: {Linear: {out_features: 2}}\n")
    result = CliRunner().invoke(app, ["compile", str(path), "--emit-python"])
    assert result.exit_code == 2
    # the checker refuses it first; the emitter's own check is pinned in test_emit_safety.py
    assert (f"{path}:5:5: error: model.graph.class: 'class' cannot name a layer: it is a "
            "Python keyword or an nn.Module attribute (rename it, e.g. 'class_')") in result.output
    assert "Traceback" not in result.output


def test_cli_emit_python_prints_to_stdout() -> None:
    result = CliRunner().invoke(app, ["compile", str(SPECS / "mlp_named.yaml"), "--emit-python"])
    assert result.exit_code == 0, result.output
    assert result.stdout == emit(inferred(SPECS / "mlp_named.yaml"))


# -- generated specs -------------------------------------------------------------------------

@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_generated_specs_emit_the_built_model(text: str) -> None:
    graph = nnspec.infer(text)
    source = emit(graph)
    assert_same_model(build(graph), emitted_module(source)[model_class_name(source)](),
                      sample_inputs(graph, batch=3))


# -- every op, where it can stand --------------------------------------------------------------

def _spec(input_shape: str, model: str) -> str:
    return f"nnspec: 2\nname: ops\ninput: {input_shape}\nmodel:\n{model}"


OP_CASES = {
    "add": [("graph", _spec("[4]", "  graph:\n    fc: {Linear: {out_features: 4}}\n"
                                   "    sum: {add: [fc, input, fc]}\n"))],
    "mul": [("graph", _spec("[4]", "  graph:\n    gate: Sigmoid\n"
                                   "    prod: {mul: [gate, input]}\n"))],
    "cat": [("graph", _spec("[2, 3, 3]", "  graph:\n    conv: {Conv2d: {out_channels: 2, "
                                         "kernel_size: 1}}\n"
                                         "    both: {cat: {dim: 2}, in: [conv, input]}\n"))],
    "reshape": [("sequential", _spec("[12]", "  - {reshape: {shape: [3, 4]}}\n  - Tanh\n")),
                ("graph", _spec("[12]", "  graph:\n    r: {reshape: {shape: [4, 3]}}\n"))],
    "permute": [("sequential", _spec("[2, 3]", "  - {permute: {dims: [0, 2, 1]}}\n")),
                ("graph", _spec("[2, 3]", "  graph:\n    p: {permute: {dims: [0, 2, 1]}}\n"))],
    "transpose": [("sequential", _spec("[2, 3]", "  - {transpose: {dim0: 1, dim1: 2}}\n")),
                  ("graph", _spec("[2, 3]", "  graph:\n    t: {transpose: {dim0: 1, dim1: 2}}\n"))],
    "mean": [("sequential", _spec("[2, 3]", "  - {mean: {dim: [1, 2], keepdim: true}}\n")),
             ("graph", _spec("[2, 3]", "  graph:\n    m: {mean: {dim: 1}}\n"))],
    "chunk": [("sequential", _spec("[4, 6]", "  - {chunk: {chunks: 2, dim: 2}}\n"
                                             "  - {getitem: {index: 1}}\n")),
              ("graph", _spec("[4, 6]", "  graph:\n    parts: {chunk: {chunks: 3, dim: 2}}\n"
                                        "    a: {getitem: {index: 0}, in: parts}\n"
                                        "    b: {getitem: {index: 2}, in: parts}\n"
                                        "    both: {add: [a, b]}\n"))],
    "getitem": [("sequential", _spec("[5, 3]", "  - {LSTM: {hidden_size: 4, batch_first: true}}\n"
                                               "  - {getitem: {index: 0}}\n")),
                ("graph", _spec("[5, 4]", "  graph:\n    attn: {MultiheadAttention: "
                                          "{num_heads: 2, batch_first: true}}\n"
                                          "    out: {getitem: {index: 0}}\n"))],
    "select": [("sequential", _spec("[3, 4]", "  - {select: {dim: 1, index: 0}}\n")),
               ("graph", _spec("[3, 4]", "  graph:\n    s: {select: {dim: -1, index: 1}}\n"))],
    "narrow": [("sequential", _spec("[3, 4]", "  - {narrow: {dim: 2, start: 1, length: 2}}\n")),
               ("graph", _spec("[3, 4]", "  graph:\n    n: {narrow: {dim: 1, start: 0, "
                                         "length: 1}}\n"))],
    "split": [("sequential", _spec("[6, 2]", "  - {split: {split_size: [2, 4]}}\n"
                                             "  - {getitem: 1}\n")),
              ("graph", _spec("[6, 2]", "  graph:\n    parts: {split: 3}\n"
                                        "    second: {getitem: 1}\n"))],
    "roll": [("sequential", _spec("[3, 4]", "  - {roll: {shifts: [1, -1], dims: [1, 2]}}\n")),
             ("graph", _spec("[3, 4]", "  graph:\n    r: {roll: {shifts: 2, dims: 2}}\n"))],
    "matmul": [("graph", _spec("[3, 4]", "  graph:\n    t: {transpose: {dim0: 1, dim1: 2}}\n"
                                         "    m: {matmul: [input, t]}\n"))],
    "einsum": [("graph", _spec("[3, 4]", "  graph:\n    e: {einsum: {equation: 'bij,bkj->bik'},"
                                         " in: [input, input]}\n"))],
    "scaled_dot_product_attention": [
        ("graph", _spec("[2, 5, 4]", "  graph:\n    mask: {buffer: {shape: [5, 5], init: 0.5}}\n"
                                     "    a: {scaled_dot_product_attention: {scale: 0.3}, "
                                     "in: [input, input, input, mask]}\n")),
        ("graph", _spec("[2, 5, 4]", "  graph:\n    a: {scaled_dot_product_attention: "
                                     "{is_causal: true}, in: [input, input, input]}\n"))],
    "softmax": [("sequential", _spec("[3, 4]", "  - {softmax: -1}\n")),
                ("graph", _spec("[3, 4]", "  graph:\n    s: {softmax: {dim: 1}}\n"))],
    "log_softmax": [("sequential", _spec("[3, 4]", "  - {log_softmax: 2}\n")),
                    ("graph", _spec("[3, 4]", "  graph:\n    s: {log_softmax: {dim: 1}}\n"))],
    "normalize": [("sequential", _spec("[3, 4]", "  - {normalize: {dim: -1}}\n")),
                  ("graph", _spec("[3, 4]", "  graph:\n    n: {normalize: {dim: 1}}\n"))],
    "clamp": [("sequential", _spec("[3, 4]", "  - {clamp: {max: 0.5}}\n")),
              ("graph", _spec("[3, 4]", "  graph:\n    c: {clamp: {min: -0.1, max: 0.2}}\n"))],
    "exp": [("sequential", _spec("[3, 4]", "  - exp\n")),
            ("graph", _spec("[3, 4]", "  graph:\n    e: exp\n"))],
    "lookup": [("graph", _spec("[2, 4]", "  graph:\n    table: {parameter: {shape: [6, 4], "
                                         "init: ones}}\n    idx: {buffer: {shape: [2], dtype: "
                                         "int64}}\n    bias: {lookup: [table, idx]}\n"
                                         "    out: {add: [input, bias]}\n"))],
    "expand_batch": [("graph", _spec("[3, 4]", "  graph:\n    tok: {parameter: {shape: [1, 1, 4]}}"
                                               "\n    cls: {expand_batch: [tok, input]}\n"
                                               "    both: {cat: {dim: 1}, in: [cls, input]}\n"))],
}


def test_every_catalogue_op_has_an_emit_case() -> None:
    from nnspec import catalogue

    assert set(OP_CASES) == set(catalogue.ops())


@pytest.mark.parametrize("text", [t for cases in OP_CASES.values() for _, t in cases],
                         ids=[f"{op}-{where}" for op, cases in OP_CASES.items()
                              for where, _ in cases])
def test_every_op_emits_the_built_model(text: str) -> None:
    graph = nnspec.infer(text)
    source = emit(graph)
    assert_same_model(build(graph), emitted_module(source)[model_class_name(source)](),
                      sample_inputs(graph))
