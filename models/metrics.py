"""Per-conversation metrics: turn counts, polite-phrase rate, response times.

Response time is measured from the first customer message that is still
waiting for an answer to the next agent turn; system turns (robot replies,
links) neither answer nor wait. Times are ``None`` without timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kefuqa.contract import Conversation


@dataclass(frozen=True)
class ResponseTimes:
    first_response_s: float | None
    avg_response_s: float | None
    longest_wait_s: float | None
    duration_s: float | None


def _seconds(a: datetime, b: datetime) -> float | None:
    if (a.tzinfo is None) != (b.tzinfo is None):
        return None  # naive and aware cannot be compared honestly
    return round((b - a).total_seconds(), 3)


def response_times(conv: Conversation) -> ResponseTimes:
    waits: list[float] = []
    waiting = False
    waiting_since: datetime | None = None
    stamps = [t.ts for t in conv.turns if t.ts is not None]
    for turn in conv.turns:
        if turn.speaker == "customer" and not waiting:
            waiting, waiting_since = True, turn.ts
        elif turn.speaker == "agent" and waiting:
            # An answer without a timestamp still ends the wait; it just cannot be measured.
            if waiting_since is not None and turn.ts is not None:
                gap = _seconds(waiting_since, turn.ts)
                if gap is not None and gap >= 0:
                    waits.append(gap)
            waiting, waiting_since = False, None
    duration = _seconds(stamps[0], stamps[-1]) if len(stamps) >= 2 else None
    return ResponseTimes(
        first_response_s=waits[0] if waits else None,
        avg_response_s=round(sum(waits) / len(waits), 3) if waits else None,
        longest_wait_s=max(waits) if waits else None,
        duration_s=duration,
    )
