"""Model inputs for a batch of conversations, shared by training (PyTorch
encoder) and inference (onnxruntime encoder): only ``embed`` differs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from kefuqa.contract import LABELS, Conversation
from kefuqa.models.baseline import Features, RulesEngine
from kefuqa.text.normalize import normalize

EmbedFn = Callable[[list[str]], np.ndarray]  # texts → [N, 384] float32
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


def build_inputs(convs: Sequence[Conversation], rules: RulesEngine, embed: EmbedFn) -> BatchInputs:
    feats = [rules.features(c) for c in convs]
    idx = [kept_turns(len(c.turns)) for c in convs]
    norm = [[turn_text(c.turns[i].text) for i in ii] for c, ii in zip(convs, idx)]
    texts = sorted({t for row_texts in norm for t in row_texts})
    vectors = embed(texts) if texts else np.zeros((0, 384), np.float32)
    row = {t: k for k, t in enumerate(texts)}
    T = max(len(ii) for ii in idx)
    dim = vectors.shape[1] + 3 + 2 + len(feats[0].per_turn[0])
    turns = np.zeros((len(convs), T, dim), np.float32)
    mask = np.zeros((len(convs), T), bool)
    glob = np.zeros((len(convs), 12), np.float32)
    for b, (conv, f, ii, conv_texts) in enumerate(zip(convs, feats, idx, norm)):
        last_of: dict[str, int] = {}
        for i in ii:
            last_of[conv.turns[i].speaker] = i
        for t, i in enumerate(ii):
            turn = conv.turns[i]
            e = vectors[row[conv_texts[t]]]
            d = len(e)
            turns[b, t, :d] = e
            turns[b, t, d + _SPEAKERS[turn.speaker]] = 1
            turns[b, t, d + 3] = i / max(len(conv.turns) - 1, 1)
            turns[b, t, d + 4] = float(last_of[turn.speaker] == i)
            turns[b, t, d + 5 :] = f.per_turn[i]
            mask[b, t] = True
        probs = RulesEngine.label_probs(f)
        glob[b] = [probs[name][v] for name, values in LABELS.items() for v in values]
    return BatchInputs(turns, mask, glob, idx, feats)
