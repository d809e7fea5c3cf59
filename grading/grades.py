"""Per agent per period: indicators, score, grade, rank in team, change; team aggregates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from scipy.stats import rankdata

from .channels import applies
from .dataset import Dataset, Observation
from .kpis import IndicatorValue, combine, measure
from .periods import Period, PeriodKind, period_of, span
from .reasons import grade_reason
from .repeated_low import low_runs
from .rubric import INSUFFICIENT, GradeRule, Rubric
from .texts import DEFAULT_LANG, Lang, tr


@dataclass(frozen=True)
class AgentPeriod:
    agent_id: str
    team: str
    period: str
    period_start: date
    period_end: date
    n_conversations: int
    indicators: tuple[IndicatorValue, ...]
    group_scores: dict[str, float | None]
    score: float | None  # None when not graded
    grade: str  # one of the rubric's levels, or INSUFFICIENT
    graded: bool
    reason: str  # why the grade is what it is, in words, naming the weakest indicators
    missing: tuple[str, ...]  # indicators without data, left out of the score
    rank_in_team: int | None = None
    graded_in_team: int = 0
    previous_score: float | None = None
    previous_grade: str | None = None
    score_change: float | None = None
    low_streak: int = 0  # low periods in a row up to this one (末位, see repeated_low.py)
    repeated_low: bool = False  # low_streak reached the rubric's number of periods
    flag: str = ""  # the repeated-low flag in words, empty when not flagged


@dataclass(frozen=True)
class TeamPeriod:
    team: str
    period: str
    n_agents: int
    n_graded: int
    n_conversations: int
    mean_score: float | None
    grade_counts: dict[str, int]
    indicators: tuple[IndicatorValue, ...]  # pooled over the team's conversations


@dataclass(frozen=True)
class GradeReport:
    kind: PeriodKind
    periods: tuple[str, ...]
    agents: tuple[AgentPeriod, ...]
    teams: tuple[TeamPeriod, ...]
    method: str
    levels: tuple[str, ...]  # the grade scheme, best first
    thresholds: dict[str, float]  # in level order
    min_conversations: int
    repeated_low_periods: int
    n_records: int
    n_undated: int
    notes: tuple[str, ...]
    lang: Lang = DEFAULT_LANG


def absolute_grade(score: float, rule: GradeRule) -> str:
    for grade in rule.levels[:-1]:
        if score >= rule.thresholds[grade]:
            return grade
    return rule.levels[-1]


def forced_grades(scores: Sequence[float], shares: dict[str, float]) -> list[str]:
    """Forced distribution: quotas by largest remainder, best scores first.

    ``shares`` is in level order, best first. Tied scores share the better
    grade, so a grade never separates equal scores (a tie can push a grade
    slightly over its quota).
    """
    n = len(scores)
    if n == 0:
        return []
    levels = list(shares)
    raw = np.array([shares[g] for g in levels]) * n
    quota = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - quota), kind="stable")[: n - int(quota.sum())]:
        quota[i] += 1
    ladder = [g for g, q in zip(levels, quota) for _ in range(q)]
    order = np.argsort(-np.asarray(scores), kind="stable")
    out = [""] * n
    prev: int | None = None
    for pos, idx in enumerate(order):
        tie = prev is not None and scores[idx] == scores[prev]
        out[idx] = out[prev] if tie and prev is not None else ladder[pos]
        prev = idx
    return out


def _agent_period(
    rubric: Rubric,
    agent_id: str,
    team: str,
    period: Period,
    obs: Sequence[Observation],
    rng: np.random.Generator | None,
    lang: Lang,
) -> AgentPeriod:
    values = measure(rubric, obs, rng)
    groups, total = combine(rubric, values)
    # A call indicator of an agent without calls does not apply: not missing data.
    missing = tuple(v.key for v in values if v.value is None and applies(rubric.indicator(v.key), obs))
    n = len(obs)
    if n < rubric.min_conversations:
        graded, reason = False, tr(lang, "grade.too_few", n=n, minimum=rubric.min_conversations)
    elif total is None:
        graded, reason = False, tr(lang, "grade.no_data")
    else:
        graded, reason = True, ""
    return AgentPeriod(
        agent_id=agent_id,
        team=team,
        period=period.label,
        period_start=period.start,
        period_end=period.end,
        n_conversations=n,
        indicators=values,
        group_scores=groups,
        score=total if graded else None,
        grade=INSUFFICIENT,
        graded=graded,
        reason=reason,
        missing=missing,
    )


def _assign_grades(rows: list[AgentPeriod], rubric: Rubric, lang: Lang) -> list[AgentPeriod]:
    rule = rubric.grades
    graded = [r for r in rows if r.graded and r.score is not None]
    grade_of: dict[tuple[str, str], str] = {}
    if rule.method == "absolute":
        for r in graded:
            assert r.score is not None
            grade_of[(r.agent_id, r.period)] = absolute_grade(r.score, rule)
    else:
        pools: dict[tuple[str, str], list[AgentPeriod]] = defaultdict(list)
        for r in graded:
            pools[(r.period, r.team if rule.forced_scope == "team" else "")].append(r)
        for pool in pools.values():
            for r, g in zip(pool, forced_grades([r.score or 0.0 for r in pool], rule.shares())):
                grade_of[(r.agent_id, r.period)] = g
    out = []
    for r in rows:
        grade = grade_of.get((r.agent_id, r.period))
        if grade is None:
            out.append(r)
            continue
        reason = grade_reason(r.score or 0.0, r.indicators, rubric, lang)
        out.append(replace(r, grade=grade, reason=reason))
    return out


def _with_change(v: IndicatorValue, previous: float | None) -> IndicatorValue:
    if v.value is None or previous is None:
        return v
    return replace(v, change=v.value - previous)


def _rank_and_change(rows: list[AgentPeriod], periods: dict[str, Period]) -> list[AgentPeriod]:
    by_team: dict[tuple[str, str], list[AgentPeriod]] = defaultdict(list)
    for r in rows:
        if r.graded:
            by_team[(r.team, r.period)].append(r)
    rank: dict[tuple[str, str], tuple[int, int]] = {}
    for members in by_team.values():
        ranks = rankdata([-(m.score or 0.0) for m in members], method="min")
        for m, k in zip(members, ranks):
            rank[(m.agent_id, m.period)] = (int(k), len(members))
    index = {(r.agent_id, r.period): r for r in rows}
    out = []
    for r in rows:
        prev = index.get((r.agent_id, periods[r.period].previous().label))
        k, size = rank.get((r.agent_id, r.period), (None, 0))
        prev_vals = {v.key: v.value for v in prev.indicators} if prev else {}
        indicators = tuple(_with_change(v, prev_vals.get(v.key)) for v in r.indicators)
        prev_score = prev.score if prev is not None and prev.graded else None
        change = None if prev_score is None or r.score is None else r.score - prev_score
        out.append(
            replace(
                r,
                indicators=indicators,
                rank_in_team=k,
                graded_in_team=size,
                previous_score=prev_score,
                previous_grade=prev.grade if prev else None,
                score_change=change,
            )
        )
    return out


def _teams(
    rubric: Rubric,
    rows: list[AgentPeriod],
    obs_by: dict[tuple[str, Period], list[Observation]],
    periods: list[Period],
    rng: np.random.Generator | None,
) -> list[TeamPeriod]:
    out = []
    names = (*rubric.grades.levels, INSUFFICIENT)
    teams = sorted({r.team for r in rows})
    for period in periods:
        for team in teams:
            members = [r for r in rows if r.team == team and r.period == period.label]
            if not members:
                continue
            pooled = [o for m in members for o in obs_by.get((m.agent_id, period), [])]
            scores = [m.score for m in members if m.graded and m.score is not None]
            counts = {g: sum(1 for m in members if m.grade == g) for g in names}
            out.append(
                TeamPeriod(
                    team=team,
                    period=period.label,
                    n_agents=len(members),
                    n_graded=len(scores),
                    n_conversations=len(pooled),
                    mean_score=float(np.mean(scores)) if scores else None,
                    grade_counts=counts,
                    indicators=measure(rubric, pooled, rng),
                )
            )
    return out


def grade_all(
    dataset: Dataset,
    rubric: Rubric,
    kind: PeriodKind = "month",
    *,
    intervals_for: Iterable[str] | None = None,
    lang: Lang = DEFAULT_LANG,
) -> GradeReport:
    """Grade every agent in every period from the first to the last dated conversation.

    ``intervals_for`` limits the (bootstrap) intervals to some agents, e.g. the
    one an API call asks about; scores, grades and ranks are always complete.
    """
    rng = np.random.default_rng(rubric.seed)
    obs_by: dict[tuple[str, Period], list[Observation]] = defaultdict(list)
    for o in dataset.observations:
        obs_by[(o.agent_id, period_of(o.local_time, kind))].append(o)
    periods = span(min(p for _, p in obs_by), max(p for _, p in obs_by)) if obs_by else []
    wanted = None if intervals_for is None else set(intervals_for)
    rows: list[AgentPeriod] = []
    for agent in sorted(dataset.agents.values(), key=lambda a: (a.team, a.agent_id)):
        for period in periods:
            if agent.hire_date is not None and agent.hire_date > period.end:
                continue  # not yet hired: no row rather than a misleading 数据不足
            use_rng = rng if wanted is None or agent.agent_id in wanted else None
            rows.append(
                _agent_period(
                    rubric,
                    agent.agent_id,
                    agent.team,
                    period,
                    obs_by.get((agent.agent_id, period), []),
                    use_rng,
                    lang,
                )
            )
    rows = _rank_and_change(_assign_grades(rows, rubric, lang), {p.label: p for p in periods})
    rows = [
        replace(r, low_streak=x.low_streak, repeated_low=x.repeated_low, flag=x.flag)
        for r, x in zip(rows, low_runs(rows, rubric.grades, lang))
    ]
    teams = _teams(rubric, rows, obs_by, periods, rng if wanted is None else None)
    return GradeReport(
        kind=kind,
        periods=tuple(p.label for p in periods),
        agents=tuple(rows),
        teams=tuple(teams),
        method=rubric.grades.method,
        levels=rubric.grades.levels,
        thresholds={g: rubric.grades.thresholds[g] for g in rubric.grades.levels[:-1]},
        min_conversations=rubric.min_conversations,
        repeated_low_periods=rubric.grades.repeated_low.periods,
        n_records=len(dataset.observations) + len(dataset.undated),
        n_undated=len(dataset.undated),
        notes=dataset.notes,
        lang=lang,
    )
