"""Disputes (申诉): an agent contests a score, a reviewer answers, a lead decides a second time.

Lifecycle (all times in working days of the configured calendar, see workdays.py):

    open ──answer──► answered ──escalate (once, within escalate_days)──► escalated ──answer──► final
                        │                                                      
                        └──accepted by the agent, or escalation window over──► final

- filed by the agent of the conversation, within ``file_days`` of the score
  (the latest prediction, or the review that counts: see ``_score_time``);
- answered within ``answer_days`` by a reviewer, lead or admin; the second
  level within ``second_answer_days`` by a lead or admin who did not give the
  first answer; with ``independent_dispute_answers`` (the default) nobody answers
  a dispute about a conversation they reviewed themselves;
- an answer either **upholds** the score (it stands) or **overturns** it with
  corrected labels, which become the conversation's reviewed labels;
- an open or escalated dispute past its deadline is flagged overdue; deadlines
  are shown in the review time zone (``timezone``), named.
Every transition is written to the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from . import audit
from .access import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    check_labels,
    get_conversation,
    insert_once,
    masked_note,
    require_reviewer,
    visible,
)
from .auth import Principal
from .config import ReviewConfig
from .models import Dispute, DisputeAnswer, Review, StoredConversation, User
from .reviews import (
    LEAD_DECIDED,
    blind_conversations,
    ensure_task,
    latest_prediction,
    settled_labels,
    task_of,
    write_final,
)
from .workdays import DEFAULT_TZ, WorkCalendar, local_iso, local_text, utcnow

OUTCOMES = ("upheld", "overturned")


def calendar(cfg: ReviewConfig) -> WorkCalendar:
    return WorkCalendar.of(cfg.timezone, cfg.holidays, cfg.extra_workdays)


def effective_status(d: Dispute, now: datetime) -> str:
    if d.status == "answered" and d.escalate_until is not None and now > d.escalate_until:
        return "final"
    return d.status


def is_overdue(d: Dispute, now: datetime) -> bool:
    return d.status in ("open", "escalated") and now > d.due_at


def dispute_dict(s: Session, d: Dispute, now: datetime | None = None, *, tz: str = DEFAULT_TZ,
                 only_answers_of: int | None = None) -> dict[str, Any]:
    """A dispute as the API shows it; deadlines in ``tz``. ``only_answers_of`` (a user id) keeps
    the other answerers' answers from a reviewer who is still in the blind phase."""
    now = now or utcnow()
    q = (select(DisputeAnswer, User.name).join(User, User.id == DisputeAnswer.user_id)
         .where(DisputeAnswer.dispute_id == d.id).order_by(DisputeAnswer.level))
    if only_answers_of is not None:
        q = q.where(DisputeAnswer.user_id == only_answers_of)
    answers = s.execute(q).all()
    agent = s.get(User, d.agent_user_id)
    return {
        "id": d.id, "conversation_id": d.conversation_id, "agent": agent.name if agent else None,
        "reason": d.reason, "requested_labels": d.requested_labels, "status": effective_status(d, now),
        "level": d.level, "filed_at": d.filed_at.isoformat(), "due_at": local_iso(d.due_at, tz),
        "overdue": is_overdue(d, now), "version": d.version, "timezone": tz,
        "escalate_until": local_iso(d.escalate_until, tz),
        "escalation_reason": d.escalation_reason,
        "escalated_at": d.escalated_at.isoformat() if d.escalated_at else None,
        "closed_at": d.closed_at.isoformat() if d.closed_at else None,
        "answers": [{"level": a.level, "by": name, "outcome": a.outcome, "answer": a.answer, "labels": a.labels,
                     "at": a.at.isoformat()} for a, name in answers],
    }


def _score_time(s: Session, conversation_id: str) -> datetime | None:
    """When the score the agent sees was given: the latest prediction, or the review that counts.
    A double item's unsettled review changes no score, so it does not restart the filing window."""
    pred, task = latest_prediction(s, conversation_id), task_of(s, conversation_id)
    reviewed = task.final_at if task is not None and settled_labels(s, task) is not None else None
    times = [t for t in (pred.created_at if pred else None, reviewed) if t]
    return max(times) if times else None


