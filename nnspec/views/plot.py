"""``nnspec plot RUN...``: loss and metric curves of runs, as PNG or SVG (matplotlib).

One panel per metric (loss first), one line per run and split: solid for training, dashed for
validation, one colour per run.  matplotlib is an optional extra (``pip install 'nnspec[plot]'``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from nnspec.errors import Location, Problem, SpecError, missing_package
from nnspec.views.runs import Run

FORMATS = {".png": "png", ".svg": "svg"}
_STYLES = {"train": "-", "val": "--", "test": ":"}


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
    except ImportError:
        raise missing_package("nnspec plot", "matplotlib", "plot") from None
    return plt


def plot_runs(runs: list[Run], fmt: str) -> bytes:
    """The figure of ``runs`` as PNG or SVG bytes."""
    plt = _pyplot()
    metrics = list(dict.fromkeys(m for r in runs for m in r.metrics()))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    names = _labels(runs)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, run in enumerate(runs):
            for split, style in _STYLES.items():
                epochs, values = run.curve(split, metric)
                if epochs:
                    ax.plot(epochs, values, style, color=f"C{i % 10}", marker="o", markersize=3,
                            label=f"{names[i]} {split}")
            if run.best_epoch is not None and run.monitor.endswith("." + metric):
                ax.axvline(run.best_epoch, color=f"C{i % 10}", alpha=0.25, linewidth=1)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=100, metadata=_metadata(fmt))
    plt.close(fig)
    return buffer.getvalue()


def _metadata(fmt: str) -> dict[str, Any]:
    # without a date, the same runs give the same file
    return {"Date": None} if fmt == "svg" else {}


def _labels(runs: list[Run]) -> list[str]:
    """Run folder names, or spec names where those are distinct and shorter."""
    names = [r.name for r in runs]
    return names if len(set(names)) == len(names) else [r.path.name for r in runs]


def format_of(output: Path) -> str:
    fmt = FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise SpecError([Problem(Location("<command line>"), (),
                                 f"cannot tell the format of {output}",
                                 "name a .png or .svg file")])
    return fmt

