"""Grades per agent per period: minimum sample, review override, missing outcomes, rank, change."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from gradingsim import GOOD, record

from kefuqa.grading.dataset import UNASSIGNED, build_dataset
from kefuqa.grading.grades import grade_all
from kefuqa.grading.inputs import Outcome, RosterEntry
from kefuqa.grading.kpis import combine, measure
from kefuqa.grading.rubric import INSUFFICIENT, GradeRule, RepeatedLow, load_rubric

RUBRIC = load_rubric()
POOR = {
    "politeness": "poor",
    "emotional_control": "poor",
    "resolution": "unresolved",
    "sentiment": "negative",
}


def _month(agent: str, n: int, month: int = 3, labels: dict | None = None, start: int = 0) -> list:
    return [
        record(
            f"{agent}-{month}-{start + i}",
            agent,
            f"2026-{month:02d}-{1 + i % 28:02d}T10:00:00+08:00",
            labels,
        )
        for i in range(n)
    ]


def _grade(records, roster=None, kind="month", rubric=RUBRIC, lang="zh-CN", **kw):
    roster = roster or [RosterEntry(a, "t1", None) for a in sorted({r.agent_id for r in records})]
    return grade_all(build_dataset(records, roster, tz=rubric.tz, **kw), rubric, kind, lang=lang)


def _row(report, agent, period):
    return next(r for r in report.agents if r.agent_id == agent and r.period == period)


def test_minimum_sample_rule_29_vs_30():
    report = _grade(_month("a", 29) + _month("b", 30))
    a, b = _row(report, "a", "2026-03"), _row(report, "b", "2026-03")
    assert (a.graded, a.grade, a.score) == (False, INSUFFICIENT, None)
    assert a.reason == "29 通对话，少于最低要求 30 通"
    assert a.rank_in_team is None
    assert b.graded and b.grade == "优秀" and b.score == pytest.approx(100.0)


def test_minimum_is_configurable():
    rubric = dataclasses.replace(RUBRIC, min_conversations=5)
    assert _row(_grade(_month("a", 5), rubric=rubric), "a", "2026-03").graded


def test_all_good_scores_100_and_all_poor_scores_0():
    report = _grade(_month("good", 30) + _month("bad", 30, labels=POOR))
    good, bad = _row(report, "good", "2026-03"), _row(report, "bad", "2026-03")
    # response times (10 s, 20 s) are full marks for both; everything else is opposite
    assert good.score == pytest.approx(100.0)
    assert bad.group_scores["attitude"] == 0 and bad.group_scores[
        "problem_solving"
    ] == pytest.approx(0.7 * 0 + 0.3 * 100)
    assert bad.grade == "不合格"


def test_reviewed_labels_override_the_model():
    recs = _month("a", 30, labels=POOR)
    # the record's own reviewed_labels and a reviews file both override the model's labels
    recs = [r.model_copy(update={"reviewed_labels": {"politeness": "good"}}) for r in recs]
    reviews = {r.id: {"emotional_control": "good"} for r in recs[:15]}
    row = _row(_grade(recs, reviews=reviews), "a", "2026-03")
    values = {v.key: v.value for v in row.indicators}
    assert values["polite_rate"] == 1.0 and values["taboo_rate"] == 0.0
    assert values["emotional_control"] == 0.5


def test_reviews_file_wins_over_the_records_own_review():
    recs = [record("c1", "a", "2026-03-02T10:00:00+08:00", POOR, reviewed={"politeness": "fair"})]
    data = build_dataset(recs, [], tz=RUBRIC.tz, reviews={"c1": {"politeness": "good"}})
    assert data.observations[0].labels["politeness"] == "good"
    data = build_dataset(recs, [], tz=RUBRIC.tz)
    assert data.observations[0].labels["politeness"] == "fair"


def test_missing_outcome_data_drops_those_indicators_and_rescales_weights():
    recs = _month("a", 30) + _month("b", 30, labels={**GOOD, "sentiment": "negative"})
    without = _grade(recs)
    row = _row(without, "b", "2026-03")
    assert set(row.missing) == {"csat", "complaint_rate", "repeat_contact_rate"}
    csat = next(v for v in row.indicators if v.key == "csat")
    assert (csat.n, csat.value, csat.score, csat.ci_low) == (0, None, None, None)
    # satisfaction rests on end sentiment alone: all negative → 0, not a blend with missing data
    assert row.group_scores["satisfaction"] == 0.0
    assert row.score == pytest.approx(80.0)  # 0.3·100 + 0.3·100 + 0.2·100 + 0.2·0

    outcomes = {r.id: Outcome(5.0, 0.0, 0.0) for r in recs}
    with_outcomes = _row(_grade(recs, outcomes=outcomes), "b", "2026-03")
    assert with_outcomes.missing == ()
    assert with_outcomes.group_scores["satisfaction"] == pytest.approx(60.0)  # 0.4·0 + 0.6·100


def test_partly_missing_outcomes_count_only_known_cells():
    recs = _month("a", 30)
    outcomes = {recs[0].id: Outcome(4.0, None, 1.0), recs[1].id: Outcome(None, 0.0, None)}
    row = _row(_grade(recs, outcomes=outcomes), "a", "2026-03")
    v = {i.key: i for i in row.indicators}
    assert (v["csat"].n, v["csat"].value) == (1, 4.0)
    assert (v["complaint_rate"].n, v["complaint_rate"].value) == (1, 0.0)
    assert (v["repeat_contact_rate"].n, v["repeat_contact_rate"].value) == (1, 1.0)


def test_null_response_times_are_left_out_not_zero():
    recs = _month("a", 30)
    recs += [
        record(f"x{i}", "a", "2026-03-05T10:00:00+08:00", first=None, avg=None) for i in range(5)
    ]
    v = {i.key: i for i in _row(_grade(recs), "a", "2026-03").indicators}
    assert v["first_response"].n == 30 and v["first_response"].value == pytest.approx(10.0)
    assert v["polite_rate"].n == 35


def test_indicator_intervals():
    recs = _month("a", 20) + _month("a", 20, labels={**GOOD, "politeness": "fair"}, start=100)
    v = {
        i.key: i
        for i in measure(
            RUBRIC,
            build_dataset(recs, [], tz=RUBRIC.tz).observations,
            rng=__import__("numpy").random.default_rng(0),
        )
    }
    p = v["polite_rate"]
    assert p.value == 0.5 and p.ci_low == pytest.approx(0.3519, abs=1e-3)  # Wilson, n=40
    assert p.ci_high == pytest.approx(0.6481, abs=1e-3)
    assert v["first_response"].ci_low == v["first_response"].ci_high == 10.0  # constant data


def test_rank_in_team_and_change_vs_previous_period():
    recs = (
        _month("a", 30, 3)
        + _month("b", 30, 3, labels={**GOOD, "resolution": "unresolved"})
        + _month("c", 30, 3)
        + _month("a", 30, 4, labels={**GOOD, "resolution": "escalated"})
    )
    roster = [
        RosterEntry("a", "t1", None),
        RosterEntry("b", "t1", None),
        RosterEntry("c", "t2", None),
    ]
    report = _grade(recs, roster)
    a3, b3, c3 = (_row(report, x, "2026-03") for x in "abc")
    assert (a3.rank_in_team, a3.graded_in_team) == (1, 2)
    assert (b3.rank_in_team, b3.graded_in_team) == (2, 2)
    assert (c3.rank_in_team, c3.graded_in_team) == (1, 1)
    a4 = _row(report, "a", "2026-04")
    assert a4.previous_score == pytest.approx(100.0)
    assert a4.score_change == pytest.approx(a4.score - 100.0) and a4.score_change < 0
    assert a4.previous_grade == "优秀"
    change = {v.key: v.change for v in a4.indicators}
    assert change["resolution_rate"] == pytest.approx(-1.0)
    # b had no April conversations: a row with 数据不足, not a missing row
    assert _row(report, "b", "2026-04").grade == INSUFFICIENT


def test_team_aggregates():
    recs = _month("a", 30) + _month("b", 10)
    report = _grade(recs)
    team = next(t for t in report.teams if t.period == "2026-03")
    assert (team.n_agents, team.n_graded, team.n_conversations) == (2, 1, 40)
    assert team.grade_counts["优秀"] == 1 and team.grade_counts[INSUFFICIENT] == 1
    assert team.mean_score == pytest.approx(100.0)


def test_hire_date_undated_and_off_roster():
    recs = _month("a", 30, 1) + _month("a", 30, 3) + _month("new", 30, 3) + _month("ghost", 3, 3)
    recs.append(record("undated", "a", None))
    roster = [RosterEntry("a", "t1", None), RosterEntry("new", "t1", date(2026, 3, 2))]
    report = _grade(recs, roster)
    assert {r.period for r in report.agents if r.agent_id == "new"} == {"2026-03"}
    assert {r.period for r in report.agents if r.agent_id == "a"} == {
        "2026-01",
        "2026-02",
        "2026-03",
    }
    assert _row(report, "ghost", "2026-03").team == UNASSIGNED
    assert report.n_undated == 1 and report.n_records == 94
    assert any("没有 started_at" in n for n in report.notes)
    assert any("不在花名册上" in n and "ghost" in n for n in report.notes)


def test_forced_distribution_within_team():
    recs = []
    for i in range(10):
        labels = {**GOOD, "resolution": "resolved" if i < 5 else "escalated"}
        recs += _month(f"a{i}", 30 + i, labels=labels)
    rubric = dataclasses.replace(RUBRIC, grades=dataclasses.replace(RUBRIC.grades, method="forced"))
    rows = [r for r in _grade(recs, rubric=rubric).agents]
    grades = sorted(r.grade for r in rows)
    # five agents tie at 100: the tie shares the top grade, the rest follow the quota ladder
    assert sum(g == "优秀" for g in grades) == 5
    assert all("（全员强制分布）" in r.reason for r in rows)


def test_combine_uses_only_indicators_with_data():
    values = measure(RUBRIC, [], rng=None)
    groups, total = combine(RUBRIC, values)
    assert total is None and all(v is None for v in groups.values())


WEAK = {**GOOD, "emotional_control": "poor", "resolution": "unresolved"}


def test_a_grade_reason_names_the_weakest_indicators():
    # emotional control 0 and resolution 0, everything else full marks:
    # 0.3·60 + 0.3·30 + 0.2·100 + 0.2·100 = 67 → 合格
    row = _row(_grade(_month("a", 30, labels=WEAK)), "a", "2026-03")
    assert row.grade == "合格"
    assert row.reason == "综合 67.0 分（绝对阈值）；最弱：情绪管理能力 0、问题解决率 0"
    en = _row(_grade(_month("a", 30, labels=WEAK), lang="en"), "a", "2026-03")
    assert en.reason == "score 67.0 (absolute thresholds); weakest: emotional control 0, resolution rate 0"
    full = _row(_grade(_month("b", 30)), "b", "2026-03")
    assert full.reason == "综合 100.0 分（绝对阈值）"  # nothing is weak at full marks


def _three_levels(**kw) -> object:
    rule = GradeRule(levels=("优秀", "合格", "不合格"), thresholds={"优秀": 85, "合格": 60}, **kw)
    return dataclasses.replace(RUBRIC, grades=rule)


def test_a_three_level_scheme_grades_with_its_own_levels():
    recs = _month("good", 30) + _month("weak", 30, labels=WEAK) + _month("bad", 30, labels=POOR)
    report = _grade(recs, rubric=_three_levels())
    grades = {a: _row(report, a, "2026-03").grade for a in ("good", "weak", "bad")}
    assert grades == {"good": "优秀", "weak": "合格", "bad": "不合格"}
    assert report.levels == ("优秀", "合格", "不合格")
    assert report.thresholds == {"优秀": 85, "合格": 60}
    team = report.teams[0]
    assert team.grade_counts == {"优秀": 1, "合格": 1, "不合格": 1, INSUFFICIENT: 0}


def test_forced_distribution_with_three_levels():
    recs = [r for i in range(10) for r in _month(f"a{i}", 30 + i, labels=WEAK if i % 2 else GOOD)]
    rubric = _three_levels(method="forced", forced_shares={"优秀": 0.2, "合格": 0.6, "不合格": 0.2})
    grades = [r.grade for r in _grade(recs, rubric=rubric).agents]
    # five agents tie at 100 and share the top grade; the five at 67 fill 合格 then 不合格
    assert grades.count("优秀") == 5 and set(grades) <= {"优秀", "合格", "不合格"}


def _poor_months(agent: str, months: list[int], n: int = 30) -> list:
    return [r for m in months for r in _month(agent, n, m, labels=POOR)]


def test_repeated_low_periods_are_flagged_and_a_gap_ends_the_run():
    recs = _poor_months("a", [1, 2, 3]) + _month("a", 10, 4, labels=POOR) + _poor_months("a", [5])
    recs += [r for m in (1, 2, 3, 4, 5) for r in _month("b", 30, m)]
    report = _grade(recs)
    a = [r for r in report.agents if r.agent_id == "a"]
    assert [r.low_streak for r in a] == [1, 2, 3, 0, 1]  # April: 数据不足, so no evidence, the run ends
    assert [r.repeated_low for r in a] == [False, False, True, False, False]
    assert a[2].flag == "末位：连续 3 期不合格（2026-01、2026-02、2026-03）"
    assert not any(r.repeated_low for r in report.agents if r.agent_id == "b")
    assert report.repeated_low_periods == 3


def test_last_in_team_counts_as_low_when_the_rubric_says_so():
    recs = [r for m in (1, 2) for r in _month("a", 30, m) + _month("b", 30, m, labels=WEAK)]
    rule = dataclasses.replace(RUBRIC.grades, repeated_low=RepeatedLow(periods=2, last_in_team=True))
    report = _grade(recs, rubric=dataclasses.replace(RUBRIC, grades=rule), lang="en")
    b = [r for r in report.agents if r.agent_id == "b"]
    assert [r.grade for r in b] == ["合格", "合格"] and b[1].repeated_low
    assert b[1].flag == "repeatedly low: 2 periods in a row 不合格 or last in team (2026-01, 2026-02)"
    plain = _grade(recs)  # by default only the lowest grade counts
    assert not any(r.repeated_low for r in plain.agents)
