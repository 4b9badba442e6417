"""Oracle checks shared by the emit and lock tests: two modules are the same model.

Same state_dict keys (in order) and shapes, each loads the other's weights with strict=True,
and with the same weights both give bit-identical outputs in eval mode.  Weights are filled
cheaply and deterministically, so even VGG-16's 138M parameters cost well under a second.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnspec.compiler.ir import Graph

SMALL_SIDES = (32, 64)  # zoo specs declare 224x224; adaptive pools make less enough to compare


@cache
def inferred(path: str | Path, overrides: tuple[str, ...] = ()) -> Graph:
    """nnspec.infer, once per spec and overrides for the whole session (graphs are frozen)."""
    import nnspec

    return nnspec.infer(path, list(overrides))


@cache
def small_input_overrides(path: Path) -> tuple[str, ...]:
    """Overrides that shrink a single large image input to the smallest side the model takes,
    so forward passes stay cheap."""
    import nnspec
    from nnspec.errors import SpecError

    spec = nnspec.load_spec(path)
    if list(spec.inputs) != ["input"]:
        return ()
    shape = spec.inputs["input"].shape
    for side in SMALL_SIDES:
        if len(shape) != 3 or min(shape[1:]) <= side:
            return ()
        overrides = (f"input=[{shape[0]}, {side}, {side}]",)
        try:
            inferred(path, overrides)
        except SpecError:
            continue
        return overrides
    return ()


def small_graph(path: Path) -> Graph:
    """The inferred spec with its input shrunk as small_input_overrides says."""
    return inferred(path, small_input_overrides(path))


def emitted_module(source: str) -> dict[str, Any]:
    """Run the emitted source as its own module (it is our output, checked by emit)."""
    namespace: dict[str, Any] = {"__name__": "emitted"}
    exec(compile(source, "<emitted>", "exec"), namespace)
    return namespace


def model_class_name(source: str) -> str:
    """The model is the last class the emitted module defines."""
    classes = [n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    return classes[-1]


def instantiate_emitted(source: str, meta: bool = True) -> nn.Module:
    with torch.device("meta" if meta else "cpu"):
        module: nn.Module = emitted_module(source)[model_class_name(source)]()
    return module


def computed_buffers(module: nn.Module) -> bool:
    """Whether a module keeps buffers outside its state_dict (swin's attention masks): loading
    weights cannot fill them, so such a model is compared built on the CPU, not on meta."""
    return any(m._non_persistent_buffers_set for m in module.modules())


def fill_weights(module: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """A real, deterministic state for a module built on the meta device.

    Scaled by fan-in like torch's own init, so activations stay near 1 through fifty layers:
    small weights everywhere would shrink them into denormal floats, which the CPU computes a
    hundred times slower.
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module.state_dict().items():
        tensor = torch.empty(value.shape, dtype=value.dtype)
        if not tensor.is_floating_point():
            tensor.zero_()
        elif tensor.dim() >= 2:
            bound = (3 / max(1, tensor[0].numel())) ** 0.5
            tensor.uniform_(-bound, bound, generator=generator)
        elif key.endswith(("running_var", "weight")):
            tensor.uniform_(0.5, 1.5, generator=generator)
        else:
            tensor.uniform_(-0.1, 0.1, generator=generator)
        state[key] = tensor
    return state


def sample_inputs(graph: Graph, batch: int = 2) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for info in graph.inputs.values():
        if info.dtype.startswith(("float", "bfloat")):
            out.append(torch.randn(batch, *info.shape, generator=generator))
        else:  # token ids and the like: small valid indices
            out.append(torch.randint(0, 2, (batch, *info.shape), generator=generator))
    return out


def assert_same_model(built: nn.Module, emitted: nn.Module, inputs: list[torch.Tensor]) -> None:
    """The oracle: structure, strict loading both ways, and bit-identical outputs."""
    built_state, emitted_state = built.state_dict(), emitted.state_dict()
    assert list(built_state) == list(emitted_state)
    assert {k: v.shape for k, v in built_state.items()} == {
        k: v.shape for k, v in emitted_state.items()}
    state = fill_weights(built)
    built.load_state_dict(state, strict=True, assign=True)
    emitted.load_state_dict(built.state_dict(), strict=True, assign=True)
    built.load_state_dict(emitted.state_dict(), strict=True, assign=True)
    built.eval()
    emitted.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions on a busy CI machine: threads only contend
    try:
        with torch.no_grad():
            expected, actual = built(*inputs), emitted(*inputs)
    finally:
        torch.set_num_threads(threads)
    _assert_identical(expected, actual)


def _assert_identical(expected: Any, actual: Any) -> None:
    if isinstance(expected, tuple | list):
        assert isinstance(actual, tuple | list) and len(actual) == len(expected)
        for e, a in zip(expected, actual, strict=True):
            _assert_identical(e, a)
        return
    assert torch.equal(expected, actual), (expected - actual).abs().max()
