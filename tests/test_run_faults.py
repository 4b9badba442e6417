"""Faults during a run: full disks, unwritable folders, checkpoints that are not of this spec.

Each fault is injected from here (monkeypatching, RLIMIT_FSIZE in a child process, files where
folders should be); a run that meets one exits 3 with a clear message, never a traceback, and the
last good checkpoint still loads.  Root ignores permission bits, so "read-only" is made by
monkeypatching the write, not by chmod.
"""

from __future__ import annotations

import errno
import io
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from run_fixtures import DIGITS_MLP, ROOT

from nnspec.run import checkpoint
from nnspec.run.commands import train_command


def _spec(tmp_path: Path, text: str = DIGITS_MLP, **train: Any) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def _train(spec: Path, *args: str, run_dir: Path | None = None,
           resume: Path | None = None) -> tuple[int, str]:
    err = io.StringIO()
    code = train_command(str(spec), list(args), str(run_dir) if run_dir else None,
                         str(resume) if resume else None, out=io.StringIO(), err=err)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run of the digits MLP."""
    tmp = tmp_path_factory.mktemp("faults")
    spec = _spec(tmp)
    code, err = _train(spec, run_dir=tmp / "run")
    assert code == 0, err
    return tmp / "run"


def _copy_run(finished: Path, tmp_path: Path) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (tmp_path / "spec.yaml").write_text(DIGITS_MLP)
    return run


# -- writing checkpoints ---------------------------------------------------------------------

def test_a_full_disk_during_a_checkpoint_write_is_exit_3_and_keeps_the_last_one(
        finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _copy_run(finished, tmp_path)
    before = (run / "checkpoints" / "last.pt").read_bytes()

    def short_write(obj: Any, fh: Any, *args: Any, **kwargs: Any) -> None:
        fh.write(b"PK\x03\x04partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", short_write)
    code, err = _train(tmp_path / "spec.yaml", "train.epochs=3", resume=run)
    assert code == 3, err
    assert "cannot write checkpoint" in err and "no space left" in err
    assert "Traceback" not in err and "unexpected pos" not in err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == 2
    assert not [p for p in (run / "checkpoints").iterdir() if ".tmp" in p.name]


def test_enospc_from_the_file_system_is_exit_3(
        finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _copy_run(finished, tmp_path)
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, err = _train(tmp_path / "spec.yaml", "train.epochs=3", resume=run)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert code == 3, err
    assert "no space left on the device" in err
    checkpoint.load(run / "checkpoints" / "last.pt")


def test_a_read_only_run_directory_is_exit_3(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    def read_only(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if ("w" in mode or "a" in mode) and "run" in self.parts:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", read_only)
    code, err = _train(_spec(tmp_path), run_dir=tmp_path / "run")
    assert code == 3, err
    assert "Read-only file system" in err and "Traceback" not in err


def test_a_metrics_file_that_cannot_be_written_is_exit_3(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nnspec.run import record

    def refuse(self: Any, entry: dict[str, Any]) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    real = record.MetricsLog.write
    monkeypatch.setattr(record.MetricsLog, "write", lambda self, r: _wrapped(real, refuse,
                                                                             self, r))
    code, err = _train(_spec(tmp_path), run_dir=tmp_path / "run")
    assert code == 3, err
    assert "metrics.jsonl" in err and "No space left on device" in err


def _wrapped(real: Any, fault: Any, self: Any, entry: dict[str, Any]) -> None:
    """The real write, made to fail as the file system would (through the real error path)."""
    real_open = Path.open

    def failing_open(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == self.path:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, *args, **kwargs)

    Path.open = failing_open  # type: ignore[method-assign]
    try:
        real(self, entry)
    finally:
        Path.open = real_open  # type: ignore[method-assign]


FSIZE_CHILD = textwrap.dedent("""
    import io, resource, sys
    from nnspec.run.commands import train_command
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
    import signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    sys.exit(train_command(sys.argv[1], ["train.epochs=4"], None, sys.argv[2]))
