"""examples/gpt_chars.yaml against a hand-written PyTorch GPT: same weights, same outputs and loss.

The reference is written as one would write it by hand (nanoGPT's layout): token and position
embeddings, pre-norm blocks of causal self-attention and an MLP, and a head tied to the token
embedding.  Its state_dict keys are the spec's, so the spec's weights load into it strictly.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnspec
from tests.conftest import ROOT

SPEC = ROOT / "examples" / "gpt_chars.yaml"
VOCAB, BLOCK, DIM, HEADS, LAYERS = 96, 64, 64, 4, 2


class CausalSelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.c_proj = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(n, t, d))


class DecoderBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(DIM)
        self.attn = CausalSelfAttention()
        self.ln_2 = nn.LayerNorm(DIM)
        self.c_fc = nn.Linear(DIM, 4 * DIM)
        self.c_proj = nn.Linear(4 * DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Parameter(torch.randn(VOCAB, DIM) * 0.02)
        self.wpe = nn.Parameter(torch.randn(1, BLOCK, DIM) * 0.02)
        self.h = nn.Sequential(*(DecoderBlock() for _ in range(LAYERS)))
        self.ln_f = nn.LayerNorm(DIM)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = F.embedding(ids, self.wte) + self.wpe
        return self.ln_f(self.h(x)) @ self.wte.T  # the head is the token embedding


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    from nnspec.run.datasets import Context, build_source

    spec = nnspec.load_spec(SPEC)
    assert spec.data is not None
    args = dict(spec.data.dataset.args, path=str(ROOT / "examples/data/public_domain.txt"),
                block_size=BLOCK)
    table = build_source("TextChars", args, Context("train"))
    fields = table.fields  # type: ignore[attr-defined]
    return fields["input"][:8], fields["target"][:8]


def test_the_spec_matches_a_hand_written_gpt_with_the_same_weights() -> None:
    torch.manual_seed(0)
    ours = nnspec.compile(SPEC).eval()
    theirs = GPT().eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ids, target = _batch()
    with torch.no_grad():
        ours_logits, their_logits = ours(ids), theirs(ids)
    torch.testing.assert_close(ours_logits, their_logits)
    loss = F.cross_entropy(ours_logits.permute(0, 2, 1), target)
    torch.testing.assert_close(loss, F.cross_entropy(their_logits.permute(0, 2, 1), target))
    assert sum(p.numel() for p in theirs.parameters()) == nnspec.infer(SPEC).params


def test_the_head_is_tied_to_the_token_embedding() -> None:
    model = nnspec.compile(SPEC)
    ids = torch.zeros(1, BLOCK, dtype=torch.long)
    model(ids).sum().backward()
    assert [n for n, _ in model.named_parameters()].count("wte") == 1
    assert model.wte.grad is not None and model.wte.grad[1:].abs().sum() > 0  # from the head


@pytest.mark.slow
def test_nnspec_train_lowers_the_next_character_loss(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from nnspec.lang.spec import Log
    from nnspec.run import train

    monkeypatch.chdir(ROOT)
    spec = nnspec.load_spec(SPEC, ["train.epochs=2", "data.dataset.TextChars.stride=48"])
    spec = spec.model_copy(update={"log": Log(tensorboard=False, dir=str(tmp_path))})
    summary = train(spec, stream=io.StringIO())
    records = [json.loads(line) for line in
               (summary.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert losses[-1] < losses[0] < 4.6  # below log(96): it learnt which characters follow
