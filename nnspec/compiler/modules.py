"""The few modules nnspec adds to torch.nn: containers with a stated forward, and ops as modules.

Built models use these only where torch has no equivalent: a tensor op inside a sequential
container (``Op``), and ``nn.ModuleList`` / ``nn.ModuleDict`` with a forward pass (``ListNet``,
``DictNet``).  Emitted code defines its own copies, so it never imports nnspec.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from nnspec import catalogue


class Op(nn.Module):
    """A parameter-free tensor operation (reshape, permute, getitem, ...) as a module."""

    def __init__(self, op: str, **kwargs: Any) -> None:
        super().__init__()
        self.op = op
        self.kwargs = kwargs
        code = catalogue.ops()[op].traits.code
        assert code is not None
        self.run = code.apply

    def forward(self, *inputs: Any) -> Any:
        return self.run(*inputs, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join([self.op, *(f"{k}={v!r}" for k, v in self.kwargs.items())])


# A forward step: a member (index or name), or (op, members): each member applied to x, the
# results combined by the op, as ``x = self[i // 2](x) + self[i](x)``.
Step = Any


def _steps(net: Any, x: torch.Tensor) -> Any:
    for step in net.order:
        if isinstance(step, tuple):
            op, members = step
            code = catalogue.ops()[op].traits.code
            assert code is not None
            x = code.apply(*(net[m](x) for m in members))
        else:
            x = net[step](x)
    return x


class ListNet(nn.ModuleList):
    """An nn.ModuleList whose forward applies its members in ``order`` (default: as listed)."""

    def __init__(self, modules: Iterable[nn.Module], order: Sequence[Step] = ()) -> None:
        super().__init__(modules)
        self.order = list(order) or list(range(len(self)))

    def forward(self, x: torch.Tensor) -> Any:
        return _steps(self, x)


class DictNet(nn.ModuleDict):
    """An nn.ModuleDict whose forward applies its members in ``order`` (default: as listed)."""

    def __init__(self, modules: dict[str, nn.Module], order: Sequence[Step] = ()) -> None:
        super().__init__(modules)
        self.order = list(order) or list(self.keys())

    def forward(self, x: torch.Tensor) -> Any:
        return _steps(self, x)
