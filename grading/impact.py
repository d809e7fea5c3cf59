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
from datetime import date

import numpy as np

from .channels import applies
from .course_inputs import CourseFeedback
from .dataset import Dataset, Observation
from .effects import AgentEffect, CohortEffect, agent_effects, apply_holm, cohort_effect
from .errors import InputError
from .evaluation import Evaluation, Findings, evaluate, summary_lines
from .inputs import TrainingEvent
from .kpis import values_of
from .reaction_learning import LearningResult, ReactionResult, analyse_learning, analyse_reaction
from .retraining import Retraining, retraining_candidates
from .rubric import ImpactSettings, Indicator, Rubric
from .texts import DEFAULT_LANG, Lang, join, tr
from .verdicts import no_outcomes
from .windows import Windows


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
    summary: tuple[str, ...]  # the four levels, one line each
    notes: tuple[str, ...]
    reaction: ReactionResult | None  # level 1; None without a survey file
    learning: tuple[LearningResult, ...] | None  # level 2, per test; None without an exam file
    retraining: Retraining
    evaluation: Evaluation  # the handbooks' report: purpose, method, results, problems, suggestions
    lang: Lang


def _split(
    obs_by_agent: dict[str, dict[str, list[Observation]]], agents: tuple[str, ...], ind: Indicator
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each agent's per-conversation values before and after; the caller filters by size."""
    out = {}
    for a in agents:
        sides = obs_by_agent.get(a, {})
        out[a] = (values_of(ind, sides.get("before", [])), values_of(ind, sides.get("after", [])))
    return out


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
    lang: Lang,
) -> tuple[list[CohortEffect], list[AgentEffect]]:
    """Cohort effects (Holm-adjusted) and, if asked, per-agent effects, indicator by
    indicator from one random stream seeded by the rubric."""
    rng = np.random.default_rng(rubric.seed)
    effects: list[CohortEffect] = []
    agent_rows: list[AgentEffect] = []
    for ind in rubric.indicators:
        if not applies(ind, dataset.observations):
            continue  # a call indicator where no call was scored: nothing to evaluate
        tv = _split(obs_by_agent, cohorts.treated, ind)
        cv = _split(obs_by_agent, cohorts.controls, ind)
        if ind.source.outcome is not None and not dataset.has_outcome(ind.source.outcome):
            eff = cohort_effect(ind, tv, cv, s, rubric, rng, lang)
            effects.append(replace(eff, reason=no_outcomes(lang)))
            continue
        effects.append(cohort_effect(ind, tv, cv, s, rubric, rng, lang))
        if per_agent:
            agent_rows += agent_effects(ind, tv, s, rubric, rng, lang)
    return apply_holm(effects, s, lang), agent_rows


def _notes(
    effects: list[CohortEffect], cohorts: _Cohorts, s: ImpactSettings, has_outcomes: bool, lang: Lang
) -> list[str]:
    notes = []
    if max((e.n_control for e in effects), default=0) < s.min_control_agents:
        notes.append(tr(lang, "note.no_control", n=s.min_control_agents))
    if cohorts.excluded:
        notes.append(tr(lang, "note.excluded", k=len(cohorts.excluded)))
    if not has_outcomes:
        notes.append(tr(lang, "note.no_outcomes"))
    return notes


def _feedback_notes(
    feedback: CourseFeedback, event_id: str, trained: tuple[str, ...], retrain: Retraining, min_conv: int, lang: Lang
) -> list[str]:
    rows = [(r.event_id, r.agent_id) for r in feedback.surveys or ()]
    rows += [(r.event_id, r.agent_id) for r in feedback.exams or ()]
    outside = sum(e == event_id and a not in trained for e, a in rows)
    notes = [tr(lang, "note.outside", k=outside)] if outside else []
    if retrain.too_little_data:
        agents = join(lang, retrain.too_little_data)
        notes.append(tr(lang, "note.too_little_data", k=len(retrain.too_little_data), n=min_conv, agents=agents))
    return notes


@dataclass(frozen=True)
class _LevelsOneTwo:
    reaction: ReactionResult | None
    learning: tuple[LearningResult, ...] | None
    retraining: Retraining


def _levels_one_two(
    rubric: Rubric,
    event_id: str,
    treated: tuple[str, ...],
    after: dict[str, list[Observation]],
    feedback: CourseFeedback,
    lang: Lang,
) -> _LevelsOneTwo:
    """Reaction and learning from the survey and exam files, and who needs re-training."""
    # Its own random stream, so that adding an exam file leaves levels 3 and 4 as they were.
    rng = np.random.default_rng(rubric.seed + 1)
    reaction = None
    if feedback.surveys is not None:
        reaction = analyse_reaction(feedback.surveys, event_id, treated, rubric, lang)
    learning = None
    if feedback.exams is not None:
        learning = analyse_learning(feedback.exams, event_id, treated, rubric, rng, lang)
    retrain = retraining_candidates(rubric, event_id, treated, after, feedback.exams or (), lang)
    return _LevelsOneTwo(reaction, learning, retrain)


def analyse_event(
    dataset: Dataset,
    rubric: Rubric,
    event_id: str,
    *,
    before_days: int | None = None,
    after_days: int | None = None,
    per_agent: bool = True,
    feedback: CourseFeedback | None = None,
    lang: Lang = DEFAULT_LANG,
) -> EventImpact:
    """The full evaluation of one training event: levels 1–4, re-training candidates and
    the handbooks' report sections."""
    event = _event(dataset, event_id)
    feedback = feedback or CourseFeedback()
    s = replace(
        rubric.impact,
        before_days=before_days or rubric.impact.before_days,
        after_days=after_days or rubric.impact.after_days,
    )
    win = Windows.around(event, s.before_days, s.after_days)
    cohorts = _Cohorts.of(dataset, event_id, win)
    obs_by_agent = _by_agent_and_side(dataset, win, cohorts)
    effects, agent_rows = _effects(dataset, rubric, s, obs_by_agent, cohorts, per_agent, lang)
    after = {a: obs_by_agent[a]["after"] for a in cohorts.treated if a in obs_by_agent}
    one_two = _levels_one_two(rubric, event_id, cohorts.treated, after, feedback, lang)
    n_control = max((e.n_control for e in effects), default=0)
    findings = Findings(
        event.course, event.purpose, win, len(cohorts.treated), n_control if n_control >= s.min_control_agents else 0,
        tuple(effects), one_two.reaction, one_two.learning, one_two.retraining, dataset.has_outcomes,
    )
    evaluation = evaluate(findings, rubric, lang)
    notes = _notes(effects, cohorts, s, dataset.has_outcomes, lang)
    notes += _feedback_notes(feedback, event_id, cohorts.treated, one_two.retraining, s.min_conversations, lang)
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
        summary=summary_lines(evaluation, lang),
        notes=tuple(notes),
        reaction=one_two.reaction,
        learning=one_two.learning,
        retraining=one_two.retraining,
        evaluation=evaluation,
        lang=lang,
    )
