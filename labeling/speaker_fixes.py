"""Reviewers' word on who said a turn of a call (docs/phone-calls.md).

The scorer flags voice turns that read like the other role (``role_flags`` of the score
record: turn, likely speaker, probability). On the review page a reviewer confirms or
fixes a turn's speaker: they name the speaker they hear, ``agent`` or ``customer``;
naming the one the transcript has keeps it. One answer per reviewer and turn (answering
again replaces it, ``None`` withdraws it), each change in the audit log.

The speaker that counts for a turn is the latest answer, a lead's over a reviewer's;
the training export writes the turns with it (``speaker_fixes`` lists what changed), so
the fix reaches both the scorer's and the role check's training data. Blind like
reviews: others' answers show once the reviewer's own review is in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .access import Invalid, get_conversation, insert_once, require_reviewer
from .auth import Principal
from .evidence_feedback import sees_others
from .models import SpeakerFix, User
from .workdays import utcnow

SPEAKERS = ("agent", "customer")
_LEADS = ("lead", "admin")


def _check(turns: list[dict[str, Any]], turn: Any, speaker: Any) -> str:
    """The turn's transcript speaker; ``Invalid`` naming the field that is wrong."""
    if not isinstance(turn, int) or isinstance(turn, bool) or not 0 <= turn < len(turns):
        raise Invalid(f"turn {turn!r} does not exist; this conversation has {len(turns)} turns "
                      f"(0 to {len(turns) - 1})", field="turn")
    original = str(turns[turn].get("speaker"))
    if original not in SPEAKERS:
        raise Invalid(f"turn {turn} is a {original} turn; only agent and customer turns can be fixed", field="turn")
    if speaker is not None and speaker not in SPEAKERS:
        raise Invalid(f"speaker must be agent, customer or null (to withdraw), not {speaker!r}", field="speaker")
    return original


def fix_dict(f: SpeakerFix, reviewer: str | None = None) -> dict[str, Any]:
    out = {"turn": f.turn, "speaker": f.speaker, "original": f.original, "updated_at": f.updated_at.isoformat()}
    return out if reviewer is None else {**out, "reviewer": reviewer}


def set_speaker(s: Session, user: Principal, conversation_id: str, *, turn: Any, speaker: Any,
                now: datetime | None = None) -> dict[str, Any]:
    """Set (or with ``speaker=None`` withdraw) this reviewer's answer on who said ``turn``."""
    require_reviewer(user)
    conv = get_conversation(s, user, conversation_id)
    original = _check(conv.turns, turn, speaker)
    now = now or utcnow()
    row = s.scalar(select(SpeakerFix).where(SpeakerFix.conversation_id == conversation_id,
                                            SpeakerFix.reviewer_id == user.id, SpeakerFix.turn == turn))
    before = {"turn": turn, "speaker": row.speaker, "original": original} if row else None
    if speaker is None:
        if row is not None:
            s.delete(row)
            audit.record(s, user.name, "speaker.withdrawn", "conversation", conversation_id, before=before, at=now)
        return {"turn": turn, "speaker": None, "original": original}
    if row is None:
        row = SpeakerFix(conversation_id=conversation_id, reviewer_id=user.id, turn=turn, speaker=speaker,
                         original=original, created_at=now, updated_at=now)
        insert_once(s, row, "you answered for this turn at the same moment elsewhere; reload and answer again")
    elif row.speaker == speaker:
        return fix_dict(row)
    else:
        row.speaker, row.updated_at = speaker, now
    audit.record(s, user.name, "speaker.fixed" if speaker != original else "speaker.confirmed", "conversation",
                 conversation_id, before=before, after={"turn": turn, "speaker": speaker, "original": original}, at=now)
    return fix_dict(row)


def item_speakers(s: Session, user: Principal, conversation_id: str) -> dict[str, Any]:
    """The user's own answers, and the others' where ``sees_others`` allows."""
    require_reviewer(user)
    get_conversation(s, user, conversation_id)
    rows = s.execute(select(SpeakerFix, User.name).join(User, User.id == SpeakerFix.reviewer_id)
                     .where(SpeakerFix.conversation_id == conversation_id).order_by(SpeakerFix.id)).all()
    others = sees_others(s, user, conversation_id)
    return {"fixes": [fix_dict(f) for f, _ in rows if f.reviewer_id == user.id], "others_visible": others,
            "others": [fix_dict(f, name) for f, name in rows if f.reviewer_id != user.id] if others else []}


def settled_speakers(s: Session, conversation_ids: Collection[str]) -> dict[str, dict[int, str]]:
    """Per conversation, turn → the speaker that counts (the latest answer, a lead's over a
    reviewer's), for the turns someone answered."""
    wanted = set(conversation_ids)
    best: dict[tuple[str, int], tuple[tuple[bool, datetime, int], str]] = {}
    # Answers are few beside conversations: read them all rather than send every id.
    for f, role in s.execute(select(SpeakerFix, User.role).join(User, User.id == SpeakerFix.reviewer_id)).all():
        if f.conversation_id not in wanted:
            continue
        key = (f.conversation_id, f.turn)
        rank = (role in _LEADS, f.updated_at, f.id)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, f.speaker)
    out: dict[str, dict[int, str]] = defaultdict(dict)
    for (cid, turn), (_, speaker) in best.items():
        out[cid][turn] = speaker
    return dict(out)


def fixed_turns(turns: list[dict[str, Any]], settled: dict[int, str]) -> tuple[list[dict[str, Any]],
                                                                             list[dict[str, Any]]]:
    """The turns with the settled speakers, and ``[{turn, from, to}]`` for those that changed."""
    out, changes = [], []
    for i, t in enumerate(turns):
        speaker = settled.get(i)
        if speaker is not None and speaker != t.get("speaker"):
            changes.append({"turn": i, "from": t.get("speaker"), "to": speaker})
            t = {**t, "speaker": speaker}
        out.append(t)
    return out, changes
