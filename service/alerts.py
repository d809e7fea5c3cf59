"""Alerts for conversations, live (in progress) or finished, so a supervisor can step in.

Each alert has a stable ``id`` made from the conversation id, its kind and the turn
that decided it, so scoring the same chat again, or the same chat with more turns,
gives the same id for the same event; whether it is ``new`` is the alert memory's
call (``alert_memory.py``), not this module's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.models.speaker_roles import with_speakers
from kefuqa.service.complaint_threats import complaint_threats

AlertKind = Literal["sentiment_drop", "taboo", "long_wait", "complaint_threat"]


@dataclass(frozen=True)
class AlertThresholds:
    sentiment_drop: float = 0.8  # fall between two customer turns
    sentiment_floor: float = -0.5  # last customer turn at or below this, after a better one
    wait_s: float = 120.0  # a customer message unanswered this long
    live_max_age_s: float = 3600.0  # ?live=true: the chat's last timestamp at most this old, else a replay


class AlertEvidence(BaseModel):
    turn: int
    start: int
    end: int
    text: str


class Alert(BaseModel):
    """One alert as the API answers it and the webhook sends it (docs/service.md)."""

    id: str
    type: AlertKind
    turn: int | None
    detail: str
    new: bool
    evidence: list[AlertEvidence] = []
    wait_s: float | None = None


class ScoredConversation(ScoreRecord):
    """What ``/v1/score`` answers: the score record and its alerts."""

    alerts: list[Alert]


def alert_id(conversation_id: str, kind: str, turn: int | None) -> str:
    key = f"{conversation_id}\x1f{kind}\x1f{'' if turn is None else turn}"
    return "al-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _alert(conv: Conversation, kind: AlertKind, turn: int | None, detail: str, **more: Any) -> dict[str, Any]:
    return {"id": alert_id(conv.id, kind, turn), "type": kind, "turn": turn, "detail": detail, **more}


def _sentiment(conv: Conversation, record: dict[str, Any], th: AlertThresholds) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    turns = record["turns"]
    for prev, cur in zip(turns, turns[1:]):
        if prev["sentiment"] - cur["sentiment"] >= th.sentiment_drop:
            out.append(_alert(conv, "sentiment_drop", cur["index"],
                              f"customer sentiment fell from {prev['sentiment']:+.2f} to {cur['sentiment']:+.2f}"))
    if (len(turns) >= 2 and turns[-1]["sentiment"] <= th.sentiment_floor < max(t["sentiment"] for t in turns[:-1])
            and (not out or out[-1]["turn"] != turns[-1]["index"])):
        out.append(_alert(conv, "sentiment_drop", turns[-1]["index"],
                          f"customer sentiment now {turns[-1]['sentiment']:+.2f}"))
    return out


def _taboo(conv: Conversation, record: dict[str, Any]) -> list[dict[str, Any]]:
    """One alert per agent turn with taboo phrases, each phrase in its evidence."""
    by_turn: dict[int, list[dict[str, Any]]] = {}
    for ev in record["evidence"]:
        if ev["rule"].startswith("taboo."):
            by_turn.setdefault(ev["turn"], []).append(ev)
    return [_alert(conv, "taboo", turn, "; ".join(f"{ev['rule']}: {ev['text']}" for ev in evs),
                   evidence=[{k: ev[k] for k in ("turn", "start", "end", "text")} for ev in evs])
            for turn, evs in by_turn.items()]


def _threats(conv: Conversation) -> list[dict[str, Any]]:
    """Customer turns threatening a complaint, whatever the sentiment before them."""
    out = []
    for i, turn in enumerate(conv.turns):
        if turn.speaker != "customer":
            continue
        spans = complaint_threats(turn.text)
        if spans:
            words = "、".join(dict.fromkeys(turn.text[a:b] for a, b in spans))
            out.append(_alert(conv, "complaint_threat", i, f"the customer threatens to complain: {words}",
                              evidence=[{"turn": i, "start": a, "end": b, "text": turn.text[a:b]} for a, b in spans]))
    return out


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None or (a.tzinfo is None) != (b.tzinfo is None):
        return None  # naive and aware cannot be compared honestly
    return round((b - a).total_seconds(), 3)


def _answered_waits(conv: Conversation) -> Iterator[tuple[int, int, float]]:
    """``(customer turn that began the wait, agent turn that ended it, seconds)``, measured
    as the record's response times are (``models/metrics.py``): system turns neither wait
    nor answer."""
    since: int | None = None
    for i, turn in enumerate(conv.turns):
        if turn.speaker == "customer" and since is None:
            since = i
        elif turn.speaker == "agent" and since is not None:
            gap = _seconds(conv.turns[since].ts, turn.ts)
            if gap is not None and gap >= 0:
                yield since, i, gap
            since = None


def _waits(conv: Conversation, th: AlertThresholds, live: bool, now: datetime) -> list[dict[str, Any]]:
    out = [_alert(conv, "long_wait", since, f"the customer waited {gap:.0f} s (turn {since} to turn {answer})",
                  wait_s=gap)
           for since, answer, gap in _answered_waits(conv) if gap > th.wait_s]
    waiting = _waiting_now(conv, th, now) if live else None
    if waiting is not None:
        since, waited = waiting
        out.append(_alert(conv, "long_wait", since, f"the customer has been waiting {waited:.0f} s since turn {since}",
                          wait_s=waited))
    return out


def _waiting_now(conv: Conversation, th: AlertThresholds, now: datetime) -> tuple[int, float] | None:
    """The unanswered customer turn and how long it has waited by the server clock, when
    the chat is live: its last timestamp is recent (``live_max_age_s``). An old chat sent
    with ``live=true`` is a replay, and the server clock says nothing about it."""
    since = None
    for i, turn in enumerate(conv.turns):
        if turn.speaker == "agent":
            since = None
        elif turn.speaker == "customer" and since is None:
            since = i
    stamps = [t.ts for t in conv.turns if t.ts is not None]
    if since is None or not stamps:
        return None
    age = _seconds(stamps[-1], now)
    if age is None or age > th.live_max_age_s:
        return None
    began = next((t.ts for t in conv.turns[since:] if t.speaker == "customer" and t.ts is not None), None)
    waited = _seconds(began, now)
    return (since, waited) if waited is not None and waited > th.wait_s else None


def alerts(conv: Conversation, record: dict[str, Any], th: AlertThresholds, *, live: bool,
           now: datetime) -> list[dict[str, Any]]:
    """Every alert the conversation raises, in the order sentiment, taboo, complaint threat,
    long wait. ``live``: the chat is still going on, so a last customer message with no
    answer yet may be a customer waiting now (``now`` is the server clock). On a call, a
    turn the speaker-role check flagged (``role_flags``) counts as its likely speaker's, as
    it does in scoring: a customer's threat the diariser gave to the agent still alerts."""
    conv = with_speakers(conv, record.get("role_flags") or [])
    return [*_sentiment(conv, record, th), *_taboo(conv, record), *_threats(conv), *_waits(conv, th, live, now)]
