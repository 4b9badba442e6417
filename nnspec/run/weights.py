"""Start from weights in a file: the spec's ``weights`` section.

``read`` finds and reads the file before the data is loaded (a wrong path fails in a second):
a PyTorch ``.pt``/``.pth`` state_dict, a safetensors file, an nnspec checkpoint (through
``checkpoint.load``) or a run directory (its ``checkpoints/best.pt``, else ``last.pt``).  PyTorch
files are read with ``weights_only=True``, so a pickle that names Python objects is refused,
never run.  Keys are then mapped (``strip_prefix``, then ``rename``) and ``skip`` drops those
the spec replaces.  ``apply`` runs after the init rules, so a parameter the file does not fill
keeps the value the rules (or PyTorch) gave it; it compares keys and shapes with the model's
``state_dict`` first and reports, or refuses under ``strict``, everything that does not fit.

Errors name keys and shapes, never bytes of the file; keys are shown escaped, so a hostile file
cannot write control characters to the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nnspec.errors import NnspecError, Problem, SpecError, did_you_mean
from nnspec.lang.spec import Spec, Weights
from nnspec.run import checkpoint

# Entries that hold the state_dict in checkpoints written by common training scripts.
STATE_DICT_ENTRIES = ("state_dict", "model", "model_state_dict", "module", "net")
SHOWN_KEY_LENGTH = 120


@dataclass
class Source:
    """The file's tensors under the names the model will be asked for."""

    path: Path
    tensors: dict[str, Tensor]
    skipped: list[str]  # mapped keys left out by weights.skip
    # a weights.skip pattern that matched no key: raised by apply(), unless the file is of
    # another network, which apply() says instead (the pattern's miss is only a symptom)
    unmatched: SpecError | None = None


