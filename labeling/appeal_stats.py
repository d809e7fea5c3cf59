"""Statistics of the appeals on period grades, per period (the handbooks' periodic analysis
of the appeal archive): how many were filed, how they ended, how many missed a deadline
and how long a decision took."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from statistics import median
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .access import Forbidden
from .appeals import effective_status, is_overdue, period_start, visible_appeals
from .auth import Principal
from .config import ReviewConfig
from .disputes import calendar
from .models import GradeAppeal, GradeAppealStep
from .workdays import WorkCalendar, utcnow

FIELDS = ("period", "filed", "open", "decided", "upheld", "overturned", "reappealed", "overdue",
          "median_days_to_decision")


def period_stats(s: Session, user: Principal, cfg: ReviewConfig, period: str | None = None,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per period, in period order. ``upheld``/``overturned`` count the grade that
    stands after the latest decision; ``overdue`` counts appeals with a step that missed its
    deadline (still open past it, or done late); ``median_days_to_decision`` is in working
    days from filing to the first decision (None before any decision)."""
    now = now or utcnow()
    if user.role not in ("lead", "admin") or (user.role == "lead" and not user.team):
        raise Forbidden("appeal statistics are for the lead of a team and for admins")
    q = select(GradeAppeal).where(visible_appeals(user))
    if period:
        period_start(period)
        q = q.where(GradeAppeal.period == period.strip())
    appeals = list(s.scalars(q))
    steps: dict[int, list[GradeAppealStep]] = defaultdict(list)
    if appeals:
        for st in s.scalars(select(GradeAppealStep).where(GradeAppealStep.appeal_id.in_([a.id for a in appeals]))
                            .order_by(GradeAppealStep.id)):
            steps[st.appeal_id].append(st)
    by_period: dict[str, list[GradeAppeal]] = defaultdict(list)
    for a in appeals:
        by_period[a.period].append(a)
    cal = calendar(cfg)
    return [_row(p, by_period[p], steps, cal, now) for p in sorted(by_period, key=_period_key)]


def _period_key(period: str) -> tuple[int, int, int]:
    start = period_start(period)
    kind = 0 if len(period) == 4 else 1 if "Q" in period else 2  # a year, then its quarters, then its months
    return start.year, kind, start.month


def _row(period: str, appeals: list[GradeAppeal], steps: dict[int, list[GradeAppealStep]], cal: WorkCalendar,
         now: datetime) -> dict[str, Any]:
    decided = [a for a in appeals if a.final_grade is not None]
    late = [a for a in appeals if is_overdue(a, now)
            or any(st.due_at is not None and st.at > st.due_at for st in steps[a.id])]
    waits = [cal.workdays_between(a.filed_at, first.at) for a in decided
             if (first := next((st for st in steps[a.id] if st.step == "decided"), None)) is not None]
    return {
        "period": period, "filed": len(appeals),
        "open": sum(effective_status(a, now) != "final" for a in appeals),
        "decided": len(decided),
        "upheld": sum(a.final_grade == a.grade for a in decided),
        "overturned": sum(a.final_grade != a.grade for a in decided),
        "reappealed": sum(a.level == 2 for a in appeals),
        "overdue": len(late),
        "median_days_to_decision": float(median(waits)) if waits else None,
    }
