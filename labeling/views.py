"""What the review page shows: one conversation with its prediction, task, reviews
and disputes, and an agent's own scored conversations. Reads only; it sits above
both ``reviews`` and ``disputes`` so neither imports the other's views."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefuqa.contract import LABELS

from .access import get_conversation, visible
from .auth import Principal
from .disputes import dispute_dict
from .models import Dispute, Review, StoredConversation, User
from .reviews import LEAD_DECIDED, in_blind_phase, latest_prediction, prediction_dict, task_dict, task_of


def conversation_dict(c: StoredConversation) -> dict[str, Any]:
    return {"id": c.id, "agent_id": c.agent_id, "team": c.team, "channel": c.channel,
            "started_at": c.started_at.isoformat() if c.started_at else None,
            "turns": [{"index": i, **t} for i, t in enumerate(c.turns)]}


def item(s: Session, user: Principal, conversation_id: str) -> dict[str, Any]:
    """Everything the review page shows for one conversation."""
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
        "disputes": [dispute_dict(s, d) for d in s.scalars(
            select(Dispute).where(Dispute.conversation_id == conversation_id).order_by(Dispute.id))],
    }
    if blind:  # the other reviewer's labels stay hidden until this user's own review is in
        out["task"] = {**out["task"], "final_labels": None, "final_by": None, "final_source": None}
        out["reviews"] = []
    elif user.reviews:
        rows = s.execute(select(Review, User.name).join(User, User.id == Review.reviewer_id)
                         .where(Review.conversation_id == conversation_id).order_by(Review.id)).all()
        out["reviews"] = [{"id": r.id, "reviewer": name, "labels": r.labels, "comment": r.comment, "kind": r.kind,
                           "created_at": r.created_at.isoformat()} for r, name in rows]
    else:  # an agent sees the outcome, not who reviewed
        out["reviews"] = []
        out["task"] = {**out["task"], "final_by": None}
    return out


def my_conversations(s: Session, user: Principal, limit: int = 200) -> list[dict[str, Any]]:
    """An agent's scored conversations with the score that counts (reviewed over predicted)."""
    convs = s.scalars(select(StoredConversation).where(visible(s, user))
                      .order_by(StoredConversation.started_at.desc().nulls_last(), StoredConversation.id)
                      .limit(limit)).all()
    out = []
    for c in convs:
        pred, task = latest_prediction(s, c.id), task_of(s, c.id)
        effective = dict(pred.labels) if pred else {}
        if task and task.final_labels:
            effective.update(task.final_labels)
        n_disputes = s.scalar(select(func.count()).select_from(Dispute).where(Dispute.conversation_id == c.id))
        out.append({"id": c.id, "started_at": c.started_at.isoformat() if c.started_at else None,
                    "labels": effective, "reviewed": bool(task and task.final_labels), "disputed": bool(n_disputes)})
    return out
