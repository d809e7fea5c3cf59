"""The scoring interface every door calls: a batch of (PII-masked) conversations
in, a batch of score records (scores.md, as dicts) out; and the error an engine
that cannot be created raises. Engines import this; ``engine.create_engine``
imports the engines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from kefuqa.contract import Conversation, ModelInfo


class EngineError(Exception):
    """An engine cannot be created (unknown name, model missing)."""


class Engine(Protocol):
    info: ModelInfo

    def score_batch(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]: ...
