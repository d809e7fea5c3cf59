"""Re-training candidates: trainees still below standard after a training.

The handbooks ask the evaluation to name who needs the training again. A
trainee is named when, after the training,

- their QA score over the after window (the rubric's indicators and weights,
  as in grading) is below the lowest passing threshold (合格 60 by default),
  counted only with at least ``impact.min_conversations`` conversations; or
- an exam score after the training is below ``learning.pass_mark``.

Each candidate carries the reasons in words, naming the weakest indicators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .course_inputs import ExamScore
from .dataset import Observation
from .kpis import combine, measure
from .reasons import weakest
from .rubric import Rubric
from .texts import Lang, tr


@dataclass(frozen=True)
class RetrainingCandidate:
    agent_id: str
    n_after: int  # conversations in the after window
    qa_score: float | None  # None with too few conversations
    exams_below: dict[str, float]  # test → after score below the pass mark
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Retraining:
    candidates: tuple[RetrainingCandidate, ...]
    pass_cut: float  # the QA threshold used
    pass_mark: float  # the exam pass mark used
    too_little_data: tuple[str, ...]  # trainees with neither enough conversations nor an after exam


def exam_label(test: str, lang: Lang) -> str:
    return test or tr(lang, "exam.default_name")


def _qa_reason(obs: Sequence[Observation], rubric: Rubric, lang: Lang) -> tuple[float | None, str | None]:
    if len(obs) < rubric.impact.min_conversations:
        return None, None
    values = measure(rubric, obs, None)
    _, total = combine(rubric, values)
    cut = rubric.grades.pass_cut
    if total is None or total >= cut:
        return total, None
    reason = tr(lang, "retrain.qa", n=len(obs), score=total, grade=rubric.grades.levels[-2], cut=cut)
    weak = weakest(values, rubric, lang)
    return total, reason + (tr(lang, "grade.weakest", items=weak) if weak else "")


def retraining_candidates(
    rubric: Rubric,
    event_id: str,
    trained: Sequence[str],
    after_obs: Mapping[str, Sequence[Observation]],
    exams: Sequence[ExamScore],
    lang: Lang,
) -> Retraining:
    mark = rubric.learning.pass_mark
    out, unknown = [], []
    for agent in trained:
        obs = after_obs.get(agent, ())
        score, qa = _qa_reason(obs, rubric, lang)
        mine = [e for e in exams if e.event_id == event_id and e.agent_id == agent and e.after is not None]
        below = {exam_label(e.test, lang): e.after for e in mine if e.after is not None and e.after < mark}
        reasons = [qa] if qa else []
        reasons += [tr(lang, "retrain.exam", test=t, score=x, mark=mark) for t, x in below.items()]
        if reasons:
            out.append(RetrainingCandidate(agent, len(obs), score, below, tuple(reasons)))
        elif score is None and not mine:
            unknown.append(agent)
    return Retraining(tuple(out), rubric.grades.pass_cut, mark, tuple(unknown))
