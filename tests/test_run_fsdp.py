"""train.strategy and FSDP2: validation, sharded materialisation, sharded checkpoints.

The multi-process tests start real processes the way a user does (``nnspec train
--nproc-per-node 2``, which re-launches itself through torchrun), on the CPU with gloo, with
tiny models and generous timeouts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

DIGITS_FSDP = """\
nnspec: 1
name: digits_mlp
input: [64]
model:
  - Linear: {out_features: 16}
  - ReLU
  - Linear: {out_features: 10}
data:
  dataset: {SKLearn: {name: digits}}
  standardize: true
  val_split: 0.2
  batch_size: 64
init:
  - {match: {param: weight}, fn: kaiming_normal_, nonlinearity: relu}
loss: CrossEntropyLoss
optimizer: {Adam: {lr: 0.01}}
train: {epochs: 2, device: cpu, metrics: [accuracy], monitor: val.accuracy, strategy: fsdp,
        grad_clip: 1.0}
log: {tensorboard: false}
"""

SPEC = """\
nnspec: 1
name: tiny
input: [4]
model: [{Linear: {out_features: 2}}]
train: {strategy: fsdp}
"""


def _validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    from tests.conftest import cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    code, out, err = cli("validate", str(spec))
    return subprocess.CompletedProcess([], code, out, err)


def test_an_unknown_strategy_is_a_located_error_with_a_suggestion(tmp_path: Path) -> None:
    proc = _validate(tmp_path, SPEC.replace("fsdp", "fsdpp"))
    assert proc.returncode == 2
    assert ":5:19: error: train.strategy: expected one of 'auto', 'ddp', 'fsdp', found " \
        "'fsdpp' (did you mean 'fsdp'?)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("setting", "message"), [
    ("precision: 16-mixed", "train.precision: 16-mixed cannot be used with strategy fsdp"),
    ("compile: true", "train.compile: compile cannot be used with strategy fsdp yet"),
    ("cuda_graph: true", "train.cuda_graph: cuda_graph cannot be used with strategy fsdp"),
], ids=["16-mixed", "compile", "cuda-graph"])
def test_settings_fsdp_does_not_run_with_are_located_errors(tmp_path: Path, setting: str,
                                                            message: str) -> None:
    proc = _validate(tmp_path, SPEC.replace("strategy: fsdp", f"strategy: fsdp, {setting}"))
    assert proc.returncode == 2
    assert "spec.yaml:5:" in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ddp_and_auto_accept_those_settings(tmp_path: Path) -> None:
    for strategy in ("ddp", "auto"):
        proc = _validate(tmp_path, SPEC.replace("strategy: fsdp",
                                                f"strategy: {strategy}, compile: true"))
        assert proc.returncode == 0, proc.stderr


def test_a_run_written_before_strategy_existed_resumes_with_the_default() -> None:
    from nnspec.run.checkpoint import spec_changes

    old = {"train": {"epochs": 2}}
    assert spec_changes(old, {"train": {"epochs": 2, "strategy": "auto"}}) == []
    assert spec_changes(old, {"train": {"epochs": 2, "strategy": "fsdp"}}) == [
        ("train.strategy", "auto", "fsdp")]


# ---- launching: torchrun's multi-node options, and what is refused before any process starts -

def test_one_machine_is_standalone_and_several_pass_torchruns_options() -> None:
    from nnspec.run.distributed import Launch, relaunch_args

    head = [sys.executable, "-m", "torch.distributed.run"]
    tail = ["-m", "nnspec", "train", "s.yaml", "--run-dir", "r"]
    args = ["s.yaml", "--run-dir", "r"]
    assert relaunch_args(2, args, launch=Launch(nnodes="1")) == [
        *head, "--standalone", "--nnodes=1", "--nproc-per-node=2", *tail]
    dynamic = Launch(nnodes="2", rdzv_endpoint="node0:29400", rdzv_id="job7",
                     rdzv_backend="c10d")
    assert relaunch_args(4, args, ["--plugin", "my.layers"], dynamic) == [
        *head, "--nnodes=2", "--rdzv-endpoint=node0:29400", "--rdzv-id=job7",
        "--rdzv-backend=c10d", "--nproc-per-node=4", "-m", "nnspec", "--plugin", "my.layers",
        *tail[2:]]
    static = Launch(nnodes="2", node_rank=1, master_addr="10.0.0.1", master_port=29500)
    assert relaunch_args(1, args, launch=static) == [
        *head, "--nnodes=2", "--node-rank=1", "--master-addr=10.0.0.1", "--master-port=29500",
        "--nproc-per-node=1", *tail]
    assert dynamic.problems() == [] and static.problems() == []


@pytest.mark.parametrize(("options", "message"), [
    (["--nnodes", "2"], "--nnodes 2 needs to know where the nodes meet"),
    (["--nnodes", "two"], "--nnodes 'two' is not N or MIN:MAX"),
    (["--nnodes", "2", "--rdzv-endpoint", "h:1", "--master-addr", "h"],
     "--rdzv-endpoint and --master-addr both say where the job meets"),
    (["--nnodes", "2", "--master-addr", "h"], "--master-addr needs --node-rank on every node"),
    (["--rdzv-id", "x"], "--rdzv-id and --rdzv-backend need --rdzv-endpoint HOST:PORT"),
], ids=["no-endpoint", "bad-nnodes", "both", "no-node-rank", "id-alone"])
def test_multi_node_mistakes_are_usage_errors_before_any_process_starts(
        tmp_path: Path, options: list[str], message: str) -> None:
    from tests.conftest import cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS_FSDP.replace("strategy: fsdp", "strategy: ddp"))
    code, _, err = cli("train", str(spec), "--nproc-per-node", "2", *options)
    assert code == 2
    assert f"<command line>: error: {message}" in err, err
    assert "Traceback" not in err


def test_fsdp_on_one_process_is_refused_at_the_setting(tmp_path: Path) -> None:
    from tests.conftest import cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS_FSDP)
    line = DIGITS_FSDP.splitlines().index(next(x for x in DIGITS_FSDP.splitlines()
                                               if "strategy" in x)) + 1
    for launch in ([], ["--nproc-per-node", "1"]):
        code, _, err = cli("train", str(spec), "--run-dir", str(tmp_path / "run"), *launch)
        assert code == 2, err
        assert f"spec.yaml:{line}:" in err
        assert "train.strategy: fsdp shards the model over processes, and this run has one" in err
        assert not (tmp_path / "run").exists()


def test_the_default_policy_shards_each_repeated_block_and_each_other_child() -> None:
    import torch

    import nnspec
    from nnspec.run.fsdp import units

    with torch.device("meta"):
        model = nnspec.compile(str(ROOT / "specs" / "transformer_classifier.yaml"))
    found = units(model)
    assert found[0] is model.embed
    assert found[1:3] == list(model.encoder.children())  # each TransformerEncoderLayer
    assert found[3] is model.head and len(found) == 4  # the pooling op has no parameters


# ---- two real processes on the CPU: train, save, resume, evaluate ----------------------------

def _env(tmp: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", TMPDIR=str(tmp))  # torchrun's torchelastic_* folders
    return env


def _nnspec(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``nnspec ARGS``: in processes of its own for train, in this process for the rest."""
    if args[0] != "train":
        from tests.conftest import cli

        code, out, err = cli(*args)
        return subprocess.CompletedProcess(args, code, out, err)
    return subprocess.run([sys.executable, "-m", "nnspec", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=_env(tmp))


def _two_processes(tmp: Path, strategy: str) -> Path:
    """Train 2 epochs on 2 processes (torchrun --nnodes 1 --nproc-per-node 2, through nnspec),
    then resume to 3; the run's folder."""
    spec = tmp / "spec.yaml"
    spec.write_text(DIGITS_FSDP.replace("strategy: fsdp", f"strategy: {strategy}"))
    run = tmp / "run"
    launch = ("--nnodes", "1", "--nproc-per-node", "2")
    first = _nnspec(tmp, "train", str(spec), "--run-dir", str(run), *launch)
    assert first.returncode == 0, first.stderr[-4000:]
    assert f"{strategy.upper()} gloo x2" in first.stderr
    again = _nnspec(tmp, "train", str(spec), "train.epochs=3", "--resume", str(run), *launch)
    assert again.returncode == 0, again.stderr[-4000:]
    return run


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _two_processes(tmp_path_factory.mktemp("ddp"), "ddp")


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _two_processes(tmp_path_factory.mktemp("fsdp"), "fsdp")


def _records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_train_resume_and_eval_reads_the_checkpoint(
        strategy: str, request: pytest.FixtureRequest) -> None:
    run: Path = request.getfixturevalue(f"{strategy}_run")
    records = _records(run)
    assert [(r["epoch"], r["split"]) for r in records] == [
        (e, s) for e in (1, 2, 3) for s in ("train", "val")]
    best = run / "checkpoints" / ("best" if strategy == "fsdp" else "best.pt")
    done = _nnspec(run.parent, "eval", str(run / "spec.yaml"), "--checkpoint", str(best))
    assert done.returncode == 0, done.stderr
    top = max(r["accuracy"] for r in records if r["split"] == "val")
    assert done.stdout.startswith("val.loss ") and f"val.accuracy {top:.4f}" in done.stdout
    assert json.loads((run / "eval-val.json").read_text())["checkpoint"] == str(best)


def test_a_sharded_checkpoint_is_a_folder_of_every_ranks_shards(fsdp_run: Path) -> None:
    folder = fsdp_run / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best", "last"]  # no leftovers
    for name in ("best", "last"):
        assert sorted(p.name for p in (folder / name).iterdir()) == [
            ".metadata", "__0_0.distcp", "__1_0.distcp", "nnspec.pt"]
    resolved = json.loads((fsdp_run / "resolved.json").read_text())
    assert resolved["train"]["strategy"] == "fsdp"
    assert "FSDP gloo x2" in resolved["run"]["path"]


def test_fsdp_trains_what_ddp_trains_from_the_same_initial_weights(ddp_run: Path,
                                                                   fsdp_run: Path) -> None:
    """The same init rules, seed, batches and averaged gradients: the same run, to float
    rounding (the sharded run starts from the unsharded run's weights, sent by rank 0)."""
    import torch

    from nnspec.run import checkpoint

    ddp = torch.load(ddp_run / "checkpoints" / "last.pt", weights_only=True)
    fsdp = checkpoint.load(fsdp_run / "checkpoints" / "last")
    assert set(ddp["model"]) == set(fsdp["model"]) == {"0.weight", "0.bias", "2.weight",
                                                        "2.bias"}
    for name, value in ddp["model"].items():
        assert torch.allclose(value, fsdp["model"][name], atol=1e-5), name
    first = [r for r in _records(ddp_run) if r["epoch"] == 1]
    assert [r["loss"] for r in first] == pytest.approx(
        [r["loss"] for r in _records(fsdp_run) if r["epoch"] == 1], abs=1e-6)
    assert fsdp["epoch"] == 3 and fsdp["global_step"] == ddp["global_step"]


def test_predict_and_export_read_a_sharded_checkpoint_in_one_process(fsdp_run: Path,
                                                                    tmp_path: Path) -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    samples = load_digits().data[:3].astype(np.float32)
    np.save(tmp_path / "three.npy", samples)
    spec, best = str(fsdp_run / "spec.yaml"), str(fsdp_run / "checkpoints" / "best")
    found = _nnspec(tmp_path, "predict", spec, str(tmp_path / "three.npy"), "--checkpoint", best,
                    "--format", "json", "--top-k", "1")
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == 3
    out = tmp_path / "model.safetensors"
    exported = _nnspec(tmp_path, "export", spec, "--checkpoint", best, "--format",
                       "safetensors", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    from safetensors.torch import load_file

    from nnspec.run import checkpoint

    weights = load_file(str(out))
    whole = checkpoint.load(Path(best))["model"]
    assert all(bool((weights[k] == v).all()) for k, v in whole.items())


# ---- damaged and hostile sharded checkpoints: located run errors, nothing executed --------------

def _damaged(fsdp_run: Path, tmp_path: Path, damage: Any) -> subprocess.CompletedProcess[str]:
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(fsdp_run / "checkpoints" / "best", copy)
    damage(copy)
    return _nnspec(tmp_path, "eval", str(fsdp_run / "spec.yaml"), "--checkpoint", str(copy))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _hostile_metadata(folder: Path) -> None:
    (folder / ".metadata").write_bytes(
        b"cos\nsystem\n(V" + f"touch {folder / 'PWNED'}".encode() + b"\ntR.")


@pytest.mark.parametrize(("damage", "message"), [
    (lambda f: _truncate(f / "__1_0.distcp"), "is damaged: shard __1_0.distcp is 100 bytes"),
    (lambda f: (f / "__0_0.distcp").unlink(), "is incomplete: shard __0_0.distcp is missing"),
    (lambda f: (f / "nnspec.pt").unlink(), "its nnspec.pt is missing"),
    (lambda f: _truncate(f / ".metadata"), "its .metadata is not readable"),
    (_hostile_metadata, "its .metadata is not readable"),
], ids=["truncated-shard", "missing-shard", "no-state", "truncated-metadata", "hostile-pickle"])
def test_a_damaged_sharded_checkpoint_is_a_run_error_naming_what(
        fsdp_run: Path, tmp_path: Path, damage: Any, message: str) -> None:
    done = _damaged(fsdp_run, tmp_path, damage)
    assert done.returncode == 3
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "ckpt" / "PWNED").exists()


def test_a_checkpoint_left_aside_by_a_killed_swap_is_still_read(fsdp_run: Path,
                                                                tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "checkpoints"
    shutil.copytree(fsdp_run / "checkpoints" / "best", folder / ".best.old")
    (folder / ".best.tmp").mkdir()  # the new one, never finished
    done = _nnspec(tmp_path, "eval", str(fsdp_run / "spec.yaml"), "--checkpoint",
                   str(folder / "best"))
    assert done.returncode == 0, done.stderr


def test_a_weights_file_rank_0_cannot_read_ends_every_rank_promptly(tmp_path: Path) -> None:
    """Rank 0 alone reads the weights file under FSDP; its failure must not leave rank 1
    waiting for weights until the collective timeout."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS_FSDP.replace("loss: CrossEntropyLoss",
                                        "weights: {from: nowhere.pt}\nloss: CrossEntropyLoss"))
    env = {**_env(tmp_path), "NNSPEC_DIST_TIMEOUT": "120"}
    done = subprocess.run([sys.executable, "-m", "nnspec", "train", str(spec), "--run-dir",
                           str(tmp_path / "run"), "--nproc-per-node", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=100, env=env)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "weights.from" in done.stderr and "nowhere.pt" in done.stderr
    assert "rank 0 could not build the model's initial weights" in done.stderr  # rank 1's word


def test_a_sharded_run_directory_is_a_weights_file_for_a_new_run(fsdp_run: Path) -> None:
    import torch

    from nnspec.run import api, checkpoint, weights

    spec = api.load(fsdp_run / "spec.yaml", [f"weights={{from: {fsdp_run}}}",
                                             "train.strategy=auto"])
    source = weights.read(spec)
    assert source is not None and source.path == fsdp_run / "checkpoints" / "best"
    whole = checkpoint.load(fsdp_run / "checkpoints" / "best")["model"]
    assert set(source.tensors) == set(whole)
    assert all(torch.equal(source.tensors[k], v) for k, v in whole.items())
