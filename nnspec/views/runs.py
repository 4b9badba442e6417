"""``nnspec runs`` and ``nnspec plot``: what runs a folder holds, and their curves.

Read from the files a run leaves (``summary.json``, ``metrics.jsonl``, ``resolved.json``), never
from checkpoints, so listing runs imports no torch.  A run written before ``summary.json``
existed is described from its metrics alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnspec.errors import RunError


@dataclass
class Run:
    path: Path
    name: str
    started: float | None
    epochs: int
    planned: int | None
    monitor: str
    best: float | None
    best_epoch: int | None
    seconds: float | None
    status: str
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def curve(self, split: str, metric: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of one metric of one split."""
        points = [(r["epoch"], r[metric]) for r in self.records
                  if r.get("split") == split and isinstance(r.get(metric), int | float)]
        return [e for e, _ in points], [v for _, v in points]

    def metrics(self) -> list[str]:
        """The metrics recorded (loss first), in the order they first appear."""
        seen: dict[str, None] = {"loss": None}
        for r in self.records:
            if "split" in r:
                seen.update(dict.fromkeys(k for k in r if k not in _NOT_METRICS))
        return list(seen)


_NOT_METRICS = frozenset({"epoch", "split", "samples", "samples_per_s", "seconds", "time", "lr"})


def _json(path: Path) -> dict[str, Any]:
    """A JSON object's entries; {} for a file that is missing, damaged or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _records(path: Path) -> list[dict[str, Any]]:
    out = []
    try:
        lines = (path / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(record, dict) and _number(record.get("epoch"), int) is not None and \
                _number(record.get("time", 0)) is not None and \
                _number(record.get("seconds", 0)) is not None:
            out.append(record)  # a record of other types was written by something else
    return out


def _number(value: Any, kind: type | tuple[type, ...] = (int, float)) -> Any:
    """``value`` if it is a number of ``kind`` (never a bool), else None."""
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_run(path: Path) -> Run:
    """One run folder, described from summary.json, else from metrics.jsonl and resolved.json."""
    records = _records(path)
    summary = _json(path / "summary.json")
    resolved = _json(path / "resolved.json")
    train: dict[str, Any] = resolved["train"] if isinstance(resolved.get("train"), dict) \
        else {}
    monitor = _text(summary.get("monitor")) or _text(train.get("monitor")) or "val.loss"
    best, best_epoch = _best(records, monitor, train.get("mode", "auto"))
    epochs = max((r["epoch"] for r in records if "split" in r), default=0)
    first = min((r["time"] - r.get("seconds", 0) for r in records if "time" in r), default=None)
    planned = _number(train.get("epochs"), int)
    status = _text(summary.get("status")) or ("completed" if epochs and epochs == planned
                                              else "unknown")
    return Run(path, _text(summary.get("name")) or _text(resolved.get("name")) or path.name,
               _or(_number(summary.get("started")), first),
               _or(_number(summary.get("epochs"), int), epochs),
               _or(_number(summary.get("epochs_planned"), int), planned), monitor,
               _or(_number(summary.get("best")), best),
               _or(_number(summary.get("best_epoch"), int), best_epoch),
               _number(summary.get("seconds")), status, records)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _best(records: list[dict[str, Any]], monitor: str, mode: str) -> tuple[float | None,
                                                                          int | None]:
    split, _, metric = monitor.partition(".")
    points = [(r[metric], r["epoch"]) for r in records
              if r.get("split") == split and isinstance(r.get(metric), int | float)]
    if not points:
        return None, None
    maximize = mode == "max" or (mode == "auto" and (metric == "accuracy"
                                                     or metric.startswith("top")))
    value, epoch = (max if maximize else min)(points, key=lambda p: (p[0], -p[1]) if maximize
                                              else (p[0], p[1]))
    return value, epoch


def find_runs(folder: Path) -> list[Run]:
    """The runs in ``folder`` (or ``folder`` itself when it is one), oldest first."""
    if not folder.is_dir():
        raise RunError(f"{folder} is not a folder", hint="give a folder of runs, e.g. runs")
    if _is_run(folder):
        return [read_run(folder)]
    runs = [read_run(p) for p in sorted(folder.iterdir()) if p.is_dir() and _is_run(p)]
    return sorted(runs, key=lambda r: (r.started or 0, r.path.name))


def _is_run(path: Path) -> bool:
    return (path / "metrics.jsonl").is_file() or (path / "summary.json").is_file()


def runs_table(runs: list[Run]) -> str:
    """The table ``nnspec runs`` prints."""
    if not runs:
        return "no runs"
    header = ["run", "spec", "started", "epochs", "best", "at epoch", "time", "status"]
    rows = [[r.path.name, r.name, _when(r.started), _epochs(r),
             f"{r.monitor} {r.best:.4f}" if r.best is not None else "--",
             str(r.best_epoch) if r.best_epoch is not None else "--",
             f"{r.seconds:.1f}s" if r.seconds is not None else "--", r.status] for r in runs]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "--"


def _epochs(run: Run) -> str:
    return f"{run.epochs}/{run.planned}" if run.planned else str(run.epochs)
