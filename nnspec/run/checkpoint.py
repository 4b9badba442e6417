"""Checkpoints: committed atomically, loaded without unpickling, compared with the spec on resume.

A checkpoint holds only tensors, numbers, strings, lists and dicts, so ``torch.load(...,
weights_only=True)`` reads it and a crafted pickle is refused.  It is written to a temporary file
in the same directory, flushed and fsynced, then renamed over the old one: a run killed at any
instant leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nnspec.errors import Location, Problem, RunError, SpecError

FORMAT = 1

# Settings that may change between a run and its resumption: they do not alter what is computed.
COMPATIBLE = ("train.epochs", "train.device", "train.monitor", "train.mode", "log.",
              "data.num_workers", "data.pin_memory", "data.resident", "data.root",
              "data.test", "train.compile", "train.cuda_graph",
              "train.max_params", "weights", "train.early_stopping", "train.max_time")


def save(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename, fsync the folder)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; anything else is refused, not run."""
    if path.is_dir():  # a run directory, or its checkpoints/ folder
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        raise RunError(f"checkpoint {path} is a folder, not a checkpoint file",
                       hint=f"give a file in it, e.g. {folder / 'best.pt'} or last.pt")
    if not path.is_file():
        raise RunError(f"checkpoint {path} does not exist")
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise RunError(f"cannot load checkpoint {path}: {exc.strerror or exc}") from None
    except Exception:  # a hostile or corrupt file must never reach the user as a trace
        # torch's message says nothing useful here: for a truncated file the unpickler's is a
        # bare number, for an empty one it is empty
        raise RunError(f"cannot load checkpoint {path}: not a readable checkpoint (truncated, "
                       "or not written by nnspec)",
                       hint="only checkpoints written by nnspec (plain tensors) are accepted") \
            from None
    if not isinstance(state, dict) or "model" not in state:
        raise RunError(f"{path} is not an nnspec checkpoint (no model weights)")
    return state


def weights_state(model: Mapping[str, torch.Tensor], spec: Mapping[str, Any],
                  meta: Mapping[str, Any], *, epoch: int | None,
                  best: float | None) -> dict[str, Any]:
    """A checkpoint for evaluation, prediction and export (``best.pt``): the weights, what
    prediction needs besides the spec (``meta``: class names, statistics) and the resolved
    spec; no optimizer or random state, which only a resume reads (from ``last.pt``)."""
    return {"format": FORMAT, "model": dict(model), "epoch": epoch, "best": best,
            "best_epoch": epoch, "spec": dict(spec), "meta": dict(meta)}


def metadata(state: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint's prediction metadata (empty for checkpoints written before it)."""
    meta = state.get("meta")
    return dict(meta) if isinstance(meta, Mapping) else {}


def model_weights(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = state["model"]
    return weights


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {dotted.key: leaf}."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def spec_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every setting that differs."""
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True)]


def check_resume(old: Mapping[str, Any], new: Mapping[str, Any], file: str) -> list[str]:
    """Refuse changes that would make the resumed run differ; return notes for the rest."""
    changes = spec_changes(old, new)
    bad = [c for c in changes if not any(c[0] == p or c[0].startswith(p if p.endswith(".")
                                                                       else p + ".")
                                         or c[0] == p for p in COMPATIBLE)]
    notes = [f"{k}: {json.dumps(a)} -> {json.dumps(b)}" for k, a, b in changes]
    if bad:
        raise SpecError([Problem(Location(file), tuple(k.split(".")),
                                 f"changed since the checkpoint: {json.dumps(a)} -> "
                                 f"{json.dumps(b)}", "resuming needs the same model, data "
                                 "and optimisation; start a new run instead")
                         for k, a, b in bad])
    return notes
