"""Issue 10's cases: specs that used to end in a traceback, or that commands judged differently.

Each case runs through every command that reads a spec (validate with and without shapes,
compile, compile --emit-python, summary, graph) in this process, through the CLI's own entry
point: each must give a located one-line error and exit 2, or succeed, and all of them must agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli

HEAD = "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: 2}}]\n"
IMAGE = "nnspec: 1\ninput: [1, 8, 8]\n"
TRAINING = ("data: {dataset: {SKLearn: {name: iris}}, batch_size: 8}\nloss: CrossEntropyLoss\n"
            "optimizer: {SGD: {lr: 0.1}}\n")

# (spec text, the line:column of the error, words the message must hold)
REFUSED = {
    "train: auto": (HEAD + "train: auto\n", "4:8", "train: expected a mapping, found 'auto'"),
    "log: runs": (HEAD + "log: runs\n", "4:6", "log: expected a mapping, found 'runs'"),
    "data: cpu": (HEAD + "data: cpu\n", "4:7", "data: expected a mapping, found 'cpu'"),
    "data.transforms: a number": (HEAD + "data: {dataset: MNIST, transforms: 3}\n", "4:",
                                  "data.transforms"),
    "loss: a list": (HEAD + "loss: [1, 2]\n", "4:7", "loss"),
    "optimizer: {}": (HEAD + "optimizer: {}\n", "4:", "optimizer"),
    "nnspec: a command": ('nnspec: "1; rm -rf /"\ninput: [4]\nmodel: [ReLU]\n', "1:9",
                          "nnspec: expected one of 1, 2, found '1; rm -rf /'"),
    "nnspec: a huge expression": ('nnspec: "${10 ** 400}"\ninput: [4]\nmodel: [ReLU]\n', "1:9",
                                  "nnspec: expected one of 1, 2"),
    "description: a list": ("nnspec: 1\ndescription: [1, 1, 1]\ninput: [4]\nmodel: [ReLU]\n",
                            "2:14", "description: expected a string, found a list of 3"),
    "name: a mapping": ("nnspec: 1\nname: {a: 1}\ninput: [4]\nmodel: [ReLU]\n", "2:7",
                        "name: expected a string, found a mapping"),
    "lr: an expression": (HEAD + 'loss: MSELoss\noptimizer: {SGD: {lr: "${a.b}"}}\n', "5:23",
                          "optimizer.SGD.lr: expected a number, found '${a.b}'"),
    "lr: a variable": (HEAD + 'loss: MSELoss\noptimizer: {Adam: {lr: $x}}\n', "5:24",
                       "optimizer.Adam.lr: expected a number, found '$x'"),
    "val_split 0.999": (HEAD + TRAINING + "train: {epochs: 1}\n".replace("train", "train") +
                        "", "", ""),
    "num_workers 100000": (HEAD + "data: {dataset: MNIST, num_workers: 100000}\n", "4:",
                           "data.num_workers"),
    "epochs 10**9": (HEAD + "train: {epochs: 1000000000}\n", "4:", "train.epochs"),
    "MaxPool2d kernel_size 0": (IMAGE + "model: [{MaxPool2d: {kernel_size: 0}}]\n", "3:",
                                "kernel_size"),
    "MaxPool2d stride 0": (IMAGE + "model: [{MaxPool2d: {kernel_size: 2, stride: 0}}]\n", "3:",
                           "stride"),
    "AvgPool2d kernel_size 0": (IMAGE + "model: [{AvgPool2d: {kernel_size: 0}}]\n", "3:",
                                "kernel_size"),
    "Conv2d stride 0": (IMAGE + "model: [{Conv2d: {out_channels: 2, kernel_size: 2, stride: 0}}]"
                        "\n", "3:", "stride"),
    "Conv2d kernel_size 0": (IMAGE + "model: [{Conv2d: {out_channels: 2, kernel_size: 0}}]\n",
                             "3:", "kernel_size"),
    "Conv2d out_channels 0": (IMAGE + "model: [{Conv2d: {out_channels: 0, kernel_size: 2}}]\n",
                              "3:", "out_channels"),
    "Linear out_features 0": ("nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: 0}}]\n",
                              "3:", "out_features"),
    "Embedding of 0 entries": ("nnspec: 1\ninput: {shape: [8], dtype: int64}\nmodel: "
                               "[{Embedding: {num_embeddings: 0, embedding_dim: 3}}]\n", "3:",
                               "num_embeddings"),
    "GELU approximate 'anh'": ("nnspec: 1\ninput: [4]\nmodel: [{GELU: {approximate: anh}}]\n",
                               "3:", "expected one of 'none', 'tanh', found 'anh'"),
    "MaxPool2d kernel_size []": ("nnspec: 1\ninput: [1, 8, 8]\nmodel: [{MaxPool2d: "
                                 "{kernel_size: []}}]\n", "3:",
                                 "expected an integer or a list of 2 integers, found a list of 0"),
    "MaxPool1d stride [2, 2]": ("nnspec: 1\ninput: [1, 8]\nmodel: [{MaxPool1d: "
                                "{kernel_size: 2, stride: [2, 2]}}]\n", "3:",
                                "expected an integer or a list of 1 integer or null, found a "
                                "list of 2"),
    "AdaptiveAvgPool2d output_size [-1, 1]": (
        "nnspec: 1\ninput: [3, 8, 8]\nmodel: [{AdaptiveAvgPool2d: {output_size: [-1, 1]}}, "
        "{Conv2d: {out_channels: 2, kernel_size: 1}}]\n", "3:", "expected a number >= 1, found -1"),
    "AdaptiveAvgPool1d output_size null": (
        "nnspec: 1\ninput: [3, 8]\nmodel: [{AdaptiveAvgPool1d: {output_size: null}}]\n",
        "3:", "AdaptiveAvgPool1d needs an output_size"),
    "chunk dim out of range": ("nnspec: 1\ninput: [4]\nmodel: [{chunk: {chunks: 2, dim: 2}}, "
                               "{getitem: 0}]\n", "3:", "chunk dim 2 is out of range"),
}
REFUSED["val_split 0.999"] = (HEAD + "data: {dataset: MNIST, val_split: 0.999}\n", "4:",
                              "data.val_split: val_split 0.999 leaves the training split")
REFUSED["val_split 1e-8"] = (HEAD + "data: {dataset: MNIST, val_split: 1.0e-8}\n", "4:",
                             "data.val_split: val_split 1e-08 leaves the validation split")

COMMANDS = {
    "validate": ["validate"], "validate --no-shapes": ["validate", "--no-shapes"],
    "compile": ["compile"], "emit": ["compile", "--emit-python"], "summary": ["summary"],
    "graph": ["graph"],
}
TRAINING_ONLY = ("lr:", "val_split", "num_workers", "epochs", "train:", "log:", "data",
                 "loss:", "optimizer:")


@pytest.mark.parametrize("case", list(REFUSED))
def test_every_command_refuses_with_one_located_line(case: str, tmp_path: Path) -> None:
    text, where, words = REFUSED[case]
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    shapes_needed = not case.startswith(TRAINING_ONLY) and "nnspec" not in case and \
        "description" not in case and "name" not in case
    for name, command in COMMANDS.items():
        code, _, err = cli(*command, str(spec))
        if name == "validate --no-shapes" and shapes_needed and code == 0:
            continue  # --no-shapes may accept what shapes-on refuses, never the reverse
        assert code == 2, f"{name}: exit {code}\n{err}"
        assert "Traceback" not in err and "internal error" not in err, f"{name}: {err}"
        first = err.splitlines()[0]
        assert first.startswith(f"{spec}:{where}"), f"{name}: {first}"
        assert words in first, f"{name}: {first}"


def test_a_key_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text('nnspec: 1\ninput: [4]\nmodel: [ReLU]\n"tra\\nin": {epochs: 1}\n'
                    '"a\\rb\\u2028c": 1\n')
    code, _, err = cli("validate", str(spec))
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert "unknown section 'tra\\nin'" in lines[1] or "unknown section 'tra\\nin'" in lines[0]
    assert all(line.startswith(f"{spec}:") for line in lines)


def test_a_model_key_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text('nnspec: 1\ninput: [4]\nmodel: {"fc\\n1": {Linear: {out_features: 2}}}\n')
    code, _, err = cli("validate", str(spec))
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert "fc\\n1" in err


def test_a_valid_spec_with_training_sections_is_accepted_by_every_command(
        tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "data: {dataset: MNIST, val_split: 0.1, num_workers: 4}\n"
                    "loss: MSELoss\noptimizer: {SGD: {lr: 0.1}}\ntrain: {epochs: 3}\n")
    for name, command in COMMANDS.items():
        code, _, err = cli(*command, str(spec))
        assert code == 0, f"{name}: {err}"
