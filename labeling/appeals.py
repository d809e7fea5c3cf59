"""Appeals on a period grade (绩效申诉): an agent contests their grade for a month, quarter
or year; the lead of their team acknowledges, reviews and decides, and records that the
agent was told; the agent may appeal once more, and an admin decides that finally.

    filed ─ack─► acknowledged ─decide─► decided ─notify─► notified ─reappeal (once)─► reappealed
                                                            │                            │ decide (admin)
                                        window over ─► final ◄──notify── decided (level 2)

Deadlines in working days (the handbooks' performance-appeal steps, domain.md), counted
with the review calendar (workdays.py: weekends, holidays, 调休) in the review time zone:
acknowledge within 5 of filing, decide within 10 of acknowledging, notify within 5 of the
decision, re-appeal within 5 of the notification. The handbooks give the final level no
deadline; kefu-qa gives it the review's 10. A step still open past its deadline is overdue.
Every step is a row of the appeal's timeline and an audit-log entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, false, select, true, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from . import audit
from .access import Conflict, Forbidden, Invalid, NotFound, insert_once, masked_note
from .auth import Principal
from .config import ReviewConfig
from .disputes import calendar  # the same working days as the disputes
from .models import GradeAppeal, GradeAppealStep, User
from .workdays import DEFAULT_TZ, local_iso, local_text, utcnow

# The default rubric's five grades (grading/rubric.py), the default of
# KEFUQA_REVIEW_APPEAL_GRADES. The review store may not import grading (architecture.md), so a
# rubric with other levels names them in that setting; a test keeps the defaults equal.
GRADES: tuple[str, ...] = ("优秀", "良好", "中等", "合格", "不合格")
NOT_GRADED = "数据不足"
OUTCOMES = ("upheld", "overturned")
OPEN_STEPS = ("filed", "acknowledged", "decided", "reappealed")  # waiting for a lead or admin
_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")
_MAX_TEXT = 5000


@dataclass(frozen=True)
class AppealDays:
    """Working days each step may take."""

    acknowledge: int = 5
    decide: int = 10
    notify: int = 5
    reappeal: int = 5
    final_decide: int = 10  # a kefu-qa default: the handbooks name no deadline for the last level


HANDBOOK_DAYS = AppealDays()


def period_start(period: str) -> date:
    """First day of a period id (``2026-11``, ``2026-Q4``, ``2026``); Invalid if it is not one."""
    m = _PERIOD.match(period.strip()) if isinstance(period, str) else None
    if m is None:
        raise Invalid(f"period must be a month (2026-11), a quarter (2026-Q4) or a year (2026), not {period!r}")
    year, month, quarter = int(m[1]), m[2], m[3]
    return date(year, int(month) if month else (int(quarter) - 1) * 3 + 1 if quarter else 1, 1)


def effective_status(a: GradeAppeal, now: datetime) -> str:
    if a.status == "notified" and a.reappeal_until is not None and now > a.reappeal_until:
        return "final"
    return a.status


def is_overdue(a: GradeAppeal, now: datetime) -> bool:
    return a.status in OPEN_STEPS and a.due_at is not None and now > a.due_at


def next_step(a: GradeAppeal, now: datetime) -> tuple[str | None, str | None]:
    """What the appeal waits for, and from whom."""
    status = effective_status(a, now)
    handler = "admin" if a.level == 2 else "lead"
    return {"filed": ("acknowledge", handler), "acknowledged": ("decide", handler),
            "reappealed": ("decide", handler), "decided": ("notify", handler),
            "notified": ("reappeal (optional)", "agent")}.get(status, (None, None))


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _steps(s: Session, appeal_id: int, tz: str) -> list[dict[str, Any]]:
    rows = s.execute(select(GradeAppealStep, User.name).join(User, User.id == GradeAppealStep.user_id)
                     .where(GradeAppealStep.appeal_id == appeal_id).order_by(GradeAppealStep.id)).all()
    return [{"level": st.level, "step": st.step, "by": name, "at": st.at.isoformat(),
             "due_at": local_iso(st.due_at, tz),
             "late": st.due_at is not None and st.at > st.due_at,
             "outcome": st.outcome, "new_grade": st.new_grade, "note": st.note} for st, name in rows]


def appeal_dict(s: Session, a: GradeAppeal, now: datetime | None = None, tz: str = DEFAULT_TZ) -> dict[str, Any]:
    """An appeal as the API shows it; deadlines in the review time zone ``tz`` (named in ``timezone``),
    as they are counted."""
    now = now or utcnow()
    agent = s.get(User, a.agent_user_id)
    step, by = next_step(a, now)
    timeline = _steps(s, a.id, tz)
    decisions = [t for t in timeline if t["step"] == "decided"]
    return {
        "id": a.id, "agent": agent.name if agent else None, "agent_id": a.agent_id, "team": a.team,
        "period": a.period, "grade": a.grade, "score": a.score, "reason": a.reason,
        "status": effective_status(a, now), "level": a.level, "filed_at": a.filed_at.isoformat(),
        "next_step": step, "waiting_for": by, "due_at": local_iso(a.due_at, tz) if a.status in OPEN_STEPS else None,
        "overdue": is_overdue(a, now), "reappeal_until": local_iso(a.reappeal_until, tz), "timezone": tz,
        "outcome": decisions[-1]["outcome"] if decisions else None, "final_grade": a.final_grade,
        "closed_at": _iso(a.closed_at), "version": a.version, "timeline": timeline,
    }


def _check_text(text: str | None, what: str) -> str:
    out = masked_note(text)
    if not out:
        raise Invalid(f"{what}: cannot be empty")
    if len(out) > _MAX_TEXT:
        raise Invalid(f"{what}: too long, at most {_MAX_TEXT} characters")
    return out


def _check_claim(grade: Any, score: Any, grades: list[str]) -> float | None:
    if grade not in (*grades, NOT_GRADED):
        raise Invalid(f"grade must be one of {', '.join((*grades, NOT_GRADED))}, not {grade!r}")
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100:
        raise Invalid(f"score must be the period score, a number from 0 to 100, not {score!r}")
    return float(score)


def file_appeal(s: Session, user: Principal, cfg: ReviewConfig, period: str, grade: str, score: Any,
                reason: str, *, agent_id: str | None = None, now: datetime | None = None,
                days: AppealDays = HANDBOOK_DAYS) -> dict[str, Any]:
    now = now or utcnow()
    if user.role != "agent" or not user.agent_id:
        raise Forbidden("only an agent appeals their own period grade")
    if agent_id is not None and agent_id != user.agent_id:
        raise Forbidden(f"an agent appeals only their own grade ({user.agent_id}), not {agent_id!r}'s")
    cal = calendar(cfg)
    period = period.strip() if isinstance(period, str) else period
    if period_start(period) > cal.local_date(now):
        raise Invalid(f"period {period} has not started: appeal a grade you have received")
    score = _check_claim(grade, score, cfg.appeal_grades)
    reason = _check_text(reason, "reason (what is wrong with the grade)")
    existing = s.scalar(select(GradeAppeal).where(GradeAppeal.agent_user_id == user.id, GradeAppeal.period == period))
    if existing is not None:
        raise Conflict(f"your {period} grade is already appealed (appeal #{existing.id}, "
                       f"{effective_status(existing, now)}); a second appeal is a re-appeal of it")
    a = GradeAppeal(agent_user_id=user.id, agent_id=user.agent_id, team=user.team, period=period, grade=grade,
                    score=score, reason=reason, status="filed", level=1, due_at=cal.deadline(now, days.acknowledge),
                    filed_at=now, version=1)
    insert_once(s, a, f"your {period} grade is already appealed (filed at the same moment)")
    s.add(GradeAppealStep(appeal_id=a.id, level=1, step="filed", user_id=user.id, at=now, note=reason))
    audit.record(s, user.name, "appeal.filed", "grade_appeal", a.id,
                 after={"period": period, "agent_id": a.agent_id, "grade": grade, "score": score, "reason": reason,
                        "due_at": _iso(a.due_at)}, at=now)
    return appeal_dict(s, a, now, cfg.timezone)


def visible_appeals(user: Principal) -> ColumnElement[bool]:
    """A WHERE clause on ``GradeAppeal``: agents their own, leads their team's, admins all."""
    if user.role == "admin":
        return true()
    if user.role == "agent":
        return GradeAppeal.agent_user_id == user.id
    if user.role == "lead" and user.team:
        return GradeAppeal.team == user.team
    return false()


