"""TextChars: a UTF-8 text file as blocks of character ids, with next-character targets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.catalogue.datasets import STR, Context, Dataset, param

if TYPE_CHECKING:
    from nnspec.run.table import Source

DOC = ("A UTF-8 text file as blocks of character ids (a character-level language model's data): "
       "input holds block_size ids, target the ids one character on; ids index `vocabulary`, "
       "by default the file's distinct characters sorted. Blocks start every `stride` "
       "characters (default: block_size, no overlap).")


def build(args: Mapping[str, Any], ctx: Context) -> Source:
    """Blocks of character ids and the ids one character on (next-character targets)."""
    import torch

    from nnspec.errors import SpecError
    from nnspec.run.table import Table

    path = Path(args["path"]).expanduser()
    text = _read_text(path, ctx)
    vocabulary = args.get("vocabulary") or "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(vocabulary)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise SpecError.at(ctx.location, (*ctx.path, "TextChars", "vocabulary"),
                           f"{path} holds characters the vocabulary lacks: {unknown[:10]}",
                           "add them, or leave vocabulary out (the file's own characters)")
    block = int(args.get("block_size", 64))
    stride = int(args.get("stride") or block)
    if len(text) <= block:
        raise SpecError.at(ctx.location, (*ctx.path, "TextChars", "block_size"),
                           f"{path} holds {len(text)} characters, too few for one block of "
                           f"{block} and its next-character targets ({block + 1})",
                           "lower block_size, or give a longer text file")
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    starts = torch.arange(0, max(len(ids) - block, 0), stride)
    rows = starts[:, None] + torch.arange(block + 1)
    windows = ids[rows] if len(starts) else torch.zeros(0, block + 1, dtype=torch.long)
    return Table({"input": windows[:, :-1], "target": windows[:, 1:]})


def _read_text(path: Path, ctx: Context) -> str:
    """The file as UTF-8 text; a missing file, a folder or other bytes are the spec's error."""
    from nnspec.errors import RunError, SpecError

    where = (*ctx.path, "TextChars", "path")
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise SpecError.at(ctx.location, where, f"{path}: {what}",
                           "name a UTF-8 text file (a relative path is read from the "
                           "working directory)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError.at(ctx.location, where,
                           f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded)",
                           "TextChars reads a UTF-8 text file") from None
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror}",
                       hint="check the file's permissions") from None


DATASETS = [Dataset("TextChars", DOC, [
    param("path", STR),
    param("block_size", {"type": "integer", "minimum": 1}, 64),
    param("stride", {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}, None),
    param("vocabulary", {"anyOf": [STR, {"type": "null"}]}, None),
], build, test_part=False)]
