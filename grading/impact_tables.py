"""The training-impact CSVs: their columns and one row per indicator, agent, test or candidate."""

from __future__ import annotations

from typing import Any

from .effects import AgentEffect, CohortEffect
from .impact import EventImpact
from .texts import tr

IMPACT_COLUMNS = [
    "event_id",
    "course",
    "indicator",
    "name",
    "level",
    "n_treated",
    "n_control",
    "method",
    "estimate",
    "ci_low",
    "ci_high",
    "effect_size",
    "p_value",
    "p_adjusted",
    "verdict",
    "reason",
    "treated_before",
    "treated_after",
    "control_before",
    "control_after",
    "paired_diff",
    "paired_boot_ci_low",
    "paired_boot_ci_high",
    "paired_d_z",
    "paired_p",
    "did_estimate",
    "did_ci_low",
    "did_ci_high",
    "did_p",
]
IMPACT_AGENT_COLUMNS = [
    "event_id",
    "agent_id",
    "indicator",
    "n_before",
    "n_after",
    "before",
    "after",
    "diff",
    "ci_low",
    "ci_high",
    "effect_size",
    "verdict",
    "reason",
]


def impact_row(ev: EventImpact, e: CohortEffect) -> list[Any]:
    """One indicator of one event: the headline, the cohort means (point estimates only),
    then the paired and difference-in-differences details."""
    p, d = e.paired, e.did
    return [
        ev.event_id,
        ev.course,
        e.indicator,
        e.name,
        e.level,
        e.n_treated,
        e.n_control,
        e.method,
        e.estimate,
        e.ci_low,
        e.ci_high,
        e.effect_size,
        e.p_value,
        e.p_adjusted,
        e.verdict,
        e.reason,
        *(e.treated_before or (None,) * 3)[:1],
        *(e.treated_after or (None,) * 3)[:1],
        *(e.control_before or (None,) * 3)[:1],
        *(e.control_after or (None,) * 3)[:1],
        p and p.diff,
        p and p.ci and p.ci[0],
        p and p.ci and p.ci[1],
        p and p.d_z,
        p and p.p_value,
        d and d.estimate,
        d and d.ci and d.ci[0],
        d and d.ci and d.ci[1],
        d and d.p_value,
    ]


def impact_agent_row(ev: EventImpact, a: AgentEffect) -> list[Any]:
    return [
        ev.event_id,
        a.agent_id,
        a.indicator,
        a.n_before,
        a.n_after,
        a.before,
        a.after,
        a.diff,
        a.ci_low,
        a.ci_high,
        a.effect_size,
        a.verdict,
        a.reason,
    ]


LEVEL12_COLUMNS = [
    "event_id",
    "level",
    "test",
    "n",
    "before",
    "after",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "pass_rate",
    "verdict",
    "reason",
]
RETRAINING_COLUMNS = ["event_id", "agent_id", "n_after", "qa_score", "exams_below", "reasons"]


def level12_rows(ev: EventImpact) -> list[list[Any]]:
    """Level 1 (one row: the survey against its neutral point) and level 2 (one row per test)."""
    rows: list[list[Any]] = []
    r = ev.reaction
    if r is not None:
        rows.append(
            [ev.event_id, 1, "", r.n_respondents, r.neutral, r.mean, r.mean, r.ci_low, r.ci_high,
             r.p_value, None, None, r.verdict, r.reason]
        )
    for x in ev.learning or ():
        rows.append(
            [ev.event_id, 2, x.test, x.n_paired, x.mean_before, x.mean_after, x.diff, x.ci_low, x.ci_high,
             x.p_value, x.p_adjusted, x.pass_rate, x.verdict, x.reason]
        )
    return rows


def retraining_rows(ev: EventImpact) -> list[list[Any]]:
    sep = tr(ev.lang, "sep")
    return [
        [ev.event_id, c.agent_id, c.n_after, c.qa_score, sep.join(f"{k} {v:g}" for k, v in c.exams_below.items()),
         sep.join(c.reasons)]
        for c in ev.retraining.candidates
    ]
