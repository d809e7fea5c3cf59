"""Training impact: did the trained agents' behaviour (level 3) and results (level 4) change?

For one training event and each indicator, conversations in a window before
the first training day are compared with a window after the last one
(training days excluded):

- per agent: after − before with a two-sample bootstrap interval and effect size;
- per cohort: the agents' paired differences (bootstrap interval, d_z, paired t);
- difference-in-differences against agents not trained in the window
  (OLS on the agents' changes, HC2 = agent-clustered CR2 errors), the headline
  when enough untrained agents have data; otherwise the paired comparison, said so.

An effect is claimed only when the headline interval excludes 0 and its
Holm-adjusted p-value (across the event's indicators) is below alpha.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np

from .dataset import Dataset, Observation
from .effects import AgentEffect, CohortEffect, agent_effects, apply_holm, cohort_effect
from .errors import InputError
from .inputs import TrainingEvent
from .kpis import values_of
from .rubric import ImpactSettings, Indicator, Rubric
from .verdicts import CANNOT_TELL, NO_OUTCOMES


@dataclass(frozen=True)
class Windows:
    before_start: date
    before_end: date  # inclusive
    after_start: date
    after_end: date  # inclusive

    @classmethod
    def around(cls, event: TrainingEvent, before_days: int, after_days: int) -> Windows:
        return cls(
            event.start - timedelta(days=before_days),
            event.start - timedelta(days=1),
            event.end + timedelta(days=1),
            event.end + timedelta(days=after_days),
        )

    def side(self, day: date) -> str | None:
        if self.before_start <= day <= self.before_end:
            return "before"
        if self.after_start <= day <= self.after_end:
            return "after"
        return None


@dataclass(frozen=True)
class EventImpact:
    event_id: str
    course: str
    training_start: date
    training_end: date
    windows: Windows
    settings: ImpactSettings
    treated: tuple[str, ...]
    controls: tuple[str, ...]
    excluded_controls: tuple[
        str, ...
    ]  # untrained in this event but trained in another in the window
    indicators: tuple[CohortEffect, ...]
    agents: tuple[AgentEffect, ...]
    summary: tuple[str, ...]
    notes: tuple[str, ...]


def _split(
    obs_by_agent: dict[str, dict[str, list[Observation]]], agents: tuple[str, ...], ind: Indicator
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each agent's per-conversation values before and after; the caller filters by size."""
    out = {}
    for a in agents:
        sides = obs_by_agent.get(a, {})
        out[a] = (values_of(ind, sides.get("before", [])), values_of(ind, sides.get("after", [])))
    return out


def _summary(effects: list[CohortEffect]) -> tuple[str, ...]:
    lines = []
    for level, title in ((3, "Level 3 (behaviour, from QA scores)"), (4, "Level 4 (results)")):
        mine = [e for e in effects if e.level == level]
        if not mine:
            continue
        moved = [f"{e.name} {e.verdict}" for e in mine if e.verdict != CANNOT_TELL]
        unknown = [e.name for e in mine if e.verdict == CANNOT_TELL]
        parts = []
        if moved:
            parts.append("; ".join(moved))
        if unknown:
            parts.append(f"the data cannot tell for {len(unknown)}: {', '.join(unknown)}")
        text = ". ".join(p[0].upper() + p[1:] for p in parts) if parts else "Nothing analysed"
        lines.append(f"{title}: {text}.")
    return tuple(lines)


@dataclass(frozen=True)
class _Cohorts:
    """Who is compared: the event's trained agents, the untrained agents with no other
    training inside the windows, and the untrained ones left out for having some."""

    treated: tuple[str, ...]
    controls: tuple[str, ...]
    excluded: tuple[str, ...]

    @classmethod
    def of(cls, dataset: Dataset, event_id: str, win: Windows) -> _Cohorts:
        event = dataset.events[event_id]
        busy = {
            a
            for e in dataset.events.values()
            if e.event_id != event_id
            and e.start <= win.after_end
            and e.end >= win.before_start
            for a in e.agents
        }
        others = sorted(a for a in dataset.agents if a not in event.agents)
        return cls(
            treated=tuple(a for a in event.agents if a in dataset.agents),
            controls=tuple(a for a in others if a not in busy),
            excluded=tuple(a for a in others if a in busy),
        )


