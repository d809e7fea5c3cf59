"""The steps every door shares before scoring: validate (in the readers),
mask PII, then hand the batch to an engine. The HTTP API, the batch runner
and Ray all call ``mask_conversation`` and ``Engine.score_batch``.
"""

from __future__ import annotations

from kefuqa.contract import Conversation
from kefuqa.text.pii import PiiMasker


def mask_conversation(conv: Conversation, masker: PiiMasker) -> Conversation:
    """A copy with every turn's text masked; the original is not kept."""
    if not masker.enabled:
        return conv
    turns = [t.model_copy(update={"text": masker.mask(t.text)}) for t in conv.turns]
    return conv.model_copy(update={"turns": turns})
