"""Simulation: a known training effect on some indicators and none on others.

The engine's intervals must cover the true effect about 95% of the time, it
must find the injected effects, and across repeated no-effect simulations it
must report an effect (on any indicator of an event) in about 5% of runs, not more.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from gradingsim import TREND, TRUE_EFFECTS, TRUE_GAIN, TRUE_REACTION, simulate, simulate_feedback

from kefuqa.grading.dataset import build_dataset
from kefuqa.grading.impact import EventImpact, analyse_event
from kefuqa.grading.kpis import combine, measure
from kefuqa.grading.reaction_learning import analyse_learning, analyse_reaction
from kefuqa.grading.rubric import load_rubric
from kefuqa.grading.verdicts import CANNOT_TELL, IMPROVED, POSITIVE, no_outcomes

RUBRIC = load_rubric()
N_NULL = 200
N_EFFECT = 50


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    # Hundreds of tiny regressions: BLAS threads only fight over the 2 CI cores.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn, a dependency
        yield
        return
    with threadpool_limits(limits=1):
        yield


def _impact(seed: int, effects: dict[str, float], *, outcomes: bool = True, **kw) -> EventImpact:
    sim = simulate(seed, effects=effects, **kw)
    data = build_dataset(
        sim.records,
        sim.roster,
        tz=RUBRIC.tz,
        events=sim.events,
        outcomes=sim.outcomes if outcomes else None,
    )
    return analyse_event(data, RUBRIC, "ev-1", per_agent=False, lang="en")


def _covers(e, truth: float) -> bool:
    return e.ci_low is not None and e.ci_low <= truth <= e.ci_high


def _significant(e) -> bool:
    return e.p_value is not None and e.p_value < 0.05 and not e.ci_low <= 0 <= e.ci_high


@pytest.fixture(scope="module")
def null_runs() -> list[EventImpact]:
    with _one_blas_thread():
        return [_impact(10_000 + s, {}, per_window=20) for s in range(N_NULL)]


@pytest.fixture(scope="module")
def effect_runs() -> list[EventImpact]:
    with _one_blas_thread():
        return [_impact(20_000 + s, TRUE_EFFECTS, per_window=40) for s in range(N_EFFECT)]


def test_no_effect_is_reported_in_about_5_percent_of_runs(null_runs):
    any_effect = np.mean(
        [any(e.verdict != CANNOT_TELL for e in run.indicators) for run in null_runs]
    )
    per_test = np.mean([_significant(e) for run in null_runs for e in run.indicators])
    # 200 runs: a calibrated 5% lands in [2%, 9%] with > 99% probability
    assert any_effect <= 0.09, f"effect reported in {any_effect:.1%} of no-effect runs"
    assert 0.02 <= per_test <= 0.08, f"single-indicator false-positive rate {per_test:.1%}"


def test_no_effect_intervals_cover_zero(null_runs):
    effects = [e for run in null_runs for e in run.indicators]
    shown = [e for e in effects if e.ci_low is not None]
    coverage = np.mean([_covers(e, 0.0) for e in shown])
    assert coverage >= 0.93, f"coverage of 0 is {coverage:.1%}"
    # an interval is missing only where too few agents had data, and then it says so
    missing = [e for e in effects if e.ci_low is None]
    assert len(shown) >= 0.9 * len(effects)
    assert all(e.verdict == CANNOT_TELL and "trained agent(s)" in e.reason for e in missing)


def test_diff_in_diff_is_not_fooled_by_a_season(null_runs):
    # Everyone got 6 s slower after the training date; the trained agents alone show it,
    # the comparison with untrained agents removes it.
    avg = [next(e for e in run.indicators if e.indicator == "avg_response") for run in null_runs]
    paired = np.mean([e.paired.diff for e in avg])
    assert paired == pytest.approx(TREND["avg_response"], abs=1.5)
    assert all(e.method == "did" for e in avg)
    assert abs(np.mean([e.estimate for e in avg])) < 1.5
    assert np.mean([e.verdict != CANNOT_TELL for e in avg]) <= 0.05


def test_intervals_cover_the_true_effect(effect_runs):
    keys = [e.indicator for e in effect_runs[0].indicators]
    per_indicator = {
        k: np.mean(
            [
                _covers(
                    next(e for e in run.indicators if e.indicator == k), TRUE_EFFECTS.get(k, 0.0)
                )
                for run in effect_runs
            ]
        )
        for k in keys
    }
    pooled = np.mean(list(per_indicator.values()))
    assert pooled >= 0.90, per_indicator
    assert min(per_indicator.values()) >= 0.82, per_indicator


def test_injected_effects_are_found_and_others_are_not(effect_runs):
    for key, truth in TRUE_EFFECTS.items():
        found = np.mean(
            [
                next(e for e in run.indicators if e.indicator == key).verdict == IMPROVED
                for run in effect_runs
            ]
        )
        assert found >= 0.5, f"{key} ({truth:+}) found in only {found:.0%} of runs"
    false = np.mean(
        [
            e.verdict != CANNOT_TELL
            for run in effect_runs
            for e in run.indicators
            if e.indicator not in TRUE_EFFECTS
        ]
    )
    assert false <= 0.05


def test_lower_is_better_indicators_count_a_fall_as_improvement(effect_runs):
    first = [
        next(e for e in run.indicators if e.indicator == "first_response") for run in effect_runs
    ]
    found = [e for e in first if e.verdict == IMPROVED]
    assert found and all(e.estimate < 0 for e in found)
    assert "fell by" in found[0].reason


def test_without_untrained_agents_the_paired_comparison_is_used_and_said():
    run = _impact(7, TRUE_EFFECTS, n_control=0, trend={})
    analysed = [e for e in run.indicators if e.method is not None]
    assert analysed and all(e.method == "paired" and e.did is None for e in analysed)
    assert any("No comparison group" in n for n in run.notes)
    polite = next(e for e in run.indicators if e.indicator == "polite_rate")
    assert "no comparison group" in polite.reason
    assert _covers(polite, TRUE_EFFECTS["polite_rate"])


def test_too_few_trained_agents_cannot_tell():
    run = _impact(8, TRUE_EFFECTS, n_treated=3)
    assert all(e.verdict == CANNOT_TELL for e in run.indicators)
    assert "only 3 trained agent(s)" in run.indicators[0].reason
    assert any("cannot tell" in line for line in run.summary)


def test_missing_outcome_data_leaves_level_4_results_untold():
    run = _impact(9, TRUE_EFFECTS, outcomes=False)
    outcome_keys = {"csat", "complaint_rate", "repeat_contact_rate"}
    for e in run.indicators:
        if e.indicator in outcome_keys:
            assert (e.verdict, e.reason, e.p_value) == (CANNOT_TELL, no_outcomes("en"), None)
    assert any("No outcome data" in n for n in run.notes)
    # the eight indicators that were tested form the Holm family
    tested = [e for e in run.indicators if e.p_adjusted is not None]
    assert len(tested) == 8
    assert any(
        "8 indicators" in e.reason
        for e in tested
        if e.verdict == CANNOT_TELL and e.p_value is not None and e.p_value < 0.05
    ) or all(e.p_value >= 0.05 or e.verdict != CANNOT_TELL for e in tested)


def test_per_agent_effects_and_windows_exclude_training_days():
    sim = simulate(11, effects=TRUE_EFFECTS)
    data = build_dataset(
        sim.records, sim.roster, tz=RUBRIC.tz, events=sim.events, outcomes=sim.outcomes
    )
    run = analyse_event(data, RUBRIC, "ev-1", before_days=30, after_days=45, lang="en")
    assert (run.windows.before_end - run.windows.before_start).days == 29
    assert (run.windows.after_end - run.windows.after_start).days == 44
    assert (
        run.windows.before_end < run.training_start and run.windows.after_start > run.training_end
    )
    rows = [a for a in run.agents if a.indicator == "polite_rate"]
    assert {a.agent_id for a in rows} == set(run.treated)
    for a in rows:
        assert a.n_before >= 1 and a.n_after >= 1
        if a.ci_low is not None:
            assert a.ci_low <= a.diff <= a.ci_high


# Levels 1 and 2: a cohort of 10 trainees, two tests each (笔试, 角色扮演), three survey questions.
TRAINEES = tuple(f"a-{i:03d}" for i in range(10))


def _levels_one_two(seed: int, reaction: float, gain: float):
    fb = simulate_feedback(seed, TRAINEES, reaction=reaction, gain=gain)
    rng = np.random.default_rng(seed)
    return (
        analyse_reaction(fb.surveys, "ev-1", TRAINEES, RUBRIC, "en"),
        analyse_learning(fb.exams, "ev-1", TRAINEES, RUBRIC, rng, "en"),
    )


@pytest.fixture(scope="module")
def null_feedback():
    with _one_blas_thread():
        return [_levels_one_two(30_000 + s, 0.0, 0.0) for s in range(N_NULL)]


@pytest.fixture(scope="module")
def effect_feedback():
    with _one_blas_thread():
        return [_levels_one_two(40_000 + s, TRUE_REACTION, TRUE_GAIN) for s in range(N_EFFECT)]


def test_levels_1_and_2_report_no_effect_in_about_5_percent_of_no_effect_runs(null_feedback):
    reaction = np.mean([r.verdict != CANNOT_TELL for r, _ in null_feedback])
    any_test = np.mean([any(x.verdict != CANNOT_TELL for x in tests) for _, tests in null_feedback])
    assert reaction <= 0.09, f"a reaction reported in {reaction:.1%} of neutral runs"
    assert any_test <= 0.09, f"a learning effect reported in {any_test:.1%} of no-gain runs"
    covers = np.mean([r.ci_low <= 3 <= r.ci_high for r, _ in null_feedback])
    assert covers >= 0.91, f"the neutral point is inside {covers:.1%} of the reaction intervals"
    assert all(len(tests) == 2 and all(x.p_adjusted is not None for x in tests) for _, tests in null_feedback)


def test_levels_1_and_2_find_the_injected_effects(effect_feedback):
    positive = np.mean([r.verdict == POSITIVE for r, _ in effect_feedback])
    assert positive >= 0.8, f"a positive reaction found in only {positive:.0%} of runs"
    tests = [x for _, run in effect_feedback for x in run]
    found = np.mean([x.verdict == IMPROVED for x in tests])
    covers = np.mean([x.ci_low <= TRUE_GAIN <= x.ci_high for x in tests])
    assert found >= 0.8, f"the exam gain found in only {found:.0%} of tests"
    assert covers >= 0.88, f"the intervals cover the true gain in {covers:.1%} of tests"
    assert "above the neutral point 3" in effect_feedback[0][0].reason


# Repeat contacts found in the records by customer_id, with no outcome file: every
# conversation is a repeat contact with probability p (the agent's rate; gradingsim._visits).
# Only this indicator is analysed, so that hundreds of runs stay cheap.
REPEAT = "repeat_contact_rate"
REPEAT_ONLY = dataclasses.replace(
    RUBRIC,
    groups=(dataclasses.replace(RUBRIC.group_of(REPEAT), weight=1.0, indicators=(RUBRIC.indicator(REPEAT),)),),
)
TRUE_REPEAT = -0.05  # from a base of 5–15% (mean 10%)


def _repeat_run(seed: int, effect: float, per_window: int):
    sim = simulate(seed, effects={REPEAT: effect} if effect else {}, per_window=per_window, customers=True)
    window = timedelta(hours=RUBRIC.repeat_contact_window_hours)
    data = build_dataset(sim.records, sim.roster, tz=RUBRIC.tz, events=sim.events, repeat_window=window)
    assert not data.has_outcomes and data.has_outcome("repeat_contact")
    return analyse_event(data, REPEAT_ONLY, "ev-1", per_agent=False, lang="en").indicators[0]


@pytest.fixture(scope="module")
def null_repeats():
    with _one_blas_thread():
        return [_repeat_run(50_000 + s, 0.0, per_window=20) for s in range(N_NULL)]


@pytest.fixture(scope="module")
def effect_repeats():
    with _one_blas_thread():
        return [_repeat_run(60_000 + s, TRUE_REPEAT, per_window=80) for s in range(N_EFFECT)]


def test_repeat_contacts_from_customer_ids_are_found_at_their_true_rate(null_repeats):
    # The before window lies well inside the archive: the rate found is the simulated one.
    before = np.mean([e.treated_before[0] for e in null_repeats] + [e.control_before[0] for e in null_repeats])
    assert before == pytest.approx(0.10, abs=0.005)
    assert all(e.method == "did" for e in null_repeats)


def test_repeat_contacts_from_customer_ids_report_no_effect_in_about_5_percent_of_runs(null_repeats):
    false = np.mean([e.verdict != CANNOT_TELL for e in null_repeats])
    covers = np.mean([_covers(e, 0.0) for e in null_repeats])
    assert false <= 0.09, f"a repeat-contact effect reported in {false:.1%} of no-effect runs"
    assert covers >= 0.91, f"0 inside {covers:.1%} of the intervals"


def test_repeat_contacts_from_customer_ids_find_a_fall(effect_repeats):
    found = np.mean([e.verdict == IMPROVED and e.estimate < 0 for e in effect_repeats])
    covers = np.mean([_covers(e, TRUE_REPEAT) for e in effect_repeats])
    assert found >= 0.5, f"a {TRUE_REPEAT:+} fall found in only {found:.0%} of runs"
    assert covers >= 0.88, f"the intervals cover the true fall in {covers:.1%} of runs"


def test_all_four_levels_together_and_the_retraining_list():
    sim = simulate(11, effects=TRUE_EFFECTS, per_window=40)
    data = build_dataset(sim.records, sim.roster, tz=RUBRIC.tz, events=sim.events, outcomes=sim.outcomes)
    trained = sim.events[0].agents
    feedback = simulate_feedback(11, trained, reaction=TRUE_REACTION, gain=TRUE_GAIN)
    alone = analyse_event(data, RUBRIC, "ev-1", lang="en")
    full = analyse_event(data, RUBRIC, "ev-1", feedback=feedback, lang="en")
    # levels 1 and 2 have their own random stream: adding them leaves levels 3 and 4 as they were
    assert full.indicators == alone.indicators
    assert [x.status for x in full.evaluation.levels[:3]] == [POSITIVE, IMPROVED, IMPROVED]
    # a trainee is a candidate exactly when the after-window QA score or an exam after is below the line
    rule, mark = RUBRIC.grades, RUBRIC.learning.pass_mark
    below = set()
    for agent in trained:
        after = [o for o in data.observations if o.agent_id == agent and full.windows.side(o.day) == "after"]
        _, score = combine(RUBRIC, measure(RUBRIC, after, None))
        exams = [x.after for x in feedback.exams or () if x.agent_id == agent and x.after is not None]
        if (len(after) >= RUBRIC.impact.min_conversations and score is not None and score < rule.pass_cut) or any(
            x < mark for x in exams
        ):
            below.add(agent)
    assert {c.agent_id for c in full.retraining.candidates} == below and below
