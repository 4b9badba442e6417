"""The hand-written PyTorch models and data the benchmarks race nnspec against.

Each model has the state_dict names of the spec it mirrors, so a benchmark can give it nnspec's
initial weights and check that both ended with the same weights (the same arithmetic).  Only
torch is imported here; torchvision and scikit-learn are imported where a function needs them,
as a hand-written script would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parent.parent


def cifar_resnet18(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem (3x3 at stride 1, no max-pool)."""
    import torchvision

    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()  # type: ignore[assignment]
    return model


class TransformerClassifier(nn.Module):
    """specs/transformer_classifier.yaml: embedding, pre-norm encoder layers, mean, linear."""

    def __init__(self, vocab: int = 1000, d_model: int = 64, heads: int = 4, layers: int = 2,
                 num_classes: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.encoder = nn.Sequential(*(nn.TransformerEncoderLayer(
            d_model, heads, d_model * 4, dropout=0.1, batch_first=True, norm_first=True)
            for _ in range(layers)))
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(self.encoder(self.embed(ids)).mean(dim=1))


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, c = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(n, t, c))


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(self.gelu(self.c_fc(self.ln_2(x))))


class GPTChars(nn.Module):
    """examples/gpt_chars.yaml: token and position embeddings, pre-norm blocks, a tied head."""

    def __init__(self, vocab: int = 96, block: int = 64, dim: int = 64, heads: int = 4,
                 layers: int = 2) -> None:
        super().__init__()
        self.wte = nn.Parameter(torch.randn(vocab, dim) * 0.02)
        self.wpe = nn.Parameter(torch.randn(1, block, dim) * 0.02)
        self.h = nn.Sequential(*(DecoderBlock(dim, heads) for _ in range(layers)))
        self.ln_f = nn.LayerNorm(dim)

    def forward(self, ids: Tensor) -> Tensor:
        return self.ln_f(self.h(self.wte[ids] + self.wpe)) @ self.wte.t()


GPT_TEXT = ROOT / "examples" / "data" / "public_domain.txt"
GPT_VOCAB = ("\n !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
             "abcdefghijklmnopqrstuvwxyz{|}~")


def char_blocks(path: Path = GPT_TEXT, block: int = 64, stride: int = 16,
                vocabulary: str = GPT_VOCAB) -> tuple[Tensor, Tensor]:
    """Blocks of character ids and the ids one character on (the TextChars windows)."""
    index = {c: i for i, c in enumerate(vocabulary)}
    ids = torch.tensor([index[c] for c in path.read_text(encoding="utf-8")], dtype=torch.long)
    rows = torch.arange(0, len(ids) - block, stride)[:, None] + torch.arange(block + 1)
    windows = ids[rows]
    return windows[:, :-1], windows[:, 1:]


def lightning_epoch_speed(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor],
                          optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
                          x: Tensor, y: Tensor, batch: int, epochs: int = 2,
                          clip: float | None = None,
                          accelerator: str = "cpu") -> tuple[float, float] | None:
    """Samples/s of Lightning's last epoch with its defaults (a Trainer, a shuffling
    DataLoader over the tensors), by the wall clock and by the main thread's CPU time, or None
    where Lightning is not installed (``.[bench]``).

    Lightning's loggers, checkpoints, progress bar and model summary are off: the hand loops
    and nnspec (with ``log.tensorboard=false``) write nothing per step either."""
    try:
        import lightning as L
    except ImportError:
        return None
    for name in ("lightning.pytorch", "lightning.fabric"):  # its banners and tips
        logging.getLogger(name).setLevel(logging.ERROR)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def training_step(self, b: tuple[Tensor, Tensor], i: int) -> Tensor:
            return loss_fn(self.net(b[0]), b[1])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return optimizer(self.parameters())

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.times: list[tuple[float, float]] = []

        def on_train_epoch_start(self, *args: object) -> None:
            self.times.append((time.perf_counter(), time.thread_time()))

        def on_train_epoch_end(self, *args: object) -> None:
            if accelerator == "gpu":
                torch.cuda.synchronize()
            self.times.append((time.perf_counter(), time.thread_time()))

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch,
                                         shuffle=True, pin_memory=accelerator == "gpu")
    clock = Clock()
    trainer = L.Trainer(max_epochs=epochs, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[clock],
                        gradient_clip_val=clip)
    trainer.fit(Module(), loader)
    (wall0, cpu0), (wall1, cpu1) = clock.times[-2:]
    return len(x) / (wall1 - wall0), len(x) / (cpu1 - cpu0)


class EpochClocks:
    """Wall and main-thread CPU time of each ``Trainer._run_epoch`` of nnspec run in this
    process (the CPU time is what other jobs on a shared machine disturb least)."""

    def __init__(self) -> None:
        self.epochs: list[tuple[float, float]] = []

    def __enter__(self) -> EpochClocks:
        from nnspec.run import loop

        self.loop, self.original = loop, loop.Trainer._run_epoch
        clocks = self

        def run_epoch(trainer: object) -> object:
            wall, cpu = time.perf_counter(), time.thread_time()
            out = clocks.original(trainer)  # type: ignore[arg-type]
            clocks.epochs.append((time.perf_counter() - wall, time.thread_time() - cpu))
            return out

        loop.Trainer._run_epoch = run_epoch  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.Trainer._run_epoch = self.original  # type: ignore[method-assign]


def lightning_missing_note() -> str | None:
    """A line saying Lightning is skipped, where it is not installed."""
    try:
        import lightning  # noqa: F401
    except ImportError:
        return ("note: lightning is not installed, so its contender is skipped "
                "(pip install -e '.[bench]')")
    return None
