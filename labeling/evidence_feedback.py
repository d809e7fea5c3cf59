"""Reviewers' feedback on the evidence itself, beside their labels.

A reviewer marks each evidence chip of the conversation's prediction (scores.md
``evidence``: turn, start, end, rule) **right** or **wrong**, and adds the spans
the rules **missed** by selecting text in a turn, naming the label the span bears
on. Each reviewer has one verdict per chip (marking again replaces it, ``None``
withdraws it). Every change is in the audit log under the conversation.

Blind like reviews: a reviewer sees other reviewers' marks only once their own
review of the conversation is in; a lead also sees them outside a double item's
blind phase (to adjudicate).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefuqa.contract import LABELS

from . import audit
from .access import Invalid, NotFound, get_conversation, insert_once, require_reviewer
from .auth import Principal
from .models import EvidenceMark, MissedSpan, Review, User
from .reviews import in_blind_phase, latest_prediction, task_of
from .workdays import utcnow

VERDICTS = ("right", "wrong")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _chip(s: Session, conversation_id: str, turn: int, start: int, end: int,
          rule: str) -> tuple[int | None, dict[str, Any]]:
    """The prediction's evidence chip with exactly these coordinates (prediction id, chip)."""
    pred = latest_prediction(s, conversation_id)
    for ev in (pred.record.get("evidence", []) if pred else []):
        if (ev.get("turn"), ev.get("start"), ev.get("end"), ev.get("rule")) == (turn, start, end, rule):
            return pred.id if pred else None, ev
    raise Invalid(f"no evidence chip {rule!r} at turn {turn} [{start}:{end}] in this conversation's prediction; "
                  "mark a chip the item shows (GET /api/review/items/{id}), or add a missed span instead",
                  field="rule")


def _span(mark: EvidenceMark | MissedSpan) -> dict[str, Any]:
    return {"turn": mark.turn, "start": mark.start, "end": mark.end, "text": mark.text}


def mark_dict(m: EvidenceMark, reviewer: str | None = None) -> dict[str, Any]:
    out = {"rule": m.rule, **_span(m), "verdict": m.verdict, "updated_at": m.updated_at.isoformat()}
    return out if reviewer is None else {**out, "reviewer": reviewer}


def missed_dict(m: MissedSpan, reviewer: str | None = None) -> dict[str, Any]:
    out = {"id": m.id, "label": m.label, **_span(m), "created_at": m.created_at.isoformat()}
    return out if reviewer is None else {**out, "reviewer": reviewer}


