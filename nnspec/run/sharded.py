"""Sharded checkpoints (train.strategy fsdp): a folder that every rank writes its shards into.

    checkpoints/last/            (and best/)
      .metadata, __R_0.distcp    torch.distributed.checkpoint's files: the model's tensors (and,
                                 in last/, the optimizer's), each rank writing its own shards
      nnspec.pt                  everything else (format, layout, counters, random state, the
                                 resolved spec, prediction metadata), written by rank 0 last

Written atomically: every rank writes into ``.last.tmp``; rank 0 then writes ``nnspec.pt``
(fsynced) and swaps the folders (``last`` -> ``.last.old``, ``.last.tmp`` -> ``last``, remove
``.last.old``).  A run killed between the two renames leaves ``.last.old``, which readers take
and the next write removes; a killed write leaves ``.last.tmp``, which is never read.

Loading never unpickles an arbitrary object: DCP's ``.metadata`` (a pickle) goes through an
unpickler that builds only DCP's own metadata classes, tensors come through torch's
``weights_only`` reader, and so do the few non-tensor entries (the optimizer's settings).
Every shard the metadata names is checked to be there and long enough before anything is
read, so a missing or truncated shard is a run error naming the file, on every rank alike.

One process with no process group reads a sharded checkpoint whole (``full_weights``): what
eval, predict and export use.  Under FSDP a resume loads each rank's shards in place
(``load_into``), whatever the number of processes that wrote them.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnspec.errors import RunError

STATE = "nnspec.pt"
LAYOUT = "dcp"  # nnspec.pt's "layout": the tensors are in torch.distributed.checkpoint files
METADATA = ".metadata"
MAX_METADATA_BYTES = 1 << 28
# What DCP's metadata pickle may build: its own dataclasses and the torch values they hold.
_ALLOWED = {
    ("torch.distributed.checkpoint.metadata", name) for name in (
        "Metadata", "MetadataIndex", "StorageMeta", "TensorProperties", "TensorStorageMetadata",
        "ChunkStorageMetadata", "BytesStorageMetadata", "_MEM_FORMAT_ENCODING")
} | {("torch.distributed.checkpoint.filesystem", "_StorageInfo"), ("torch", "Size"),
     ("torch.serialization", "_get_layout"), ("pathlib", "PosixPath"),
     ("pathlib", "PurePosixPath"), ("collections", "OrderedDict")}


def is_sharded(path: Path) -> bool:
    """Whether ``path`` is a sharded checkpoint folder (or one a killed swap left aside)."""
    return _readable(path) is not None


def _readable(path: Path) -> Path | None:
    """The folder to read for ``path``: itself, or the ``.NAME.old`` a killed swap left."""
    for folder in (path, path.with_name(f".{path.name}.old")):
        if folder.is_dir() and ((folder / STATE).is_file() or (folder / METADATA).is_file()):
            return folder
    return None


# ---- writing (every rank) ----------------------------------------------------------------------

def save(folder: Path, tensors: dict[str, Any], state: Mapping[str, Any], writer: bool,
         barrier: Any) -> None:
    """Write ``tensors`` (DTensors: each rank its shards) and rank 0's ``state`` to ``folder``.

    ``barrier()`` waits for every rank.  A failed write is a run error that leaves the previous
    checkpoint in place.
    """
    import torch.distributed.checkpoint as dcp

    tmp = folder.with_name(f".{folder.name}.tmp")
    if writer:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    try:
        dcp.save(tensors, storage_writer=dcp.FileSystemWriter(str(tmp), sync_files=True))
    except Exception as exc:  # DCP gathers every rank's failure into one exception
        raise RunError(f"cannot write sharded checkpoint {folder}: {_first_line(exc)}",
                       hint="free space and --resume; the previous checkpoint is unchanged") \
            from None
    if writer:
        from nnspec.run import checkpoint

        checkpoint.save(tmp / STATE, {**state, "layout": LAYOUT})
        _swap(tmp, folder)
    barrier()


def _swap(tmp: Path, folder: Path) -> None:
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    with contextlib.suppress(OSError):
        fd = os.open(folder.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# ---- reading -----------------------------------------------------------------------------------

class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a checkpoint's metadata")


def read_metadata(folder: Path) -> Any:
    """DCP's metadata of ``folder``, built only from DCP's own classes."""
    path = folder / METADATA
    if not path.is_file():
        raise RunError(f"{folder} is not a whole sharded checkpoint: its {METADATA} file is "
                       "missing", hint=_WRITTEN_BY)
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise RunError(f"{path} is larger than a checkpoint's metadata can be", hint=_WRITTEN_BY)
    try:
        with path.open("rb") as fh:
            metadata = _MetadataUnpickler(fh).load()
    except Exception:  # a hostile or corrupt file never reaches the user as a trace
        raise RunError(f"cannot load sharded checkpoint {folder}: its {METADATA} is not "
                       "readable (truncated, or not written by nnspec)", hint=_WRITTEN_BY) \
            from None
    from torch.distributed.checkpoint.metadata import Metadata

    if not isinstance(metadata, Metadata) or not isinstance(metadata.storage_data, dict):
        raise RunError(f"{path} is not a checkpoint's metadata", hint=_WRITTEN_BY)
    return metadata


_WRITTEN_BY = "only sharded checkpoints written by nnspec (train.strategy fsdp) are accepted"


def check_shards(folder: Path, metadata: Any) -> None:
    """Every shard file the metadata names is in ``folder`` and as long as it says."""
    ends: dict[str, int] = {}
    for info in metadata.storage_data.values():
        name = str(getattr(info, "relative_path", ""))
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise RunError(f"{folder / METADATA} names a shard outside its folder: {name!r}",
                           hint=_WRITTEN_BY)
        ends[name] = max(ends.get(name, 0), int(info.offset) + int(info.length))
    for name, end in sorted(ends.items()):
        shard = folder / name
        if not shard.is_file():
            raise RunError(f"sharded checkpoint {folder} is incomplete: shard {name} is missing",
                           hint="the checkpoint was not copied whole; copy the folder again")
        if shard.stat().st_size < end:
            raise RunError(f"sharded checkpoint {folder} is damaged: shard {name} is "
                           f"{shard.stat().st_size:,} bytes, its metadata says at least "
                           f"{end:,}", hint="the checkpoint was not copied whole; copy the "
                           "folder again")


def read_state(path: Path) -> dict[str, Any]:
    """``nnspec.pt`` of a sharded checkpoint, its shards checked; no tensors of the model yet.

    The result has ``sharded`` (the folder to read) and ``shapes`` (each model weight's name
    and shape) in place of ``model``.
    """
    from nnspec.run import checkpoint

    folder = _readable(path) or path
    state_file = folder / STATE
    if not state_file.is_file():
        raise RunError(f"{path} is not a whole sharded checkpoint: its {STATE} is missing (a "
                       "write that did not finish)", hint=_WRITTEN_BY)
    state = checkpoint.load_file(state_file)
    if state.get("layout") != LAYOUT:
        raise RunError(f"{state_file} is layout {str(state.get('layout'))[:40]!r}; this nnspec "
                       f"reads layout {LAYOUT!r}", hint="a checkpoint from a newer nnspec: "
                       "upgrade nnspec")
    metadata = read_metadata(folder)
    check_shards(folder, metadata)
    state["sharded"] = folder
    state["shapes"] = _shapes(metadata, "model.")
    return state


def _shapes(metadata: Any, prefix: str) -> dict[str, tuple[int, ...]]:
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    return {key[len(prefix):]: tuple(item.size) for key, item in
            metadata.state_dict_metadata.items()
            if key.startswith(prefix) and isinstance(item, TensorStorageMetadata)}


def full_weights(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The model's weights whole, read by this one process (no process group needed)."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    folder: Path = state["sharded"]
    metadata = read_metadata(folder)
    stored = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    weights: dict[str, torch.Tensor] = {}
    wanted = 0
    for key, item in metadata.state_dict_metadata.items():
        if key.startswith("model.") and isinstance(item, TensorStorageMetadata):
            dtype = item.properties.dtype
            wanted += item.size.numel() * torch.empty((), dtype=dtype).element_size()
            if wanted > stored:  # a metadata file claiming more than the shards hold
                raise RunError(f"{folder / METADATA} describes more weights than its shards "
                               "hold", hint=_WRITTEN_BY)
            weights[key[len("model."):]] = torch.empty(item.size, dtype=dtype)
    _load({"model": weights}, folder, alone=True)  # whole tensors: no other rank's help
    return weights


def load_into(state: Mapping[str, Any], model: nn.Module,
              optimizer: torch.optim.Optimizer | None) -> None:
    """Every rank's shards of the model (and optimizer) from the checkpoint, in place."""
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer or [])
    tensors: dict[str, Any] = {"model": model_state}
    if optimizer is not None:
        tensors["optim"] = optim_state
    _load(tensors, state["sharded"], alone=not torch.distributed.is_initialized())
    set_state_dict(model, optimizer or [], model_state_dict=model_state,
                   optim_state_dict=optim_state if optimizer is not None else {})


