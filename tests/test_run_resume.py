"""Exact resume: a run killed (SIGKILL) or stopped (SIGTERM) and resumed ends bit-identical."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from run_fixtures import ROOT, lenet_text, tiny_mnist

from nnspec.run.commands import train_command

EPOCHS = 16
LOG = "log: {tensorboard: false, every_n_steps: 2}"


def _cmd(spec: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nnspec", "train", str(spec), *args]


def _start(spec: Path, run_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(_cmd(spec, "--run-dir", str(run_dir), *args), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return state["model"]


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "no checkpoint appeared"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A spec over tiny data (with dropout, which draws random numbers every step, so resume
    must restore the generator too) and its uninterrupted run."""
    tmp = tmp_path_factory.mktemp("resume")
    root = tiny_mnist(tmp / "mnist")
    text = lenet_text(root, epochs=EPOCHS, extra=LOG).replace(
        "  - Flatten\n", "  - Flatten\n  - Dropout: {p: 0.2}\n")
    spec = tmp / "spec.yaml"
    spec.write_text(text)
    reference = tmp / "reference"
    done = subprocess.run(_cmd(spec, "--run-dir", str(reference)), cwd=ROOT, text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return spec, reference


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_sigkill_then_resume_is_bit_identical(setup: tuple[Path, Path], tmp_path: Path) -> None:
    spec, reference = setup
    for attempt in range(3):  # on a loaded machine the watcher can wake after the run ended
        run = tmp_path / f"run{attempt}"
        proc = _start(spec, run)
        _wait_for(run / "checkpoints" / "last.pt", proc)
        proc.send_signal(signal.SIGKILL)  # somewhere in epoch 2: mid-step, or mid-write
        proc.communicate()
        state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
        if 1 <= state["epoch"] < EPOCHS:
            break
    assert 1 <= state["epoch"] < EPOCHS, "the kill came too late to test resuming, 3 times"
    resumed = subprocess.run(_cmd(spec, "--resume", str(run)), cwd=ROOT, text=True,
                             capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _same(_weights(run), _weights(reference))
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["split"]) for r in lines] == [
        (e, s) for e in range(1, EPOCHS + 1) for s in ("train", "val")]


def test_sigterm_commits_a_checkpoint_and_resume_is_bit_identical(
        setup: tuple[Path, Path], tmp_path: Path) -> None:
    """In-process (the handler runs in the main thread, as in the CLI), to keep the suite fast."""
    spec, reference = setup
    run = tmp_path / "run"
    finished = threading.Event()

    def stop_once_training() -> None:  # the handler is installed once the loop runs
        while not (run / "checkpoints" / "last.pt").exists():
            if finished.wait(0.01):
                return  # the run ended (or failed) first: never signal the test process
        os.kill(os.getpid(), signal.SIGTERM)

    err = io.StringIO()
    sender = threading.Thread(target=stop_once_training)
    sender.start()
    try:
        code = train_command(str(spec), [], run_dir=str(run), err=err)
    finally:
        finished.set()
        sender.join()
    assert code == 128 + signal.SIGTERM, err.getvalue()
    assert "--resume" in err.getvalue()
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] < EPOCHS
    code, text = _resume_in_process(spec, run)
    assert code == 0, text
    _same(_weights(run), _weights(reference))


def _resume_in_process(spec: Path, run: Path, *overrides: str) -> tuple[int, str]:
    err = io.StringIO()
    code = train_command(str(spec), list(overrides), resume=str(run), err=err)
    return code, err.getvalue()


def test_resume_refuses_a_changed_spec_and_says_what_changed(
        setup: tuple[Path, Path], tmp_path: Path) -> None:
    spec, reference = setup
    code, err = _resume_in_process(spec, reference, "optimizer.SGD.lr=0.1")
    assert code == 2
    assert "optimizer.args.lr: changed since the checkpoint: 0.05 -> 0.1" in err


def test_resume_accepts_more_epochs(setup: tuple[Path, Path], tmp_path: Path) -> None:
    spec, reference = setup
    run = shutil.copytree(reference, tmp_path / "run")
    code, err = _resume_in_process(spec, run, f"train.epochs={EPOCHS + 1}")
    assert code == 0, err
    assert f"train.epochs: {EPOCHS} -> {EPOCHS + 1}" in err
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == EPOCHS + 1


def test_resume_with_no_epochs_left_says_there_is_nothing_to_do(
        setup: tuple[Path, Path], tmp_path: Path) -> None:
    spec, reference = setup
    run = shutil.copytree(reference, tmp_path / "run")
    before = (run / "checkpoints" / "last.pt").read_bytes()
    code, err = _resume_in_process(spec, run, f"train.epochs={EPOCHS - 1}")
    assert code == 0, err
    assert f"{run}: already trained {EPOCHS} epochs (train.epochs: {EPOCHS - 1}): nothing to do" \
        in err
    assert "note: resuming" not in err and "done:" not in err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_nnspec_eval_prints_and_writes_the_metrics(setup: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    spec, reference = setup
    run = shutil.copytree(reference, tmp_path / "run")
    done = subprocess.run([sys.executable, "-m", "nnspec", "eval", str(spec), "--checkpoint",
                           str(run / "checkpoints" / "best.pt"), "--split", "val"],
                          cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    written = json.loads((run / "eval-val.json").read_text())
    assert f"val.accuracy {written['accuracy']:.4f}" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "nnspec", "eval", str(spec), "--checkpoint",
                              str(run / "checkpoints" / "best.pt"), "--split", "test"],
                             cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert missing.returncode == 3  # the IDX folder holds only t10k files: no test part
    assert "no IDX files for the test part" in missing.stderr
    assert "Traceback" not in missing.stderr
