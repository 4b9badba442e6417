"""What a new user meets following the docs literally, and the neighbours of each command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, SPECS, cli

LENET = str(SPECS / "lenet.yaml")


# -- -o FILE: compile, graph and schema share one writer --------------------------------------

@pytest.mark.parametrize("command", [["compile", LENET], ["graph", LENET], ["schema"]])
def test_output_into_a_missing_folder_is_a_usage_error(command: list[str], tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "out.txt"
    code, _, err = cli(*command, "-o", str(target))
    assert code == 2, err
    assert f"cannot write {target}: there is no folder {target.parent}" in err
    assert "Traceback" not in err and not target.parent.exists()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_output_naming_a_folder_is_refused_and_leaves_nothing_behind(force: list[str],
                                                                    tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = cli("compile", LENET, "-o", str(folder), *force)
    assert code == 2, err
    assert f"{folder} is a folder (name a file in it: -o {folder / 'NAME'})" in err
    assert "--force" not in err and "Traceback" not in err
    assert folder.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- nnspec graph -o FILE picks the format FILE's suffix names --------------------------------

@pytest.mark.parametrize(("name", "start"), [("arch.svg", "<svg "), ("arch.dot", "digraph "),
                                             ("arch.gv", "digraph "), ("arch.mmd", "flowchart "),
                                             ("arch.md", "flowchart ")])
def test_graph_output_suffix_chooses_the_format(name: str, start: str, tmp_path: Path) -> None:
    code, _, err = cli("graph", LENET, "-o", str(tmp_path / name))
    assert code == 0, err
    assert (tmp_path / name).read_text().startswith(start)


def test_graph_format_given_wins_over_the_suffix(tmp_path: Path) -> None:
    code, _, err = cli("graph", LENET, "--format", "mermaid", "-o", str(tmp_path / "x.svg"))
    assert code == 0, err
    assert (tmp_path / "x.svg").read_text().startswith("flowchart ")


def test_graph_to_stdout_is_mermaid_by_default() -> None:
    code, out, _ = cli("graph", LENET)
    assert code == 0 and out.startswith("flowchart TB\n")


# -- nnspec layers ----------------------------------------------------------------------------

def test_layers_list_names_every_section_in_plain_english() -> None:
    code, out, _ = cli("layers")
    assert code == 0
    headings = [line.split(" (")[0] for line in out.splitlines() if line.endswith("):")]
    assert headings == ["layers", "ops", "free tensors", "losses", "optimizers", "schedulers",
                        "init functions", "transforms", "datasets"]


# -- train, eval and resume on a run just made --------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from run_fixtures import DIGITS_MLP

    tmp = tmp_path_factory.mktemp("walkthrough")
    spec = tmp / "digits.yaml"
    spec.write_text(DIGITS_MLP)
    code, _, err = cli("train", str(spec), "train.epochs=1", "--run-dir", str(tmp / "run"))
    assert code == 0, err
    assert "; 1 epoch in " in err  # not "1 epochs"
    return spec, tmp / "run"


@pytest.mark.parametrize("where", ["", "checkpoints"])
def test_eval_given_a_folder_names_the_checkpoint_file_to_give(
        digits_run: tuple[Path, Path], where: str) -> None:
    spec, run = digits_run
    code, _, err = cli("eval", str(spec), "--checkpoint", str(run / where), "--split", "val")
    assert code == 3, err
    assert f"checkpoint {run / where} is a folder, not a checkpoint" in err
    assert f"e.g. {run / 'checkpoints' / 'best.pt'}" in err and "does not exist" not in err
    code, out, err = cli("eval", str(spec), "--checkpoint", str(run / "checkpoints" / "best.pt"),
                         "--split", "val")
    assert code == 0 and out.startswith("val.loss "), err


def test_eval_without_split_measures_val_when_the_dataset_has_no_test_part(
        digits_run: tuple[Path, Path]) -> None:
    """scikit-learn's digits have no test part: eval used to fail asking for one."""
    spec, run = digits_run
    code, out, err = cli("eval", str(spec), "--checkpoint", str(run / "checkpoints" / "best.pt"))
    assert code == 0, err
    assert out.startswith("val.loss ") and (run / "eval-val.json").is_file()


