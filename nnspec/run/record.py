"""What a run leaves behind and shows: the run directory, metrics.jsonl, TensorBoard, progress.

The run directory holds ``spec.yaml`` (the spec as given), ``resolved.json`` (every setting after
overrides and defaults, and the model as built), ``metrics.jsonl``, TensorBoard event files and
``checkpoints/{last,best}.pt``.  On a terminal a progress line redraws in place; in a log each
epoch prints one plain line, so CI output stays readable.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from nnspec.errors import RunError


def new_run_dir(parent: Path, name: str) -> Path:
    """``parent/NAME-YYYYmmdd-HHMMSS`` (with a suffix if that exists already)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = parent / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    return path


def prepare_dir(path: Path, resume: bool) -> Path:
    if not resume and any((path / "checkpoints" / name).exists()
                          for name in ("last.pt", "last")):  # last: a sharded checkpoint
        raise RunError(f"{path} already holds a run",
                       hint=f"continue it with --resume {path}, or choose another --run-dir")
    for folder in (path, *path.parents):
        if folder.exists() and not folder.is_dir():
            raise RunError(f"cannot make the run directory {path}: {folder} is a file, not a "
                           "folder", hint="log.dir and --run-dir name folders: choose another")
    try:
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot make the run directory {path}: {exc.strerror or exc}",
                       hint="choose a folder you can write to (log.dir or --run-dir)") from None
    return path


def write_summary(path: Path, changes: dict[str, Any]) -> None:
    """Update ``summary.json``, the run's status for ``nnspec runs``: what ``changes`` says over
    what the file held (a resumed run keeps its first start time)."""
    file = path / "summary.json"
    try:
        current = json.loads(file.read_text()) if file.exists() else {}
    except (OSError, ValueError):
        current = {}
    current = {**current, **changes, "updated": time.time()}
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text(json.dumps(current, indent=2) + "\n")
    tmp.replace(file)


class MetricsLog:
    """Append-only metrics.jsonl; on resume, cut back to what the checkpoint had seen."""

    def __init__(self, path: Path, keep_lines: int | None) -> None:
        self.path = path
        if keep_lines is not None and path.exists():
            lines = path.read_text().splitlines(keepends=True)[:keep_lines]
            path.write_text("".join(lines))
        elif keep_lines is None:
            path.write_text("")
        self.lines = len(path.read_text().splitlines()) if path.exists() else 0

    def records(self) -> list[dict[str, Any]]:
        """Every record written so far (by this run and the runs it resumes)."""
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def write(self, record: dict[str, Any]) -> None:
        try:
            with self.path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise RunError(f"cannot write {self.path}: {exc.strerror or exc}",
                           hint="the last checkpoint is unchanged: free space and --resume") \
                from None
        self.lines += 1


class Board:
    """TensorBoard scalars, hyper-parameters and graph; a no-op when disabled.

    The writer (and TensorBoard's import, a fifth of a second) is made at the first write, so
    that training starts without waiting for it.
    """

    def __init__(self, path: Path | None, purge_step: int | None) -> None:
        self.path = path
        self.purge_step = purge_step
        self._writer: Any = None

    @property
    def enabled(self) -> bool:
        return self.path is not None

    @property
    def writer(self) -> Any:
        if self._writer is None and self.path is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.path), purge_step=self.purge_step)
        return self._writer

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.enabled:
            self.writer.add_scalar(tag, value, step)

    def text(self, tag: str, text: str) -> None:
        if self.enabled:
            self.writer.add_text(tag, text, 0)

    def graph(self, model: Any, example: Any) -> str | None:
        """Trace the model graph; returns why it could not, if it could not."""
        if not self.enabled:
            return None
        try:
            with warnings.catch_warnings(), _attention_fastpath_off():
                warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notices
                self.writer.add_graph(model, example)
        except Exception as exc:  # tracing is best effort: some models do not trace
            return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        if self.enabled:
            clean = {k: v if isinstance(v, int | float | str | bool) else str(v)
                     for k, v in hparams.items()}
            self.writer.add_hparams(clean, {f"hparam/{k}": v for k, v in metrics.items()},
                                    run_name=".")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


@contextlib.contextmanager
def _attention_fastpath_off() -> Iterator[None]:
    """In eval mode, TransformerEncoderLayer and MultiheadAttention take a fused fast path
    whose trace fails torch.jit.trace's sanity check (the graph was dropped with a note, after
    tracing twice); the plain path traces, and computes the same values."""
    import torch

    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    was = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(was)


class Progress:
    """A redrawn bar on a terminal (ETA, loss, throughput); nothing mid-epoch otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()

    def begin_epoch(self) -> None:
        self.start = time.perf_counter()

    def update(self, epoch: int, epochs: int, done: int, total: int, loss: float,
               samples: int) -> None:
        if not self.tty:
            return
        elapsed = time.perf_counter() - self.start
        rate = samples / elapsed if elapsed > 0 else 0.0
        eta = elapsed / max(done, 1) * (total - done)
        width = 24
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\repoch {epoch}/{epochs} [{bar}] {done}/{total} loss {loss:.4f} "
                          f"{rate:,.0f} samples/s ETA {eta:4.0f}s ")
        self.stream.flush()

    def line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()
