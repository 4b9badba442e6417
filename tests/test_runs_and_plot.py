"""nnspec runs (a table of runs) and nnspec plot (their curves as PNG or SVG)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from run_fixtures import DIGITS_MLP

from nnspec.run import train
from tests.conftest import cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real runs: one of 2 epochs, one stopped early; and a folder that is no run."""
    folder = tmp_path_factory.mktemp("runs")
    spec = folder.parent / "digits.yaml"
    spec.write_text(DIGITS_MLP)
    train(str(spec), run_dir=folder / "a", stream=io.StringIO())
    train(str(spec), overrides=["train.epochs=30", "optimizer.SGD.lr=0.5",
                                "train.early_stopping={patience: 1, monitor: val.loss}"],
          run_dir=folder / "b", stream=io.StringIO())
    (folder / "notes").mkdir()
    return folder


def test_runs_lists_each_run_with_its_status_and_best_epoch(runs: Path) -> None:
    code, out, err = cli("runs", str(runs))
    assert code == 0, err
    header, first, second = out.splitlines()
    assert header.split() == ["run", "spec", "started", "epochs", "best", "at", "epoch", "time",
                              "status"]
    records = [json.loads(x) for x in (runs / "a" / "metrics.jsonl").read_text().splitlines()]
    best = max(r["accuracy"] for r in records if r["split"] == "val")
    assert first.startswith("a ") and " digits_mlp " in first and " 2/2 " in first
    assert f"val.accuracy {best:.4f}" in first and first.endswith("completed")
    assert second.startswith("b ") and second.endswith("stopped early") and "/30 " in second


def test_runs_of_one_run_folder_and_of_a_missing_folder(runs: Path, tmp_path: Path) -> None:
    code, out, _ = cli("runs", str(runs / "a"))
    assert code == 0 and len(out.splitlines()) == 2
    code, _, err = cli("runs", str(tmp_path / "nowhere"))
    assert code == 3 and "is not a folder" in err
    code, out, _ = cli("runs", str(runs / "notes"))
    assert code == 0 and out.strip() == "no runs"


@pytest.mark.parametrize(("summary", "resolved", "metrics"), [
    ("[1, 2]", "{}", ""),
    ('{"started": "x", "epochs": "a", "best": "b", "best_epoch": [], "name": 5, '
     '"status": 3, "epochs_planned": {}, "seconds": "s"}', '{"train": [], "name": []}',
     '{"epoch": "a", "split": "val", "loss": "x", "time": "t"}\n'),
    ("{bad", "\u0000", '{"epoch": 1, "split": "val", "loss": 0.5, "time": 5, "seconds": 1}\n'),
], ids=["a-list", "wrong-types", "damaged"])
def test_runs_lists_a_run_whose_files_were_edited_or_damaged(
        tmp_path: Path, summary: str, resolved: str, metrics: str) -> None:
    """summary.json holding a list was an AttributeError traceback; strings where numbers go,
    a TypeError when sorting the runs."""
    run = tmp_path / "odd"
    run.mkdir()
    (run / "summary.json").write_text(summary)
    (run / "resolved.json").write_text(resolved)
    (run / "metrics.jsonl").write_text(metrics)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "summary.json").write_text('{"started": 5, "status": "completed"}')
    code, out, err = cli("runs", str(tmp_path))
    assert code == 0 and "Traceback" not in err, err
    assert out.splitlines()[1].split()[0] in ("odd", "other") and len(out.splitlines()) == 3


def test_runs_imports_no_torch(runs: Path) -> None:
    code = ("import sys; from nnspec.cli import main; sys.argv = ['nnspec', 'runs', "
            f"{str(runs)!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "digits_mlp" in done.stdout


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_png_and_svg_of_several_runs(runs: Path, tmp_path: Path,
                                                 suffix: str) -> None:
    target = tmp_path / f"curves{suffix}"
    code, _, err = cli("plot", str(runs / "a"), str(runs / "b"), "-o", str(target))
    assert code == 0, err
    data = target.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    else:
        root = ET.fromstring(data)
        assert root.tag.endswith("svg")
        assert b"loss" in data and b"accuracy" in data


def test_plot_of_one_run_defaults_to_curves_png_in_it(runs: Path) -> None:
    code, _, err = cli("plot", str(runs / "a"))
    assert code == 0, err
    assert (runs / "a" / "curves.png").read_bytes().startswith(b"\x89PNG")
    code, _, err = cli("plot", str(runs / "a"))
    assert code == 2 and "exists" in err and "--force" in err


def test_plot_refuses_an_unknown_format(runs: Path, tmp_path: Path) -> None:
    code, _, err = cli("plot", str(runs / "a"), "-o", str(tmp_path / "x.jpg"))
    assert code == 2 and "name a .png or .svg file" in err


def test_plot_without_matplotlib_says_how_to_install_it(runs: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, _, err = cli("plot", str(runs / "a"), "-o", str(tmp_path / "x.png"))
    assert code == 2, err
    assert "pip install 'nnspec[plot]'" in err and not (tmp_path / "x.png").exists()
