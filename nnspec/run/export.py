"""``nnspec export``: a trained model in the formats deployment takes.

- ``onnx``: torch's current exporter (``torch.onnx.export(..., dynamo=True)``; the
  TorchScript-based one is deprecated), with a dynamic batch dimension.
- ``pt2``: ``torch.export`` (an ExportedProgram, reloaded with ``torch.export.load``), with a
  dynamic batch dimension.
- ``safetensors``: the weights under the spec's own names, which load with ``strict=True`` into
  the class ``nnspec compile --emit-python`` writes: a model anyone can use without nnspec.

TorchScript is left out: tracing fails its own check on the transformer classifier.  The
packages are the optional ``[export]`` extra; a missing one is a usage error naming the pip
command that installs it.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnspec.catalogue import torch_dtype
from nnspec.errors import RunError, missing_package
from nnspec.lang.spec import Spec

FORMATS = ("onnx", "pt2", "safetensors")
_PACKAGES = {"onnx": ("onnx", "onnxscript"), "pt2": (), "safetensors": ("safetensors",)}


def check_packages(fmt: str) -> None:
    import importlib.util

    for package in _PACKAGES[fmt]:
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise missing_package(f"nnspec export --format {fmt}", package, "export")


def example_input(spec: Spec, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs of ``batch`` samples (2: a batch of 1 would be specialised by torch.export)."""
    out = []
    for info in spec.inputs.values():
        dtype = torch_dtype(info.dtype)
        shape = (batch, *info.shape)
        out.append(torch.randn(shape).to(dtype) if dtype.is_floating_point
                   else torch.zeros(shape, dtype=dtype))
    return tuple(out)


def _dynamic(spec: Spec) -> tuple[dict[int, Any], ...]:
    batch = torch.export.Dim("batch", min=1)
    return tuple({0: batch} for _ in spec.inputs)


def export(spec: Spec, model: nn.Module, fmt: str, output: Path) -> None:
    """Write ``model`` (in eval mode, its weights loaded) as ``fmt`` to ``output`` atomically."""
    check_packages(fmt)
    model = model.eval()
    # the temporary keeps the suffix: torch.export.save warns about an archive name without .pt2
    tmp = output.with_name(f".{output.name}.tmp{os.getpid()}{output.suffix}")
    try:
        {"onnx": _onnx, "pt2": _pt2, "safetensors": _safetensors}[fmt](spec, model, tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # safetensors writes 0600; the user's umask decides
        os.replace(tmp, output)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _onnx(spec: Spec, model: nn.Module, path: Path) -> None:
    names = [n for n in spec.inputs] if len(spec.inputs) > 1 else ["input"]
    chatter = io.StringIO()  # the exporter prints its progress to stdout
    with contextlib.redirect_stdout(chatter), _exporting(spec, "onnx"):
        program = torch.onnx.export(model, example_input(spec), dynamo=True,
                                    dynamic_shapes=_dynamic(spec), input_names=names,
                                    output_names=["output"], verbose=False)
        if program is None:
            raise RunError("torch.onnx.export returned no program")
        program.save(str(path))


def _pt2(spec: Spec, model: nn.Module, path: Path) -> None:
    with _exporting(spec, "pt2"):
        program = torch.export.export(model, example_input(spec), dynamic_shapes=_dynamic(spec))
        torch.export.save(program, str(path))


def _safetensors(spec: Spec, model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    # contiguous copies: safetensors refuses views and tensors that share memory
    weights = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(weights, str(path), metadata={"nnspec.name": spec.name,
                                            "nnspec.format": "state_dict"})


@contextlib.contextmanager
def _exporting(spec: Spec, fmt: str) -> Any:
    """torch's exporter failures as a run error naming the format (they are long traces)."""
    try:
        yield
    except RunError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise RunError(f"cannot export {spec.name} as {fmt}: {first}",
                       hint="another --format may work (safetensors always does)") from None