def _event(dataset: Dataset, event_id: str) -> TrainingEvent:
    if event_id not in dataset.events:
        raise InputError(
            "events",
            f"unknown training event {event_id!r}; known: {sorted(dataset.events)[:10]}",
            field="event_id",
        )
    return dataset.events[event_id]


def _by_agent_and_side(
    dataset: Dataset, win: Windows, cohorts: _Cohorts
) -> dict[str, dict[str, list[Observation]]]:
    """The cohorts' observations by agent, then by window side ("before" / "after")."""
    obs_by_agent: dict[str, dict[str, list[Observation]]] = defaultdict(lambda: defaultdict(list))
    wanted = set(cohorts.treated) | set(cohorts.controls)
    for o in dataset.observations:
        side = win.side(o.day) if o.agent_id in wanted else None
        if side:
            obs_by_agent[o.agent_id][side].append(o)
    return obs_by_agent


def _effects(
    dataset: Dataset,
    rubric: Rubric,
    s: ImpactSettings,
    obs_by_agent: dict[str, dict[str, list[Observation]]],
    cohorts: _Cohorts,
    per_agent: bool,
) -> tuple[list[CohortEffect], list[AgentEffect]]:
    """Cohort effects (Holm-adjusted) and, if asked, per-agent effects, indicator by
    indicator from one random stream seeded by the rubric."""
    rng = np.random.default_rng(rubric.seed)
    effects: list[CohortEffect] = []
    agent_rows: list[AgentEffect] = []
    for ind in rubric.indicators:
        tv = _split(obs_by_agent, cohorts.treated, ind)
        cv = _split(obs_by_agent, cohorts.controls, ind)
        if ind.source.outcome is not None and not dataset.has_outcomes:
            eff = cohort_effect(ind, tv, cv, s, rubric, rng)
            effects.append(replace(eff, reason=NO_OUTCOMES))
            continue
        effects.append(cohort_effect(ind, tv, cv, s, rubric, rng))
        if per_agent:
            agent_rows += agent_effects(ind, tv, s, rubric, rng)
    return apply_holm(effects, s), agent_rows


def _notes(
    effects: list[CohortEffect], cohorts: _Cohorts, s: ImpactSettings, has_outcomes: bool
) -> tuple[str, ...]:
    notes = []
    if max((e.n_control for e in effects), default=0) < s.min_control_agents:
        notes.append(
            f"No comparison group: fewer than {s.min_control_agents} untrained agents "
            f"have data in both windows, so results compare the trained agents with "
            f"themselves and cannot separate training from changes that hit everyone."
        )
    if cohorts.excluded:
        notes.append(
            f"{len(cohorts.excluded)} agent(s) left out of the comparison group because they had "
            f"other training inside the windows."
        )
    if not has_outcomes:
        notes.append("No outcome data given: level 4 rests on customer end sentiment only.")
    return tuple(notes)


def analyse_event(
    dataset: Dataset,
    rubric: Rubric,
    event_id: str,
    *,
    before_days: int | None = None,
    after_days: int | None = None,
    per_agent: bool = True,
) -> EventImpact:
    """The full before/after analysis of one training event."""
    event = _event(dataset, event_id)
    s = replace(
        rubric.impact,
        before_days=before_days or rubric.impact.before_days,
        after_days=after_days or rubric.impact.after_days,
    )
    win = Windows.around(event, s.before_days, s.after_days)
    cohorts = _Cohorts.of(dataset, event_id, win)
    obs_by_agent = _by_agent_and_side(dataset, win, cohorts)
    effects, agent_rows = _effects(dataset, rubric, s, obs_by_agent, cohorts, per_agent)
    return EventImpact(
        event_id=event.event_id,
        course=event.course,
        training_start=event.start,
        training_end=event.end,
        windows=win,
        settings=s,
        treated=cohorts.treated,
        controls=cohorts.controls,
        excluded_controls=cohorts.excluded,
        indicators=tuple(effects),
        agents=tuple(agent_rows),
        summary=_summary(effects),
        notes=_notes(effects, cohorts, s, dataset.has_outcomes),
    )
