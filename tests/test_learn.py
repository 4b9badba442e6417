"""The learner's guides (docs/learn.md, docs/learn.zh-CN.md) and README.zh-CN.md never go stale.

Each ``<!-- spec: FILE -->`` marker is followed by FILE's text, each ``<!-- python: FILE -->``
by what ``nnspec compile FILE --emit-python`` prints (without its header docstring), and the
English loss table between ``<!-- losses -->`` markers comes from the catalogue's words about
each loss's inputs.  A stale guide fails with the command that regenerates it:

    NNSPEC_ACCEPT=1 python -m pytest tests/test_learn.py

The guide's AlexNet is trained here (one epoch, TensorBoard on), as the guide tells a learner to.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

import nnspec
from nnspec.catalogue.text import LOSS_INPUTS
from nnspec.lang.loader import load
from tests.conftest import EXAMPLES, ROOT

GUIDES = [ROOT / "docs" / "learn.md", ROOT / "docs" / "learn.zh-CN.md", ROOT / "README.zh-CN.md"]
ACCEPT = "NNSPEC_ACCEPT=1 python -m pytest tests/test_learn.py"
MARKER = re.compile(r"<!-- (spec|python): (\S+) -->\n```(\w+)\n(.*?)```", re.S)
LOSS_TABLE = re.compile(r"<!-- losses -->\n.*?<!-- /losses -->", re.S)
# The fourteen losses of the notes the project grew from, in their order.
NOTES_LOSSES = ["BCELoss", "L1Loss", "MSELoss", "SmoothL1Loss", "PoissonNLLLoss", "KLDivLoss",
                "MarginRankingLoss", "MultiLabelMarginLoss", "SoftMarginLoss", "MultiMarginLoss",
                "TripletMarginLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss", "CTCLoss"]


def loss_examples() -> dict[str, str]:
    """Loss name -> its runnable example (examples/loss_*.yaml)."""
    found = {}
    for path in sorted(EXAMPLES.glob("loss_*.yaml")):
        loss = load(path).data["loss"]
        name = loss if isinstance(loss, str) else next(k for k in loss if k != "inputs")
        found[name] = f"examples/{path.name}"
    return found


def emitted(file: str) -> str:
    source = nnspec.emit(str(ROOT / file))
    if source.startswith('"""'):
        source = source.split('"""\n\n', 1)[1]
    return source


def loss_table() -> str:
    examples = loss_examples()
    rows = ["| loss | what its inputs are | example |", "| --- | --- | --- |"]
    others = sorted(set(LOSS_INPUTS) - set(NOTES_LOSSES))
    for name in [*NOTES_LOSSES, *others]:
        inputs = "; ".join(f"`{a}`: {m}" for a, m in LOSS_INPUTS[name]).replace("|", "\\|")
        example = examples.get(name)
        link = f"[{example.split('/')[-1]}](../{example})" if example else ""
        rows.append(f"| {name} | {inputs} | {link} |")
    return "<!-- losses -->\n" + "\n".join(rows) + "\n<!-- /losses -->"


def regenerate(text: str) -> str:
    def block(match: re.Match[str]) -> str:
        kind, file, lang = match.group(1), match.group(2), match.group(3)
        content = (ROOT / file).read_text() if kind == "spec" else emitted(file)
        return f"<!-- {kind}: {file} -->\n```{lang}\n{content}```"

    text = MARKER.sub(block, text)
    return LOSS_TABLE.sub(lambda _: loss_table(), text)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_the_guide_shows_current_specs_and_the_code_they_compile_to(guide: Path) -> None:
    text = guide.read_text()
    assert MARKER.search(text), f"{guide.name} has no generated blocks"
    fresh = regenerate(text)
    if fresh != text and os.environ.get("NNSPEC_ACCEPT") == "1":
        guide.write_text(fresh)
        return
    assert fresh == text, f"{guide.relative_to(ROOT)} is stale: {ACCEPT} regenerates it"


@pytest.mark.parametrize("guide", GUIDES[:2], ids=lambda p: p.name)
def test_the_guide_covers_every_topic_of_the_notes(guide: Path) -> None:
    text = guide.read_text()
    for spec in ("view_reshape", "broadcasting", "autograd", "lenet", "alexnet", "mlp",
                 "mlp_named", "module_list", "module_dict"):
        assert f"{spec}.yaml -->" in text, spec
    for loss in NOTES_LOSSES:
        assert loss in text and loss_examples()[loss] in text, loss
    assert "tensorboard --logdir" in text and "DataLoader" in text


def test_every_fourteen_losses_has_a_runnable_example() -> None:
    assert set(NOTES_LOSSES) <= set(loss_examples())


def test_the_guides_alexnet_trains_and_writes_tensorboard_events(tmp_path: Path) -> None:
    summary = nnspec.train(str(EXAMPLES / "alexnet_digits.yaml"), run_dir=tmp_path / "run",
                           overrides=["train.epochs=1", "vars.width=2"], stream=io.StringIO())
    assert summary.best_value is not None and summary.best_value > 0.2  # chance is 0.1
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