def test_eval_without_split_measures_the_test_part_where_the_files_hold_one(
        tmp_path: Path) -> None:
    from run_fixtures import lenet_text, tiny_mnist, write_idx

    root = tiny_mnist(tmp_path / "mnist", n=256)
    images = (root / "t10k-images-idx3-ubyte.gz")
    labels = (root / "t10k-labels-idx1-ubyte.gz")
    only_t10k = tmp_path / "t10k.yaml"
    only_t10k.write_text(lenet_text(root) + "log: {tensorboard: false}\n")
    code, _, err = cli("train", str(only_t10k), "--run-dir", str(tmp_path / "run"))
    assert code == 0, err
    best = str(tmp_path / "run" / "checkpoints" / "best.pt")
    code, out, err = cli("eval", str(only_t10k), "--checkpoint", best)
    assert code == 0 and out.startswith("val.loss "), err  # t10k files alone: they train
    import torch

    write_idx(root / "train-images-idx3-ubyte", torch.zeros(8, 28, 28, dtype=torch.uint8))
    write_idx(root / "train-labels-idx1-ubyte", torch.zeros(8, dtype=torch.uint8))
    assert images.exists() and labels.exists()
    code, out, err = cli("eval", str(only_t10k), "--checkpoint", best)
    assert code == 0 and out.startswith("test.loss "), err


def test_resume_given_a_checkpoint_file_asks_for_the_run_folder(
        digits_run: tuple[Path, Path]) -> None:
    spec, run = digits_run
    best = run / "checkpoints" / "best.pt"
    code, _, err = cli("train", str(spec), "--resume", str(best))
    assert code == 3, err
    assert f"--resume {best} is a file" in err and "checkpoints/last.pt" in err


@pytest.mark.parametrize(("keep", "said"), [
    (("best.pt", "resolved.json"), "stopped before its first last.pt was written"),
    (("resolved.json",), "stopped before its first epoch ended"),
    ((), "not a run's folder"),
    (None, "no such folder")], ids=["best-only", "no-checkpoint", "empty-folder", "missing"])
def test_resume_of_a_run_without_last_pt_says_why_and_what_to_do(
        digits_run: tuple[Path, Path], tmp_path: Path, keep: tuple[str, ...] | None,
        said: str) -> None:
    spec, run = digits_run
    broken = tmp_path / "broken"
    if keep is not None:
        (broken / "checkpoints").mkdir(parents=True)
        for name in keep:
            where = run / "checkpoints" if name.endswith(".pt") else run
            shutil.copy(where / name, (broken / "checkpoints" if name.endswith(".pt")
                                       else broken) / name)
    code, _, err = cli("train", str(spec), "--resume", str(broken))
    assert code == 3, err
    assert f"--resume {broken}" in err and said in err and "hint:" in err


def test_resume_refuses_a_run_dir_elsewhere_instead_of_ignoring_it(
        digits_run: tuple[Path, Path], tmp_path: Path) -> None:
    spec, run = digits_run
    code, _, err = cli("train", str(spec), "--resume", str(run), "--run-dir", str(tmp_path / "x"))
    assert code == 2, err
    assert "name different folders" in err and "leave --run-dir out" in err
    assert not (tmp_path / "x").exists()


# -- a torchvision dataset that is not there says where torchvision looks ---------------------

@pytest.mark.parametrize(("name", "folder"), [("MNIST", "MNIST/raw"),
                                              ("FashionMNIST", "FashionMNIST/raw"),
                                              ("CIFAR10", "cifar-10-batches-py")])
def test_missing_vision_dataset_hint_names_the_folder_torchvision_reads(
        name: str, folder: str, tmp_path: Path) -> None:
    from nnspec.errors import RunError
    from nnspec.run.datasets import Context, build_source

    with pytest.raises(RunError) as info:
        build_source(name, {"root": str(tmp_path)}, Context("train"))
    assert f"put {name}'s files in {tmp_path.resolve() / folder}" in (info.value.hint or "")


# -- overrides: optimizer.SGD.lr=0.01 (training.md's example) on a spec whose optimizer is Adam --

def test_override_naming_another_optimizer_says_to_give_the_section_whole() -> None:
    code, _, err = cli("validate", str(ROOT / "examples" / "lenet_digits.yaml"),
                       "optimizer.SGD.lr=0.01")
    assert code == 2
    assert ("<override 1: optimizer.SGD.lr=0.01>:1:1: error: optimizer: the spec's optimizer is "
            "Adam, not SGD (to use SGD, give the optimizer whole: "
            "optimizer='{SGD: {lr: 0.01}}')") in err
    assert "amsgrad" not in err
    code, _, err = cli("validate", str(ROOT / "examples" / "lenet_digits.yaml"),
                         "optimizer={SGD: {lr: 0.01}}", "optimizer.SGD.momentum=0.9")
    assert code == 0, err
