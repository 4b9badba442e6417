"""nnspec predict and nnspec export on a real trained LeNet (scikit-learn's digits)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from run_fixtures import DIGITS_MLP, EXAMPLES

from nnspec.run import train
from tests.conftest import cli

HELD_OUT = (1437, 1797)  # the digits the model never trained on


@pytest.fixture(scope="module")
def lenet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """examples/lenet_digits.yaml trained 3 epochs on digits 0-1436, validated on the rest."""
    tmp = tmp_path_factory.mktemp("lenet")
    text = (EXAMPLES / "lenet_digits.yaml").read_text().replace(
        "  val_split: 0.2\n", f"  train: {{range: [0, {HELD_OUT[0]}]}}\n"
        f"  val: {{range: [{HELD_OUT[0]}, {HELD_OUT[1]}]}}\n")
    spec = tmp / "lenet_digits.yaml"
    spec.write_text(text + "log: {tensorboard: false}\n")
    train(str(spec), overrides=["train.epochs=3"], run_dir=tmp / "run", stream=io.StringIO())
    return spec, tmp / "run" / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[int]]:
    """The held-out digits as 8x8 grey PNG files (0-16 scaled to 0-255), as a user has them."""
    from sklearn.datasets import load_digits
    from torchvision.io import write_png

    digits = load_digits()
    folder = tmp_path_factory.mktemp("pngs")
    paths, labels = [], []
    for i in range(*HELD_OUT):
        pixels = np.rint(digits.images[i] * 255 / 16).astype(np.uint8)
        path = folder / f"digit{i}_{digits.target[i]}.png"
        write_png(torch.from_numpy(pixels).unsqueeze(0), str(path))
        paths.append(path)
        labels.append(int(digits.target[i]))
    return paths, labels


def test_predict_on_png_digits_agrees_with_eval_on_the_same_samples(
        lenet: tuple[Path, Path], pngs: tuple[list[Path], list[int]]) -> None:
    spec, best = lenet
    paths, labels = pngs
    code, out, err = cli("predict", str(spec), "--checkpoint", str(best), *map(str, paths),
                         "--format", "json", "--top-k", "3")
    assert code == 0, err
    found = json.loads(out)
    assert [r["input"] for r in found] == [str(p) for p in paths]
    assert all(len(r["top"]) == 3 and r["top"][0]["prob"] >= r["top"][1]["prob"] for r in found)
    assert {t["class"] for r in found for t in r["top"]} <= {str(d) for d in range(10)}
    right = sum(r["top"][0]["index"] == y for r, y in zip(found, labels, strict=True))
    predicted = right / len(labels)
    code, out, err = cli("eval", str(spec), "--checkpoint", str(best), "--split", "val")
    assert code == 0, err
    evaluated = float(out.split("val.accuracy ")[1].split()[0])
    assert predicted >= 0.90, predicted
    assert abs(predicted - evaluated) <= 0.02, (predicted, evaluated)
    print(f"predict {predicted:.4f} eval {evaluated:.4f} on {len(labels)} held-out digits")


def test_predict_text_output_and_tensor_files(lenet: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    spec, best = lenet
    digits = load_digits()
    samples = torch.tensor(digits.images[HELD_OUT[0]:HELD_OUT[0] + 4], dtype=torch.float32)
    np.save(tmp_path / "four.npy", samples.unsqueeze(1).numpy())
    torch.save(samples[0].unsqueeze(0), tmp_path / "one.pt")
    np.savez(tmp_path / "two.npz", inputs=samples[:2].unsqueeze(1).numpy())
    code, out, err = cli("predict", str(spec), "--checkpoint", str(best),
                         str(tmp_path / "four.npy"), str(tmp_path / "one.pt"),
                         str(tmp_path / "two.npz"), "--top-k", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        *(f"{tmp_path / 'four.npy'}[{i}]" for i in range(4)), f"{tmp_path / 'one.pt'}[0]",
        *(f"{tmp_path / 'two.npz'}[{i}]" for i in range(2))]
    first = [line.split(": ")[1].split()[0] for line in lines]
    assert first[0] == first[4] == first[5]  # the same digit, read three ways
    assert lines[0].count("(") == 2


def test_predict_reads_csv_rows_with_the_training_statistics(tmp_path: Path) -> None:
    """A table spec standardised with the training split's mean and std: predict applies the
    statistics the checkpoint recorded, so its answers match eval's."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rows = ["{},{},{},{},{}".format(*x, iris.target_names[y])
            for x, y in zip(iris.data, iris.target, strict=True)]
    (tmp_path / "iris.csv").write_text(",".join([*names, "species"]) + "\n" + "\n".join(rows))
    (tmp_path / "rows.csv").write_text(",".join(names) + "\n" + "\n".join(
        ",".join(str(v) for v in x) for x in iris.data[[0, 60, 120]]))
    spec = tmp_path / "iris.yaml"
    spec.write_text(DIGITS_MLP.replace("input: [64]", "input: [4]").replace(
        "{SKLearn: {name: digits}}", f"{{CSV: {{path: {tmp_path / 'iris.csv'}, "
        "target: species}}").replace("Linear: {out_features: 10}", "Linear: {out_features: 3}")
        .replace("epochs: 2", "epochs: 30"))
    train(str(spec), run_dir=tmp_path / "run", stream=io.StringIO())
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    assert "standardize" in torch.load(best, weights_only=True)["meta"]
    code, out, err = cli("predict", str(spec), "--checkpoint", str(best),
                         str(tmp_path / "rows.csv"), "--format", "json", "--top-k", "1")
    assert code == 0, err
    assert [r["top"][0]["class"] for r in json.loads(out)] == ["setosa", "versicolor",
                                                               "virginica"]