def file_dispute(s: Session, user: Principal, cfg: ReviewConfig, conversation_id: str, reason: str,
                 requested_labels: Any = None, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    if user.role != "agent":
        raise Forbidden("only the agent of a conversation can dispute its score")
    get_conversation(s, user, conversation_id)  # an agent sees only their own
    reason = masked_note(reason)
    if not reason:
        raise Invalid("give a reason: what is wrong with the score")
    if len(reason) > 5000:
        raise Invalid("reason too long: at most 5000 characters")
    wanted = check_labels(requested_labels, partial=True) if requested_labels else None
    existing = s.scalar(select(Dispute).where(Dispute.conversation_id == conversation_id))
    if existing is not None:
        raise Conflict(f"this score is already disputed (dispute #{existing.id}, {effective_status(existing, now)})")
    cal = calendar(cfg)
    scored = _score_time(s, conversation_id)
    if scored is None:
        raise Invalid("this conversation has no score to dispute")
    if cfg.file_days is not None:
        last = cal.deadline(scored, cfg.file_days)
        if now > last:
            raise Invalid(f"too late: a score can be disputed within {cfg.file_days} working days "
                          f"(until {local_text(last, cfg.timezone)}) (KEFUQA_REVIEW_FILE_DAYS)")
    d = Dispute(conversation_id=conversation_id, agent_user_id=user.id, reason=reason, requested_labels=wanted,
                status="open", level=1, filed_at=now, due_at=cal.deadline(now, cfg.answer_days), version=1)
    insert_once(s, d, "this score is already disputed (filed at the same moment by another request)")
    audit.record(s, user.name, "dispute.filed", "conversation", conversation_id,
                 after={"dispute": d.id, "reason": reason, "requested_labels": wanted,
                        "due_at": d.due_at.isoformat()}, at=now)
    return dispute_dict(s, d, now, tz=cfg.timezone)


def _get(s: Session, user: Principal, dispute_id: int) -> Dispute:
    d = s.get(Dispute, dispute_id)
    if d is None:
        raise NotFound(f"no dispute #{dispute_id}")
    get_conversation(s, user, d.conversation_id)  # raises NotFound when not visible to the user
    return d


def _bump(s: Session, d: Dispute, version: Any, **values: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool):
        raise Invalid("version must be the dispute version you loaded (an integer)")
    result = cast(CursorResult[Any], s.execute(
        update(Dispute).where(Dispute.id == d.id, Dispute.version == version)
        .values(version=Dispute.version + 1, **values).execution_options(synchronize_session=False)))
    if result.rowcount != 1:
        raise Conflict("Not saved: this dispute changed since you loaded it (someone answered or escalated it). "
                       "Reload it.", current_version=s.scalar(select(Dispute.version).where(Dispute.id == d.id)))
    s.refresh(d)


def answer_dispute(s: Session, user: Principal, cfg: ReviewConfig, dispute_id: int, outcome: str, answer: str,
                   labels: Any = None, *, version: Any, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    require_reviewer(user)
    d = _get(s, user, dispute_id)
    status = effective_status(d, now)
    if status not in ("open", "escalated"):
        raise Conflict(f"dispute #{d.id} is {status}: nothing to answer")
    if d.level == 2:
        if not user.leads:
            raise Forbidden("an escalated dispute is decided by a lead or admin")
        first = s.scalar(select(DisputeAnswer.user_id).where(DisputeAnswer.dispute_id == d.id,
                                                             DisputeAnswer.level == 1))
        if first == user.id:
            raise Forbidden("the second level must be decided by someone other than the first answer's author")
    if cfg.independent_dispute_answers and _reviewed_by(s, d.conversation_id, user):
        raise Forbidden(f"you reviewed conversation {d.conversation_id!r}, so the agent is disputing your labels: "
                        "someone else answers this dispute (KEFUQA_REVIEW_INDEPENDENT_DISPUTE_ANSWERS)")
    if outcome not in OUTCOMES:
        raise Invalid("outcome must be 'upheld' (the score stands) or 'overturned' (with corrected labels)")
    answer = masked_note(answer)
    if not answer:
        raise Invalid("give the reasons for the decision (the agent reads them)")
    new_labels: dict[str, str] | None = None
    if outcome == "overturned":
        pred = latest_prediction(s, d.conversation_id)
        task = task_of(s, d.conversation_id)
        current = dict(pred.labels if pred else {})
        current.update(settled_labels(s, task) or {})  # the score the agent disputes
        new_labels = {**current, **check_labels(labels or {}, partial=True)}
        check_labels(new_labels)
        if new_labels == current:
            raise Invalid("an overturned score needs corrected labels that differ from the current ones")
        if task is not None and task.final_source in LEAD_DECIDED and not user.leads:
            # The same rule as a review: what a lead or a dispute decided, only a lead changes.
            raise Forbidden("a lead or a dispute decided this conversation's labels; only a lead can overturn "
                            "them (answer 'upheld', or leave the dispute to a lead)")
    before = {"status": status, "level": d.level}
    final = d.level == 2
    cal = calendar(cfg)
    values: dict[str, Any] = {"status": "final" if final else "answered"}
    if final:
        values["closed_at"] = now
    else:
        values["escalate_until"] = cal.deadline(now, cfg.escalate_days)
    _bump(s, d, version, **values)
    s.add(DisputeAnswer(dispute_id=d.id, level=d.level, user_id=user.id, outcome=outcome, answer=answer,
                        labels=new_labels, at=now))
    if new_labels is not None:
        task = ensure_task(s, d.conversation_id, "dispute", now)
        write_final(s, task=task, user=user, labels=new_labels, kind="dispute",
                    comment=f"dispute #{d.id}: {answer}", expected_version=task.version, now=now)
    audit.record(s, user.name, "dispute.answered", "conversation", d.conversation_id, before=before,
                 after={"dispute": d.id, "level": d.level, "outcome": outcome, "answer": answer, "labels": new_labels,
                        "status": d.status, "late": now > d.due_at}, at=now)
    return dispute_dict(s, d, now, tz=cfg.timezone)


def escalate(s: Session, user: Principal, cfg: ReviewConfig, dispute_id: int, reason: str, *, version: Any,
             now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    d = _get(s, user, dispute_id)
    if d.agent_user_id != user.id:
        raise Forbidden("only the agent who filed the dispute can escalate it")
    status = effective_status(d, now)
    if d.level != 1 or d.status != "answered":
        raise Conflict(f"dispute #{d.id} is {status}: it can be escalated once, after the first answer")
    if status == "final" and d.escalate_until is not None:  # "final" here: the escalation window has passed
        raise Invalid(f"too late: escalation was possible until {local_text(d.escalate_until, cfg.timezone)} "
                      f"({cfg.escalate_days} working days after the answer)")
    reason = masked_note(reason)
    if not reason:
        raise Invalid("say why the answer is wrong")
    _bump(s, d, version, status="escalated", level=2, escalated_at=now, escalation_reason=reason,
          due_at=calendar(cfg).deadline(now, cfg.second_answer_days))
    audit.record(s, user.name, "dispute.escalated", "conversation", d.conversation_id,
                 before={"status": "answered", "level": 1},
                 after={"dispute": d.id, "status": "escalated", "level": 2, "reason": reason,
                        "due_at": d.due_at.isoformat()}, at=now)
    return dispute_dict(s, d, now, tz=cfg.timezone)


def accept(s: Session, user: Principal, dispute_id: int, *, version: Any,
           now: datetime | None = None, tz: str = DEFAULT_TZ) -> dict[str, Any]:
    """The agent accepts the first answer: the dispute is final at once."""
    now = now or utcnow()
    d = _get(s, user, dispute_id)
    if d.agent_user_id != user.id:
        raise Forbidden("only the agent who filed the dispute can accept the answer")
    if effective_status(d, now) != "answered":
        raise Conflict(f"dispute #{d.id} is {effective_status(d, now)}: nothing to accept")
    _bump(s, d, version, status="final", closed_at=now)
    audit.record(s, user.name, "dispute.accepted", "conversation", d.conversation_id,
                 before={"status": "answered"}, after={"dispute": d.id, "status": "final"}, at=now)
    return dispute_dict(s, d, now, tz=tz)


def _reviewed_by(s: Session, conversation_id: str, user: Principal) -> bool:
    """Whether ``user`` saved labels of this conversation other than by deciding a dispute."""
    return s.scalar(select(Review.id).where(Review.conversation_id == conversation_id, Review.reviewer_id == user.id,
                                            Review.kind != "dispute").limit(1)) is not None


def list_disputes(s: Session, user: Principal, status: str | None = None, overdue: bool = False,
                  now: datetime | None = None, limit: int = 500, tz: str = DEFAULT_TZ) -> list[dict[str, Any]]:
    now = now or utcnow()
    q = (select(Dispute).join(StoredConversation, StoredConversation.id == Dispute.conversation_id)
         .where(visible(s, user)).order_by(Dispute.due_at, Dispute.id).limit(limit))
    if user.role == "agent":
        q = q.where(Dispute.agent_user_id == user.id)
    found = list(s.scalars(q))
    blind = blind_conversations(s, user, (d.conversation_id for d in found))
    out = [dispute_dict(s, d, now, tz=tz, only_answers_of=user.id if d.conversation_id in blind else None)
           for d in found]
    if status:
        out = [d for d in out if d["status"] == status]
    if overdue:
        out = [d for d in out if d["overdue"]]
    return out
