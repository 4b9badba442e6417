"""TextChars: a text file as blocks of character ids (nnspec/catalogue/datasets/text_chars.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from run_fixtures import spec_from

from nnspec.errors import SpecError
from nnspec.run.datasets import Context, build_source
from nnspec.run.table import Table

TEXT = "the quick brown fox jumps over the lazy dog. " * 20


def test_text_chars_gives_blocks_and_the_next_characters(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text(TEXT)
    table = build_source("TextChars", {"path": str(tmp_path / "t.txt"), "block_size": 8,
                                       "stride": 3}, Context("train"))
    assert isinstance(table, Table)
    vocabulary = "".join(sorted(set(TEXT)))
    x, y = table.fields["input"], table.fields["target"]
    assert x.shape == y.shape == ((len(TEXT) - 8 - 1) // 3 + 1, 8)
    assert x.dtype == y.dtype == torch.long
    decoded = ["".join(vocabulary[i] for i in row) for row in x.tolist()]
    assert decoded[:2] == [TEXT[0:8], TEXT[3:11]]
    assert torch.equal(x[:, 1:], y[:, :-1])  # each target is its input one character on
    assert "".join(vocabulary[i] for i in y[-1].tolist()) == TEXT[3 * (len(x) - 1) + 1:][:8]


def test_text_chars_refuses_characters_outside_its_vocabulary(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("abcab")
    with pytest.raises(SpecError, match=r"data\.dataset\.TextChars\.vocabulary: .* holds "
                       r"characters the vocabulary lacks: \['c'\]"):
        build_source("TextChars", {"path": str(tmp_path / "t.txt"), "vocabulary": "ab"},
                     Context("train"))


@pytest.mark.parametrize(("name", "content", "message"), [
    ("nope.txt", None, r"TextChars\.path: .*nope\.txt: no such file"),
    ("folder", "DIR", r"TextChars\.path: .*folder: a folder"),
    ("bin.txt", b"\xff\xfeab", r"TextChars\.path: .*bin\.txt is not UTF-8 text"),
    ("empty.txt", b"", r"TextChars\.block_size: .*empty\.txt holds 0 characters, too few"),
    ("short.txt", b"abcdefgh", r"TextChars\.block_size: .*short\.txt holds 8 characters"),
])
def test_text_chars_file_mistakes_are_located_spec_errors(
        tmp_path: Path, name: str, content: bytes | str | None, message: str) -> None:
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(SpecError, match=message):
        build_source("TextChars", {"path": str(path), "block_size": 8}, Context("train"))


def test_a_character_model_trains_on_a_text_file(tmp_path: Path) -> None:
    import io
    import json

    from nnspec.run import train

    (tmp_path / "t.txt").write_text(TEXT)
    spec, _ = spec_from(f"""nnspec: 1
name: chars
input: {{shape: [16], dtype: int64}}
model:
  - Embedding: {{num_embeddings: {len(set(TEXT))}, embedding_dim: 16}}
  - Linear: {{out_features: {len(set(TEXT))}}}
data:
  dataset: {{TextChars: {{path: {tmp_path / 't.txt'}, block_size: 16, stride: 4}}}}
  batch_size: 16
loss: {{CrossEntropyLoss: {{}}, inputs: ["permute(output, 0, 2, 1)", target]}}
optimizer: {{Adam: {{lr: 0.01}}}}
train: {{epochs: 3}}
""", tmp_path, [])
    summary = train(spec, stream=io.StringIO())
    records = [json.loads(line) for line in
               (summary.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert losses[-1] < losses[0] * 0.7
