"""``nnspec summary``: counts from the inferred graph, with torchinfo as the oracle."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torchinfo
from typer.testing import CliRunner

import nnspec
from nnspec.cli import app
from nnspec.views.summary import Summary, format_summary, module_macs, summarise
from tests.conftest import ROOT, SPECS

SPEC_FILES = sorted(SPECS.glob("*.yaml"))


def _torchinfo(path: Path) -> torchinfo.ModelStatistics:
    graph = nnspec.infer(path)
    with torch.device("meta"):
        model = nnspec.compile(path)
    sizes = [(1, *info.shape) for info in graph.inputs.values()]
    dtypes = [getattr(torch, info.dtype) for info in graph.inputs.values()]
    return torchinfo.summary(model, input_size=sizes, dtypes=dtypes, device="meta", verbose=0)


# Layers applied to sequences (a Linear or LayerNorm at every token) and attention: torchinfo
# counts their weights once per sample and attention not at all, so flop_counter is the oracle.
SEQUENCE_SPECS = {"convnext_tiny", "vit_b_16", "swin_t", "swin_v2_t", "maxvit_t",
                  "transformer_classifier"}


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_summary_counts_agree_with_torchinfo(path: Path) -> None:
    ours = summarise(nnspec.infer(path))
    oracle = _torchinfo(path)
    assert (ours.total_params, ours.trainable_params) == (
        oracle.total_params, oracle.trainable_params)
    if path.stem not in SEQUENCE_SPECS:
        assert ours.macs == oracle.total_mult_adds


def _flop_counter_macs(source: Path | str, *inputs: torch.Tensor) -> int:
    """torch.utils.flop_counter's count for one sample (FLOPs / 2), on meta tensors unless
    inputs are given; the math attention kernel, whose products it counts."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    graph = nnspec.infer(source)
    device = "meta" if not inputs else "cpu"
    with torch.device(device):
        model = nnspec.compile(source)
    if not inputs:
        inputs = tuple(torch.zeros(1, *i.shape, dtype=getattr(torch, i.dtype), device="meta")
                       for i in graph.inputs.values())
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(*inputs)
    return counter.get_total_flops() // 2 // inputs[0].shape[0]


@pytest.mark.parametrize("path", [*(SPECS / f"{n}.yaml" for n in sorted(SEQUENCE_SPECS)),
                                  SPECS / "resnet18.yaml", ROOT / "examples" / "gpt_chars.yaml"],
                         ids=lambda p: p.stem)
def test_summary_macs_agree_with_the_flop_counter(path: Path) -> None:
    """vit_b_16 is ~17.6 G (a Linear on [N, 197, 768] counts 197 tokens). The summary also counts
    biases and norms, which flop_counter leaves out: at most 2% more for these networks."""
    ours = summarise(nnspec.infer(path)).macs
    oracle = _flop_counter_macs(path)
    assert oracle <= ours <= oracle * 1.02


# (spec, the LayerNorm weights flop_counter does not count: their elements times their tokens)
TRANSFORMERS = {
    "decoder-layer": ("input: {tgt: [6, 8], mem: [LEN, 8]}\nmodel:\n  graph:\n"
                      "    dec: {TransformerDecoderLayer: {nhead: 2, dim_feedforward: 16, "
                      "bias: false, batch_first: true}, in: [tgt, mem]}\n", 3 * 6 * 8),
    "transformer": ("input: {src: [LEN, 8], tgt: [6, 8]}\nmodel:\n  graph:\n"
                    "    tr: {Transformer: {nhead: 2, num_encoder_layers: 2, num_decoder_layers: "
                    "1, dim_feedforward: 16, bias: false, batch_first: true}, in: [src, tgt]}\n",
                    (2 * 2 * 11 + 3 * 6 + 11 + 6) * 8),
}


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")  # torch's, for bias: false
@pytest.mark.parametrize(("body", "norms"), TRANSFORMERS.values(), ids=TRANSFORMERS.keys())
def test_transformer_layers_count_the_memory_at_its_own_length(body: str, norms: int,
                                                               write_spec) -> None:
    """With a memory as long as the target, the count is the sum of the layer's parts (each
    attention over the output's tokens); with a memory of 11 tokens, flop_counter's (without
    biases, the norms' weights aside)."""
    same = write_spec("nnspec: 2\n" + body.replace("LEN", "6"))
    with torch.device("meta"):
        module = next(iter(nnspec.compile(same).children()))
    assert summarise(nnspec.infer(same)).macs == module_macs(module, (6, 8))
    path = write_spec("nnspec: 2\n" + body.replace("LEN", "11"))
    graph = nnspec.infer(path)
    inputs = [torch.randn(2, *i.shape) for i in graph.inputs.values()]
    assert summarise(graph).macs == _flop_counter_macs(path, *inputs) + norms


