"""Alerts for live (in-progress) conversations, so a supervisor can step in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kefuqa.contract import Conversation


@dataclass(frozen=True)
class AlertThresholds:
    sentiment_drop: float = 0.8  # fall between two customer turns
    sentiment_floor: float = -0.5  # last customer turn at or below this, after a better one
    wait_s: float = 120.0  # a customer message unanswered this long


def alerts(conv: Conversation, record: dict[str, Any], th: AlertThresholds, live: bool = False,
           now: datetime | None = None) -> list[dict]:
    """``live``: the conversation is still going on, so a last customer message
    with no answer yet is a customer waiting now."""
    out: list[dict] = []
    turns = record["turns"]
    for prev, cur in zip(turns, turns[1:]):
        if prev["sentiment"] - cur["sentiment"] >= th.sentiment_drop:
            out.append({"type": "sentiment_drop", "turn": cur["index"],
                        "detail": f"customer sentiment fell from {prev['sentiment']:+.2f} to {cur['sentiment']:+.2f}"})
    if (len(turns) >= 2 and turns[-1]["sentiment"] <= th.sentiment_floor < max(t["sentiment"] for t in turns[:-1])
            and (not out or out[-1]["turn"] != turns[-1]["index"])):
        out.append({"type": "sentiment_drop", "turn": turns[-1]["index"],
                    "detail": f"customer sentiment now {turns[-1]['sentiment']:+.2f}"})
    for ev in record["evidence"]:
        if ev["rule"].startswith("taboo."):
            out.append({"type": "taboo", "turn": ev["turn"], "detail": f"{ev['rule']}: {ev['text']}"})
    longest = record["metrics"].get("longest_wait_s")
    if longest is not None and longest > th.wait_s:
        out.append({"type": "long_wait", "turn": None, "detail": f"a customer waited {longest:.0f} s for an answer"})
    last = conv.turns[-1]
    if live and last.speaker == "customer" and last.ts is not None:
        now = now or datetime.now(UTC)
        waited = (now - last.ts).total_seconds() if last.ts.tzinfo else None
        if waited is not None and waited > th.wait_s:
            out.append({"type": "long_wait", "turn": len(conv.turns) - 1,
                        "detail": f"the customer has been waiting {waited:.0f} s"})
    return out