def _get(s: Session, user: Principal, appeal_id: int) -> GradeAppeal:
    if user.role == "reviewer" or (user.role == "lead" and not user.team):
        raise Forbidden("appeals on a grade are handled by the lead of the agent's team and by admins")
    a = s.scalar(select(GradeAppeal).where(and_(GradeAppeal.id == appeal_id, visible_appeals(user))))
    if a is None:  # not there, or not the user's to see: the same answer either way
        raise NotFound(f"no appeal #{appeal_id} for you")
    return a


def get_appeal(s: Session, user: Principal, appeal_id: int, now: datetime | None = None,
               tz: str = DEFAULT_TZ) -> dict[str, Any]:
    return appeal_dict(s, _get(s, user, appeal_id), now, tz)


def _require_handler(user: Principal, a: GradeAppeal) -> None:
    if a.level == 2:
        if user.role != "admin":
            raise Forbidden("a re-appeal is decided by an admin (company leadership), finally")
    elif user.role not in ("lead", "admin"):
        raise Forbidden(f"the lead of team {a.team or '(none)'} handles this appeal; {user.role}s cannot")


def _bump(s: Session, a: GradeAppeal, version: Any, **values: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool):
        raise Invalid("version must be the appeal version you loaded (an integer)")
    result = cast(CursorResult[Any], s.execute(
        update(GradeAppeal).where(GradeAppeal.id == a.id, GradeAppeal.version == version)
        .values(version=GradeAppeal.version + 1, **values).execution_options(synchronize_session=False)))
    if result.rowcount != 1:
        raise Conflict("Not saved: this appeal changed since you loaded it. Reload it.",
                       current_version=s.scalar(select(GradeAppeal.version).where(GradeAppeal.id == a.id)))
    s.refresh(a)