def mark_evidence(s: Session, user: Principal, conversation_id: str, *, turn: int, start: int, end: int,
                  rule: str, verdict: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Set (or with ``verdict=None`` withdraw) this reviewer's verdict on one evidence chip."""
    require_reviewer(user)
    if verdict is not None and verdict not in VERDICTS:
        raise Invalid(f"verdict must be right, wrong or null (to withdraw), not {verdict!r}", field="verdict")
    get_conversation(s, user, conversation_id)
    prediction_id, chip = _chip(s, conversation_id, turn, start, end, rule)
    now = now or utcnow()
    row = s.scalar(select(EvidenceMark).where(
        EvidenceMark.conversation_id == conversation_id, EvidenceMark.reviewer_id == user.id,
        EvidenceMark.rule == rule, EvidenceMark.turn == turn, EvidenceMark.start == start, EvidenceMark.end == end))
    where = {"rule": rule, "turn": turn, "start": start, "end": end, "text": chip.get("text", "")}
    before = {**where, "verdict": row.verdict} if row else None
    if verdict is None:
        if row is not None:
            s.delete(row)
            audit.record(s, user.name, "evidence.unmarked", "conversation", conversation_id, before=before, at=now)
        return {**where, "verdict": None}
    if row is None:
        row = EvidenceMark(conversation_id=conversation_id, reviewer_id=user.id, prediction_id=prediction_id,
                           rule=rule, turn=turn, start=start, end=end, text=where["text"], verdict=verdict,
                           created_at=now, updated_at=now)
        insert_once(s, row, "you marked this chip at the same moment elsewhere; reload and mark it again")
    elif row.verdict == verdict:
        return mark_dict(row)
    else:
        row.verdict, row.updated_at, row.prediction_id = verdict, now, prediction_id
    audit.record(s, user.name, "evidence.marked", "conversation", conversation_id, before=before,
                 after={**where, "verdict": verdict}, at=now)
    return mark_dict(row)


def check_span(turns: list[dict[str, Any]], turn: Any, start: Any, end: Any) -> str:
    """The text of a span a reviewer selected, or ``Invalid`` saying which field is wrong and why."""
    for name, value in (("turn", turn), ("start", start), ("end", end)):
        if not _is_int(value):
            raise Invalid(f"missed span: {name} must be an integer, not {value!r}", field=name)
    if not 0 <= turn < len(turns):
        raise Invalid(f"missed span: turn {turn} does not exist; this conversation has {len(turns)} turns "
                      f"(0 to {len(turns) - 1})", field="turn")
    text = str(turns[turn].get("text", ""))
    if start < 0:
        raise Invalid(f"missed span: start must be 0 or more, not {start}", field="start")
    if end <= start:
        raise Invalid(f"missed span: end ({end}) must be greater than start ({start}); select at least one character",
                      field="end")
    if end > len(text):
        raise Invalid(f"missed span: end {end} is past the end of turn {turn}, whose text has {len(text)} characters",
                      field="end")
    if not text[start:end].strip():
        raise Invalid(f"missed span: turn {turn} [{start}:{end}] is only whitespace; select the words", field="start")
    return text[start:end]


def add_missed_span(s: Session, user: Principal, conversation_id: str, *, turn: Any, start: Any, end: Any,
                    label: Any, now: datetime | None = None) -> dict[str, Any]:
    """Record a span the rules missed; adding the same span for the same label again changes nothing."""
    require_reviewer(user)
    conv = get_conversation(s, user, conversation_id)
    if label not in LABELS:
        raise Invalid(f"missed span: unknown label {label!r}; it bears on one of {', '.join(LABELS)}", field="label")
    text = check_span(conv.turns, turn, start, end)
    same = s.scalar(select(MissedSpan).where(
        MissedSpan.conversation_id == conversation_id, MissedSpan.reviewer_id == user.id, MissedSpan.label == label,
        MissedSpan.turn == turn, MissedSpan.start == start, MissedSpan.end == end))
    if same is not None:
        return {**missed_dict(same), "created": False}
    now = now or utcnow()
    row = MissedSpan(conversation_id=conversation_id, reviewer_id=user.id, label=label, turn=turn, start=start,
                     end=end, text=text, created_at=now)
    insert_once(s, row, "you added this span at the same moment elsewhere; reload")
    audit.record(s, user.name, "evidence.missed_added", "conversation", conversation_id,
                 after={"label": label, **_span(row)}, at=now)
    return {**missed_dict(row), "created": True}


def remove_missed_span(s: Session, user: Principal, conversation_id: str, span_id: int,
                       now: datetime | None = None) -> dict[str, Any]:
    """A reviewer withdraws one of their own missed spans."""
    require_reviewer(user)
    get_conversation(s, user, conversation_id)
    row = s.get(MissedSpan, span_id)
    if row is None or row.conversation_id != conversation_id or row.reviewer_id != user.id:
        raise NotFound(f"no missed span {span_id} of yours on conversation {conversation_id!r}")
    before = {"label": row.label, **_span(row)}
    s.delete(row)
    audit.record(s, user.name, "evidence.missed_removed", "conversation", conversation_id, before=before, at=now)
    return {"removed": span_id}


def sees_others(s: Session, user: Principal, conversation_id: str) -> bool:
    """Whether other reviewers' marks may be shown to ``user`` (see the module note)."""
    own_review = s.scalar(select(Review.id).where(Review.conversation_id == conversation_id,
                                                  Review.reviewer_id == user.id).limit(1))
    if own_review is not None:
        return True
    return user.leads and not in_blind_phase(s, task_of(s, conversation_id), user)


def item_feedback(s: Session, user: Principal, conversation_id: str) -> dict[str, Any]:
    """The user's own marks and missed spans, and the others' where ``sees_others`` allows."""
    require_reviewer(user)
    get_conversation(s, user, conversation_id)
    marks = s.execute(select(EvidenceMark, User.name).join(User, User.id == EvidenceMark.reviewer_id)
                      .where(EvidenceMark.conversation_id == conversation_id).order_by(EvidenceMark.id)).all()
    missed = s.execute(select(MissedSpan, User.name).join(User, User.id == MissedSpan.reviewer_id)
                       .where(MissedSpan.conversation_id == conversation_id).order_by(MissedSpan.id)).all()
    others = sees_others(s, user, conversation_id)
    return {
        "marks": [mark_dict(m) for m, _ in marks if m.reviewer_id == user.id],
        "missed": [missed_dict(m) for m, _ in missed if m.reviewer_id == user.id],
        "others_visible": others,
        "others": {
            "marks": [mark_dict(m, name) for m, name in marks if m.reviewer_id != user.id] if others else [],
            "missed": [missed_dict(m, name) for m, name in missed if m.reviewer_id != user.id] if others else [],
        },
    }


def training_feedback(s: Session, conversation_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """Per conversation, every reviewer's chip verdicts and missed spans (no reviewer names),
    for the training export's ``evidence_feedback`` field."""
    wanted = set(conversation_ids)
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"marks": [], "missed": []})
    for m in s.scalars(select(EvidenceMark).order_by(EvidenceMark.id)):
        if m.conversation_id in wanted:
            out[m.conversation_id]["marks"].append({"rule": m.rule, **_span(m), "verdict": m.verdict})
    for sp in s.scalars(select(MissedSpan).order_by(MissedSpan.id)):
        if sp.conversation_id in wanted:
            out[sp.conversation_id]["missed"].append({"label": sp.label, **_span(sp)})
    return dict(out)
