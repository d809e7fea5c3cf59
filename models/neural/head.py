"""The multi-task head over frozen turn embeddings (PyTorch; training and
ONNX export only — inference runs the exported graph in onnxruntime).

Each turn is its e5 embedding, speaker one-hot, relative position and the
rule features of that turn; a small transformer layer lets turns see each
other; per label, attention pooling picks the turns that matter (reused as
evidence); customer sentiment per turn comes from the turn's own encoding.
"""

from __future__ import annotations

import torch
from torch import nn

from kefuqa.contract import LABELS

EMBED_DIM = 384
N_RULE = 16  # len(kefuqa.models.baseline.TURN_FEATURES)
TURN_IN = EMBED_DIM + 3 + 2 + N_RULE
N_GLOBAL = 12  # baseline probabilities, 4 labels × 3 values
TASKS = tuple(LABELS)


class ContextLayer(nn.Module):
    """Post-LN self-attention block over turns, written out (rather than
    nn.TransformerEncoderLayer) so the ONNX graph keeps dynamic batch/turn sizes."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        split = lambda x: x.reshape(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        scores = scores.masked_fill(~mask[:, None, None, :], -1e4)
        ctx = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)
        ctx = ctx.reshape(ctx.shape[0], ctx.shape[1], -1)
        h = self.norm1(h + self.drop(self.out(ctx)))
        return self.norm2(h + self.drop(self.ff(h)))


class AttentionPool(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, dim // 2), nn.Tanh(), nn.Linear(dim // 2, 1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.score(h).squeeze(-1).masked_fill(~mask, -1e4)
        w = torch.softmax(s, dim=-1)
        return torch.einsum("bt,btd->bd", w, h), w


class ConversationHead(nn.Module):
    def __init__(self, hidden: int = 128, dropout: float = 0.2) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(TURN_IN, hidden), nn.GELU(), nn.Dropout(dropout))
        self.context = ContextLayer(hidden, heads=4, dropout=dropout)
        self.pools = nn.ModuleList(AttentionPool(hidden) for _ in TASKS)
        self.outs = nn.ModuleList(
            nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden + N_GLOBAL, 3)) for _ in TASKS
        )
        self.turn_sentiment = nn.Sequential(nn.Linear(EMBED_DIM + N_RULE, 64), nn.GELU(), nn.Linear(64, 3))

    def forward(
        self, turns: torch.Tensor, mask: torch.Tensor, global_feats: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """turns [B,T,TURN_IN], mask [B,T] bool, global [B,N_GLOBAL] →
        logits [B,4,3], attention [B,4,T], turn sentiment logits [B,T,3]; calibration
        (temperature) is applied by EnsembleHead, which wraps every trained head."""
        h = self.proj(turns)
        h = self.context(h, mask)
        logits, attn = [], []
        for pool, out in zip(self.pools, self.outs):
            pooled, w = pool(h, mask)
            logits.append(out(torch.cat([pooled, global_feats], dim=-1)))
            attn.append(w)
        emb = turns[..., :EMBED_DIM]
        rule = turns[..., EMBED_DIM + 5 :]
        sent = self.turn_sentiment(torch.cat([emb, rule], dim=-1))
        return torch.stack(logits, 1), torch.stack(attn, 1), sent


class EnsembleHead(nn.Module):
    """Heads trained with different seeds; logits, attention and turn
    sentiment averaged; one temperature per task over the average."""

    temperature: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, heads: list[ConversationHead]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)
        self.register_buffer("temperature", torch.ones(len(TASKS)))

    def forward(
        self, turns: torch.Tensor, mask: torch.Tensor, global_feats: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outs = [h(turns, mask, global_feats) for h in self.heads]
        logits = torch.stack([o[0] for o in outs]).mean(0) / self.temperature[None, :, None]
        attn = torch.stack([o[1] for o in outs]).mean(0)
        sent = torch.stack([o[2] for o in outs]).mean(0)
        return logits, attn, sent
