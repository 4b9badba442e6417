"""Oracle: `nnspec train` of a LeNet spec equals a hand-written PyTorch loop, step for step."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from run_fixtures import lenet_text, spec_from, tiny_mnist
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torchvision.transforms import v2

from nnspec.run import train
from nnspec.run.sources import idx_table


def _hand_written(root: Path, epochs: int) -> tuple[list[float], nn.Module]:
    """The loop a PyTorch user writes, following the order docs/training.md documents."""
    table = idx_table(root, "train")
    to_float = v2.ToDtype(torch.float32, scale=True)  # what the spec's transforms do
    x = to_float(table.fields["input"][:192])
    y = table.fields["target"][:192]
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(x), 32):
            idx = order[i:i + 32]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses, model


def _step_losses(run_dir: Path) -> list[float]:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [e.value for e in events.Scalars("train/loss_step")]


def test_train_matches_a_hand_written_loop_step_for_step(tmp_path: Path) -> None:
    root = tiny_mnist(tmp_path / "mnist")
    spec, _ = spec_from(lenet_text(root, epochs=2), tmp_path, tensorboard=True, graph=False,
                        every_n_steps=1)
    summary = train(spec, run_dir=tmp_path / "run", stream=io.StringIO())
    expected, model = _hand_written(root, epochs=2)
    got = _step_losses(summary.run_dir)
    assert len(got) == len(expected) == 12
    # TensorBoard stores float32; the losses themselves are bit-identical (the weights below).
    assert got == [float(torch.tensor(v, dtype=torch.float32)) for v in expected]
    state = torch.load(summary.run_dir / "checkpoints" / "last.pt", weights_only=True)
    for name, value in model.state_dict().items():
        assert torch.equal(state["model"][name], value), name
