"""Checkpoints: committed atomically, loaded without unpickling, compared with the spec on resume.

A checkpoint holds only tensors, numbers, strings, lists and dicts, so ``torch.load(...,
weights_only=True)`` reads it and a crafted pickle is refused.  It is written to a temporary file
in the same directory, flushed and fsynced, then renamed over the old one: a run killed at any
instant leaves the previous checkpoint whole.  A write that fails (a full disk, a read-only
folder) is a run error that leaves the previous checkpoint in place.

The format is versioned: ``format`` names it, ``FIELDS`` says what each entry of this version
holds, and ``load`` refuses a version it does not know and any entry of the wrong type, before
anything is restored from it.  Extending the format means adding an entry to ``FIELDS`` (or
``OPTIONAL`` for an entry older checkpoints of this version lack) and, when an old reader would
misread the new file, raising ``FORMAT``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nnspec.errors import Location, Problem, RunError, SpecError

FORMAT = 1
KNOWN_FORMATS = frozenset({1})
MAX_COUNTER = 10**12  # epochs, steps and positions beyond this are not a real run's

_Kind = type | tuple[type, ...]
_COUNT: _Kind = int
# Every entry a checkpoint of this format holds, and its type.
FIELDS: dict[str, _Kind] = {
    "format": int, "model": dict, "optimizer": dict, "scheduler": (dict, type(None)),
    "scaler": (dict, type(None)), "rng": dict, "epoch": _COUNT, "position": _COUNT,
    "global_step": _COUNT, "meter": dict, "best": (float, int, type(None)),
    "best_epoch": (int, type(None)), "metrics_lines": _COUNT, "spec": dict,
}
# Entries a checkpoint of this format may lack (added to the format after it was first written).
OPTIONAL: dict[str, _Kind] = {}
_COUNTERS = ("epoch", "position", "global_step", "metrics_lines")
_TEMPORARY = re.compile(r"^\..+\.tmp[0-9]+$")

# Settings that may change between a run and its resumption: they do not alter what is computed.
COMPATIBLE = ("train.epochs", "train.device", "train.monitor", "train.mode", "log.",
              "data.num_workers", "data.pin_memory", "data.prefetch_factor",
              "data.persistent_workers", "data.resident", "data.root",
              "data.test", "train.compile", "train.cuda_graph", "train.memory_format",
              "train.max_params", "weights", "train.early_stopping", "train.max_time")


def save(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename, fsync the folder).

    A failed write (disk full, read-only folder, a file size limit) raises RunError and leaves
    the previous checkpoint at ``path`` as it was.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        raise RunError(f"cannot write checkpoint {path}: {_write_failure(exc)}",
                       hint=_kept(path)) from None
    finally:
        _remove(tmp)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # the rename is done; some file systems cannot fsync a folder


def _write_failure(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "no space left on the device"
        return exc.strerror or str(exc)
    # torch's writer reports a short write as "... unexpected pos N vs M": the disk is full, or
    # the file outgrew a size limit
    return "the write stopped short (no space left on the device, or a file size limit)"


def _kept(path: Path) -> str:
    if path.exists():
        return f"the previous checkpoint {path.name} is unchanged; free space and --resume"
    return "free space or choose another --run-dir"


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def clean_temporary(folder: Path) -> list[Path]:
    """Remove the temporary files a killed run left in ``folder`` (``.last.pt.tmpPID``)."""
    removed = []
    if folder.is_dir():
        for entry in folder.iterdir():
            if _TEMPORARY.match(entry.name) and entry.is_file() and not entry.is_symlink():
                _remove(entry)
                removed.append(entry)
    return removed


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; anything else is refused, not run.

    A checkpoint file, or a sharded checkpoint folder (sharded.py), read whole.  The format
    version and the model weights are checked here (enough for ``eval``); a resume also needs
    ``check_complete``.
    """
    from nnspec.run import sharded

    if sharded.is_sharded(path):
        state = sharded.read_state(path)
        state["model"] = sharded.full_weights(state)
        return state
    if path.is_dir():  # a run directory, or its checkpoints/ folder
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        suffix = "" if sharded.is_sharded(folder / "best") else ".pt"
        raise RunError(f"checkpoint {path} is a folder, not a checkpoint",
                       hint=f"give a checkpoint in it, e.g. {folder / ('best' + suffix)} or "
                       f"{folder / ('last' + suffix)}")
    state = load_file(path)
    if "model" not in state:
        raise RunError(f"{path} is not an nnspec checkpoint (no model weights)")
    differences = _type_differences(state, {"model": dict})
    weights = state["model"]
    if not differences and not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                   for k, v in weights.items()):
        differences = ["model: not a mapping of parameter names to tensors"]
    if differences:
        raise not_of_this_spec(path, differences)
    return state


