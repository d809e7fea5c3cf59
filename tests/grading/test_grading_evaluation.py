"""The four-level evaluation of one training: levels 1 and 2, re-training candidates and
the handbooks' report sections (目的, 方法, 结果, 问题, 建议)."""

from __future__ import annotations

from datetime import date

import numpy as np
from gradingsim import GOOD, record

from kefuqa.grading.course_inputs import CourseFeedback, ExamScore, SurveyAnswer
from kefuqa.grading.dataset import build_dataset
from kefuqa.grading.evaluation import NOT_MEASURED
from kefuqa.grading.impact import analyse_event
from kefuqa.grading.inputs import RosterEntry, TrainingEvent
from kefuqa.grading.reaction_learning import analyse_learning, analyse_reaction
from kefuqa.grading.rubric import load_rubric
from kefuqa.grading.verdicts import CANNOT_TELL, NEGATIVE, POSITIVE

RUBRIC = load_rubric()
POOR = {"politeness": "poor", "emotional_control": "poor", "resolution": "unresolved", "sentiment": "negative"}
WEAK = {**GOOD, "emotional_control": "poor", "resolution": "unresolved"}  # 67 points
TRAINED = ("good", "weak", "bad", "few", "none")
EVENT = TrainingEvent("ev-1", "情绪管理", date(2026, 3, 9), date(2026, 3, 11), TRAINED, purpose="降低客户投诉")


def _after(agent: str, n: int, labels: dict) -> list:
    return [record(f"{agent}-{i}", agent, f"2026-03-{12 + i % 15:02d}T10:00:00+08:00", labels) for i in range(n)]


def _dataset():
    recs = _after("good", 20, GOOD) + _after("weak", 20, WEAK) + _after("bad", 20, POOR) + _after("few", 3, POOR)
    roster = [RosterEntry(a, "t1", None) for a in EVENT.agents]
    return build_dataset(recs, roster, tz=RUBRIC.tz, events=[EVENT])


def _feedback() -> CourseFeedback:
    return CourseFeedback(
        surveys=(
            SurveyAnswer("ev-1", "good", "讲师", 5),
            SurveyAnswer("ev-1", "bad", "讲师", 4),
            SurveyAnswer("ev-1", "outsider", "讲师", 1),  # not trained in ev-1: left out, with a note
        ),
        exams=(ExamScore("ev-1", "good", "", None, 90), ExamScore("ev-1", "few", "", None, 50)),
    )


def test_retraining_candidates_by_qa_score_and_by_exam():
    ev = analyse_event(_dataset(), RUBRIC, "ev-1", feedback=_feedback())
    candidates = {c.agent_id: c for c in ev.retraining.candidates}
    assert set(candidates) == {"bad", "few"}  # weak scores 67: above the 合格 line of 60
    bad, few = candidates["bad"], candidates["few"]
    assert bad.n_after == 20 and bad.qa_score is not None and bad.qa_score < 60
    assert bad.reasons[0].startswith("培训后 20 通对话综合 ") and "低于合格线 60 分；最弱：" in bad.reasons[0]
    assert few.qa_score is None and few.exams_below == {"考试": 50}  # 3 conversations: too few to score
    assert few.reasons == ("考试后测 50 分，低于及格线 60 分",)
    assert ev.retraining.too_little_data == ("none",)
    assert any("none" in n and "无法判断是否需要再培训" in n for n in ev.notes)
    assert any("1 行来自未参加本次培训的客服" in n for n in ev.notes)


def test_the_report_sections_follow_the_handbook():
    ev = analyse_event(_dataset(), RUBRIC, "ev-1", feedback=_feedback())
    e = ev.evaluation
    assert e.purpose == "降低客户投诉"  # the events file's purpose column
    assert [x.name for x in e.levels] == ["反应", "学习", "行为", "结果"]
    reaction, learning, behaviour, _ = e.levels
    assert reaction.status == CANNOT_TELL and "只有 2 名学员填写了问卷，需要 5 名" in reaction.text
    assert learning.status == CANNOT_TELL and "没有前测成绩" in learning.text and "后测通过率 50%" in learning.text
    assert behaviour.status == CANNOT_TELL
    assert any(m.startswith("行为：质检评分，培训前 60 天") for m in e.method)
    assert "2 名学员培训后仍未达标，见再培训名单" in e.problems
    assert "考试后测有 1 名学员低于及格线 60 分" in e.problems
    assert "安排再培训：bad、few" in e.suggestions
    assert any("--outcomes" in s for s in e.suggestions)  # no outcome data: ask for it
    assert ev.summary[0].startswith("第1级 反应：")


def test_without_survey_or_exam_levels_1_and_2_are_not_measured():
    ev = analyse_event(_dataset(), RUBRIC, "ev-1", lang="en")
    reaction, learning = ev.evaluation.levels[:2]
    assert (reaction.status, learning.status) == (NOT_MEASURED, NOT_MEASURED)
    assert reaction.text == "not measured: no after-course survey given (--survey)"
    assert ev.reaction is None and ev.learning is None
    assert any("levels not measured: reaction, learning" in p for p in ev.evaluation.problems)
    assert ev.evaluation.purpose == "降低客户投诉"


def _answers(ratings: dict[str, list[float]]) -> list[SurveyAnswer]:
    return [SurveyAnswer("ev-1", a, f"q{i}", r) for a, rs in ratings.items() for i, r in enumerate(rs)]


def test_reaction_counts_each_trainee_once_and_tests_against_the_neutral_point():
    trained = tuple(f"t{i}" for i in range(6))
    # t0 answers five questions at 5: still one trainee, not five votes
    ratings = {"t0": [5] * 5, **{a: [4, 5] for a in trained[1:]}}
    r = analyse_reaction(_answers(ratings), "ev-1", trained, RUBRIC, "zh-CN")
    assert (r.n_respondents, r.n_answers, r.response_rate) == (6, 15, 1.0)
    assert r.mean == np.mean([5, 4.5, 4.5, 4.5, 4.5, 4.5])
    assert r.verdict == POSITIVE and r.ci_low > 3 and "高于中性点 3" in r.reason
    low = analyse_reaction(_answers({a: [1, 2] for a in trained}), "ev-1", trained, RUBRIC, "zh-CN")
    assert low.verdict == NEGATIVE and low.mean == 1.5  # everyone the same: no interval, the sign decides
    assert [q.question for q in r.questions] == ["q0", "q1", "q2", "q3", "q4"]


def test_learning_pairs_each_trainee_and_holds_a_pass_rate_without_a_pretest():
    trained = tuple(f"t{i}" for i in range(6))
    rows = [ExamScore("ev-1", a, "笔试", 50 + i, 65 + i + (i % 2)) for i, a in enumerate(trained)]
    rows += [ExamScore("ev-1", a, "角色扮演", None, 55 + 2 * i) for i, a in enumerate(trained)]
    written, role = analyse_learning(rows, "ev-1", trained, RUBRIC, np.random.default_rng(0), "en")
    assert written.test == "笔试" and written.n_paired == 6 and written.diff == 15.5
    assert written.verdict == "improved" and written.ci_low < 15.5 < written.ci_high and written.p_adjusted
    assert (role.n_paired, role.n_after, role.verdict) == (0, 6, CANNOT_TELL)
    assert role.pass_rate == 0.5 and role.below_pass == ("t0", "t1", "t2")  # 55, 57 and 59 < 60
    assert role.reason.startswith("cannot tell: no before scores")
