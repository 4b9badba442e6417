"""nnspec's own ToImage/ToDtype/Normalize give what torchvision's v2 gives (the oracle)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torchvision.transforms import v2

from nnspec.lang.spec import Named
from nnspec.run.transforms import _Native, _torchvision, input_transform

PIPELINES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "mnist": [("ToImage", {}), ("ToDtype", {"scale": True}),
              ("Normalize", {"mean": [0.1307], "std": [0.3081]})],
    "scale-only": [("ToImage", {}), ("ToDtype", {"dtype": "float32", "scale": True})],
    "rgb": [("ToDtype", {"dtype": "float32", "scale": True}),
            ("Normalize", {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]})],
    "float-cast": [("ToDtype", {"dtype": "float64"})],
    "normalize-float": [("Normalize", {"mean": [4.88], "std": [6.02]})],
}
INPUTS = {
    "mnist": torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8),
    "scale-only": torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8),
    "rgb": torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8),
    "float-cast": torch.rand(2, 1, 4, 4),
    "normalize-float": torch.rand(6, 1, 8, 8) * 16,
}


def _named(steps: list[tuple[str, dict[str, Any]]]) -> list[Named]:
    return [Named(name=n, args=a) for n, a in steps]


@pytest.mark.parametrize("name", list(PIPELINES))
def test_native_pipeline_equals_torchvision(name: str) -> None:
    items = _named(PIPELINES[name])
    native = input_transform(items, ("data", "transforms"))
    assert isinstance(native, _Native)
    x = INPUTS[name]
    expected = _torchvision(items, ("data", "transforms"))(x.clone())
    got = native(x.clone())
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert torch.equal(got, expected)  # bit for bit: the oracle test of training relies on it


def test_a_random_transform_uses_torchvision() -> None:
    items = _named([("ToImage", {}), ("RandomHorizontalFlip", {"p": 0.5})])
    assert not isinstance(input_transform(items, ("data", "transforms")), _Native)


def test_native_pipeline_hands_non_tensors_to_torchvision() -> None:
    from PIL import Image

    items = _named(PIPELINES["mnist"])
    image = Image.new("L", (28, 28), color=128)
    out = input_transform(items, ("data", "transforms"))(image)  # type: ignore[misc]
    expected = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                           v2.Normalize([0.1307], [0.3081])])(image)
    torch.testing.assert_close(out, expected.as_subclass(torch.Tensor))
