"""Images per second from a folder of JPEGs: nnspec's ImageFolder source against a hand-written
torchvision pipeline.

    .venv/bin/python bench/bench_imagefolder.py [--images 3000] [--rounds 4] [--batches 0]
                                                [--workers 2] [--batch-size 64] [--size 96]

Writes ``--images`` small JPEGs (``--size`` pixels square, 10 class-named folders) with PIL into
a temporary folder, then reads one epoch per round (or its first ``--batches``: the workers'
fetching ahead then spills into the next pipeline's round, so whole epochs are the fair
measure) through

* nnspec: a spec's data section (ImageFolder, the transforms below, ``num_workers``) loaded and
  batched by the runner's own ``load_splits`` and ``Batches``: its data plan decides pinning,
  persistent workers and prefetch (``auto``), and one DataLoader serves every round;
* nnspec with ``persistent_workers: false`` (workers started afresh each epoch, as before
  ``auto`` kept them);
* by hand: ``torchvision.datasets.ImageFolder`` + ``DataLoader(shuffle=True,
  persistent_workers=True)`` with the same transforms, workers and batch size.

Each round is one epoch, CPU only; the pipelines alternate round by
round after one warm-up round each, and the table gives median images/s and the ratio to the
hand-written pipeline.  GPU decode (torchvision.io.decode_jpeg on the device) is not measured.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

CLASSES = 10
TRANSFORMS = """  transforms:
    - {RandomResizedCrop: {size: CROP, antialias: true}}
    - RandomHorizontalFlip
    - ToImage
    - {ToDtype: {dtype: float32, scale: true}}
    - {Normalize: {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}
"""


def write_jpegs(root: Path, images: int, size: int) -> None:
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True)
    for i in range(images):
        pixels = torch.randint(0, 256, (size // 8, size // 8, 3), generator=gen,
                               dtype=torch.uint8).numpy()
        img = Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)
        img.save(root / f"class{i % CLASSES}" / f"{i}.jpg", quality=90)


def nnspec_reader(root: Path, args: argparse.Namespace, persistent: str) -> Callable[[int], Any]:
    from nnspec.api import load_spec
    from nnspec.run.batches import Batches
    from nnspec.run.data import load_splits

    crop = args.size * 3 // 4
    text = (f"nnspec: 1\ninput: [3, {crop}, {crop}]\nmodel: [Flatten]\ndata:\n"
            f"  dataset: {{ImageFolder: {{root: {root}}}}}\n  batch_size: {args.batch_size}\n"
            f"  num_workers: {args.workers}\n  persistent_workers: {persistent}\n"
            + TRANSFORMS.replace("CROP", str(crop)))
    path = root.parent / f"spec_{persistent}.yaml"
    path.write_text(text)
    spec = load_spec(str(path), [])
    batches = Batches(load_splits(spec, ["train"])["train"], torch.device("cpu"), seed=0)
    return lambda epoch: (b["input"] for b in batches.epoch(epoch))


def hand_reader(root: Path, args: argparse.Namespace) -> Callable[[int], Iterator[Any]]:
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2

    crop = args.size * 3 // 4
    tf = v2.Compose([v2.RandomResizedCrop(crop, antialias=True), v2.RandomHorizontalFlip(),
                     v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                     v2.Normalize([0.5] * 3, [0.25] * 3)])
    loader = DataLoader(datasets.ImageFolder(str(root), transform=tf),
                        batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        persistent_workers=args.workers > 0, prefetch_factor=(
                            2 if args.workers else None), pin_memory=torch.cuda.is_available())
    return lambda epoch: (x for x, _ in loader)


def timed(read: Callable[[int], Iterator[Any]], epoch: int, batches: int) -> float:
    """Images per second over the first ``batches`` batches of one epoch."""
    start, seen = time.perf_counter(), 0
    for i, x in enumerate(read(epoch)):
        seen += len(x)
        if i + 1 == batches:  # workers still fetch ahead, in the next pipeline's time
            break
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batches", type=int, default=0, help="0: whole epochs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        t0 = time.perf_counter()
        write_jpegs(root, args.images, args.size)
        print(f"{args.images} JPEGs of {args.size}x{args.size} written in "
              f"{time.perf_counter() - t0:.1f} s; {args.workers} workers, batch {args.batch_size}"
              f", {args.batches} batches a round, {args.rounds} rounds")
        readers = {"nnspec (auto)": nnspec_reader(root, args, "auto"),
                   "nnspec (persistent_workers: false)": nnspec_reader(root, args, "false"),
                   "hand-written DataLoader": hand_reader(root, args)}
        rates: dict[str, list[float]] = {k: [] for k in readers}
        for read in readers.values():
            timed(read, 0, args.batches)  # warm-up: workers start, files enter the page cache
        for r in range(1, args.rounds + 1):
            for name, read in readers.items():
                rates[name].append(timed(read, r, args.batches))
    base = statistics.median(rates["hand-written DataLoader"])
    print(f"\n| pipeline | images/s (median of {args.rounds}) | ratio |\n| --- | --- | --- |")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
