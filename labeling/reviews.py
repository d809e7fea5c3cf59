"""Saving reviews and reading one item (conversation + prediction + reviews).

Every save names the item version the reviewer saw; the write is a
compare-and-set on ``review_tasks.version``, so of two reviewers saving the
same item from the same version one wins and the other gets a 409 with who
saved first — no update is lost. Items marked ``double`` take two independent
(blind) reviews first: a reviewer's first review of such an item never
conflicts with the other reviewer's, and both are kept for the agreement.

The item's final label is the latest save: a review, a lead's adjudication or
a dispute decision. Once a lead or a dispute decided, reviewers can no longer
change it. A double item's labels count (for grading, the exports and the agent)
only once they are settled: adjudicated, decided by a dispute, or the two
reviewers agree (``settled_labels``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit
from .access import Conflict, Forbidden, Invalid, check_labels, get_conversation, masked_note, require_reviewer
from .auth import Principal
from .models import Prediction, Review, ReviewTask, User
from .workdays import utcnow

LEAD_DECIDED = ("adjudication", "dispute")


def latest_prediction(s: Session, conversation_id: str) -> Prediction | None:
    return s.scalar(select(Prediction).where(Prediction.conversation_id == conversation_id)
                    .order_by(Prediction.created_at.desc(), Prediction.id.desc()).limit(1))


def task_of(s: Session, conversation_id: str) -> ReviewTask | None:
    return s.scalar(select(ReviewTask).where(ReviewTask.conversation_id == conversation_id))


def _reviewer_ids(s: Session, task_id: int) -> set[int]:
    return set(s.scalars(select(Review.reviewer_id).where(Review.task_id == task_id, Review.kind == "review")))


def in_blind_phase(s: Session, task: ReviewTask | None, user: Principal) -> bool:
    """A double item still waiting for this user's independent review."""
    if task is None or not task.double or task.status != "open":
        return False
    ids = _reviewer_ids(s, task.id)
    return user.id not in ids and len(ids) < 2


def blind_conversations(s: Session, user: Principal, conversation_ids: Iterable[str]) -> set[str]:
    """Those of ``conversation_ids`` on which ``user`` is still in the blind phase."""
    ids = set(conversation_ids)
    if not user.reviews or not ids:
        return set()
    tasks = s.scalars(select(ReviewTask).where(ReviewTask.conversation_id.in_(sorted(ids)),
                                               ReviewTask.double.is_(True), ReviewTask.status == "open"))
    return {t.conversation_id for t in tasks if in_blind_phase(s, t, user)}


def reviewers_labels(s: Session, task_id: int) -> list[dict[str, str]]:
    """Each reviewer's latest review of a task (plain reviews only), in the order they first reviewed."""
    latest: dict[int, dict[str, str]] = {}
    for r in s.scalars(select(Review).where(Review.task_id == task_id, Review.kind == "review").order_by(Review.id)):
        latest[r.reviewer_id] = r.labels
    return list(latest.values())


def differing_heads(pair: list[dict[str, str]]) -> list[str]:
    """The labels on which two reviewers differ (none when there are not two)."""
    if len(pair) < 2:
        return []
    return [h for h in pair[0] if any(other.get(h) != pair[0][h] for other in pair[1:])]


def settled_labels(s: Session, task: ReviewTask | None) -> dict[str, str] | None:
    """The labels that count for grading, the exports and the agent, or None while there are none.

    A double item's plain reviews count only when its reviewers agree; until then (one review
    in, or two that differ and no lead has adjudicated) the model's labels stand.
    """
    if task is None or not task.final_labels:
        return None
    if not task.double or task.final_source != "review":
        return task.final_labels
    pair = reviewers_labels(s, task.id)
    return task.final_labels if len(pair) >= 2 and not differing_heads(pair) else None