def load_file(path: Path) -> dict[str, Any]:
    """A checkpoint file's entries, read with ``weights_only=True``, its format checked."""
    if not path.is_file():
        raise RunError(f"checkpoint {path} does not exist")
    if _is_safetensors(path):  # torch.load may even read one, as something else
        raise RunError(f"cannot load checkpoint {path}: it is a safetensors file (weights "
                       "only, as nnspec export writes them), not a checkpoint",
                       hint="give the run's checkpoints/best.pt, or start a run from these "
                       "weights with the spec's weights: section")
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
    if not isinstance(state, dict):
        raise RunError(f"{path} is not an nnspec checkpoint (no model weights)")
    _check_format(state, path)
    return state


def _is_safetensors(path: Path) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then the JSON header."""
    try:
        with path.open("rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and \
        int.from_bytes(head[:8], "little") < path.stat().st_size


def last_of(run_dir: Path) -> Path:
    """The checkpoint a resume of ``run_dir`` reads: ``last.pt``, or the sharded ``last``."""
    from nnspec.run import sharded

    folder = run_dir / "checkpoints"
    return folder / "last" if sharded.is_sharded(folder / "last") and not \
        (folder / "last.pt").is_file() else folder / "last.pt"


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


def _check_format(state: Mapping[str, Any], path: Path) -> None:
    version = state.get("format")
    if version is None:
        raise RunError(f"{path} is not a checkpoint of this spec: it has no format version",
                       hint="only checkpoints written by nnspec are accepted")
    if type(version) is not int or version not in KNOWN_FORMATS:
        known = ", ".join(str(v) for v in sorted(KNOWN_FORMATS))
        raise RunError(f"{path} is checkpoint format {str(version)[:40]}; this nnspec reads "
                       f"format {known}", hint="a checkpoint from a newer nnspec: upgrade nnspec")


def not_of_this_spec(path: Path | str, differences: list[str]) -> RunError:
    shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more"
                                         if len(differences) > 5 else "")
    return RunError(f"{path} is not a checkpoint of this spec: {shown}",
                    hint="resume or evaluate it with the spec it was written by (the run "
                    "directory's spec.yaml)")


def _type_differences(state: Mapping[str, Any], fields: Mapping[str, _Kind],
                      optional: Mapping[str, _Kind] | None = None) -> list[str]:
    out = []
    for key, kind in {**fields, **(optional or {})}.items():
        if key not in state:
            if key in fields:
                out.append(f"no '{key}' entry")
            continue
        value = state[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
            out.append(f"'{key}' is {type(value).__name__}, expected {names}")
    return out


def check_complete(state: Mapping[str, Any], path: Path) -> None:
    """Everything a resume restores is there, of the right type, with counters in range (the
    model and optimizer of a sharded checkpoint are in its shards: checked as they load)."""
    fields = {k: v for k, v in FIELDS.items()
              if not ("sharded" in state and k in ("model", "optimizer"))}
    differences = _type_differences(state, fields, OPTIONAL)
    for key in _COUNTERS:
        value = state.get(key)
        if type(value) is int and not 0 <= value <= MAX_COUNTER:
            differences.append(f"'{key}' is {value}, not a count this run could have reached")
    rng = state.get("rng")
    if isinstance(rng, dict) and not (isinstance(rng.get("cpu"), torch.Tensor)
                                      and rng["cpu"].dtype == torch.uint8):
        differences.append("'rng' holds no CPU random state")
    meter = state.get("meter")
    if isinstance(meter, dict) and not all(isinstance(meter.get(k), torch.Tensor)
                                           for k in ("sums", "counts")):
        differences.append("'meter' holds no metric sums and counts")
    if differences:
        raise not_of_this_spec(path, differences)


def check_fits(weights: Mapping[str, Any], model: torch.nn.Module, path: Path | str) -> None:
    """The checkpoint's weights (tensors, or their shapes) have exactly the model's names and
    shapes (a sharded model's are its whole tensors' shapes)."""
    own = model.state_dict()

    def shape(value: Any) -> list[int]:
        return list(getattr(value, "shape", value))

    differences = [f"no weights for '{k}'" for k in own if k not in weights]
    differences += [f"'{k}' is not in the model" for k in weights if k not in own]
    differences += [f"'{k}' has shape {shape(weights[k])}, the model's is "
                    f"{list(v.shape)}" for k, v in own.items()
                    if k in weights and shape(weights[k]) != list(v.shape)]
    if differences:
        raise not_of_this_spec(path, differences)


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


# Settings added after checkpoints were first written: absent in an older run's spec, they had
# this value (so resuming that run with it is no change).
ADDED_DEFAULTS = {"train.strategy": "auto"}


def spec_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every setting that differs."""
    a, b = flatten(old), flatten(new)
    a.update({k: v for k, v in ADDED_DEFAULTS.items() if k not in a and k in b})
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
