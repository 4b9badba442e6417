"""Several processes through PyTorch's own engine: DDP or FSDP2, launched by torchrun.

``train.strategy`` chooses how the processes share the work: ``ddp`` (the default for more than
one process) as below; ``fsdp`` shards parameters, gradients and optimizer state (fsdp.py, with
its checkpoints in sharded.py) and takes the same shards of the data.

Under torchrun (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set) every rank builds the same run
(same seed, so the same initial weights; DDP also broadcasts rank 0's at wrap time), wraps the
model in ``DistributedDataParallel`` after the init rules and before the optimizer is built, and
takes its own shard of every epoch's order: ``order[:n - n % world][rank::world]`` for training
(every rank the same number of batches, so no collective waits for a rank that has finished),
``order[rank::world]`` for evaluation (which runs the plain module: no collective per batch).
The device accumulators are summed across ranks before they are read.  Rank 0 alone picks the
run directory (and broadcasts it), writes metrics.jsonl, TensorBoard and checkpoints.

Bounded failure: the process group is created with a timeout of ``NNSPEC_DIST_TIMEOUT`` seconds
(default 300).  A rank that crashes ends its process; torchrun sees the failure and stops the
others (SIGTERM, then SIGKILL after its grace period).  A rank that hangs leaves the others
blocked in a collective that fails after the timeout, so they exit non-zero and torchrun ends
the job.  NCCL watchdog error handling (``TORCH_NCCL_ASYNC_ERROR_HANDLING=1``) is set so the
same bound holds on CUDA.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from nnspec.errors import Location, RunError, SpecError
from nnspec.lang.spec import Spec
from nnspec.run.batches import Batches, epoch_order
from nnspec.run.record import MetricsLog

DEFAULT_TIMEOUT_S = 300
T = TypeVar("T")


@dataclass
class Dist:
    """This process's place in the job; ``world == 1`` is the plain single-process run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    strategy: str = "none"  # none (one process), ddp or fsdp: strategy_for

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def writer(self) -> bool:
        """Whether this rank writes the run directory (rank 0, or the only process)."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        """Whether parameters are sharded over the ranks (FSDP): every rank takes part in every
        forward, save and load."""
        return self.strategy == "fsdp"

    def describe(self) -> str:
        return f"{self.strategy.upper()} {self.backend} x{self.world}" if self.active \
            else "single process"

    # ---- collectives (no-ops on one process) ---------------------------------------------------

    def sum_(self, tensor: Tensor) -> Tensor:
        """Sum ``tensor`` over the ranks, in place."""
        if self.active:
            torch.distributed.all_reduce(tensor)
        return tensor

    def max_(self, tensor: Tensor) -> Tensor:
        if self.active:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return tensor

    def shared_signal(self, received: Sequence[int], device: torch.device) -> int:
        """The signal any rank received (0 for none): one decision for every rank."""
        if not self.active:
            return received[0] if received else 0
        flag = torch.tensor([received[0] if received else 0], device=device)
        return int(self.max_(flag))

    def from_writer(self, make: Callable[[], T]) -> T:
        """``make()`` on rank 0, the result on every rank; a RunError there is raised on all."""
        if not self.active:
            return make()
        box: list[Any] = [None, None]
        if self.writer:
            try:
                box[0] = make()
            except RunError as exc:
                box[1] = (exc.message, exc.hint)
                torch.distributed.broadcast_object_list(box, src=0)
                raise
        torch.distributed.broadcast_object_list(box, src=0)
        if box[1] is not None:
            raise RunError(box[1][0], hint=box[1][1])
        value: T = box[0]
        return value

    # ---- model and data ------------------------------------------------------------------------

    def wrap(self, model: nn.Module, device: torch.device, find_unused: bool = False) -> \
            nn.Module:
        """The DDP wrapper the training steps run (``model`` stays the plain module).

        ``find_unused``: some parameters the wrapper registers get no gradient in some epochs
        (staged unfreezing), which DDP must be told.
        """
        if not self.active or self.sharded:  # FSDP shards in place (fsdp.py)
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)

    def shard(self, batches: dict[str, Batches]) -> dict[str, Batches]:
        if not self.active:
            return batches
        return {name: ShardedBatches(b, self.rank, self.world, even=name == "train")
                for name, b in batches.items()}


class ShardedBatches(Batches):
    """One rank's share of a split: every ``world``-th sample of each epoch's order."""

    def __init__(self, base: Batches, rank: int, world: int, *, even: bool) -> None:
        self.__dict__.update(base.__dict__)
        self.rank, self.world, self.even = rank, world, even

    @property
    def samples(self) -> int:
        n = len(self.split.source)
        return n // self.world if self.even else len(range(self.rank, n, self.world))

    def most_batches(self) -> int:
        """The batches of the rank with the largest share (every rank's is the same size when
        ``even``; else the first ranks may have one sample more)."""
        n = len(self.split.source)
        share = n // self.world if self.even else -(-n // self.world)
        return self.plan.batch_count(share)

    def _order(self, epoch: int, device: torch.device) -> Tensor:
        n = len(self.split.source)
        full = epoch_order(n, self.seed, epoch, device) if self.plan.shuffle else \
            torch.arange(n, device=device)
        if self.even:
            full = full[:n - n % self.world]
        return full[self.rank::self.world]


def launched() -> bool:
    """Whether torchrun (or another launcher that sets its variables) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def timeout_s() -> float:
    raw = os.environ.get("NNSPEC_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        raise RunError(f"NNSPEC_DIST_TIMEOUT={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise RunError(f"NNSPEC_DIST_TIMEOUT={raw!r} must be positive")
    return value


def world_size() -> int:
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


def strategy_for(spec: Spec, world: int) -> str:
    """The strategy a run of ``world`` processes uses: none for one, ddp for ``auto``.

    fsdp with one process is refused: it would shard nothing, so the one process would hold the
    whole model, its gradients and optimizer state (what the spec said does not fit), and write
    sharded checkpoints for no reason.
    """
    chosen = spec.train.strategy
    if chosen == "fsdp" and world < 2:
        where = spec.document.locate(("train", "strategy")) if spec.document is not None \
            else Location(spec.file)
        raise SpecError.at(where, ("train", "strategy"),
                           "fsdp shards the model over processes, and this run has one",
                           "train with --nproc-per-node N (N >= 2) or under torchrun, or set "
                           "train.strategy: ddp or auto")
    if world < 2:
        return "none"
    return "ddp" if chosen == "auto" else chosen


def init(device_name: str, spec: Spec | None = None) -> tuple[Dist, str]:
    """Join the job torchrun started; returns this rank and the device name it should use.

    Without torchrun's variables (or with a world of one) nothing is initialised.
    """
    strategy = strategy_for(spec, world_size()) if spec is not None else \
        ("ddp" if world_size() > 1 else "none")
    if not launched() or int(os.environ["WORLD_SIZE"]) <= 1:
        return Dist(), device_name
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    wants_cuda = device_name.startswith("cuda") or (device_name == "auto" and
                                                     torch.cuda.is_available())
    if wants_cuda:
        if not torch.cuda.is_available():
            raise RunError("device cuda requested but CUDA is not available",
                           hint="use --device cpu (gloo)")
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        torch.cuda.set_device(local)
        device_name, backend = f"cuda:{local}", "nccl"
    else:
        device_name, backend = "cpu", "gloo"
    if not torch.distributed.is_initialized():
        kwargs: dict[str, Any] = {"backend": backend,
                                  "timeout": timedelta(seconds=timeout_s())}
        if backend == "nccl":
            kwargs["device_id"] = torch.device(device_name)
        torch.distributed.init_process_group(**kwargs)
    return Dist(rank, world, local, backend, strategy), device_name


def finish(dist: Dist) -> None:
    """Leave the process group together: a rank tearing gloo down while a peer still talks to
    it can abort that peer.  Reference cycles are collected first, while the group is alive:
    without that, one rank aborted at interpreter exit (``terminate called without an active
    exception``, after all its work) in about one run of ten on the CPU; none in 54 with it."""
    if dist.active and torch.distributed.is_initialized():
        gc.collect()
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


@dataclass(frozen=True)
class Launch:
    """torchrun's own options for a job on several machines (``nnspec train`` passes them on).

    None of them: one machine (``--standalone``).  ``rdzv_endpoint``: torchrun's dynamic
    rendezvous (c10d by default) at HOST:PORT, every node started the same way; ``master_addr``
    (and ``master_port``): static rendezvous, each node given its ``node_rank``.
    """

    nnodes: str | None = None
    node_rank: int | None = None
    rdzv_endpoint: str | None = None
    rdzv_id: str | None = None
    rdzv_backend: str | None = None
    master_addr: str | None = None
    master_port: int | None = None

    def options(self) -> list[tuple[str, str]]:
        """(option, value) for each one given, in torchrun's spelling."""
        return [(f"--{name.replace('_', '-')}", str(value))
                for name, value in self.__dict__.items() if value is not None]

    def problems(self) -> list[tuple[str, str]]:
        """(message, hint) for each combination torchrun would refuse or misread."""
        out = []
        if self.nnodes is not None and not _NNODES.match(self.nnodes):
            out.append((f"--nnodes {self.nnodes!r} is not N or MIN:MAX",
                        "e.g. --nnodes 2, or --nnodes 1:4 for an elastic job"))
        if self.rdzv_endpoint is not None and self.master_addr is not None:
            out.append(("--rdzv-endpoint and --master-addr both say where the job meets",
                        "give one: --rdzv-endpoint HOST:PORT (dynamic) or --master-addr HOST "
                        "--node-rank R (static)"))
        several = self.nnodes is not None and self.nnodes not in ("1", "1:1")
        if several and self.rdzv_endpoint is None and self.master_addr is None:
            out.append((f"--nnodes {self.nnodes} needs to know where the nodes meet",
                        "add --rdzv-endpoint HOST:PORT (the same on every node), or "
                        "--master-addr HOST and --node-rank R"))
        if self.master_addr is not None and several and self.node_rank is None:
            out.append(("--master-addr needs --node-rank on every node",
                        "--node-rank 0 on the master's node, 1, 2, ... on the others"))
        rdzv_only = (self.rdzv_id is not None or self.rdzv_backend is not None)
        if rdzv_only and self.rdzv_endpoint is None:
            out.append(("--rdzv-id and --rdzv-backend need --rdzv-endpoint HOST:PORT",
                        "add --rdzv-endpoint HOST:PORT, the same on every node"))
        if self.node_rank is not None and self.node_rank < 0:
            out.append((f"--node-rank {self.node_rank} is negative", "0, 1, 2, ..."))
        return out

    @property
    def standalone(self) -> bool:
        return self.rdzv_endpoint is None and self.master_addr is None


_NNODES = re.compile(r"^[1-9][0-9]*(:[1-9][0-9]*)?$")


def relaunch_args(nproc: int, train_args: list[str],
                  global_args: list[str] | None = None, launch: Launch | None = None) -> \
        list[str]:
    """The torchrun command that runs ``nnspec train`` on ``nproc`` processes per node."""
    launch = launch or Launch()
    where = ["--standalone"] if launch.standalone else []
    options = [f"{flag}={value}" for flag, value in launch.options()]
    return [sys.executable, "-m", "torch.distributed.run", *where, *options,
            f"--nproc-per-node={nproc}", "-m", "nnspec", *(global_args or []), "train",
            *train_args]


EXIT_DIR = "NNSPEC_EXIT_DIR"  # where each rank of a relaunched job leaves its exit code


def relaunch(nproc: int, train_args: list[str], global_args: list[str] | None = None,
             launch: Launch | None = None) -> int:
    """Run ``nnspec train`` under torchrun on ``nproc`` processes; the job's exit code.

    torchrun itself exits 1 whatever its workers' codes, so each rank leaves its code in a
    folder this process reads afterwards (``record_exit``): the job exits 2 for an invalid spec,
    3 for a failed run and 128+N for a signal, as a single process does.  SIGINT and SIGTERM
    are passed on to torchrun, which stops every rank; they commit a checkpoint and exit.
    """
    import signal
    import subprocess
    import tempfile

    if nproc < 1:
        raise RunError(f"--nproc-per-node must be at least 1, not {nproc}")
    argv = relaunch_args(nproc, train_args, global_args, launch)
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryDirectory(prefix="nnspec-exit-") as codes:
        job = subprocess.Popen(argv, env={**os.environ, EXIT_DIR: codes},
                               start_new_session=True)  # signals reach it through us, once
        forward = {sig: signal.signal(sig, lambda number, _: job.send_signal(number))
                   for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            returncode = job.wait()
        finally:
            for sig, previous in forward.items():
                signal.signal(sig, previous)
        return job_exit_code(returncode, Path(codes))


def record_exit(code: int) -> None:
    """In a rank of a relaunched job: leave this process's exit code for ``relaunch``."""
    folder = os.environ.get(EXIT_DIR)
    if folder and Path(folder).is_dir():
        (Path(folder) / f"rank-{os.environ.get('RANK', '0')}").write_text(str(code))


def job_exit_code(returncode: int, codes: Path) -> int:
    """The job's code: rank 0's if it failed, else the first failed rank's, else torchrun's."""
    if returncode == 0:
        return 0
    ranks = sorted(codes.glob("rank-*"), key=lambda p: int(p.name[5:]))
    failed = [int(p.read_text()) for p in ranks if p.read_text().strip() not in ("", "0")]
    return failed[0] if failed else returncode


class SilentLog(MetricsLog):
    """metrics.jsonl on the ranks that do not write: counts lines, writes nothing."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self.lines += 1