def _step(s: Session, user: Principal, a: GradeAppeal, step: str, now: datetime, due: datetime | None,
          **extra: Any) -> None:
    s.add(GradeAppealStep(appeal_id=a.id, level=a.level, step=step, user_id=user.id, at=now, due_at=due,
                          outcome=extra.get("outcome"), new_grade=extra.get("new_grade"), note=extra.get("note", "")))


def acknowledge(s: Session, user: Principal, cfg: ReviewConfig, appeal_id: int, note: str = "", *, version: Any,
                now: datetime | None = None, days: AppealDays = HANDBOOK_DAYS) -> dict[str, Any]:
    """Receipt confirmed and the procedure told (the handbooks' first step)."""
    now = now or utcnow()
    a = _get(s, user, appeal_id)
    _require_handler(user, a)
    if a.status != "filed":
        raise Conflict(f"appeal #{a.id} is {effective_status(a, now)}: it was acknowledged already")
    due = a.due_at
    note = masked_note(note)
    _bump(s, a, version, status="acknowledged", due_at=calendar(cfg).deadline(now, days.decide))
    _step(s, user, a, "acknowledged", now, due, note=note)
    audit.record(s, user.name, "appeal.acknowledged", "grade_appeal", a.id, before={"status": "filed"},
                 after={"status": "acknowledged", "note": note, "late": due is not None and now > due,
                        "due_at": _iso(a.due_at)}, at=now)
    return appeal_dict(s, a, now, cfg.timezone)


def decide(s: Session, user: Principal, cfg: ReviewConfig, appeal_id: int, outcome: str, reason: str,
           new_grade: str | None = None, *, version: Any, now: datetime | None = None,
           days: AppealDays = HANDBOOK_DAYS) -> dict[str, Any]:
    """The review's result: the grade stands (upheld) or is replaced (overturned, with the new grade)."""
    now = now or utcnow()
    a = _get(s, user, appeal_id)
    _require_handler(user, a)
    if a.status not in ("acknowledged", "reappealed"):
        raise Conflict(f"appeal #{a.id} is {effective_status(a, now)}: "
                       + ("acknowledge it first" if a.status == "filed" else "nothing to decide"))
    if a.level == 2:
        first = s.scalar(select(GradeAppealStep.user_id).where(GradeAppealStep.appeal_id == a.id,
                                                               GradeAppealStep.step == "decided"))
        if first == user.id:
            raise Forbidden("the re-appeal must be decided by someone other than the first decision's author")
    if outcome not in OUTCOMES:
        raise Invalid("outcome must be 'upheld' (the grade stands) or 'overturned' (with the new grade)")
    current = a.final_grade or a.grade
    if outcome == "overturned":
        if new_grade not in cfg.appeal_grades:
            raise Invalid(f"an overturned grade needs new_grade, one of {', '.join(cfg.appeal_grades)}")
        if new_grade == current:
            raise Invalid(f"new_grade {new_grade} is the grade appealed against; uphold it instead")
    else:
        new_grade = None
    reason = _check_text(reason, "reason (the written reasons the agent receives)")
    due = a.due_at
    standing = new_grade or current
    _bump(s, a, version, status="decided", final_grade=standing, due_at=calendar(cfg).deadline(now, days.notify))
    _step(s, user, a, "decided", now, due, outcome=outcome, new_grade=new_grade, note=reason)
    before = {"status": "acknowledged" if a.level == 1 else "reappealed", "grade": current}
    audit.record(s, user.name, "appeal.decided", "grade_appeal", a.id, before=before,
                 after={"status": "decided", "level": a.level, "outcome": outcome, "grade": standing,
                        "reason": reason, "late": due is not None and now > due, "due_at": _iso(a.due_at)}, at=now)
    return appeal_dict(s, a, now, cfg.timezone)