def write_final(s: Session, *, task: ReviewTask, user: Principal, labels: dict[str, str], kind: str,
                comment: str, expected_version: int, lead_time: float | None = None,
                source_ref: str | None = None, now: datetime | None = None) -> ReviewTask:
    """Store a review and make its labels the item's final labels (compare-and-set on version)."""
    now = now or utcnow()
    before = {"labels": task.final_labels, "source": task.final_source, "version": task.version}
    reviewers = _reviewer_ids(s, task.id) | ({user.id} if kind == "review" else set())
    done = not task.double or len(reviewers) >= 2 or kind != "review"
    result = cast(CursorResult[Any], s.execute(
        update(ReviewTask).where(ReviewTask.id == task.id, ReviewTask.version == expected_version)
        .values(version=ReviewTask.version + 1, final_labels=labels, final_source=kind, final_by=user.id,
                final_at=now, status="done" if done else "open")
        .execution_options(synchronize_session=False)
    ))
    if result.rowcount != 1:
        raise _conflict(s, task.id, expected_version)
    pred = latest_prediction(s, task.conversation_id)
    s.add(Review(task_id=task.id, conversation_id=task.conversation_id, reviewer_id=user.id,
                 prediction_id=pred.id if pred else None, labels=labels, comment=comment, kind=kind,
                 lead_time=lead_time, source_ref=source_ref, created_at=now))
    try:
        s.flush()
    except IntegrityError as exc:
        raise Conflict(f"already imported ({source_ref})") from exc
    s.refresh(task)
    audit.record(s, user.name, f"{kind}.saved", "conversation", task.conversation_id, before=before,
                 after={"labels": labels, "source": kind, "version": task.version, "comment": comment,
                        "model": [pred.model_name, pred.model_version] if pred else None}, at=now)
    return task


def _conflict(s: Session, task_id: int, seen: int) -> Conflict:
    s.expire_all()
    task = s.get(ReviewTask, task_id)
    by = s.get_one(User, task.final_by).name if task and task.final_by else "someone"
    at = task.final_at.isoformat(timespec="seconds") if task and task.final_at else "just now"
    return Conflict(
        f"Not saved: {by} saved this conversation at {at} after you opened it (you had version {seen}, "
        f"it is now version {task.version if task else '?'}). Reload to see their labels, then save again.",
        current_version=task.version if task else None, saved_by=by)


def ensure_task(s: Session, conversation_id: str, reason: str, now: datetime | None = None) -> ReviewTask:
    task = task_of(s, conversation_id)
    if task is None:
        task = ReviewTask(conversation_id=conversation_id, reason=reason, priority=0.0, double=False, status="open",
                          version=1, created_at=now or utcnow())
        s.add(task)
        try:
            s.flush()
        except IntegrityError as exc:
            raise Conflict("someone created this item's review at the same moment; reload and save again") from exc
    return task


def save_review(s: Session, user: Principal, conversation_id: str, labels: Any, *, version: Any,
                comment: str = "", lead_time: float | None = None, now: datetime | None = None) -> dict[str, Any]:
    require_reviewer(user)
    labels = check_labels(labels)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise Invalid("version must be the item version you loaded (an integer)")
    if len(comment) > 5000:
        raise Invalid("comment too long: at most 5000 characters")
    get_conversation(s, user, conversation_id)
    task = task_of(s, conversation_id)
    if task is None:
        if version != 0:
            raise Conflict("this item changed since you loaded it; reload", current_version=0)
        task = ensure_task(s, conversation_id, "manual", now)
        version = task.version
    if task.final_source in LEAD_DECIDED and not user.leads:
        raise Forbidden("a lead or a dispute decided this conversation's labels; only a lead can change them")
    for attempt in range(3):
        blind = in_blind_phase(s, task, user)
        kind = "review"
        if user.leads and not blind and (_reviewer_ids(s, task.id) - {user.id}):
            kind = "adjudication"
        try:
            task = write_final(s, task=task, user=user, labels=labels, kind=kind, comment=masked_note(comment),
                               expected_version=task.version if blind else version, lead_time=lead_time, now=now)
            break
        except Conflict:
            # an independent (blind) review conflicts with nobody: the other reviewer's blind review
            # landed first, so look again; past the blind phase the version decides
            if not blind or attempt == 2:
                raise
            s.refresh(task)
    return task_dict(s, task)


def task_dict(s: Session, task: ReviewTask | None) -> dict[str, Any]:
    if task is None:
        return {"id": None, "version": 0, "status": "none", "final_labels": None}
    by = s.get_one(User, task.final_by).name if task.final_by else None
    return {"id": task.id, "reason": task.reason, "double": task.double, "status": task.status,
            "version": task.version, "priority": task.priority, "final_labels": task.final_labels,
            "final_source": task.final_source, "final_by": by,
            "final_at": task.final_at.isoformat() if task.final_at else None}


def prediction_dict(p: Prediction | None) -> dict[str, Any] | None:
    if p is None:
        return None
    rec = p.record
    return {"id": p.id, "model": {"name": p.model_name, "version": p.model_version}, "labels": p.labels,
            "probs": p.probs, "confidence": p.confidence, "evidence": rec.get("evidence", []),
            "turn_sentiment": rec.get("turns", []), "metrics": rec.get("metrics", {}),
            "role_flags": rec.get("role_flags", []), "created_at": p.created_at.isoformat()}
