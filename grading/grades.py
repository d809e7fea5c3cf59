"""Per agent per period: indicators, score, grade, rank in team, change; team aggregates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from scipy.stats import rankdata

from .dataset import Dataset, Observation
from .kpis import IndicatorValue, combine, measure
from .periods import Period, PeriodKind, period_of, span
from .rubric import GRADES, INSUFFICIENT, GradeRule, Rubric


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
    grade: str  # one of GRADES, or INSUFFICIENT
    graded: bool
    reason: str  # why the grade is what it is, in words
    missing: tuple[str, ...]  # indicators without data, left out of the score
    rank_in_team: int | None = None
    graded_in_team: int = 0
    previous_score: float | None = None
    previous_grade: str | None = None
    score_change: float | None = None


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
    thresholds: dict[str, float]
    min_conversations: int
    n_records: int
    n_undated: int
    notes: tuple[str, ...]


def absolute_grade(score: float, rule: GradeRule) -> str:
    for grade, cut in rule.thresholds.items():
        if score >= cut:
            return grade
    return GRADES[-1]


def forced_grades(scores: Sequence[float], shares: dict[str, float]) -> list[str]:
    """Forced distribution: quotas by largest remainder, best scores first.

    Tied scores share the better grade, so a grade never separates equal
    scores (a tie can push a grade slightly over its quota).
    """
    n = len(scores)
    if n == 0:
        return []
    raw = np.array([shares[g] for g in GRADES]) * n
    quota = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - quota), kind="stable")[: n - int(quota.sum())]:
        quota[i] += 1
    ladder = [g for g, q in zip(GRADES, quota) for _ in range(q)]
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
) -> AgentPeriod:
    values = measure(rubric, obs, rng)
    groups, total = combine(rubric, values)
    missing = tuple(v.key for v in values if v.value is None)
    n = len(obs)
    if n < rubric.min_conversations:
        graded, reason = (
            False,
            f"{n} conversations, fewer than the minimum {rubric.min_conversations}",
        )
    elif total is None:
        graded, reason = False, "no indicator has data"
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


def _assign_grades(rows: list[AgentPeriod], rule: GradeRule) -> list[AgentPeriod]:
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
            for r, g in zip(
                pool, forced_grades([r.score or 0.0 for r in pool], rule.forced_shares)
            ):
                grade_of[(r.agent_id, r.period)] = g
    out = []
    for r in rows:
        grade = grade_of.get((r.agent_id, r.period))
        if grade is None:
            out.append(r)
            continue
        how = (
            "forced distribution within "
            + ("team" if rule.forced_scope == "team" else "all agents")
            if rule.method == "forced"
            else "absolute thresholds"
        )
        out.append(replace(r, grade=grade, reason=f"score {r.score or 0.0:.1f} by {how}"))
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
    teams = sorted({r.team for r in rows})
    for period in periods:
        for team in teams:
            members = [r for r in rows if r.team == team and r.period == period.label]
            if not members:
                continue
            pooled = [o for m in members for o in obs_by.get((m.agent_id, period), [])]
            scores = [m.score for m in members if m.graded and m.score is not None]
            counts = {g: sum(1 for m in members if m.grade == g) for g in (*GRADES, INSUFFICIENT)}
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
                )
            )
    rows = _rank_and_change(_assign_grades(rows, rubric.grades), {p.label: p for p in periods})
    teams = _teams(rubric, rows, obs_by, periods, rng if wanted is None else None)
    return GradeReport(
        kind=kind,
        periods=tuple(p.label for p in periods),
        agents=tuple(rows),
        teams=tuple(teams),
        method=rubric.grades.method,
        thresholds=dict(rubric.grades.thresholds),
        min_conversations=rubric.min_conversations,
        n_records=len(dataset.observations) + len(dataset.undated),
        n_undated=len(dataset.undated),
        notes=dataset.notes,
    )