""")


def test_a_file_size_limit_during_a_checkpoint_write_is_exit_3(
        finished: Path, tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the real write stop short, as a full disk does."""
    run = _copy_run(finished, tmp_path)
    size = (run / "checkpoints" / "last.pt").stat().st_size
    done = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(tmp_path / "spec.yaml"),
                           str(run), str(size // 2)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 3, done.stderr
    assert "cannot write checkpoint" in done.stderr and "Traceback" not in done.stderr
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == 2
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the limit was the child's alone


def test_log_dir_naming_a_file_is_exit_3(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("not a folder")
    code, err = _train(_spec(tmp_path), f"log.dir={tmp_path / 'runs'}")
    assert code == 3, err
    assert f"{tmp_path / 'runs'} is a file, not a folder" in err
    assert (tmp_path / "runs").read_text() == "not a folder"


# -- reading checkpoints ---------------------------------------------------------------------

def _tamper(run: Path, change: Any) -> Path:
    last = run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    change(state)
    torch.save(state, last)
    return last


TAMPERINGS = {
    "model a string": (lambda s: s.update(model="weights"), "'model' is str, expected dict"),
    "wrong shapes": (lambda s: s["model"].update({"0.weight": torch.zeros(3, 3)}),
                     "'0.weight' has shape [3, 3], the model's is [16, 64]"),
    "a missing weight": (lambda s: s["model"].pop("2.bias"), "no weights for '2.bias'"),
    "no optimizer": (lambda s: s.pop("optimizer"), "no 'optimizer' entry"),
    "no spec": (lambda s: s.pop("spec"), "no 'spec' entry"),
    "epoch 1e18": (lambda s: s.update(epoch=10**18), "'epoch' is 1000000000000000000, not a "
                                                    "count"),
    "epoch a float": (lambda s: s.update(epoch=1e18), "'epoch' is float, expected int"),
    "rng a string": (lambda s: s.update(rng={"cpu": "x"}), "'rng' holds no CPU random state"),
    "optimizer of another model": (
        lambda s: s["optimizer"]["param_groups"][0].update(params=[0]),
        "its optimizer or random state"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_checkpoint_whose_content_is_wrong_is_refused_on_resume(
        name: str, finished: Path, tmp_path: Path) -> None:
    change, expected = TAMPERINGS[name]
    run = _copy_run(finished, tmp_path)
    last = _tamper(run, change)
    code, err = _train(tmp_path / "spec.yaml", "train.epochs=3", resume=run)
    assert code == 3, err
    assert f"{last} is not a checkpoint of this spec" in err
    assert expected in err
    assert "Traceback" not in err


def test_an_unknown_format_version_is_refused(finished: Path, tmp_path: Path) -> None:
    run = _copy_run(finished, tmp_path)
    last = _tamper(run, lambda s: s.update(format=99))
    code, err = _train(tmp_path / "spec.yaml", "train.epochs=3", resume=run)
    assert code == 3
    assert f"{last} is checkpoint format 99; this nnspec reads format 1" in err


def test_a_checkpoint_without_a_format_version_is_refused(finished: Path, tmp_path: Path) -> None:
    run = _copy_run(finished, tmp_path)
    _tamper(run, lambda s: s.pop("format"))
    code, err = _train(tmp_path / "spec.yaml", "train.epochs=3", resume=run)
    assert code == 3 and "has no format version" in err


def test_eval_of_a_checkpoint_of_another_model_names_what_differs(
        finished: Path, tmp_path: Path) -> None:
    from nnspec.run.commands import eval_command

    run = _copy_run(finished, tmp_path)
    last = _tamper(run, lambda s: s["model"].update({"0.weight": torch.zeros(3, 3)}))
    err = io.StringIO()
    code = eval_command(str(tmp_path / "spec.yaml"), str(last), "val", out=io.StringIO(),
                        err=err)
    assert code == 3
    assert "not a checkpoint of this spec: '0.weight' has shape [3, 3]" in err.getvalue()


def test_resume_removes_temporary_files_a_killed_run_left(finished: Path, tmp_path: Path) -> None:
    run = _copy_run(finished, tmp_path)
    stale = [run / "checkpoints" / ".last.pt.tmp12345", run / "checkpoints" / ".best.pt.tmp7"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    keep = run / "checkpoints" / "notes.tmp1"
    keep.write_text("mine")
    code, err = _train(tmp_path / "spec.yaml", "train.epochs=3", resume=run)
    assert code == 0, err
    assert not any(p.exists() for p in stale)
    assert keep.exists()


# -- signals during start-up ---------------------------------------------------------------

SIGTERM_CHILD = textwrap.dedent("""
    import os, signal, sys
    from nnspec.run import {module}
    real = {module}.{name}
    def {name}(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as if the user's SIGTERM arrived now
        return real(*args, **kwargs)
    {module}.{name} = {name}
    from nnspec.cli import main
    sys.argv = ["nnspec", "train", sys.argv[1], "log.dir=" + sys.argv[2]]
    main()
""")


@pytest.mark.parametrize(("module", "name"), [("setup", "build"), ("api", "Trainer")],
                         ids=["building the model", "after the run directory was made"])
def test_sigterm_during_start_up_exits_143_without_a_traceback_or_run_directory(
        module: str, name: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-c", SIGTERM_CHILD.format(module=module, name=name),
                           str(_spec(tmp_path)), str(runs)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 143, done.stderr
    assert "Traceback" not in done.stderr
    assert "stopped by signal 15 before training began" in done.stderr
    assert not runs.exists() or not list(runs.iterdir())


# -- files a spec points at ------------------------------------------------------------------

SECRET = "s3cr3t-token"


@pytest.mark.parametrize(("name", "content", "args"), [
    ("header.csv", f"{SECRET},b\n1,2\n", "{path: FILE, target: label}"),
    ("value.csv", f"a,label\n{SECRET},1\n", "{path: FILE, target: label}"),
    ("binary.csv", b"a,label\n\xff\xfe" + SECRET.encode() + b",1\n", "{path: FILE, target: label}"),
    ("text.pt", f"{SECRET}\n", "{path: FILE}"),
    ("text.npz", f"{SECRET}\n", "{path: FILE}"),
], ids=["csv header", "csv value", "csv not utf-8", "pt of text", "npz of text"])
def test_errors_never_echo_the_content_of_a_file_the_spec_names(
        name: str, content: str | bytes, args: str, tmp_path: Path) -> None:
    target = tmp_path / name
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)
    kind = "CSV" if name.endswith(".csv") else "Tensors"
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"nnspec: 1\ninput: [1]\nmodel: [{{Linear: {{out_features: 2}}}}]\n"
                    f"data: {{dataset: {{{kind}: {args.replace('FILE', str(target))}}}}}\n"
                    "loss: CrossEntropyLoss\ntrain: {epochs: 1, device: cpu}\n"
                    "log: {tensorboard: false}\n")
    code, err = _train(spec, run_dir=tmp_path / "run")
    assert code == 3, err
    assert str(target) in err
    assert SECRET not in err and "Traceback" not in err