# Without biases and norms the two counts are the same, to the multiply-add.
EXACT = {
    "linear-on-a-sequence": "input: [7, 5]\nmodel:\n  - Linear: {out_features: 3, bias: false}\n"
                            "  - Linear: {out_features: 4, bias: false}\n",
    "self-attention": "input: [9, 8]\nmodel:\n  graph:\n"
                      "    att: {MultiheadAttention: {num_heads: 2, bias: false, "
                      "batch_first: true}}\n    out: {getitem: 0}\n",
    "cross-attention": "input: {q: [6, 8], kv: [4, 8]}\nmodel:\n  graph:\n"
                       "    att: {MultiheadAttention: {num_heads: 2, bias: false, "
                       "batch_first: true}, in: [q, kv, kv]}\n    out: {getitem: 0}\n",
    "einsum-and-matmul": "input: [5, 8]\nmodel:\n  graph:\n"
                         "    fc: {Linear: {out_features: 8, bias: false}, in: input}\n"
                         "    scores: {einsum: {equation: \"bqd,bkd->bqk\"}, in: [fc, input]}\n"
                         "    mixed: {matmul: [scores, fc]}\n",
}


@pytest.mark.parametrize("body", EXACT.values(), ids=EXACT.keys())
def test_summary_macs_equal_the_flop_counter_without_biases(body: str, write_spec) -> None:
    path = write_spec("nnspec: 2\n" + body)
    graph = nnspec.infer(path)
    inputs = [torch.randn(2, *i.shape) for i in graph.inputs.values()]
    assert summarise(graph).macs == _flop_counter_macs(path, *inputs) > 0


# Layer kinds the zoo does not use, each with its own MACs rule in torchinfo.
LAYER_KINDS = {
    "lstm-batch-first": "input: [7, 5]\nmodel:\n  graph:\n"
                        "    rnn: {LSTM: {hidden_size: 6, num_layers: 2, batch_first: true}}\n"
                        "    out: {getitem: 0}\n",
    "gru-bidirectional": "input: [7, 5]\nmodel:\n  graph:\n"
                         "    rnn: {GRU: {hidden_size: 6, bidirectional: true,"
                         " batch_first: true}}\n"
                         "    out: {getitem: 0}\n",
    "conv1d-transposed": "input: [3, 16]\nmodel:\n  - Conv1d: {out_channels: 4, kernel_size: 3}\n"
                         "  - ConvTranspose1d: {out_channels: 2, kernel_size: 4, stride: 2}\n"
                         "  - GroupNorm: {num_groups: 1}\n",
    "conv3d-prelu": "input: [2, 4, 6, 6]\nmodel:\n"
                    "  - Conv3d: {out_channels: 3, kernel_size: 3, padding: 1}\n"
                    "  - BatchNorm3d\n  - PReLU\n",
    "squeeze-excitation": "input: [16, 8, 8]\nmodel:\n"
                          "  - SqueezeExcitation: {squeeze_channels: 4}\n"
                          "  - Conv2dNormActivation: {out_channels: 8, kernel_size: 3}\n",
    "bilinear-two-inputs": "input: {a: [5], b: [4]}\nmodel:\n  graph:\n"
                           "    bil: {Bilinear: {out_features: 3}, in: [a, b]}\n",
}