def _load(tensors: dict[str, Any], folder: Path, alone: bool) -> None:
    """DCP's load; ``alone``: this process reads by itself (no collective, even in a job)."""
    import torch.distributed.checkpoint as dcp

    try:
        with warnings.catch_warnings():  # "assuming the intent is to load in a single process"
            warnings.simplefilter("ignore", UserWarning)
            reader, planner = _safe_parts()
            dcp.load(tensors, storage_reader=reader(str(folder)), planner=planner(),
                     no_dist=alone)
    except RunError:
        raise
    except Exception as exc:  # DCP gathers every rank's failure into one exception
        raise RunError(f"cannot load sharded checkpoint {folder}: {_first_line(exc)}",
                       hint=_WRITTEN_BY) from None


_SAFE: dict[str, Any] = {}


def _safe_parts() -> tuple[Any, Any]:
    """DCP's file reader and load planner, made safe: the metadata read by the allowlisting
    unpickler, non-tensor entries with ``weights_only=True``.  Made on first use, so that
    importing this module does not import torch.distributed.checkpoint."""
    if not _SAFE:
        from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
        from torch.distributed.checkpoint.metadata import StorageMeta

        class SafeReader(FileSystemReader):
            def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
                metadata = read_metadata(Path(self.path))
                if getattr(metadata, "storage_meta", None) is None:
                    metadata.storage_meta = StorageMeta()
                metadata.storage_meta.load_id = self.load_id
                return metadata

        class SafePlanner(DefaultLoadPlanner):
            def load_bytes(self, read_item: Any, value: Any) -> None:
                from torch.distributed.checkpoint._traverse import set_element

                loaded = torch.load(value, weights_only=True)
                if self.flatten_state_dict:
                    set_element(self.original_state_dict,
                                self.mappings[read_item.dest_index.fqn], loaded)
                else:
                    self.state_dict[read_item.dest_index.fqn] = loaded

        _SAFE.update(reader=SafeReader, planner=SafePlanner)
    return _SAFE["reader"], _SAFE["planner"]
