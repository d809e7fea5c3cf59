"""What the review page shows: one conversation with its prediction, task, reviews
and disputes, and an agent's own scored conversations. Reads only; it sits above
both ``reviews`` and ``disputes`` so neither imports the other's views."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefuqa.contract import LABELS

from . import audit
from .access import get_conversation, require_reviewer, visible
from .auth import Principal
from .disputes import dispute_dict
from .models import Dispute, Review, StoredConversation, User
from .reviews import (
    LEAD_DECIDED,
    in_blind_phase,
    latest_prediction,
    prediction_dict,
    settled_labels,
    task_dict,
    task_of,
)
from .workdays import DEFAULT_TZ


def conversation_dict(c: StoredConversation) -> dict[str, Any]:
    return {"id": c.id, "agent_id": c.agent_id, "team": c.team, "channel": c.channel,
            "started_at": c.started_at.isoformat() if c.started_at else None,
            "turns": [{"index": i, **t} for i, t in enumerate(c.turns)]}


# What a blind reviewer still sees of other people's entries in a conversation's audit trail:
# the agent's side of a dispute. Everything else by others (saves, answers, evidence marks …)
# carries their labels or comments.
AGENT_ACTIONS = frozenset({"dispute.filed", "dispute.escalated", "dispute.accepted"})


def item(s: Session, user: Principal, conversation_id: str, tz: str = DEFAULT_TZ) -> dict[str, Any]:
    """Everything the review page shows for one conversation; deadlines in ``tz``."""
    conv = get_conversation(s, user, conversation_id)
    task = task_of(s, conversation_id)
    blind = user.reviews and in_blind_phase(s, task, user)
    out: dict[str, Any] = {
        "conversation": conversation_dict(conv),
        "prediction": prediction_dict(latest_prediction(s, conversation_id)),
        "task": task_dict(s, task),
        "blind": blind,
        "labels": {k: list(v) for k, v in LABELS.items()},
        "can_review": user.reviews and not (task is not None and task.final_source in LEAD_DECIDED
                                            and not user.leads),
        "disputes": [dispute_dict(s, d, tz=tz, only_answers_of=user.id if blind else None) for d in s.scalars(
            select(Dispute).where(Dispute.conversation_id == conversation_id).order_by(Dispute.id))],
        "timezone": tz,
    }
    if blind:  # the other reviewer's labels stay hidden until this user's own review is in
        out["task"] = {**out["task"], "final_labels": None, "final_by": None, "final_source": None,
                       "final_at": None}
        out["reviews"] = []
    elif user.reviews:
        rows = s.execute(select(Review, User.name).join(User, User.id == Review.reviewer_id)
                         .where(Review.conversation_id == conversation_id).order_by(Review.id)).all()
        out["reviews"] = [{"id": r.id, "reviewer": name, "labels": r.labels, "comment": r.comment, "kind": r.kind,
                           "created_at": r.created_at.isoformat()} for r, name in rows]
    else:  # an agent sees the outcome that counts, not who reviewed
        out["reviews"] = []
        settled = settled_labels(s, task)
        out["task"] = {**out["task"], "final_by": None, "final_labels": settled,
                       "final_source": task.final_source if task is not None and settled else None,
                       "final_at": out["task"].get("final_at") if settled else None}
    return out


def item_audit(s: Session, user: Principal, conversation_id: str) -> list[dict[str, Any]]:
    """A conversation's audit trail for a reviewer; in the blind phase only their own entries
    and the agent's side of a dispute."""
    get_conversation(s, user, conversation_id)
    require_reviewer(user)
    entries = audit.entries(s, conversation_id=conversation_id)
    if not in_blind_phase(s, task_of(s, conversation_id), user):
        return entries
    return [e for e in entries if e["actor"] == user.name or e["action"] in AGENT_ACTIONS]


def my_conversations(s: Session, user: Principal, limit: int = 200) -> list[dict[str, Any]]:
    """An agent's scored conversations with the score that counts (settled review over predicted).
    Only conversations under the user's own agent id: a reviewer without one gets none."""
    if not user.agent_id:
        return []
    convs = s.scalars(select(StoredConversation)
                      .where(visible(s, user), StoredConversation.agent_id == user.agent_id)
                      .order_by(StoredConversation.started_at.desc().nulls_last(), StoredConversation.id)
                      .limit(limit)).all()
    out = []
    for c in convs:
        pred, task = latest_prediction(s, c.id), task_of(s, c.id)
        effective = dict(pred.labels) if pred else {}
        settled = settled_labels(s, task)
        effective.update(settled or {})
        n_disputes = s.scalar(select(func.count()).select_from(Dispute).where(Dispute.conversation_id == c.id))
        out.append({"id": c.id, "started_at": c.started_at.isoformat() if c.started_at else None,
                    "labels": effective, "reviewed": settled is not None, "disputed": bool(n_disputes)})
    return out
