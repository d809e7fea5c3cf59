"""Model inputs for a batch of conversations, shared by training (PyTorch
encoder) and inference (onnxruntime encoder): only ``embed`` differs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from kefuqa.contract import LABELS, Conversation
from kefuqa.models.baseline import Features, RulesEngine
from kefuqa.text.normalize import normalize

EmbedFn = Callable[[list[str]], np.ndarray]  # texts → [N, 384] float32
EMBED_DIM = 384
MAX_TURNS = 64  # longer chats keep their first 8 and last 56 turns
_SPEAKERS = {"agent": 0, "customer": 1, "system": 2}


@dataclass
class BatchInputs:
    turns: np.ndarray  # [B, T, TURN_IN] float32
    mask: np.ndarray  # [B, T] bool
    global_feats: np.ndarray  # [B, 12] float32
    turn_index: list[list[int]]  # position in the batch → turn index in the conversation
    features: list[Features]


def kept_turns(n: int) -> list[int]:
    return list(range(n)) if n <= MAX_TURNS else list(range(8)) + list(range(n - (MAX_TURNS - 8), n))


def turn_text(text: str) -> str:
    return normalize(text)[:300]  # chat turns are short; bound the tokenizer's work


def conversation_texts(conv: Conversation) -> list[str]:
    """The distinct texts the engine embeds for ``conv``, sorted."""
    return sorted({turn_text(conv.turns[i].text) for i in kept_turns(len(conv.turns))})


def embedding_table(texts: Iterable[str], embed: EmbedFn) -> dict[str, np.ndarray]:
    """text → vector for the distinct ``texts``, sorted, in one call to ``embed``: every
    embedder gives a text the same vector whatever it is embedded with (the int8 one: fixed
    scales and calls of one token length, or one text per call), so texts of many
    conversations can share that call and a text they share is embedded once."""
    distinct = sorted(set(texts))
    return dict(zip(distinct, embed(distinct))) if distinct else {}


def _embed_all(norm: list[list[str]], embed: EmbedFn) -> list[dict[str, np.ndarray]]:
    """text → vector, per conversation, from one table for the whole batch."""
    table = embedding_table((t for row_texts in norm for t in row_texts), embed)
    return [table] * len(norm)


def build_inputs(convs: Sequence[Conversation], rules: RulesEngine, embed: EmbedFn) -> BatchInputs:
    feats = [rules.features(c) for c in convs]
    idx = [kept_turns(len(c.turns)) for c in convs]
    norm = [[turn_text(c.turns[i].text) for i in ii] for c, ii in zip(convs, idx)]
    vectors = _embed_all(norm, embed)
    T = max(len(ii) for ii in idx)
    dim = EMBED_DIM + 3 + 2 + len(feats[0].per_turn[0])
    turns = np.zeros((len(convs), T, dim), np.float32)
    mask = np.zeros((len(convs), T), bool)
    glob = np.zeros((len(convs), 12), np.float32)
    for b, (conv, f, ii, conv_texts, table) in enumerate(zip(convs, feats, idx, norm, vectors)):
        last_of: dict[str, int] = {}
        for i in ii:
            last_of[conv.turns[i].speaker] = i
        for t, i in enumerate(ii):
            turn = conv.turns[i]
            e = table[conv_texts[t]]
            d = EMBED_DIM
            turns[b, t, :d] = e
            turns[b, t, d + _SPEAKERS[turn.speaker]] = 1
            turns[b, t, d + 3] = i / max(len(conv.turns) - 1, 1)
            turns[b, t, d + 4] = float(last_of[turn.speaker] == i)
            turns[b, t, d + 5 :] = f.per_turn[i]
            mask[b, t] = True
        probs = RulesEngine.label_probs(f)
        glob[b] = [probs[name][v] for name, values in LABELS.items() for v in values]
    return BatchInputs(turns, mask, glob, idx, feats)
