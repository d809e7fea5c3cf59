"""The score record (scores.md) every engine returns: one builder, so the rules and
the neural engine cannot drift apart in what a record holds."""

from __future__ import annotations

from typing import Any, Protocol

from kefuqa.contract import Conversation, ModelInfo
from kefuqa.models.metrics import response_times


class RecordCounts(Protocol):
    """What a record's ``metrics`` take from an engine's features (the rules engine's
    ``Features`` has them)."""

    @property
    def agent_turns(self) -> int: ...
    @property
    def customer_turns(self) -> int: ...
    @property
    def polite_rate(self) -> float: ...
    @property
    def taboo(self) -> int: ...


def build_record(
    conv: Conversation,
    info: ModelInfo,
    probs: dict[str, dict[str, float]],
    customer_sentiment: list[tuple[int, float]],
    evidence: list[dict[str, Any]],
    f: RecordCounts,
) -> dict[str, Any]:
    """One score record per scores.md; shared by every engine."""
    times = response_times(conv)
    started = conv.started_at or conv.turns[0].ts
    return {
        "id": conv.id,
        "agent_id": conv.agent_id,
        "started_at": started.isoformat() if started else None,
        "channel": conv.channel,
        "model": info.model_dump(),
        "labels": {name: max(p, key=p.__getitem__) for name, p in probs.items()},
        "probs": probs,
        "turns": [{"index": i, "speaker": "customer", "sentiment": s} for i, s in customer_sentiment],
        "evidence": evidence,
        "metrics": {
            "agent_turns": f.agent_turns,
            "customer_turns": f.customer_turns,
            "first_response_s": times.first_response_s,
            "avg_response_s": times.avg_response_s,
            "longest_wait_s": times.longest_wait_s,
            "duration_s": times.duration_s,
            "polite_phrase_rate": f.polite_rate,
            "taboo_hits": f.taboo,
        },
    }