@dataclass
class Report:
    """What loading did; ``lines`` is what the run prints first."""

    path: Path
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # by weights.skip
    mismatched: list[tuple[str, list[int], list[int]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model tensors with no weight
    unused: list[str] = field(default_factory=list)  # file keys nothing in the model takes

    def lines(self) -> list[str]:
        total = len(self.loaded) + len(self.missing) + len(self.mismatched) + len(
            [k for k in self.skipped if k not in self.unused])
        out = [f"weights: {len(self.loaded)} of {total} tensors loaded from {self.path}"]
        if self.skipped:
            out.append(f"weights: skipped by weights.skip: {_names(self.skipped)}")
        out += [f"weights: skipped {show(k)}: the file's shape {a}, the model's {b}"
                for k, a, b in self.mismatched]
        if self.missing:
            out.append(f"weights: no weight in the file, initial values kept: "
                       f"{_names(self.missing)}")
        if self.unused:
            out.append(f"weights: keys of the file the model does not have: "
                       f"{_names(self.unused)}")
        return out

    def record(self) -> dict[str, Any]:
        return {"from": str(self.path), "loaded": len(self.loaded), "skipped": self.skipped,
                "mismatched": [{"key": k, "file": a, "model": b} for k, a, b in self.mismatched],
                "missing": self.missing, "unused": self.unused}


def show(key: str) -> str:
    """A key as it may be printed: escaped, and cut when very long."""
    text = key.encode("unicode_escape").decode("ascii")
    return text if len(text) <= SHOWN_KEY_LENGTH else text[:SHOWN_KEY_LENGTH] + "..."


def _names(keys: list[str], most: int = 12) -> str:
    """The names, the first ``most`` of a long list and how many there are in all."""
    shown = ", ".join(show(k) for k in keys[:most])
    return shown if len(keys) <= most else f"{shown}, ... ({len(keys)} in all)"


def _error(w: Weights, at: tuple[str | int, ...], message: str,
           hint: str | None = None) -> SpecError:
    return SpecError([Problem(w.locate(*at), ("weights", *at), message, hint)])


# ---- finding and reading the file ------------------------------------------------------------

def path_of(spec: Spec, w: Weights) -> Path:
    """``weights.from``: relative to the spec file's folder, or to the working directory when
    it came from the command line or the spec has no file."""
    path = Path(w.source).expanduser()
    if path.is_absolute() or not _in_spec_file(spec, w):
        return path
    return Path(spec.file).parent / path


def _in_spec_file(spec: Spec, w: Weights) -> bool:
    return w.locate("from").file == spec.file and not spec.file.startswith("<")


def read(spec: Spec) -> Source | None:
    """The spec's weights file, read and mapped; None when the spec names none."""
    w = spec.weights
    if w is None:
        return None
    path = _file(path_of(spec, w), w, "the spec file's folder" if _in_spec_file(spec, w)
                 else "the working directory")
    tensors = _checkpoint_weights(path, w) if path.is_dir() else \
        _state_dict(_load(path, w), path, w)  # a folder: a sharded checkpoint (sharded.py)
    mapped = _map(tensors, w)
    return _skip(Source(path, mapped, []), w)


def _file(path: Path, w: Weights, base: str) -> Path:
    """The file to read: ``path`` itself, or a run directory's checkpoint (a sharded one is a
    folder)."""
    from nnspec.run import sharded

    if sharded.is_sharded(path):
        return path
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        for name in ("best.pt", "last.pt", "best", "last"):
            if (folder / name).is_file() or sharded.is_sharded(folder / name):
                return folder / name
        raise _error(w, ("from",), f"{path} is a folder that holds no nnspec checkpoint",
                     "name a weights file, or a run directory (it has checkpoints/best.pt)")
    if not path.exists():
        raise _error(w, ("from",), f"no weights file {path}",
                     f"a relative path here is read from {base}")
    if not path.is_file():
        raise _error(w, ("from",), f"{path} is not a regular file")
    return path


def _kind(path: Path) -> str:
    """safetensors or torch, from the first bytes (a name's suffix proves nothing)."""
    with path.open("rb") as fh:
        head = fh.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        size = int.from_bytes(head[:8], "little")
        if 0 < size <= path.stat().st_size - 8:
            return "safetensors"
    return "torch"


def _load(path: Path, w: Weights) -> Any:
    kind = _kind(path)
    try:
        if kind == "safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise _error(w, ("from",), f"cannot read weights file {path}: "
                     f"{exc.strerror or type(exc).__name__}") from None
    except Exception:  # a corrupt or hostile file: what the reader said may quote its bytes
        what = "safetensors file" if kind == "safetensors" else "PyTorch weights file"
        raise _error(w, ("from",), f"cannot read {path}: not a readable {what} (truncated, "
                     "or holding Python objects, which are never unpickled)",
                     "give a state_dict saved with torch.save(model.state_dict(), ...), a "
                     ".safetensors file or an nnspec checkpoint") from None


def _is_tensors(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in value.items())


def _state_dict(loaded: Any, path: Path, w: Weights) -> dict[str, Tensor]:
    """The mapping of names to tensors inside what the file held."""
    if isinstance(loaded, Mapping) and {"format", "model", "spec"} <= set(loaded):
        loaded = {"model": _checkpoint_weights(path, w)}  # an nnspec checkpoint
    if w.key is not None:
        if not isinstance(loaded, Mapping) or w.key not in loaded:
            raise _error(w, ("key",), f"the file has no entry '{show(w.key)}'")
        if not _is_tensors(loaded[w.key]):
            raise _error(w, ("key",), f"the file's entry '{show(w.key)}' is not a state_dict")
        return dict(loaded[w.key])
    if _is_tensors(loaded):
        return dict(loaded)
    found = [k for k in STATE_DICT_ENTRIES if isinstance(loaded, Mapping)
             and _is_tensors(loaded.get(k))]
    if len(found) == 1:
        return dict(loaded[found[0]])
    raise _error(w, ("from",), "the file holds no state_dict (a mapping of names to tensors)",
                 "name the entry that holds one with weights.key")


def _checkpoint_weights(path: Path, w: Weights) -> dict[str, Tensor]:
    """An nnspec checkpoint's model weights, read again by the checkpoint loader, which knows
    its format versions."""
    try:
        return checkpoint.model_weights(checkpoint.load(path))
    except NnspecError as exc:
        raise _error(w, ("from",), f"cannot use the checkpoint: {exc}") from None


# ---- mapping ---------------------------------------------------------------------------------

def map_key(key: str, w: Weights) -> str:
    """A file key under the model's name: strip_prefix, then rename."""
    for prefix in w.prefixes:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    for old, new in w.rename.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _map(tensors: dict[str, Tensor], w: Weights) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in tensors.items():
        name = map_key(key, w)
        if name in out:
            raise _error(w, ("rename",) if w.rename else ("strip_prefix",),
                         f"the file's keys {show(origin[name])} and {show(key)} both become "
                         f"{show(name)}", "map them to different names")
        out[name], origin[name] = value, key
    return out


def _skip(source: Source, w: Weights) -> Source:
    for i, pattern in enumerate(w.skip):
        hit = [k for k in source.tensors if fnmatchcase(k, pattern)]
        if not hit:
            source.unmatched = source.unmatched or _error(
                w, ("skip", i), f"{pattern!r} matches no key of the file",
                _closest(pattern, source.tensors))
        for key in hit:
            source.skipped.append(key)
            del source.tensors[key]
    return source


def _closest(pattern: str, keys: Mapping[str, Any]) -> str:
    stem = pattern.split("*")[0].rstrip(".")
    tops = sorted({k.split(".")[0] for k in keys})
    return did_you_mean(stem, tops) or f"the file's keys begin with {_names(tops[:8])}"


# ---- loading into the model ------------------------------------------------------------------

def apply(model: nn.Module, source: Source, w: Weights) -> Report:
    """Copy the file's tensors into ``model``; refuse (strict) or report what does not fit."""
    target = model.state_dict()
    report = Report(source.path, skipped=list(source.skipped))
    fits: dict[str, Tensor] = {}
    for key, value in source.tensors.items():
        if key not in target:
            report.unused.append(key)
        elif tuple(value.shape) != tuple(target[key].shape):
            report.mismatched.append((key, list(value.shape), list(target[key].shape)))
        else:
            fits[key] = value
    report.loaded = list(fits)
    expected = set(fits) | set(source.skipped) | {k for k, _, _ in report.mismatched}
    report.missing = [k for k in target if k not in expected]
    if source.unmatched is not None and not (w.strict and _of_another_network(report)):
        raise source.unmatched
    if w.strict:
        _refuse_misfits(report, w)
    model.load_state_dict(fits, strict=False)
    return report


def _of_another_network(report: Report) -> bool:
    """None of the file's tensors fits, though the model has weights to fill."""
    return not report.loaded and bool(report.missing or report.mismatched)


def _refuse_misfits(report: Report, w: Weights) -> None:
    if _of_another_network(report):
        count = len(report.unused) + len(report.mismatched)
        raise SpecError([Problem(
            w.locate("from"), ("weights", "from"),
            f"none of the file's {count} tensors fits this model: it has no weight for "
            f"{_names(report.missing, 6)}, and the file holds {_names(report.unused, 6)}",
            "are these the weights of another network? Give the file this spec's model was "
            "trained into, or map the names with weights.strip_prefix or rename")])
    problems = [Problem(w.locate("from"), ("weights", "from"),
                        f"{show(k)}: the file's shape {a} does not fit the model's {b}",
                        f"a new layer? leave it out with weights.skip: "
                        f"['{show(k.rpartition('.')[0] or k)}.*'], or set weights.strict: false")
                for k, a, b in report.mismatched]
    if report.missing:
        problems.append(Problem(w.locate("from"), ("weights", "from"),
                                f"the file has no weight for {_names(report.missing)}",
                                "map the file's names with weights.strip_prefix or rename, or "
                                "set weights.strict: false to keep their initial values"))
    if report.unused:
        problems.append(Problem(w.locate("from"), ("weights", "from"),
                                f"the model has nothing named {_names(report.unused)}",
                                "map the file's names with weights.strip_prefix or rename, "
                                "leave them out with weights.skip, or set weights.strict: "
                                "false"))
    if problems:
        raise SpecError(problems)
