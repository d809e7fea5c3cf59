"""Call metrics for voice conversations: silence, overlaps and interruptions, talk time,
and holds with their etiquette (announced before, thanked after), as ``metrics`` and
``evidence`` of the score record (docs/phone-calls.md).

A turn starts at ``ts`` and ends at ``end_ts``; a turn without ``end_ts`` is taken to
end when saying its text would take at the cues' speaking rate (not past the next turn's
start). Only agent and customer turns speak; system turns are markers ("[静音 48秒]").
Silence is counted from the agent's first turn on, so the queue before it is no silence
of the agent's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kefuqa.contract import Conversation, Turn
from kefuqa.models.call_cues import CallCues, Span

SPEAKING = ("agent", "customer")
_CONTEXT = 2  # speaker turns looked at on each side of a hold for its announcement and thanks


@dataclass(frozen=True)
class Hold:
    before: list[int]  # the speaker turns just before the hold, nearest last
    after: list[int]  # the speaker turns just after it, nearest first
    marker: int | None  # the system turn that marks it, if any
    seconds: float


@dataclass(frozen=True)
class CallReport:
    metrics: dict[str, float | int | None]
    evidence: list[dict[str, Any]]


def _secs(a: datetime, b: datetime) -> float | None:
    if (a.tzinfo is None) != (b.tzinfo is None):
        return None  # naive and aware cannot be compared honestly
    return (b - a).total_seconds()


def _spans(turns: list[Turn], spoken: list[int], cues: CallCues) -> dict[int, tuple[datetime, float]]:
    """Speaker turn → (start, seconds spoken), for turns with ``ts``; an estimated end is
    cut at the next speaker turn's start."""
    out: dict[int, tuple[datetime, float]] = {}
    for k, i in enumerate(spoken):
        turn = turns[i]
        if turn.ts is None:
            continue
        length = _secs(turn.ts, turn.end_ts) if turn.end_ts is not None else None
        if length is None:
            length = cues.speech_s(turn.text)
            nxt = turns[spoken[k + 1]].ts if k + 1 < len(spoken) else None
            room = _secs(turn.ts, nxt) if nxt is not None else None
            if room is not None and room >= 0:
                length = min(length, room)
        out[i] = (turn.ts, max(length, 0.0))
    return out


def _gaps(spoken: list[int], spans: dict[int, tuple[datetime, float]]) -> list[tuple[int, int, float]]:
    """(turn, next speaker turn, seconds of silence between them) where both are timed."""
    out = []
    for a, b in zip(spoken, spoken[1:]):
        if a in spans and b in spans:
            gap = _secs(spans[a][0], spans[b][0])
            if gap is not None:
                out.append((a, b, gap - spans[a][1]))
    return out


def _silence(spoken: list[int], spans: dict[int, tuple[datetime, float]], gaps: list[tuple[int, int, float]],
             markers: dict[int, float], cues: CallCues) -> dict[str, float | None]:
    """Share of the call (the agent's first turn to the end of the last turn) that is
    silence, and the longest silence, from the timestamps or the silence markers."""
    silent = [g for _, _, g in gaps if g >= cues.min_gap_s]
    timed = [i for i in spoken if i in spans]
    share = None
    if len(timed) >= 2:
        length = max((_secs(spans[timed[0]][0], spans[i][0]) or 0.0) + spans[i][1] for i in timed)
        share = round(min(sum(silent) / length, 1.0), 4) if length > 0 else None
    known = [*silent, *markers.values()]
    if not known:
        return {"silence_share": share, "longest_silence_s": 0.0 if gaps else None}
    return {"silence_share": share, "longest_silence_s": round(max(known), 1)}


def _markers(turns: list[Turn], first_agent: int, last_spoken: int, cues: CallCues) -> dict[int, float]:
    """System turns between the agent's first turn and the last speaker turn that mark a
    silence, with its seconds (0 when the marker gives none)."""
    out = {}
    for i in range(first_agent + 1, last_spoken):
        if turns[i].speaker == "system":
            seconds = cues.marker_seconds(turns[i].text)
            if seconds is not None:
                out[i] = seconds
    return out


def _holds(spoken: list[int], gaps: list[tuple[int, int, float]], markers: dict[int, float],
           cues: CallCues) -> list[Hold]:
    # A marker without a length ("[等待音乐]") is a hold; one with a length, when it is long enough.
    marked = {m: seconds for m, seconds in markers.items() if seconds == 0 or seconds >= cues.hold_min_s}
    holds = [_hold(spoken, m, m, seconds) for m, seconds in marked.items()]
    for a, b, gap in gaps:
        if gap >= cues.hold_min_s and not any(a < m < b for m in marked):
            holds.append(_hold(spoken, a + 1, None, gap))
    return sorted(holds, key=lambda h: h.before[-1] if h.before else -1)


def _hold(spoken: list[int], at: int, marker: int | None, seconds: float) -> Hold:
    before = [i for i in spoken if i < at][-_CONTEXT:]
    after = [i for i in spoken if i >= at][:_CONTEXT]
    return Hold(before, after, marker, round(seconds, 1))


