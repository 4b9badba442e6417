"""DDP through torchrun on the CPU (gloo, 2 processes): one job, one writer, identical ranks.

Each test starts real processes the way a user does (``nnspec train --nproc-per-node 2``, which
re-launches itself through ``torch.distributed.run``, or torchrun directly), on the bundled
digits data, for a few dozen steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from run_fixtures import DIGITS_MLP

from nnspec.run import distributed

ROOT = Path(__file__).resolve().parent.parent
# `nnspec` with the test side's fault injection and parameter dumps patched in (FAULT_CRASH,
# FAULT_DUMP): nnspec itself carries no test hooks.
FAULTS = str(ROOT / "tests" / "dist_faults.py")
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="torch.distributed is not available")

SPEC = DIGITS_MLP.replace("train: {epochs: 2,", "train: {epochs: 3,").replace(
    "log: {tensorboard: false}", "log: {tensorboard: true, every_n_steps: 4}")


@pytest.fixture(autouse=True)
def _own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchrun leaves torchelastic_* folders in the temp dir: keep them in pytest's."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def _hash(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name, p in sorted(state.items()):
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_ranks_train_as_one_job_with_one_writer(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    run, dumps = tmp_path / "run", tmp_path / "dumps"
    proc = subprocess.run([sys.executable, FAULTS, "train", str(spec), "--run-dir",
                           str(run), "--nproc-per-node", "2"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=_env(FAULT_DUMP=str(dumps)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((dumps / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == 2
    assert ranks[0]["sha256"] == ranks[1]["sha256"]  # both ranks end with identical weights
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert _hash(last["model"]) == ranks[0]["sha256"]  # plain keys, rank 0's weights
    assert set(last["model"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    records = _records(run)  # one writer: one line per epoch and split
    assert [(r["epoch"], r["split"]) for r in records] == [
        (e, s) for e in (1, 2, 3) for s in ("train", "val")]
    train = [r["loss"] for r in records if r["split"] == "train"]
    assert train[-1] < train[0] * 0.7
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    # One writing process (its scalars and, as in a one-process run, its hparams file).
    assert events and len({e.name.split(".")[-2] for e in events}) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    resolved = json.loads((run / "resolved.json").read_text())["run"]
    assert (resolved["world_size"], resolved["backend"]) == (2, "gloo")
    assert "DDP gloo x2" in resolved["path"]
    assert proc.stderr.count("training digits_mlp") == 1  # rank 0 alone speaks
    assert "DDP gloo x2" in proc.stderr.split("done:")[1]


def test_a_crashed_rank_ends_the_job_in_bounded_time(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("epochs: 3", "epochs: 50"))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", FAULTS, "train", str(spec),
                           "--run-dir", str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                          text=True, timeout=240,
                          env=_env(FAULT_CRASH="1:1", NNSPEC_DIST_TIMEOUT="20"))
    assert proc.returncode != 0
    assert time.monotonic() - start < 180  # far below the 30-minute default; start-up varies
    assert "injected failure after step 1" in proc.stderr


def test_relaunch_drops_the_option_and_keeps_the_rest() -> None:
    args = distributed.relaunch_args(3, ["s.yaml", "train.epochs=2", "--run-dir", "r"])
    assert args == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node=3", "-m", "nnspec", "train", "s.yaml", "train.epochs=2",
                    "--run-dir", "r"]


def test_shards_are_disjoint_equal_and_cover_the_epoch() -> None:
    from nnspec.run.batches import epoch_order
    from nnspec.run.plan import SplitPlan

    class _Source:
        def __len__(self) -> int:
            return 103

    class _Split:
        source = _Source()

    base = distributed.Batches.__new__(distributed.Batches)
    base.__dict__.update(split=_Split(), plan=SplitPlan("train", 8, shuffle=True), seed=5)
    shards = [distributed.ShardedBatches(base, r, 2, even=True) for r in (0, 1)]
    orders = [s._order(4, torch.device("cpu")) for s in shards]
    assert len(orders[0]) == len(orders[1]) == 51 == shards[0].samples
    assert len(shards[0]) == len(shards[1])
    assert not set(orders[0].tolist()) & set(orders[1].tolist())
    full = epoch_order(103, 5, 4, torch.device("cpu"))[:102]
    assert sorted(orders[0].tolist() + orders[1].tolist()) == sorted(full.tolist())
    evals = [distributed.ShardedBatches(base, r, 2, even=False) for r in (0, 1)]
    assert evals[0].samples + evals[1].samples == 103


def test_sigterm_stops_every_rank_together_and_the_run_resumes(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("epochs: 3", "epochs: 400").replace("every_n_steps: 4",
                                                                       "every_n_steps: 2"))
    run, dumps = tmp_path / "run", tmp_path / "dumps"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           FAULTS, "train", str(spec), "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    deadline = time.monotonic() + 240  # generous: rank start-up on a loaded 2-core machine
    while not (run / "checkpoints" / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.terminate()  # torchrun forwards SIGTERM to both ranks
    _, err = proc.communicate(timeout=180)
    assert proc.returncode != 0
    assert err.count("stopped: checkpoint committed") == 2, err[-3000:]
    stopped = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    epochs = stopped["epoch"] + 2
    done = subprocess.run([*cmd[:-2], f"train.epochs={epochs}", "--resume", str(run)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=_env(FAULT_DUMP=str(dumps)))
    assert done.returncode == 0, done.stderr[:6000]
    ranks = [json.loads((dumps / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    records = _records(run)
    assert [(r["epoch"], r["split"]) for r in records] == [
        (e, s) for e in range(1, epochs + 1) for s in ("train", "val")]


def _nnspec_ddp(spec: Path, *extra: str) -> list[str]:
    return [sys.executable, FAULTS, "train", str(spec), *extra, "--nproc-per-node", "2"]


def test_a_relaunched_job_exits_with_its_ranks_code_not_torchruns(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    bad = subprocess.run(_nnspec_ddp(spec, "loss=CrossEntropy"), cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=_env())
    assert bad.returncode == 2  # checked before any process starts
    assert bad.stderr.startswith("<override 1: loss=CrossEntropy>:1:1: error: loss: unknown loss")
    assert "torch.distributed" not in bad.stderr
    crashed = subprocess.run(_nnspec_ddp(spec, "--run-dir", str(tmp_path / "run")), cwd=ROOT,
                             capture_output=True, text=True, timeout=120,
                             env=_env(FAULT_CRASH="1:1", NNSPEC_DIST_TIMEOUT="20"))
    assert crashed.returncode == 1  # the injected failure is a bug, as a rank reports it


def test_sigterm_to_a_relaunched_job_stops_every_rank_with_the_signals_code(
        tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("epochs: 3", "epochs: 400"))
    run = tmp_path / "run"
    proc = subprocess.Popen(_nnspec_ddp(spec, "--run-dir", str(run)), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    deadline = time.monotonic() + 240  # generous: rank start-up on a loaded 2-core machine
    while not (run / "checkpoints" / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.terminate()  # to nnspec, which passes it to torchrun, which stops both ranks
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 128 + 15, err[-3000:]
    assert err.count("stopped: checkpoint committed") == 2, err[-3000:]


def test_job_exit_code_prefers_rank_zero_then_the_first_failed_rank(tmp_path: Path) -> None:
    assert distributed.job_exit_code(0, tmp_path) == 0
    assert distributed.job_exit_code(1, tmp_path) == 1  # no rank said: torchrun's own
    (tmp_path / "rank-1").write_text("3")
    assert distributed.job_exit_code(1, tmp_path) == 3
    (tmp_path / "rank-0").write_text("143")
    assert distributed.job_exit_code(1, tmp_path) == 143


def test_accumulation_under_ddp_syncs_once_per_step_and_at_the_epochs_end(
        tmp_path: Path) -> None:
    # 718 samples a rank, batches of 70: 11 batches an epoch, so with accumulate 2 the last step
    # of each epoch has one batch, whose gradients must still be all-reduced, or the ranks
    # would drift apart.
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("train: {epochs: 3,", "train: {epochs: 3, accumulate: 2,")
                    .replace("batch_size: 64", "batch_size: 70"))
    run, dumps = tmp_path / "run", tmp_path / "dumps"
    proc = subprocess.run(_nnspec_ddp(spec, "--run-dir", str(run)), cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=_env(FAULT_DUMP=str(dumps)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((dumps / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    train = [r["loss"] for r in _records(run) if r["split"] == "train"]
    assert train[-1] < train[0] * 0.8


def test_no_sync_is_used_for_the_batches_that_wait(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    import contextlib

    from run_fixtures import spec_from

    from nnspec.run import setup
    from nnspec.run.metrics import Meter
    from nnspec.run.step import Stepper

    spec, _ = spec_from(DIGITS_MLP.replace("train: {epochs: 2,", "train: {epochs: 1, "
                                           "accumulate: 3,"), tmp_path)
    parts = setup.build(spec, "cpu")
    waited: list[int] = []

    @contextlib.contextmanager
    def no_sync() -> Any:
        waited.append(stepper.pending)
        yield

    parts.no_sync = no_sync
    stepper = Stepper(parts)
    batches = list(parts.batches["train"].epoch(0))
    meter = Meter([], "CrossEntropyLoss", parts.device)
    for i, batch in enumerate(batches):
        stepper.train_batch(batch, meter, i, last=i == len(batches) - 1)
    stepper.optimizer_step()  # what the loop does at the epoch's end
    assert len(batches) == 23  # 1,437 samples in batches of 64
    # batches 0 and 1 wait, 2 steps, ...; 21 waits, 22 is the epoch's last: it syncs
    assert waited == [p for i in range(len(batches) - 1) if (p := i % 3) < 2]
    assert stepper.pending == 0 and stepper.global_step == 8
