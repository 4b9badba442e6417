"""Custom layers for nnspec: plain nn.Module classes, loaded with `nnspec --plugin my_layers`.

    PYTHONPATH=examples/plugins nnspec --plugin my_layers train examples/plugins/gated_mlp.yaml

Each public nn.Module class defined here becomes a layer named after it.  Its arguments come from
``__init__``: annotate them (int, float, bool, str, Literal, list of numbers) so that nnspec can
check a spec's values; ``in_features``, ``in_channels``, ``num_features`` and the like may be
left out of a spec, which fills them in from the incoming shape.  ``forward``'s parameters say
how many inputs the layer takes in a graph.
"""

from __future__ import annotations

import torch
from torch import nn


class GatedLinear(nn.Module):
    """A linear layer whose outputs are gated by a learned sigmoid: linear(x) * sigmoid(gate(x))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.gate = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * torch.sigmoid(self.gate(x))


class Scale(nn.Module):
    """Multiply each feature (the first dimension of a sample) by a learned factor."""

    def __init__(self, num_features: int, init: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((num_features,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape)


class Blend(nn.Module):
    """Mix two inputs of one shape: alpha * a + (1 - alpha) * b."""

    def __init__(self, alpha: float = 0.5) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.alpha * a + (1 - self.alpha) * b
