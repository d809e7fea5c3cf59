"""末位: flag agents whose results stay low for several calendar periods in a row.

The handbooks remove agents after repeated poor results (末位淘汰); the tool
only flags, with the run of periods that led to the flag, so that a manager
decides with the evidence in front of them. A period without a grade
(数据不足, or before the hire date) ends a run: no evidence is not a low result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from .rubric import GradeRule
from .texts import Lang, join, tr


class Row(Protocol):
    """What the flag reads of a graded row (``grades.AgentPeriod``)."""

    @property
    def agent_id(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def period_start(self) -> date: ...
    @property
    def period_end(self) -> date: ...
    @property
    def graded(self) -> bool: ...
    @property
    def grade(self) -> str: ...
    @property
    def rank_in_team(self) -> int | None: ...
    @property
    def graded_in_team(self) -> int: ...


@dataclass(frozen=True)
class LowRun:
    low_streak: int  # low periods in a row up to this one
    repeated_low: bool
    flag: str


def is_low(row: Row, rule: GradeRule) -> bool:
    if not row.graded:
        return False
    if row.grade in rule.low_grades:
        return True
    last = row.rank_in_team is not None and row.rank_in_team == row.graded_in_team >= 2
    return rule.repeated_low.last_in_team and last


def _follows(prev: Row | None, r: Row) -> bool:
    """``r`` is the same agent's next calendar period after ``prev``."""
    return prev is not None and prev.agent_id == r.agent_id and prev.period_end + timedelta(days=1) == r.period_start


def low_runs(rows: Sequence[Row], rule: GradeRule, lang: Lang) -> list[LowRun]:
    """Each row's run of low periods; ``rows`` hold each agent's periods in order."""
    need = rule.repeated_low.periods
    out: list[LowRun] = []
    run: list[str] = []  # the periods of the current run
    for i, r in enumerate(rows):
        if not _follows(rows[i - 1] if i else None, r):
            run = []
        run = [*run, r.period] if is_low(r, rule) else []
        flag = ""
        if len(run) >= need:
            flag = tr(
                lang,
                "flag.repeated_low",
                n=len(run),
                periods=join(lang, run),
                grades=join(lang, rule.low_grades)
                + (tr(lang, "flag.or_last_in_team") if rule.repeated_low.last_in_team else ""),
            )
        out.append(LowRun(len(run), len(run) >= need, flag))
    return out
