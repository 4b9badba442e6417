"""Specs the fuzz campaign of seed 1 (65,483 cases on main) found ending in a traceback, or that
validate accepted and the CPU build refused: each is now one located error, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnspec.cli import app

CASES = {
    "repeated matmul": ("nnspec: 2\ninput: [4, 8]\nmodel:\n  graph:\n    a: {Linear: 8}\n"
                        "    b: {matmul: [a, a], repeat: 2}\n"),
    "init fn a mapping": ("nnspec: 1\ninput: [4]\nmodel: [{Linear: 2}]\n"
                          "init:\n  - {match: {param: weight}, fn: {normal_: 1}}\n"),
    "trunc_normal std 0": ("nnspec: 2\ninput: [4]\nmodel:\n  graph:\n"
                           "    w: {parameter: {shape: [4], init: {trunc_normal: {std: 0}}}}\n"
                           "    out: {mul: [input, w]}\n"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_fuzz_finding_is_a_located_error(case: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(CASES[case])
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert result.output.startswith(f"{spec}:") or f"{spec}:" in result.output


# validate accepted these, then the build or the CPU forward and backward pass failed
REFUSED = {
    "a repeated op of two inputs": (
        "nnspec: 1\ninput: {meta: [8]}\nmodel:\n  graph:\n    a: {Linear: 4, in: meta}\n"
        "    b: {Linear: 4, in: meta}\n    j: {cat: [a, b], repeat: 8}\n",
        ":7:9: error: model.graph.j.cat: node 'j' takes 1 input, given 2", "{cat: [a, b]}"),
    "a sequential of two inputs": (
        "nnspec: 1\ninput: {meta: [8]}\nmodel:\n  graph:\n    a: {Linear: 4, in: meta}\n"
        "    j: {sequential: [ReLU, ReLU], in: [a, meta]}\n",
        "node 'j' takes 1 input, given 2", "join the inputs first"),
    "a negative batch norm eps": (
        "nnspec: 1\ninput: [3, 8, 8]\nmodel:\n  - {BatchNorm2d: {eps: -0.5}}\n",
        ":4:25: error: model[0].BatchNorm2d.eps: expected a number > 0, found -0.5", ""),
}


@pytest.mark.parametrize("shapes", [True, False], ids=["shapes", "no-shapes"])
@pytest.mark.parametrize("case", list(REFUSED))
def test_validate_refuses_what_the_build_refused(case: str, shapes: bool,
                                                 tmp_path: Path) -> None:
    text, message, hint = REFUSED[case]
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(app, ["validate", *([] if shapes else ["--no-shapes"]),
                                      str(spec)])
    assert result.exit_code == 2, result.output
    assert message in result.output and hint in result.output
    assert "Traceback" not in result.output


def test_attention_on_per_sample_vectors_counts_its_macs(tmp_path: Path) -> None:
    """Seed 5 of the campaign on faf1ab9: scaled_dot_product_attention of [N, 8] values (each
    sample a vector) ended validate and summary in an IndexError of the MACs count."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("nnspec: 2\ninput: [8]\nmodel:\n  graph:\n"
                    "    att: {scaled_dot_product_attention: {}, in: [input, input, input]}\n")
    validated = CliRunner().invoke(app, ["validate", str(spec)])
    assert validated.exit_code == 0, validated.output
    summary = CliRunner().invoke(app, ["summary", str(spec)])
    assert summary.exit_code == 0, summary.output
    # one query of 8 against one key: q @ k^T and weights @ v, 8 MACs each (FlopCounterMode / 2)
    assert "MACs per sample:       16 " in summary.output


def test_a_repeat_nested_in_a_block_members_list_emits(tmp_path: Path) -> None:
    """Seed 10 case 168 (the CI slice): a repeat inside a list that is a graph member of a block
    used with two argument sets was merged into a loop the emitter does not write there, and
    emit refused its placeholder name '[each]' after validate accepted the spec."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "nnspec: 1\ninput: [3, 16, 16]\nblocks:\n  B:\n    params: {c: int}\n    graph:\n"
        "      a: {sequential: [{MaxPool2d: {kernel_size: 3, stride: 1, padding: 1}, repeat: 3},"
        " {Conv2d: {out_channels: $c, kernel_size: 1}}], in: input}\n"
        "      b: {Conv2d: {out_channels: $c, kernel_size: 1}, in: input}\n"
        "      out: {cat: [a, b]}\nmodel:\n  - {B: {c: 4}}\n  - {B: {c: 8}}\n")
    result = CliRunner().invoke(app, ["compile", "--emit-python", str(spec)])
    assert result.exit_code == 0, result.output
    assert result.output.count("nn.MaxPool2d(") == 3
    compile(result.output, "emitted.py", "exec")