@pytest.mark.parametrize(("args", "code", "words"), [
    (["nowhere.png"], 3, "input nowhere.png does not exist"),
    (["spec.txt"], 2, "unknown kind of file"),
    (["rgb.npy"], 3, "the inputs are samples of [3, 28, 28] after the evaluation transforms; "
     "the model reads [1, 28, 28]"),
    (["ints.npy"], 3, "cannot prepare ints.npy ([2, 1, 8, 8], int64) with the evaluation "
     "transforms"),
    (["flat.npy"], 3, "cannot prepare flat.npy ([8, 8], float32)"),
    (["noise.png"], 3, "cannot decode image noise.png: Unsupported image file"),
    (["folder"], 3, "input folder is a folder"),
], ids=["missing", "unknown-kind", "three-channels", "integers", "no-channel", "not-an-image",
        "folder"])
def test_predict_mistakes_are_located_errors(lenet: tuple[Path, Path], tmp_path: Path,
                                             args: list[str], code: int, words: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec, best = lenet
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.txt").write_text("x")
    np.save(tmp_path / "rgb.npy", np.zeros((2, 3, 5, 5), dtype=np.float32))
    np.save(tmp_path / "ints.npy", np.zeros((2, 1, 8, 8), dtype=np.int64))
    np.save(tmp_path / "flat.npy", np.zeros((8, 8), dtype=np.float32))
    (tmp_path / "noise.png").write_bytes(bytes(range(256)))
    (tmp_path / "folder").mkdir()
    got, _, err = cli("predict", str(spec), "--checkpoint", str(best), *args)
    assert got == code and words in err and "Traceback" not in err, err
    assert code == 2 or "hint: " in err or "does not exist" in err


# -- export -------------------------------------------------------------------------------------

def _torch_outputs(spec: Path, best: Path, x: torch.Tensor) -> torch.Tensor:
    from nnspec.api import load_spec
    from nnspec.run.predict import load_model

    model = load_model(load_spec(str(spec)), best)
    with torch.no_grad():
        out: torch.Tensor = model(x)
    return out


def test_onnx_export_runs_in_onnxruntime_with_a_dynamic_batch(lenet: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    import onnxruntime

    spec, best = lenet
    target = tmp_path / "lenet.onnx"
    code, _, err = cli("export", str(spec), "--checkpoint", str(best), "--format", "onnx",
                       "-o", str(target))
    assert code == 0, err
    session = onnxruntime.InferenceSession(str(target))
    assert session.get_inputs()[0].shape[0] == "batch"
    for n in (1, 7):
        x = torch.randn(n, 1, 28, 28)
        (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        np.testing.assert_allclose(got, _torch_outputs(spec, best, x).numpy(), atol=1e-4,
                                   rtol=0)


def test_pt2_export_reloads_and_agrees(lenet: tuple[Path, Path], tmp_path: Path,
                                       capfd: pytest.CaptureFixture[str]) -> None:
    spec, best = lenet
    target = tmp_path / "lenet.pt2"
    code, _, err = cli("export", str(spec), "--checkpoint", str(best), "--format", "pt2",
                       "-o", str(target))
    assert code == 0, err
    assert "Expect archive file" not in capfd.readouterr().err  # torch's warning on the tmp name
    program = torch.export.load(str(target))
    x = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(program.module()(x), _torch_outputs(spec, best, x))


def test_safetensors_weights_load_into_the_emitted_class_strictly(
        lenet: tuple[Path, Path], tmp_path: Path) -> None:
    """nnspec compile --emit-python + the weights file: the model without nnspec."""
    from safetensors.torch import load_file

    spec, best = lenet
    weights = tmp_path / "lenet.safetensors"
    code, _, err = cli("export", str(spec), "--checkpoint", str(best), "--format",
                       "safetensors", "-o", str(weights))
    assert code == 0, err
    code, _, err = cli("compile", str(spec), "--emit-python", "-o", str(tmp_path / "net.py"))
    assert code == 0, err
    script = (f"import sys, torch; sys.path.insert(0, {str(tmp_path)!r})\n"
              "from safetensors.torch import load_file\n"
              "import net\n"
              "model = net.LenetDigits()\n"
              f"model.load_state_dict(load_file({str(weights)!r}), strict=True)\n"
              "model.eval()\n"
              "torch.manual_seed(0)\n"
              "print(model(torch.randn(3, 1, 28, 28)).sum().item())\n"
              "assert 'nnspec' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    torch.manual_seed(0)
    expected = _torch_outputs(spec, best, torch.randn(3, 1, 28, 28)).sum().item()
    assert float(done.stdout) == pytest.approx(expected, abs=1e-4)
    assert set(load_file(weights)) == set(torch.load(best, weights_only=True)["model"])
    mask = os.umask(0)
    os.umask(mask)
    assert weights.stat().st_mode & 0o777 == 0o666 & ~mask  # safetensors alone writes 0600


@pytest.mark.parametrize(("fmt", "package"), [("onnx", "onnxscript"),
                                              ("safetensors", "safetensors")])
def test_export_without_its_package_says_how_to_install_it(
        lenet: tuple[Path, Path], tmp_path: Path, fmt: str, package: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == package else real(name, *a))
    spec, best = lenet
    code, _, err = cli("export", str(spec), "--checkpoint", str(best), "--format", fmt,
                       "-o", str(tmp_path / "x"))
    assert code == 2, err
    assert f"needs {package}, which is not installed" in err
    assert "pip install 'nnspec[export]'" in err and not (tmp_path / "x").exists()


def test_export_refuses_to_overwrite_without_force(lenet: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    spec, best = lenet
    target = tmp_path / "w.safetensors"
    target.write_text("keep")
    code, _, err = cli("export", str(spec), "--checkpoint", str(best), "--format",
                       "safetensors", "-o", str(target))
    assert code == 2 and "exists" in err and target.read_text() == "keep"


@pytest.mark.parametrize(("extra", "size"), [
    ("", 128), ("  val: {batch_size: 7}\n", 7),
    ("  val: {batch_size: 7}\n  test: {range: [0, 10], batch_size: 5}\n"
     "  train: {range: [10, 1797]}\n", 5)],
    ids=["twice", "val's", "test's"])
def test_predict_batches_as_the_data_plan_evaluates(tmp_path: Path, extra: str,
                                                    size: int) -> None:
    from nnspec.api import load_spec
    from nnspec.run.predict import batch_size

    path = tmp_path / "spec.yaml"
    path.write_text(DIGITS_MLP.replace("  batch_size: 64\n", "  batch_size: 64\n" + extra))
    assert batch_size(load_spec(str(path), [])) == size


IDS_SPEC = """
nnspec: 2
name: ids
input: {shape: [4], dtype: int64}
model:
  graph:
    table: {parameter: {shape: [5, 3], init: {normal: {std: 1.0}}}}
    rows: {lookup: [table, input]}
    flat: {Flatten: {}}
    head: {Linear: {out_features: 2}}
data: {dataset: {Tensors: {path: DATA}}, train: {range: [0, 6]}, val: {range: [6, 8]},
       batch_size: 4}
loss: CrossEntropyLoss
optimizer: {SGD: {lr: 0.1}}
train: {epochs: 1, device: cpu}
log: {tensorboard: false}
"""


@pytest.mark.parametrize(("given", "words"), [
    (torch.full((2, 4), 9), "the model cannot run on the inputs: index 9 is out of bounds"),
    (torch.zeros(2, 4), "holds float32 values, the model reads int64"),
], ids=["id-beyond-the-table", "float-ids"])
def test_predict_of_ids_the_model_cannot_take_is_one_line(tmp_path: Path, given: torch.Tensor,
                                                          words: str) -> None:
    """Token ids beyond a graph model's table were a traceback torch.fx printed, then exit 1;
    float ids reached the lookup the same way."""
    torch.save({"inputs": torch.randint(0, 5, (8, 4)), "targets": torch.randint(0, 2, (8,))},
               tmp_path / "d.pt")
    spec = tmp_path / "ids.yaml"
    spec.write_text(IDS_SPEC.replace("DATA", str(tmp_path / "d.pt")))
    code, _, err = cli("train", str(spec), "--run-dir", str(tmp_path / "run"))
    assert code == 0, err
    torch.save(given, tmp_path / "x.pt")
    code, _, err = cli("predict", str(spec), "--checkpoint",
                       str(tmp_path / "run" / "checkpoints" / "best.pt"), str(tmp_path / "x.pt"))
    assert code == 3 and words in err and "Traceback" not in err and "fx" not in err, err