def notify(s: Session, user: Principal, cfg: ReviewConfig, appeal_id: int, note: str = "", *, version: Any,
           now: datetime | None = None, days: AppealDays = HANDBOOK_DAYS) -> dict[str, Any]:
    """The agent was told the result with its reasons; a first-level result opens the re-appeal window."""
    now = now or utcnow()
    a = _get(s, user, appeal_id)
    _require_handler(user, a)
    if a.status != "decided":
        raise Conflict(f"appeal #{a.id} is {effective_status(a, now)}: only a decided appeal is notified")
    due, note = a.due_at, masked_note(note)
    if a.level == 1:
        _bump(s, a, version, status="notified", due_at=None,
              reappeal_until=calendar(cfg).deadline(now, days.reappeal))
    else:
        _bump(s, a, version, status="final", due_at=None, closed_at=now)
    _step(s, user, a, "notified", now, due, note=note)
    audit.record(s, user.name, "appeal.notified", "grade_appeal", a.id, before={"status": "decided"},
                 after={"status": a.status, "level": a.level, "note": note, "late": due is not None and now > due,
                        "reappeal_until": _iso(a.reappeal_until)}, at=now)
    return appeal_dict(s, a, now, cfg.timezone)


def reappeal(s: Session, user: Principal, cfg: ReviewConfig, appeal_id: int, reason: str, *, version: Any,
             now: datetime | None = None, days: AppealDays = HANDBOOK_DAYS) -> dict[str, Any]:
    """The agent appeals once more, to an admin, within the window after the notification."""
    now = now or utcnow()
    a = _get(s, user, appeal_id)
    if a.agent_user_id != user.id:
        raise Forbidden("only the agent who filed the appeal can appeal again")
    if a.level != 1 or a.status != "notified":
        raise Conflict(f"appeal #{a.id} is {effective_status(a, now)} at level {a.level}: "
                       "an appeal can be re-appealed once, after its result was notified")
    if a.reappeal_until is not None and now > a.reappeal_until:
        raise Invalid(f"too late: a re-appeal was possible until {local_text(a.reappeal_until, cfg.timezone)} "
                      f"({days.reappeal} working days after the notification); the result is final")
    reason = _check_text(reason, "reason (why the decision is wrong)")
    window = a.reappeal_until
    _bump(s, a, version, status="reappealed", level=2, due_at=calendar(cfg).deadline(now, days.final_decide))
    _step(s, user, a, "reappealed", now, window, note=reason)
    audit.record(s, user.name, "appeal.reappealed", "grade_appeal", a.id, before={"status": "notified", "level": 1},
                 after={"status": "reappealed", "level": 2, "reason": reason, "due_at": _iso(a.due_at)}, at=now)
    return appeal_dict(s, a, now, cfg.timezone)


def list_appeals(s: Session, user: Principal, period: str | None = None, status: str | None = None,
                 overdue: bool = False, now: datetime | None = None, limit: int = 500,
                 tz: str = DEFAULT_TZ) -> list[dict[str, Any]]:
    """Oldest deadline first; agents see their own, leads their team's, admins all."""
    now = now or utcnow()
    if user.role == "reviewer" or (user.role == "lead" and not user.team):
        raise Forbidden("appeals on a grade are seen by the agent, the lead of their team and admins")
    q = select(GradeAppeal).where(visible_appeals(user)).order_by(GradeAppeal.filed_at, GradeAppeal.id).limit(limit)
    if period:
        period_start(period)
        q = q.where(GradeAppeal.period == period.strip())
    out = [appeal_dict(s, a, now, tz) for a in s.scalars(q)]
    if status:
        out = [a for a in out if a["status"] == status]
    if overdue:
        out = [a for a in out if a["overdue"]]
    # by the moment, not the text: a zone with summer time gives deadlines two different offsets
    return sorted(out, key=lambda a: (a["due_at"] is None, datetime.fromisoformat(a["due_at"] or "1970-01-01T00:00Z"),
                                      a["id"]))
