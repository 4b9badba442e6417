"""train.strategy and FSDP2: validation, sharded materialisation, sharded checkpoints.

The multi-process tests start real processes the way a user does (``nnspec train
--nproc-per-node 2``, which re-launches itself through torchrun), on the CPU with gloo, with
tiny models and generous timeouts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
nnspec: 1
name: tiny
input: [4]
model: [{Linear: {out_features: 2}}]
train: {strategy: fsdp}
"""


def _validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return subprocess.run([sys.executable, "-m", "nnspec", "validate", str(spec)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_an_unknown_strategy_is_a_located_error_with_a_suggestion(tmp_path: Path) -> None:
    proc = _validate(tmp_path, SPEC.replace("fsdp", "fsdpp"))
    assert proc.returncode == 2
    assert ":5:19: error: train.strategy: expected one of 'auto', 'ddp', 'fsdp', found " \
        "'fsdpp' (did you mean 'fsdp'?)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("setting", "message"), [
    ("precision: 16-mixed", "train.precision: 16-mixed cannot be used with strategy fsdp"),
    ("compile: true", "train.compile: compile cannot be used with strategy fsdp yet"),
    ("cuda_graph: true", "train.cuda_graph: cuda_graph cannot be used with strategy fsdp"),
], ids=["16-mixed", "compile", "cuda-graph"])
def test_settings_fsdp_does_not_run_with_are_located_errors(tmp_path: Path, setting: str,
                                                            message: str) -> None:
    proc = _validate(tmp_path, SPEC.replace("strategy: fsdp", f"strategy: fsdp, {setting}"))
    assert proc.returncode == 2
    assert "spec.yaml:5:" in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ddp_and_auto_accept_those_settings(tmp_path: Path) -> None:
    for strategy in ("ddp", "auto"):
        proc = _validate(tmp_path, SPEC.replace("strategy: fsdp",
                                                f"strategy: {strategy}, compile: true"))
        assert proc.returncode == 0, proc.stderr


def test_a_run_written_before_strategy_existed_resumes_with_the_default() -> None:
    from nnspec.run.checkpoint import spec_changes

    old = {"train": {"epochs": 2}}
    assert spec_changes(old, {"train": {"epochs": 2, "strategy": "auto"}}) == []
    assert spec_changes(old, {"train": {"epochs": 2, "strategy": "fsdp"}}) == [
        ("train.strategy", "auto", "fsdp")]
