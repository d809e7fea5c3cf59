"""Rationales: the turns the writers named as deciding each label
(``rationale`` beside ``labels``), as targets for the head's attention pooling,
whose top turn is the ``model.<label>`` evidence a reviewer sees."""

from __future__ import annotations

import numpy as np
import torch

from kefuqa.contract import LABELS, Conversation
from kefuqa.models.neural.features import BatchInputs
from kefuqa.training.dataset import rationale_of


def rationale_targets(convs: list[Conversation], inp: BatchInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, 4, T] 1.0 on each label's deciding turns (positions in ``inp``) and [B, 4]
    whether that label has any: labels at their default value usually name none."""
    target = np.zeros((len(convs), len(LABELS), inp.mask.shape[1]), np.float32)
    for b, conv in enumerate(convs):
        pos = {i: t for t, i in enumerate(inp.turn_index[b])}
        for j, name in enumerate(LABELS):
            for i in rationale_of(conv).get(name, []):
                if i in pos:
                    target[b, j, pos[i]] = 1.0
    return torch.tensor(target), torch.tensor(target.sum(-1) > 0)


def rationale_loss(attn: torch.Tensor, target: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
    """−log of the attention mass on the deciding turns, over labels that name some."""
    if not bool(has.any()):
        return attn.new_zeros(())
    mass = (attn * target).sum(-1)
    return -torch.log(mass[has] + 1e-6).mean()