def _agent_cue(turns: list[Turn], idx: list[int], find: Callable[[str], Span | None]) -> tuple[int, Span] | None:
    """The first agent turn of ``idx`` (in that order) and where ``find`` matched in it, or None."""
    for i in idx:
        if turns[i].speaker == "agent":
            span = find(turns[i].text)
            return (i, span) if span is not None else None
    return None


def _cue_evidence(turns: list[Turn], turn: int, span: Span, rule: str) -> dict[str, Any]:
    return {"turn": turn, "start": span.start, "end": span.end, "rule": rule,
            "text": turns[turn].text[span.start : span.end]}


def _whole(turns: list[Turn], turn: int, rule: str) -> dict[str, Any]:
    return {"turn": turn, "start": 0, "end": len(turns[turn].text), "rule": rule, "text": turns[turn].text}


def _customers_pause(turns: list[Turn], hold: Hold, announced: tuple[int, Span] | None, cues: CallCues) -> bool:
    """A pause the customer asked for ("你等一下 我找找"): theirs, not a hold of the agent's."""
    last = hold.before[-1] if hold.before else None
    return (announced is None and last is not None and turns[last].speaker == "customer"
            and cues.announce(turns[last].text) is not None)


def _etiquette(turns: list[Turn], holds: list[Hold], cues: CallCues) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Hold counts and the share of holds both announced and thanked, with their evidence."""
    counted = unannounced = unthanked = good = 0
    evidence: list[dict[str, Any]] = []
    for h in holds:
        announced = _agent_cue(turns, list(reversed(h.before)), cues.announce)
        if _customers_pause(turns, h, announced, cues):
            continue
        counted += 1
        thanked = _agent_cue(turns, h.after, cues.thanks)
        resume = next((i for i in h.after if turns[i].speaker == "agent"), h.after[0] if h.after else None)
        if announced:
            evidence.append(_cue_evidence(turns, *announced, "call.hold_announced"))
        else:
            unannounced += 1
            where = h.marker if h.marker is not None else resume
            if where is not None:
                evidence.append(_whole(turns, where, "call.hold_unannounced"))
        if thanked:
            evidence.append(_cue_evidence(turns, *thanked, "call.hold_thanked"))
        else:
            unthanked += 1
            if resume is not None:
                evidence.append(_whole(turns, resume, "call.hold_unthanked"))
        good += bool(announced and thanked)
    metrics = {"hold_events": counted, "holds_unannounced": unannounced, "holds_unthanked": unthanked,
               "hold_etiquette": round(good / counted, 4) if counted else None}
    return metrics, evidence


def _overlaps(turns: list[Turn], spoken: list[int], cues: CallCues) -> tuple[int, int, list[dict[str, Any]]]:
    """Speaker changes where the next turn starts before the previous one ended (with
    ``end_ts``) or the previous one is cut off ("我是想说——"); those where the agent cut
    in on the customer are interruptions."""
    overlaps = interruptions = 0
    evidence = []
    for a, b in zip(spoken, spoken[1:]):
        prev, nxt = turns[a], turns[b]
        if prev.speaker == nxt.speaker:
            continue
        over = None
        if prev.end_ts is not None and nxt.ts is not None:
            over = _secs(nxt.ts, prev.end_ts)
        hit = over >= cues.min_overlap_s if over is not None else cues.cut_off(prev.text)
        if not hit:
            continue
        overlaps += 1
        if nxt.speaker == "agent":
            interruptions += 1
            evidence.append(_whole(turns, b, "call.interruption"))
    return overlaps, interruptions, evidence


def _talk_ratio(turns: list[Turn], spoken: list[int], spans: dict[int, tuple[datetime, float]],
                cues: CallCues) -> float | None:
    talk = {"agent": 0.0, "customer": 0.0}
    for i in spoken:
        talk[turns[i].speaker] += spans[i][1] if i in spans else cues.speech_s(turns[i].text)
    return round(talk["agent"] / talk["customer"], 3) if talk["customer"] > 0 else None


def call_report(conv: Conversation, cues: CallCues) -> CallReport:
    """The call metrics and their evidence for one voice conversation."""
    turns = conv.turns
    spoken = [i for i, t in enumerate(turns) if t.speaker in SPEAKING]
    first_agent = next((i for i in spoken if turns[i].speaker == "agent"), None)
    if first_agent is None:
        spoken_after: list[int] = []
    else:
        spoken_after = [i for i in spoken if i >= first_agent]
    spans = _spans(turns, spoken, cues)
    gaps = _gaps(spoken_after, spans)
    markers = _markers(turns, first_agent, spoken[-1], cues) if first_agent is not None and spoken else {}
    hold_metrics, hold_evidence = _etiquette(turns, _holds(spoken_after, gaps, markers, cues), cues)
    overlaps, interruptions, cut_evidence = _overlaps(turns, spoken, cues)
    metrics: dict[str, float | int | None] = {
        **_silence(spoken_after, spans, gaps, markers, cues),
        "overlaps": overlaps,
        "interruptions": interruptions,
        "talk_ratio": _talk_ratio(turns, spoken, spans, cues),
        **hold_metrics,
    }
    return CallReport(metrics, sorted(hold_evidence + cut_evidence, key=lambda e: (e["turn"], e["start"])))
