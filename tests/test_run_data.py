"""Datasets, splits, transforms, arrangements and target encodings."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from run_fixtures import DIGITS_MLP, mnist_dir, spec_from, tiny_mnist, write_idx

from nnspec.api import load_spec
from nnspec.errors import RunError, SpecError
from nnspec.lang.spec import TargetEncoding
from nnspec.run.data import load_splits
from nnspec.run.datasets import Context, build_source
from nnspec.run.sources import csv_table, read_idx, tensors_table
from nnspec.run.table import Table
from nnspec.run.transforms import target_encoder


def test_finding_the_datasets_imports_no_torch() -> None:
    import subprocess
    import sys

    probe = ("import sys\nfrom nnspec.catalogue.datasets import datasets\n"
             "print(len(datasets()), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert int(out[0]) >= 13 and out[1] == "False"


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_idx_files_read_back_exactly(tmp_path: Path, compress: bool) -> None:
    images = torch.randint(0, 256, (5, 3, 4), dtype=torch.uint8)
    path = write_idx(tmp_path / "x-idx3-ubyte", images, compress)
    assert torch.equal(read_idx(path), images)


def test_idx_folder_with_only_t10k_files_trains_but_has_no_test_part(tmp_path: Path) -> None:
    root = tiny_mnist(tmp_path / "m", n=20)
    table = build_source("IDX", {"root": str(root)}, Context("train"))
    assert isinstance(table, Table)
    assert table.fields["input"].shape == (20, 1, 28, 28)
    with pytest.raises(RunError, match="no IDX files for the test part"):
        build_source("IDX", {"root": str(root)}, Context("test"))


def test_missing_idx_folder_says_where_it_looked_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RunError) as info:
        build_source("IDX", {"root": str(tmp_path / "nowhere")}, Context("train"))
    assert "nowhere does not exist" in info.value.message
    assert "data.root=" in (info.value.hint or "")


def test_missing_mnist_without_download_is_a_run_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(RunError) as info:
        build_source("MNIST", {"root": str(tmp_path)}, Context("train"))
    assert "MNIST not found under" in info.value.message
    assert "download: true" in (info.value.hint or "")


def test_unknown_dataset_is_a_located_error_with_did_you_mean() -> None:
    with pytest.raises(SpecError, match=r"unknown dataset 'MNST'.*did you mean 'MNIST'"):
        build_source("MNST", {}, Context("train"))


def test_dataset_arguments_are_checked() -> None:
    with pytest.raises(SpecError, match=r"data\.dataset\.SKLearn\.name"):
        build_source("SKLearn", {"name": "digitz"}, Context("train"))


def test_npz_loads_without_pickles_and_keeps_extra_arrays(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.ones((4, 2), np.float32), targets=np.arange(4), var=np.ones(4))
    table = tensors_table(path, "inputs", "targets")
    assert set(table.fields) == {"input", "target", "var"}
    objects = tmp_path / "o.npz"
    np.savez(objects, inputs=np.array([{"a": 1}] * 4, dtype=object), targets=np.arange(4))
    with pytest.raises(RunError, match="cannot read"):
        tensors_table(objects, "inputs", "targets")


def test_pt_file_with_a_pickled_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    path.write_bytes(pickle.dumps({"inputs": Evil()}))
    with pytest.raises(RunError, match="cannot read"):
        tensors_table(path, "inputs", "targets")


def test_csv_class_names_become_indices(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,kind\n1,2,setosa\n3,4,virginica\n5,6,setosa\n")
    table = csv_table(path, "kind", None, ",")
    assert table.fields["input"].tolist() == [[1, 2], [3, 4], [5, 6]]
    assert table.fields["target"].tolist() == [0, 1, 0]


@pytest.mark.parametrize(("text", "message"), [
    ("a,b,kind\n1,2\n3,4,1\n", "t.csv: line 2 has 2 values, its header line 3"),
    ("a,b,kind\n1,2,0\n3,4,1,5\n", "t.csv: line 3 has 4 values, its header line 3"),
    ("a,b,kind\n1,2,0\nnan,4,1\n", "column 'a' holds a value that is not finite on line 3"),
    ("a,b,kind\n1,2,0\n3,4,inf\n", "column 'kind' holds a value that is not finite on line 3"),
], ids=["short-row", "long-row", "nan-feature", "inf-target"])
def test_csv_rows_that_do_not_fit_are_run_errors_naming_the_line(tmp_path: Path, text: str,
                                                                   message: str) -> None:
    """A short row was a TypeError traceback; a nan trained until the loss was nan."""
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(RunError, match=re.escape(message)):
        csv_table(path, "kind", None, ",")


@pytest.mark.parametrize(("inputs", "message"), [
    (torch.tensor(1.0), "array 'inputs' is a single number"),
    (torch.zeros(4, 2, dtype=torch.complex64), "array 'inputs' holds complex numbers"),
    (torch.tensor([[0.0, 1.0], [0.0, float("inf")], [1.0, 1.0], [2.0, 2.0]]),
     "array 'inputs' holds a value that is not finite (nan or inf) in sample 1"),
], ids=["scalar", "complex", "inf"])
def test_tensor_arrays_that_cannot_be_samples_are_run_errors(tmp_path: Path, inputs: torch.Tensor,
                                                             message: str) -> None:
    """A scalar was a TypeError traceback (len() of a 0-d tensor), complex numbers a
    NotImplementedError, a nan or inf a loss that turned nan."""
    path = tmp_path / "d.pt"
    torch.save({"inputs": inputs, "targets": torch.zeros(4).long()}, path)
    with pytest.raises(RunError, match=re.escape(message)):
        tensors_table(path, "inputs", "targets")


def test_val_split_is_fixed_and_disjoint(tmp_path: Path) -> None:
    spec, _ = spec_from(DIGITS_MLP, tmp_path)
    first = load_splits(spec, ["train", "val"])
    again = load_splits(spec.model_copy(update={"train": spec.train.model_copy(
        update={"seed": 7})}), ["train", "val"])
    for name in ("train", "val"):
        a, b = first[name].source, again[name].source
        assert isinstance(a, Table) and isinstance(b, Table)
        assert torch.equal(a.fields["input"], b.fields["input"])
    assert len(first["train"].source) + len(first["val"].source) == 1797
    assert len(first["val"].source) == 359


def test_standardize_uses_training_statistics_only(tmp_path: Path) -> None:
    spec, _ = spec_from(DIGITS_MLP, tmp_path)
    splits = load_splits(spec, ["train", "val"])
    train, val = splits["train"].source, splits["val"].source
    assert isinstance(train, Table) and isinstance(val, Table)
    assert train.fields["input"].mean(0).abs().max() < 1e-5
    assert val.fields["input"].mean(0).abs().max() > 1e-3


def test_ranges_take_the_samples_asked_for(tmp_path: Path) -> None:
    text = DIGITS_MLP.replace("  val_split: 0.2\n", "  train: {range: [0, 100]}\n"
                              "  val: {range: [1700, 1797]}\n  test: {range: [100, 200]}\n")
    spec, _ = spec_from(text, tmp_path)
    splits = load_splits(spec, ["train", "val", "test"])
    assert [len(splits[s].source) for s in ("train", "val", "test")] == [100, 97, 100]


def test_range_beyond_the_dataset_is_a_spec_error(tmp_path: Path) -> None:
    text = DIGITS_MLP.replace("  val_split: 0.2\n", "  train: {range: [0, 5000]}\n")
    spec, _ = spec_from(text, tmp_path)
    with pytest.raises(SpecError, match=r"spec\.yaml:\d+:\d+: error: data\.train\.range: "
                       r"range \[0, 5000\) does not fit"):
        load_splits(spec, ["train"])


def test_sklearn_test_split_needs_a_range(tmp_path: Path) -> None:
    spec, _ = spec_from(DIGITS_MLP, tmp_path)
    with pytest.raises(SpecError, match="SKLearn has no separate test part"):
        load_splits(spec, ["test"])


@pytest.mark.parametrize("kind, fields", [
    ("pairs", {"input1", "input2", "target"}),
    ("triplets", {"anchor", "positive", "negative", "target"}),
])
def test_arrangements_draw_within_each_split(tmp_path: Path, kind: str, fields: set[str]) -> None:
    text = DIGITS_MLP.replace("  val_split: 0.2\n",
                              f"  val_split: 0.2\n  arrange: {{kind: {kind}, count: 500}}\n")
    spec, _ = spec_from(text, tmp_path)
    train = load_splits(spec, ["train"])["train"].source
    assert isinstance(train, Table)
    assert set(train.fields) == fields and len(train) == 500
    if kind == "pairs":
        assert 0.4 < (train.fields["target"] == 1).float().mean() < 0.6
    else:  # anchors and positives share a class, negatives do not: checked by nearest labels
        assert not torch.equal(train.fields["anchor"], train.fields["negative"])


def test_sequences_carry_lengths_and_padded_labels(tmp_path: Path) -> None:
    text = DIGITS_MLP.replace("{SKLearn: {name: digits}}", "{SKLearn: {name: digits, images: "
                              "true}}").replace("  standardize: true\n", "").replace(
        "  val_split: 0.2\n", "  arrange: {kind: sequences, max_length: 3, count: 50}\n")
    spec, _ = spec_from(text, tmp_path)
    table = load_splits(spec, ["train"])["train"].source
    assert isinstance(table, Table)
    assert table.fields["input"].shape == (50, 8, 24)
    lengths = table.fields["target_lengths"]
    assert torch.equal(table.fields["input_lengths"], lengths * 8)
    assert torch.equal((table.fields["target"] >= 0).sum(1), lengths)


@pytest.mark.parametrize("kind, given, expected", [
    ("signed", [0, 1, 1], [-1.0, 1.0, 1.0]),
    ("one_hot", [2, 0], [[0, 0, 1], [1, 0, 0]]),
    ("multi_hot", [[2, 0, -1], [1, 1, -1]], [[1, 0, 1], [0, 1, 0]]),
    ("label_list", [[2, 0, -1], [1, 1, -1]], [[0, 2, -1], [1, -1, -1]]),
    ("smooth", [1], [[0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3]]),
])
def test_target_encodings(kind: str, given: list, expected: list) -> None:
    encode = target_encoder(TargetEncoding(kind=kind, num_classes=3))  # type: ignore[arg-type]
    assert encode is not None
    assert torch.allclose(encode(torch.tensor(given)).float(), torch.tensor(expected).float())


def test_real_mnist_t10k_reads_ten_thousand_digits() -> None:
    table = build_source("IDX", {"root": str(mnist_dir())}, Context("train"))
    assert isinstance(table, Table)
    assert table.fields["input"].shape == (10000, 1, 28, 28)
    counts = torch.bincount(table.fields["target"]).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_torchvision_mnist_reads_its_raw_files_offline(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    tiny_mnist(raw, n=12, compress=False)
    train_part = tiny_mnist(tmp_path / "train", n=20, compress=False)
    for kind in ("images-idx3", "labels-idx1"):
        (train_part / f"t10k-{kind}-ubyte").rename(raw / f"train-{kind}-ubyte")
    train = build_source("MNIST", {"root": str(tmp_path)}, Context("train"))
    test = build_source("MNIST", {"root": str(tmp_path)}, Context("test"))
    assert isinstance(train, Table) and isinstance(test, Table)
    assert train.fields["input"].shape == (20, 1, 28, 28)
    assert test.fields["input"].shape == (12, 1, 28, 28)
    assert train.fields["input"].dtype == torch.uint8


def test_val_settings_without_samples_carve_val_split(tmp_path: Path) -> None:
    text = DIGITS_MLP.replace("  val_split: 0.2\n", "  val_split: 0.2\n  val: {batch_size: 7}\n")
    spec, _ = spec_from(text, tmp_path)
    splits = load_splits(spec, ["train", "val"])
    assert len(splits["val"].source) == 359 and splits["val"].plan.batch_size == 7


def test_val_that_would_repeat_the_training_samples_is_refused(tmp_path: Path) -> None:
    text = DIGITS_MLP.replace("  val_split: 0.2\n", "  val: {batch_size: 7}\n")
    spec, _ = spec_from(text, tmp_path)
    with pytest.raises(SpecError, match="would repeat the training samples"):
        load_splits(spec, ["train", "val"])


def test_every_element_type_name_is_a_torch_dtype_through_the_one_table() -> None:
    from typing import get_args

    from nnspec.catalogue import torch_dtype
    from nnspec.lang.spec import Dtype

    assert all(isinstance(torch_dtype(name), torch.dtype) for name in get_args(Dtype))
    assert torch_dtype("long") is torch.int64 and torch_dtype("uint8") is torch.uint8
    with pytest.raises(ValueError, match="not an element type"):
        torch_dtype("Tensor")


@pytest.mark.parametrize(("splits", "message"), [
    ("  val: {range: [0, 100]}\n", "data.val.range: val range [0, 100) overlaps the training "
     "split, which takes every sample (no data.train.range)"),
    ("  train: {range: [0, 1500]}\n  val: {range: [1400, 1797]}\n",
     "val range [1400, 1797) overlaps data.train.range [0, 1500): the model would be measured "
     "on samples it trained on (give data.train.range samples apart from val's: before 1400 "
     "or from 1797 on)"),
    ("  train: {range: [100, 1797]}\n  test: {range: [0, 200]}\n", "data.test.range: test "
     "range [0, 200) overlaps data.train.range [100, 1797)"),
    ("  fallback:\n    note: x\n    dataset: {SKLearn: {name: digits}}\n"
     "    val: {range: [0, 10]}\n", "data.fallback.val.range: val range [0, 10) overlaps"),
], ids=["val-of-all", "val-and-train", "test", "fallback"])
def test_a_range_the_training_split_also_takes_is_refused(splits: str, message: str) -> None:
    """data.val.range=[0, 100] validated on samples the model trained on (val_split unused)."""
    with pytest.raises(SpecError) as info:
        load_spec(DIGITS_MLP.replace("  val_split: 0.2\n", splits))
    assert message in info.value.render()


def test_ranges_apart_are_fine() -> None:
    load_spec(DIGITS_MLP.replace("  val_split: 0.2\n", "  train: {range: [100, 1797]}\n"
                                 "  val: {range: [0, 100]}\n"))
