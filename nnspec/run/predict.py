"""``nnspec predict``: a trained model's answer for image files, tensor files or CSV rows.

Inputs are read as samples of the dataset the model was trained on, then given what evaluation
gives them: the transforms of the split ``eval`` measures (``data.test``'s or ``data.val``'s
own, else ``data.transforms``), the training split's standardisation, the input dtype.

- Image files (PNG, JPEG, ...) are decoded with torchvision.io in the spec's channel count,
  resized to the dataset's own sample size when that is known and differs, and their 0-255
  pixels mapped onto the dataset's own range (scikit-learn's digits count 0-16).
- ``.pt`` (loaded with ``weights_only=True``), ``.npy`` and ``.npz`` (``allow_pickle=False``)
  hold one sample or a batch of them; a dict or an .npz takes its ``inputs`` (or ``input``)
  entry, or its only one.
- ``.csv`` rows for table specs: the feature columns the training CSV had, by name.

What the spec does not say (class names, statistics, the raw value range) comes from the
checkpoint's metadata (metadata.py).  Classification outputs become the top-k probabilities;
any other output is returned as it is (un-standardised when the target was standardised).
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nnspec.catalogue import torch_dtype
from nnspec.errors import Location, Problem, RunError, SpecError
from nnspec.lang.spec import Spec
from nnspec.run import checkpoint
from nnspec.run.transforms import input_transform

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
TENSOR_SUFFIXES = frozenset({".pt", ".pth", ".npy", ".npz"})
_PROBABILITIES = {"CrossEntropyLoss": "softmax", "NLLLoss": "exp",
                  "BCEWithLogitsLoss": "sigmoid", "BCELoss": "identity"}


@dataclass
class Inputs:
    labels: list[str]
    batch: Tensor  # samples after the evaluation transforms and standardisation


def predict(spec: Spec, checkpoint_path: Path, files: list[str], top_k: int = 5,
            device: torch.device | None = None) -> list[dict[str, Any]]:
    """One record per input sample: ``{"input", "top": [{"index", "class", "prob"}]}`` for a
    classifier, ``{"input", "output"}`` otherwise."""
    if len(spec.inputs) != 1:
        raise SpecError([Problem(Location(spec.file), ("input",),
                                 "nnspec predict reads specs with one input",
                                 "call the model from Python for several inputs")])
    state = checkpoint.load(checkpoint_path)
    meta = checkpoint.metadata(state)
    model = _model(spec, state, checkpoint_path)
    if files and not meta:
        raise RunError(f"checkpoint {checkpoint_path} holds no prediction metadata (class "
                       "names, statistics): it was written before nnspec recorded them",
                       hint="train again, or --resume the run for an epoch, to record them")
    inputs = read_inputs(spec, meta, files)
    outputs = run_model(model, inputs.batch, device or torch.device("cpu"),
                        batch_size(spec))
    return records(spec, meta, inputs.labels, outputs, top_k)


def batch_size(spec: Spec) -> int:
    """Prediction batches as evaluation does: the data plan of the test split where the data
    section has one, else of val (either's own batch_size, else twice data.batch_size)."""
    if spec.data is None:
        return 256
    from nnspec.run.plan import split_plan

    return split_plan(spec.data, "test" if spec.data.test is not None else "val").batch_size


def load_model(spec: Spec, path: Path) -> nn.Module:
    """The spec's model with the checkpoint's weights, in eval mode."""
    return _model(spec, checkpoint.load(path), path)


def _model(spec: Spec, state: dict[str, Any], path: Path) -> nn.Module:
    from nnspec import api

    model: nn.Module = api.compile(spec)
    try:
        model.load_state_dict(checkpoint.model_weights(state))
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise RunError(f"checkpoint {path} does not fit this spec's model: "
                       f"{' '.join(lines[1:3] or lines[:1])[:300]}",
                       hint="use the spec it was trained with, the run directory's spec.yaml") \
            from None
    return model.eval()


def run_model(model: nn.Module, batch: Tensor, device: torch.device, size: int) -> Tensor:
    """The model's outputs for ``batch``, ``size`` samples at a time on ``device``."""
    model.to(device)
    outs = []
    with torch.inference_mode():
        for chunk in batch.split(max(size, 1)):
            out = _call(model, chunk.to(device))
            if not isinstance(out, Tensor):
                raise RunError("nnspec predict reads models with one output tensor")
            outs.append(out.float().cpu())
    return torch.cat(outs)


def _call(model: nn.Module, x: Tensor) -> Any:
    """The model on one chunk; what it refuses (token ids beyond its vocabulary...) said in one
    line, without torch.fx's printed trace."""
    from nnspec.run.step import fx_trace_silenced

    try:
        with fx_trace_silenced():
            return model(x)
    except (RuntimeError, IndexError, ValueError, TypeError) as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise RunError(f"the model cannot run on the inputs: {text}",
                       hint="give inputs of the kind the model trained on (the same values "
                       "range, e.g. token ids below the vocabulary size)") from None


# -- reading inputs ---------------------------------------------------------------------------

def read_inputs(spec: Spec, meta: dict[str, Any], files: list[str]) -> Inputs:
    """Every input file as samples, transformed as evaluation transforms them."""
    labels: list[str] = []
    batches: list[Tensor] = []
    shape = list(next(iter(spec.inputs.values())).shape)
    for name in files:
        raw = _read(Path(name), shape, meta)
        if len(raw) == 1 and Path(name).suffix.lower() in IMAGE_SUFFIXES:
            labels.append(name)
        else:
            labels += [f"{name}[{i}]" for i in range(len(raw))]
        batches.append(_prepared(spec, meta, raw, name))
    if not batches:
        raise SpecError([_usage("no inputs given", "name image, tensor or CSV files")])
    try:
        batch = torch.cat(batches)
    except RuntimeError:
        raise RunError("the inputs have different shapes after the evaluation transforms: "
                       + ", ".join(f"{f} {list(b.shape[1:])}" for f, b in zip(files, batches,
                                                                                strict=True)),
                       hint=f"give samples of the dataset's shape {meta.get('input', {})}") \
            from None
    if list(batch.shape[1:]) != shape:
        raise RunError(f"the inputs are samples of {list(batch.shape[1:])} after the evaluation "
                       f"transforms; the model reads {shape}",
                       hint=_shape_hint(meta, shape))
    return Inputs(labels, _standardized(batch, meta))


def _shape_hint(meta: dict[str, Any], shape: list[int]) -> str:
    raw = meta.get("input", {})
    given = f"{raw.get('shape')} ({raw.get('dtype') or 'as the dataset has them'})" \
        if raw.get("shape") else str(shape)
    return f"give samples as the dataset's: {given}, one per file or a batch of them"


def _prepared(spec: Spec, meta: dict[str, Any], raw: Tensor, name: str) -> Tensor:
    """``_evaluation_form``, a refusal of the transforms said as the input's problem."""
    try:
        return _evaluation_form(spec, meta, raw, name)
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        shape = list(next(iter(spec.inputs.values())).shape)
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise RunError(f"cannot prepare {name} ({list(raw.shape)}, {str(raw.dtype)[6:]}) with "
                       f"the evaluation transforms: {text}",
                       hint=_shape_hint(meta, shape)) from None


def _read(path: Path, shape: list[int], meta: dict[str, Any]) -> Tensor:
    if path.is_dir():
        raise RunError(f"input {path} is a folder", hint=f"give the files in it, e.g. "
                       f"{path / '*.png'} (the shell expands the pattern)")
    if not path.is_file():
        raise RunError(f"input {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return read_image(path, shape, meta).unsqueeze(0)
    if suffix in TENSOR_SUFFIXES:
        return _batched(read_tensor(path), meta, shape)
    if suffix == ".csv":
        return read_csv(path, meta)
    raise SpecError([_usage(f"cannot read {path}: unknown kind of file",
                            "give images (.png, .jpg, ...), tensors (.pt, .npy, .npz) or .csv")])


def read_image(path: Path, shape: list[int], meta: dict[str, Any]) -> Tensor:
    """An image file as one raw sample of the dataset: its channels, size and value range."""
    from torchvision.io import ImageReadMode, decode_image

    channels = shape[0] if len(shape) == 3 else 1
    mode = {1: ImageReadMode.GRAY, 3: ImageReadMode.RGB}.get(channels, ImageReadMode.UNCHANGED)
    try:
        with warnings.catch_warnings():  # torchvision 0.29 points at torchcodec; it still works
            warnings.simplefilter("ignore", DeprecationWarning)
            image = decode_image(str(path), mode=mode)
    except (RuntimeError, ValueError) as exc:
        text = re.sub(r"^\w+, \S+:\d+, ", "", str(exc).splitlines()[0])  # torch's C++ place
        raise RunError(f"cannot decode image {path}: {text[:200]}",
                       hint="give PNG, JPEG, WebP or GIF files") from None
    raw = meta.get("input", {})
    size = raw.get("shape")
    if isinstance(size, list) and len(size) == 3 and list(image.shape[1:]) != size[1:]:
        from torchvision.transforms.v2.functional import resize

        image = resize(image, size[1:], antialias=True)
    if raw.get("dtype") in (None, "image", "uint8"):
        return image  # 0-255, as the dataset's own images
    low, high = float(raw.get("min", 0.0)), float(raw.get("max", 255.0))
    high = _pixel_scale(high)
    return image.float() / 255.0 * (high - low) + low


def _pixel_scale(high: float) -> float:
    """The top of the dataset's pixel scale: its largest value rounded up to a whole scale
    (16 for digits that reach 16, 1.0 for images in 0-1)."""
    return 1.0 if high <= 1.0 else float(np.ceil(high))


def read_tensor(path: Path) -> Tensor:
    try:
        if path.suffix.lower() in (".pt", ".pth"):
            value: Any = torch.load(path, map_location="cpu", weights_only=True)
        else:
            loaded = np.load(path, allow_pickle=False)
            value = dict(loaded) if path.suffix.lower() == ".npz" else loaded
    except Exception:  # a hostile or corrupt file is the user's input error, not a trace
        raise RunError(f"cannot read {path}: not a tensor file (or one that needs pickle)") \
            from None
    if isinstance(value, dict):
        keys = [k for k in ("inputs", "input") if k in value] or list(value)
        if len(keys) != 1 and keys[0] not in ("inputs", "input"):
            raise RunError(f"{path} holds {sorted(value)}", hint="name the samples 'inputs'")
        value = value[keys[0]]
    tensor = torch.as_tensor(np.asarray(value)) if not isinstance(value, Tensor) else value
    if not isinstance(tensor, Tensor) or tensor.dtype == torch.bool:
        raise RunError(f"{path} holds no numeric tensor")
    return tensor


def _batched(x: Tensor, meta: dict[str, Any], shape: list[int]) -> Tensor:
    """One sample (the dataset's sample shape, or the model's) gains a batch dimension."""
    raw = meta.get("input", {}).get("shape")
    sample = [list(raw)] if isinstance(raw, list) else []
    if list(x.shape) in [*sample, shape]:
        return x.unsqueeze(0)
    return x


def read_csv(path: Path, meta: dict[str, Any]) -> Tensor:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise RunError(f"{path} has no data rows")
    features = meta.get("features") or list(rows[0])
    missing = [c for c in features if c not in rows[0]]
    if missing:
        raise RunError(f"{path} lacks the feature columns {missing}",
                       hint=f"the model reads {features}")
    try:
        return torch.tensor([[float(r[c]) for c in features] for r in rows])
    except ValueError as exc:
        raise RunError(f"{path}: {exc}") from None


def _evaluation_form(spec: Spec, meta: dict[str, Any], raw: Tensor, name: str) -> Tensor:
    data = spec.data
    items = data.transforms if data is not None else []
    path: tuple[str, ...] = ("data", "transforms")
    for split in ("test", "val"):
        cfg = getattr(data, split, None) if data is not None else None
        if cfg is not None and cfg.transforms is not None:
            items, path = cfg.transforms, ("data", split, "transforms")
            break
    transform = input_transform(items, path)
    x = transform(raw) if transform is not None else raw
    dtype = torch_dtype(next(iter(spec.inputs.values())).dtype)
    if not dtype.is_floating_point and x.is_floating_point():
        raise RunError(f"{name} holds {str(x.dtype)[6:]} values, the model reads "
                       f"{str(dtype)[6:]} (token ids or class indices)",
                       hint=f"save the inputs as integers, e.g. tensor.to(torch.{str(dtype)[6:]})")
    return x.to(dtype) if dtype.is_floating_point else x


def _standardized(x: Tensor, meta: dict[str, Any]) -> Tensor:
    stats = meta.get("standardize", {}).get("input")
    return (x - stats["mean"]) / stats["std"] if stats else x


def _usage(message: str, hint: str | None = None) -> Problem:
    return Problem(Location("<command line>"), (), message, hint)


# -- what the outputs mean --------------------------------------------------------------------

def records(spec: Spec, meta: dict[str, Any], labels: list[str], outputs: Tensor,
            top_k: int) -> list[dict[str, Any]]:
    kind = _PROBABILITIES.get(spec.loss.name if spec.loss is not None else "")
    if kind is None or outputs.dim() != 2:
        return [{"input": label, "output": out.tolist()}
                for label, out in zip(labels, _unstandardized(outputs, meta), strict=True)]
    probs = {"softmax": lambda o: o.softmax(1), "exp": torch.exp, "sigmoid": torch.sigmoid,
             "identity": lambda o: o}[kind](outputs)
    names = meta.get("classes") or []
    k = min(top_k, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    return [{"input": label,
             "top": [{"index": int(i), "class": names[int(i)] if int(i) < len(names)
                      else str(int(i)), "prob": round(float(p), 6)}
                     for p, i in zip(row_p, row_i, strict=True)]}
            for label, row_p, row_i in zip(labels, values, indices, strict=True)]


def _unstandardized(outputs: Tensor, meta: dict[str, Any]) -> Tensor:
    stats = meta.get("standardize", {}).get("target")
    return outputs * stats["std"] + stats["mean"] if stats else outputs


def text_lines(found: list[dict[str, Any]]) -> list[str]:
    """``nnspec predict``'s text output: one line per input."""
    lines = []
    for record in found:
        if "top" in record:
            answers = "  ".join(f"{t['class']} ({t['prob']:.4f})" for t in record["top"])
        else:
            answers = " ".join(f"{v:.6g}" for v in _flat(record["output"]))
        lines.append(f"{record['input']}: {answers}")
    return lines


def _flat(value: Any) -> list[float]:
    if isinstance(value, list):
        return [v for item in value for v in _flat(item)]
    return [float(value)]
