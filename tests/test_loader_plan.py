"""The data plan's loader settings (workers, pinning, persistent workers, prefetch), the located
errors for settings that cannot hold, and one DataLoader reused across the epochs of an
ImageFolder split."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import cli

from nnspec.run.plan import SplitPlan, loader_settings

HEAD = "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: 2}}]\n"


def _settings(cuda: bool = False, in_memory: bool = False, resident: bool = False,
              threads: int = 8, **plan: object):
    return loader_settings(SplitPlan("train", 8, **plan),  # type: ignore[arg-type]
                           cuda=cuda, in_memory=in_memory, resident=resident, threads=threads)


def test_auto_gives_files_workers_prefetch_and_persistent_workers() -> None:
    s = _settings(threads=2)
    assert (s.num_workers, s.persistent_workers, s.prefetch_factor, s.pin_memory) == (
        2, True, 2, False)
    assert _settings(threads=64).num_workers == 4


def test_auto_gives_in_memory_tables_no_workers_and_nothing_that_needs_them() -> None:
    s = _settings(in_memory=True)
    assert (s.num_workers, s.persistent_workers, s.prefetch_factor) == (0, False, None)


def test_persistent_workers_can_be_turned_off() -> None:
    assert not _settings(persistent_workers=False).persistent_workers


def test_auto_pins_memory_on_cuda_unless_the_data_is_resident() -> None:
    assert _settings(cuda=True).pin_memory
    assert not _settings(cuda=True, resident=True).pin_memory
    assert not _settings(cuda=True, pin_memory=False).pin_memory


def test_said_values_are_kept() -> None:
    s = _settings(num_workers=3, prefetch_factor=6, persistent_workers=False)
    assert (s.num_workers, s.prefetch_factor, s.persistent_workers) == (3, 6, False)


@pytest.mark.parametrize(("data", "where", "words"), [
    ("prefetch_factor: 0", "4:", "data.prefetch_factor"),
    ("prefetch_factor: 1000", "4:", "data.prefetch_factor"),
    ("persistent_workers: sometimes", "4:", "data.persistent_workers"),
    ("num_workers: 0, prefetch_factor: 4", "4:", "prefetch_factor needs DataLoader workers"),
    ("num_workers: 0, persistent_workers: true", "4:",
     "persistent_workers needs DataLoader workers"),
])
def test_bad_loader_settings_are_located_errors(tmp_path: Path, data: str, where: str,
                                                words: str) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(HEAD + "data: {dataset: {ImageFolder: {root: x}}, " + data + "}\n")
    code, _, err = cli("validate", "--no-shapes", str(spec))
    assert code == 2, err
    assert f"s.yaml:{where}" in err and words in err, err


def _images(root: Path) -> None:
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for c in ("a", "b"):
        (root / c).mkdir()
        for i in range(5):
            pixels = torch.randint(0, 256, (6, 6, 3), dtype=torch.uint8, generator=gen).numpy()
            Image.fromarray(pixels).save(root / c / f"{i}.png")


def test_one_loader_serves_every_epoch_in_the_same_order(tmp_path: Path) -> None:
    from run_fixtures import spec_from

    from nnspec.run.batches import Batches
    from nnspec.run.data import load_splits

    _images(tmp_path)
    spec, _ = spec_from(HEAD + f"data: {{dataset: {{ImageFolder: {{root: {tmp_path}}}}}, "
                        "batch_size: 4, num_workers: 1}\n", tmp_path)
    split = load_splits(spec, ["train"])["train"]
    batches = Batches(split, torch.device("cpu"), seed=1)
    assert batches.loading.persistent_workers
    first = [b["target"].tolist() for b in batches.epoch(0)]
    loader = batches._loader
    again = [b["target"].tolist() for b in batches.epoch(0)]
    resumed = [b["target"].tolist() for b in batches.epoch(0, start=1)]
    other = [b["target"].tolist() for b in batches.epoch(1)]
    assert batches._loader is loader
    assert first == again and resumed == first[1:] and len(first) == 3
    assert sorted(t for b in other for t in b) == sorted(t for b in first for t in b)
    assert other != first


def _augmented(tmp_path: Path, workers: int, epoch: int, start: int) -> list[torch.Tensor]:
    from run_fixtures import spec_from

    from nnspec.run.batches import Batches
    from nnspec.run.data import load_splits

    spec, _ = spec_from(HEAD + f"data: {{dataset: {{ImageFolder: {{root: {tmp_path / 'img'}}}}}, "
                        f"batch_size: 3, num_workers: {workers}, transforms: "
                        "[{RandomResizedCrop: {size: 4}}, RandomHorizontalFlip]}\n", tmp_path)
    batches = Batches(load_splits(spec, ["train"])["train"], torch.device("cpu"), seed=3)
    for e in range(epoch if start == 0 else 0):  # a whole run serves earlier epochs first
        list(batches.epoch(e))
    return [b["input"] for b in batches.epoch(epoch, start)]


def test_worker_augmentations_depend_on_seed_epoch_and_sample_only(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    _images(tmp_path / "img")
    whole = _augmented(tmp_path, 1, 1, 0)
    assert all(torch.equal(a, b) for a, b in zip(whole[1:], _augmented(tmp_path, 2, 1, 1),
                                                  strict=True))
    fresh = _augmented(tmp_path, 2, 0, 0)
    assert not all(torch.equal(a, b) for a, b in zip(whole, fresh, strict=False))


@pytest.mark.parametrize("workers", [0, 1])
def test_a_damaged_image_among_the_files_names_the_file(tmp_path: Path, workers: int) -> None:
    """It said 'cannot use: UnidentifiedImageError' (an OSError with no errno), and the run's
    first line said '(1 workers)'."""
    root = tmp_path / "img"
    root.mkdir()
    _images(root)
    (root / "a" / "broken.png").write_text("not an image")
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD.replace("[4]", "[3, 6, 6]").replace("model: [", "model: [Flatten, ")
                    + f"data: {{dataset: {{ImageFolder: {{root: {root}}}}}, batch_size: 11, "
                    f"num_workers: {workers}, transforms: [ToImage, {{ToDtype: {{scale: true}}}}]}}"
                    "\nloss: CrossEntropyLoss\noptimizer: {SGD: {lr: 0.1}}\n"
                    "train: {epochs: 1, device: cpu}\nlog: {tensorboard: false}\n")
    code, _, err = cli("train", str(spec), "--run-dir", str(tmp_path / "run"))
    assert code == 3, err
    assert "error: cannot read the data: cannot identify image file '" in err
    assert "broken.png'" in err and "_io." not in err
    assert "(1 workers)" not in err