@pytest.mark.parametrize("body", LAYER_KINDS.values(), ids=LAYER_KINDS.keys())
def test_summary_agrees_with_torchinfo_on_other_layer_kinds(body: str, write_spec) -> None:
    path = write_spec("nnspec: 1\n" + body)
    ours = summarise(nnspec.infer(path))
    oracle = _torchinfo(path)
    assert ours.macs > 0
    assert (ours.total_params, ours.trainable_params, ours.macs) == (
        oracle.total_params, oracle.trainable_params, oracle.total_mult_adds)


@pytest.mark.parametrize("name", ["lenet", "resnet18", "mobilenet_v2", "unet_small"])
def test_parameter_memory_agrees_with_torchinfo(name: str) -> None:
    ours = summarise(nnspec.infer(SPECS / f"{name}.yaml"))
    assert ours.param_bytes == _torchinfo(SPECS / f"{name}.yaml").total_param_bytes


def test_parameter_memory_counts_attention_weights_that_torchinfo_omits() -> None:
    ours = summarise(nnspec.infer(SPECS / "transformer_classifier.yaml"))
    assert ours.param_bytes == 4 * ours.total_params  # float32


@pytest.fixture(scope="module")
def resnet18() -> Summary:
    return summarise(nnspec.infer(SPECS / "resnet18.yaml"))


def test_row_names_are_the_compiled_module_names(resnet18: Summary) -> None:
    with torch.device("meta"):
        modules = dict(nnspec.compile(SPECS / "resnet18.yaml").named_modules())
    for row in resnet18.rows:
        if row.type == "add":
            assert row.name not in modules  # a graph op, not a module
            continue
        params = sum(p.numel() for p in modules[row.name].parameters())
        assert (row.name, row.params) == (row.name, params)


def test_nested_rows_follow_their_container_one_level_deeper(resnet18: Summary) -> None:
    rows = {row.name: row for row in resnet18.rows}
    assert (rows["layer2"].type, rows["layer2"].depth) == ("Sequential", 0)
    assert (rows["layer2.0"].type, rows["layer2.0"].depth) == ("BasicBlock", 1)
    assert (rows["layer2.0.downsample.0"].type, rows["layer2.0.downsample.0"].depth) == (
        "Conv2d", 3)
    assert rows["layer4.1.conv2"].output == "[N, 512, 7, 7]"


def test_container_rows_sum_their_layers(resnet18: Summary) -> None:
    for row in resnet18.rows:
        if row.container:
            inside = [r for r in resnet18.rows
                      if r.name.startswith(row.name + ".") and not r.container]
            assert row.params == sum(r.params for r in inside)
            assert row.macs == sum(r.macs for r in inside)


def test_table_lists_every_layer_and_the_totals(resnet18: Summary) -> None:
    text = format_summary(resnet18)
    for row in resnet18.rows:
        assert row.name in text
    assert f"Total params:          {resnet18.total_params:,}" in text
    assert f"MACs per sample:       {resnet18.macs:,}" in text
    assert f"Params size (MB):      {resnet18.param_mb:.2f}" in text


def test_cli_summary_prints_the_table() -> None:
    result = CliRunner().invoke(app, ["summary", str(SPECS / "lenet.yaml")])
    assert result.exit_code == 0, result.stderr
    assert "Total params:          61,706" in result.stdout
    assert "[N, 6, 28, 28]" in result.stdout


def test_cli_summary_of_an_invalid_spec_is_a_located_error(write_spec) -> None:
    path = write_spec("nnspec: 1\ninput: [4]\nmodel:\n  - Linear: {out_features: 2}\n"
                      "  - Conv2d: {out_channels: 3, kernel_size: 3}\n")
    result = CliRunner().invoke(app, ["summary", str(path)])
    assert result.exit_code == 2
    assert f"{path}:5:5: error: model[1].Conv2d" in result.stderr
    assert "Traceback" not in result.stderr


