"""The reviewer's queue.

Order: open disputes first (earliest deadline first; escalated ones for leads
and admins), then, for leads and admins, double-reviewed items on which the
two reviewers disagree (to adjudicate), then review tasks: the model's least confident predictions
(uncertainty sampling, least confident first) with the random stratified
calibration sample spread evenly among them, in proportion to their numbers.
Near-duplicate conversations (the same normalised turns) are spread out: only
the first of a group keeps its place, the other copies come after every other
item, one round of copies at a time. A user never sees an item they already
reviewed, nor one they may not see.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from kefuqa.text.normalize import normalize

from .access import Forbidden, visible
from .auth import Principal
from .disputes import is_overdue
from .models import Dispute, Review, ReviewTask, StoredConversation
from .reviews import differing_heads, reviewers_labels
from .workdays import DEFAULT_TZ, local_iso, utcnow


def interleave(first: list[Any], n_first: int, second: list[Any], n_second: int) -> list[Any]:
    """Merge two ranked lists so each keeps its share of every stretch of the queue.

    Item i of a list with n items sits at i / n; ties go to ``first``, so the
    queue starts with the least confident item.
    """
    keyed = [(i / max(n_first, 1), 0, i, x) for i, x in enumerate(first)]
    keyed += [(j / max(n_second, 1), 1, j, x) for j, x in enumerate(second)]
    return [x for *_, x in sorted(keyed, key=lambda k: k[:3])]


def disagreements(s: Session, see: Any, room: int) -> list[dict[str, Any]]:
    """Items two reviewers labelled differently that no lead has adjudicated yet."""
    if room <= 0:
        return []
    tasks = s.scalars(
        select(ReviewTask).join(StoredConversation, StoredConversation.id == ReviewTask.conversation_id)
        .where(see, ReviewTask.double.is_(True), ReviewTask.status == "done", ReviewTask.final_source == "review")
        .order_by(ReviewTask.final_at, ReviewTask.id)).all()
    out: list[dict[str, Any]] = []
    for task in tasks:
        differ = differing_heads(reviewers_labels(s, task.id))
        if differ:
            out.append({"kind": "adjudicate", "conversation_id": task.conversation_id, "task_id": task.id,
                        "labels_differ": differ, "version": task.version})
            if len(out) >= room:
                break
    return out


def text_key(turns: list[dict[str, Any]]) -> str:
    """Conversations with the same key are near-duplicates: the same turns once normalised
    (traditional → simplified, full-width → half-width, case; whitespace ignored)."""
    return "\n".join(f"{t.get('speaker')}:{''.join(normalize(t.get('text') or '').split())}" for t in turns)


def spread_duplicates(items: list[Any], key: Callable[[Any], str]) -> list[Any]:
    """The first of each group of near-duplicates keeps its place; the second copies follow all
    the firsts, then the third copies, and so on, so copies of one chat never crowd the top."""
    seen: dict[str, int] = {}
    ranked = []
    for pos, x in enumerate(items):
        k = key(x)
        seen[k] = seen.get(k, -1) + 1
        ranked.append((seen[k], pos, x))
    return [x for *_, x in sorted(ranked, key=lambda r: r[:2])]


def build_queue(s: Session, user: Principal, limit: int = 50, now: datetime | None = None,
                tz: str = DEFAULT_TZ) -> dict[str, Any]:
    if not user.reviews:
        raise Forbidden("the review queue is for reviewers, leads and admins")
    now = now or utcnow()
    limit = max(1, min(limit, 500))
    see = visible(s, user)

    statuses = ["open", "escalated"] if user.leads else ["open"]
    disputes = s.scalars(
        select(Dispute).join(StoredConversation, StoredConversation.id == Dispute.conversation_id)
        .where(see, Dispute.status.in_(statuses)).order_by(Dispute.due_at, Dispute.id).limit(limit)).all()
    entries: list[dict[str, Any]] = [
        {"kind": "dispute", "conversation_id": d.conversation_id, "dispute_id": d.id, "level": d.level,
         "due_at": local_iso(d.due_at, tz), "overdue": is_overdue(d, now)} for d in disputes]

    if user.leads:
        entries += disagreements(s, see, room=max(0, limit - len(entries)))

    reviewed_by_me = exists().where(Review.task_id == ReviewTask.id, Review.reviewer_id == user.id,
                                    Review.kind == "review")
    open_dispute = exists().where(Dispute.conversation_id == ReviewTask.conversation_id,
                                  Dispute.status.in_(["open", "escalated"]))
    base = and_(ReviewTask.status == "open", see, ~reviewed_by_me, ~open_dispute)

    def tasks(sample: bool, n: int) -> tuple[list[ReviewTask], int]:
        cond = (ReviewTask.reason == "sample") if sample else (ReviewTask.reason != "sample")
        q = select(ReviewTask).join(StoredConversation, StoredConversation.id == ReviewTask.conversation_id) \
            .where(base, cond)
        count = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        order = (ReviewTask.id,) if sample else (ReviewTask.priority.desc(), ReviewTask.id)
        return list(s.scalars(q.order_by(*order).limit(n))), count

    room = max(0, limit - len(entries))
    pool = min(3 * room, room + 500)  # more than fit, so that pushed-back copies make way for others
    uncertain, n_unc = tasks(False, pool)
    sample, n_sample = tasks(True, pool)
    ranked = interleave(uncertain, n_unc, sample, n_sample)[:pool]
    turns = dict(s.execute(select(StoredConversation.id, StoredConversation.turns)
                           .where(StoredConversation.id.in_([t.conversation_id for t in ranked]))).tuples().all())
    for t in spread_duplicates(ranked, lambda t: text_key(turns[t.conversation_id]))[:room]:
        entries.append({"kind": "review", "conversation_id": t.conversation_id, "task_id": t.id, "reason": t.reason,
                        "uncertainty": round(t.priority, 4), "double": t.double, "version": t.version})
    return {"items": entries, "open_tasks": n_unc + n_sample, "open_disputes": len(disputes), "timezone": tz}
