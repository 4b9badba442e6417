"""train's auto settings: what ``choose`` decides for a CPU and for a CUDA machine (as a pure
function), that the run's first line shows each choice, and that auto never changes a CPU run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from run_fixtures import DIGITS_MLP, spec_from

from nnspec.lang.spec import Train
from nnspec.run import setup, train
from nnspec.run.choices import COMPILE_MIN_STEPS, LARGE_MODEL, Facts, choose

BIG, SMALL = 11_000_000, 61_706  # ResNet-18 (CIFAR head), LeNet-5
LONG = 10 * COMPILE_MIN_STEPS


def _cuda(**kw: object) -> Facts:
    facts = {"device": "cuda", "parameters": BIG, "steps": LONG, "images": True, "bf16": True,
             "compiler": True, **kw}
    return Facts(**facts)  # type: ignore[arg-type]


def _values(train_section: Train, facts: Facts) -> tuple[object, object, object]:
    c = choose(train_section, facts)
    return c.precision.value, c.memory_format.value, c.compile.value


@pytest.mark.parametrize("device", ["cpu", "mps"])
@pytest.mark.parametrize("parameters", [SMALL, BIG])
def test_auto_on_the_cpu_and_mps_changes_nothing_a_run_computes(device: str,
                                                                parameters: int) -> None:
    facts = Facts(device, parameters, LONG, images=True, bf16=True, compiler=True)
    chosen = choose(Train(), facts)
    assert _values(Train(), facts) == ("32", "contiguous", False)
    assert chosen.precision.auto and chosen.memory_format.auto and chosen.compile.auto


@pytest.mark.parametrize(("facts", "expected"), [
    (_cuda(), ("bf16-mixed", "channels_last", True)),
    (_cuda(parameters=SMALL), ("32", "contiguous", False)),  # launch-bound: a CUDA graph
    (_cuda(parameters=LARGE_MODEL - 1), ("32", "contiguous", False)),
    (_cuda(bf16=False), ("32", "contiguous", True)),  # no bfloat16: no channels_last either
    (_cuda(images=False), ("bf16-mixed", "contiguous", True)),  # a transformer
    (_cuda(compiler=False), ("bf16-mixed", "channels_last", False)),  # no triton
    (_cuda(steps=COMPILE_MIN_STEPS - 1), ("bf16-mixed", "channels_last", False)),
    (_cuda(steps=0), ("bf16-mixed", "channels_last", False)),  # evaluation only
], ids=["resnet18", "lenet", "just-under-large", "no-bf16", "no-images", "no-triton",
        "short-run", "no-training"])
def test_auto_on_cuda(facts: Facts, expected: tuple[object, object, object]) -> None:
    assert _values(Train(), facts) == expected


@pytest.mark.parametrize("facts", [_cuda(), Facts("cpu", BIG, LONG, images=True)],
                         ids=["cuda", "cpu"])
def test_a_value_the_spec_sets_is_kept(facts: Facts) -> None:
    section = Train(precision="16-mixed", memory_format="channels_last", compile=False)
    chosen = choose(section, facts)
    assert _values(section, facts) == ("16-mixed", "channels_last", False)
    assert not (chosen.precision.auto or chosen.memory_format.auto or chosen.compile.auto)
    assert _values(Train(precision=32), facts)[0] == "32"


def test_the_first_line_shows_each_choice_and_marks_those_auto_made(tmp_path: Path) -> None:
    spec, _ = spec_from(DIGITS_MLP, tmp_path, ["train.epochs=1", "train.precision=bf16-mixed",
                                               "train.memory_format=channels_last"])
    out = io.StringIO()
    summary = train(spec, stream=out)
    first = out.getvalue().splitlines()[0]
    assert "eager (auto), precision bf16-mixed, channels_last, single process" in first
    run = json.loads((summary.run_dir / "resolved.json").read_text())
    assert run["train"]["compile"] is False and run["train"]["precision"] == "bf16-mixed"
    choices = run["run"]["choices"]
    assert choices["compile"] == {"value": False, "auto": True,
                                  "why": choices["compile"]["why"]}
    assert "never compiled on cpu" in choices["compile"]["why"]
    assert choices["precision"]["auto"] is False


def test_auto_trains_bit_for_bit_as_the_explicit_cpu_settings(tmp_path: Path) -> None:
    weights = []
    for i, extra in enumerate([[], ["train.precision=32", "train.memory_format=contiguous",
                                    "train.compile=false", "train.cuda_graph=false"]]):
        (tmp_path / str(i)).mkdir()
        spec, _ = spec_from(DIGITS_MLP, tmp_path / str(i), ["train.epochs=2", *extra])
        summary = train(spec, stream=io.StringIO())
        weights.append(torch.load(summary.run_dir / "checkpoints" / "last.pt",
                                  weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_channels_last_on_the_cpu_keeps_the_checkpoint_loadable(tmp_path: Path) -> None:
    spec, _ = spec_from(DIGITS_MLP, tmp_path, ["train.epochs=1",
                                               "train.memory_format=channels_last"])
    parts = setup.build(spec, "cpu")
    assert parts.evaluator.channels_last and parts.spec.train.memory_format == "channels_last"


def test_the_inductor_cache_outlives_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # set by torch's import
    assert setup.compile_cache() == tmp_path / "nnspec" / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert setup.compile_cache() == tmp_path / "mine"  # the user's own stays


def test_auto_does_not_compile_under_fsdp() -> None:
    assert _values(Train(strategy="fsdp"), _cuda()) == ("bf16-mixed", "channels_last", False)


def test_16_mixed_on_the_cpu_warns_right_after_the_first_line(tmp_path: Path) -> None:
    spec, _ = spec_from(DIGITS_MLP, tmp_path, ["train.epochs=1", "train.precision=16-mixed",
                                               "data.train={range: [0, 64]}"])
    out = io.StringIO()
    train(spec, stream=out)
    lines = out.getvalue().splitlines()
    assert "precision 16-mixed" in lines[0]
    assert lines[1].startswith("warning: precision 16-mixed on the CPU")
    assert "bf16-mixed" in lines[1]


def test_auto_never_chooses_16_mixed() -> None:
    for facts in (_cuda(), _cuda(bf16=False), Facts("cpu", BIG, LONG, images=True)):
        assert choose(Train(), facts).precision.value != "16-mixed"