def _zoo_doc_block(command: str) -> list[str]:
    text = (ROOT / "docs" / "zoo.md").read_text()
    block = text.split(f"$ {command}\n", 1)[1].split("```", 1)[0]
    return block.rstrip("\n").splitlines()


def test_docs_zoo_summary_excerpt_is_real_output(resnet18: Summary) -> None:
    shown = [line for line in _zoo_doc_block("nnspec summary specs/resnet18.yaml")
             if line != "..."]
    actual = format_summary(resnet18).splitlines()
    assert shown[:10] == actual[:10]
    assert [line for line in shown if line not in actual] == []


ZOO_TABLE_ROW = re.compile(r"^\| \[(\w+)\.yaml\].*?\| ([\d,]+) \| ([\d,]+)", re.M)


# specs/ that show a container form (docs/spec-language.md), not an architecture of the zoo table
FORM_DEMOS = {"graph_two_inputs", "mlp", "mlp_named", "module_dict", "module_list",
              "resnet_tiny"}


def test_docs_zoo_table_counts_are_the_summaries() -> None:
    rows = ZOO_TABLE_ROW.findall((ROOT / "docs" / "zoo.md").read_text())
    named = [name for name, _, _ in rows]
    assert len(named) == len(set(named))
    # one row per architecture in specs/: a spec added without its row fails here
    assert set(named) == {p.stem for p in SPECS.glob("*.yaml")} - FORM_DEMOS
    for name, params, macs in rows:
        summary = summarise(nnspec.infer(SPECS / f"{name}.yaml"))
        assert (name, f"{summary.total_params:,}", f"{summary.macs:,}") == (name, params, macs)


# Layers that return several tensors, with the batch where torch puts it: an LSTM's h and c
# are [num_layers * directions, N, hidden] (once summarised as [N, 2, 3, 16]).
MULTI_OUTPUT = """
nnspec: 2
input: [7, 5]
model:
  graph:
    lstm: {LSTM: {hidden_size: 6, num_layers: 2, batch_first: true}, in: input}
    lstm_bi: {LSTM: {hidden_size: 6, bidirectional: true, proj_size: 3, batch_first: true},
              in: input}
    gru: {GRU: {hidden_size: 6, num_layers: 3, batch_first: true}, in: input}
    rnn: {RNN: {hidden_size: 6, batch_first: true}, in: input}
    mha: {MultiheadAttention: {num_heads: 1, batch_first: true}, in: input}
    state: {getitem: 1, in: lstm}
    h: {getitem: 0}
    last: {select: {dim: 0, index: -1}}       # h[-1]: the last layer's state, [N, 6]
    head: {Linear: {out_features: 2}}
  outputs: [lstm, lstm_bi, gru, rnn, mha, h, head]
"""


def _shapes(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    return tuple(_shapes(v) for v in value)  # type: ignore[attr-defined]


def test_multi_output_layers_show_the_batch_where_torch_puts_it() -> None:
    from nnspec.compiler.ir import TensorInfo

    graph = nnspec.infer(MULTI_OUTPUT)
    model = nnspec.compile(MULTI_OUTPUT).eval()
    with torch.no_grad():
        outputs = model(torch.randn(4, 7, 5))

    def full(value: object) -> object:
        if isinstance(value, TensorInfo):
            return list(value.full(4))
        return tuple(full(v) for v in value)  # type: ignore[attr-defined]

    by_name = {node.name: node.out for node in graph.root.nodes}
    names = graph.root.outputs
    assert [full(by_name[n]) for n in names] == [_shapes(o) for o in outputs]
    rows = {row.name: row.output for row in summarise(graph).rows}
    assert rows["lstm"] == "([N, 7, 6], ([2, N, 6], [2, N, 6]))"
    assert rows["lstm_bi"] == "([N, 7, 6], ([2, N, 3], [2, N, 6]))"
    assert rows["mha"] == "([N, 7, 5], [N, 7, 7])"
    assert rows["head"] == "[N, 2]"
