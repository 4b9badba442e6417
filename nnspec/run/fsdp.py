"""FSDP2 (``fully_shard``): the model built on the meta device, sharded, then filled from rank 0.

Order, on every rank: build the model on the meta device (no memory, no random numbers); shard
it (``units``: each repeated block of a top-level container, else each top-level child that
has parameters, then the root for what is left); ``to_empty`` on the run's device (each rank
allocates its shards only); then fill the shards from rank 0, one tensor at a time.

Rank 0 computes the values exactly as a one-process run does (seed, PyTorch's initialisation in
module order, the spec's ``init:`` rules, the ``weights:`` file), on the host, and frees them
once sent, so a sharded run starts from bit for bit the weights an unsharded run starts from,
for any init rule or weights file.  The cost: rank 0's host memory holds the parameters once
while the run starts (not their gradients or optimizer state, which is where an unsharded run's
memory goes: four times the parameters with Adam).  Initialising each shard locally would not
need that, but on the CPU torch's sharded random numbers repeat on every rank (DTensor's
offset-based generator is CUDA's only), and no local scheme reproduces the unsharded values.

Buffers (BatchNorm statistics) are not sharded: each rank keeps a copy, updated from its own
batches; ``sync_buffers`` gives every rank rank 0's before an evaluation or a checkpoint, which
is what DDP's buffer broadcast amounts to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nnspec.errors import NnspecError, RunError
from nnspec.run.distributed import Dist


def units(model: nn.Module) -> list[nn.Module]:
    """What is sharded as one unit (all-gathered together for its forward and backward)."""
    found: list[nn.Module] = []
    for child in model.children():
        if not _has_params(child):
            continue
        blocks = list(child.children())
        repeated = isinstance(child, nn.Sequential | nn.ModuleList) and len(blocks) > 1 and \
            all(_has_params(b) for b in blocks) and len({type(b) for b in blocks}) == 1
        found.extend(blocks if repeated else [child])
    return found


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def build(make: Callable[[], nn.Module], dist: Dist, device: torch.device,
          prepare: Callable[[nn.Module], Any]) -> tuple[nn.Module, Any]:
    """The sharded model, and what ``prepare`` returned on rank 0 (None elsewhere).

    ``make`` builds the model (seeded by the caller); ``prepare`` runs on rank 0's full model
    on the host (init rules, weights file) before its values are sent, and on the meta model
    elsewhere (so that a rule that cannot apply fails on every rank alike).  A failure on rank 0
    alone (its weights file, its memory) is raised on every rank: none waits for values that
    will not come.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    prepared: Any = None
    values: dict[str, Any] = {}
    extra: dict[str, torch.Tensor] = {}
    if dist.writer:
        def full_values() -> nn.Module:
            nonlocal prepared, values, extra
            try:
                full = make()
                prepared = prepare(full)
            except (MemoryError, RuntimeError) as exc:
                from nnspec.run.step import out_of_memory

                if not out_of_memory(exc):
                    raise
                raise RunError("rank 0 ran out of memory building the model's initial weights "
                               "(FSDP builds them once on rank 0's host, then shards them)",
                               hint="give rank 0's host more memory") from None
            values = {k: v.detach() for k, v in full.state_dict().items()}
            extra = _unsaved_buffers(full)
            return full.to("meta")  # the module goes; ``values`` keeps what is to be sent
        model = _together(dist, full_values, device)
    else:
        def meta_model() -> nn.Module:
            with torch.device("meta"):
                built = make().to("meta")
            prepare(built)  # init rules on the meta device: shape checks, no numbers
            return built
        model = _together(dist, meta_model, device)
    assert model is not None
    shard(model, dist, device)
    model.to_empty(device=device)
    set_model_state_dict(model, values, options=StateDictOptions(
        full_state_dict=True, broadcast_from_rank0=True))
    del values
    _send_buffers(model, extra, dist)
    _share_rng_state(dist, device)
    return model, prepared


def _together(dist: Dist, step: Callable[[], nn.Module],
              device: torch.device) -> nn.Module | None:
    """``step()`` on every rank; when it fails on rank 0 (or this rank) with an nnspec error,
    every rank raises, after each has taken part in the one broadcast that says so: rank 0 its
    own error (whose exit code the job takes), the others a pointer to it."""
    failed = torch.zeros(1, dtype=torch.int32, device=device)
    error: NnspecError | None = None
    result = None
    try:
        result = step()
    except NnspecError as exc:
        error = exc
        failed += 1
    torch.distributed.broadcast(failed, src=0)
    if error is not None:
        raise error
    if int(failed):
        raise RunError("rank 0 could not build the model's initial weights",
                       hint="rank 0's message says why")
    return result


def shard(model: nn.Module, dist: Dist, device: torch.device) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (dist.world,))
    for unit in units(model):
        fully_shard(unit, mesh=mesh)
    fully_shard(model, mesh=mesh)


def _unsaved_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Buffers outside the state dict (``persistent=False``): to_empty leaves them garbage."""
    saved = set(model.state_dict())
    return {name: b.detach().clone() for name, b in model.named_buffers() if name not in saved}


def _send_buffers(model: nn.Module, values: dict[str, torch.Tensor], dist: Dist) -> None:
    saved = set(model.state_dict())
    for name, buffer in model.named_buffers():
        if name in saved:
            continue
        if dist.writer:
            buffer.copy_(values[name])
        torch.distributed.broadcast(buffer.data, src=0)


def _share_rng_state(dist: Dist, device: torch.device) -> None:
    """Every rank goes on with rank 0's random state: the state an unsharded run has after its
    initialisation (rank 0 drew the numbers; the others built on the meta device)."""
    state = torch.get_rng_state().to(device)  # NCCL sends device tensors only
    torch.distributed.broadcast(state, src=0)
    torch.set_rng_state(state.cpu())


def sync_buffers(model: nn.Module, dist: Dist) -> None:
    """Rank 0's buffers (BatchNorm statistics) on every rank."""
    if not dist.sharded:
        return
    with torch.no_grad():
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer.data, src=0)


def gradient_sync_paused(model: nn.Module) -> Any:
    """FSDP2's ``no_sync``: gradients of the batches that wait are kept, not reduce-scattered."""
    import contextlib

    @contextlib.contextmanager
    def paused() -> Any:
        model.set_requires_gradient_sync(False)  # type: ignore[operator]
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)  # type: ignore[operator]

    return paused
