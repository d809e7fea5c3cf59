"""Kirkpatrick levels 1 (reaction, the after-course survey) and 2 (learning, exams).

Level 1: each trainee's mean rating (trainees count equally, however many
questions they answered), tested against the scale's neutral point with a
one-sample t-test. A reaction is 正面 / 负面 only when the interval lies wholly
above / below that point.

Level 2: per test (笔试, 角色扮演 …), the trainees who took it before and after
are compared pairwise (paired t interval and p, as for the cohorts of level 3);
the tests of one event are Holm-adjusted together. The pass rate after
training (Wilson interval) and who is still below the pass mark are reported
whether or not there was a pre-test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from .course_inputs import ExamScore, SurveyAnswer
from .rubric import Rubric
from .stats import holm, paired, proportion_ci
from .texts import Lang, tr
from .verdicts import CANNOT_TELL, IMPROVED, NEGATIVE, POSITIVE, WORSENED, p_text


@dataclass(frozen=True)
class QuestionMean:
    question: str
    n: int
    mean: float


@dataclass(frozen=True)
class ReactionResult:
    n_trained: int
    n_respondents: int  # trained agents who answered
    response_rate: float | None
    n_answers: int
    neutral: float
    mean: float | None  # mean of the respondents' own mean ratings
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    verdict: str
    reason: str
    questions: tuple[QuestionMean, ...]
    n_outside: int  # answers from agents not trained in this event, left out


@dataclass(frozen=True)
class LearningResult:
    test: str
    n_paired: int  # trainees with a before and an after score
    n_after: int
    mean_before: float | None
    mean_after: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    effect_size: float | None  # d_z
    p_value: float | None
    p_adjusted: float | None
    pass_mark: float
    pass_rate: float | None  # share of after scores at or above the pass mark
    pass_ci_low: float | None
    pass_ci_high: float | None
    below_pass: tuple[str, ...]  # trainees whose after score is below the pass mark
    verdict: str
    reason: str


def _reaction_verdict(m: np.ndarray, rubric: Rubric, lang: Lang) -> tuple[dict[str, float | None], str, str]:
    """Interval, p, verdict and reason for the respondents' mean ratings ``m``."""
    s, neutral, alpha = rubric.impact, rubric.reaction.neutral, rubric.impact.alpha
    conf = f"{100 * (1 - alpha):.0f}%"
    mean = float(np.mean(m)) if len(m) else None
    if len(m) < s.min_agents:
        return {"mean": mean}, CANNOT_TELL, tr(lang, "reaction.too_few", k=len(m), need=s.min_agents)
    if np.ptp(m) == 0:
        verdict = CANNOT_TELL if m[0] == neutral else (POSITIVE if m[0] > neutral else NEGATIVE)
        return {"mean": mean}, verdict, tr(lang, "reaction.all_same", n=len(m), x=float(m[0]), neutral=neutral)
    res = sps.ttest_1samp(m, neutral)
    ci = res.confidence_interval(1 - alpha)
    nums: dict[str, float | None] = {
        "mean": mean, "ci_low": float(ci.low), "ci_high": float(ci.high), "p_value": float(res.pvalue)
    }
    words = {"n": len(m), "mean": mean, "low": ci.low, "high": ci.high, "conf": conf, "neutral": neutral}
    if ci.low > neutral:
        return nums, POSITIVE, tr(lang, "reaction.above", p=p_text(res.pvalue), **words)
    if ci.high < neutral:
        return nums, NEGATIVE, tr(lang, "reaction.below", p=p_text(res.pvalue), **words)
    return nums, CANNOT_TELL, tr(lang, "reaction.includes", **words)


def analyse_reaction(
    answers: Sequence[SurveyAnswer], event_id: str, trained: Sequence[str], rubric: Rubric, lang: Lang
) -> ReactionResult:
    mine = [a for a in answers if a.event_id == event_id]
    inside = [a for a in mine if a.agent_id in set(trained)]
    by_agent: dict[str, list[float]] = defaultdict(list)
    by_question: dict[str, list[float]] = defaultdict(list)
    for a in inside:
        by_agent[a.agent_id].append(a.rating)
        by_question[a.question].append(a.rating)
    m = np.array([np.mean(v) for v in by_agent.values()])
    nums, verdict, reason = _reaction_verdict(m, rubric, lang)
    return ReactionResult(
        n_trained=len(trained),
        n_respondents=len(by_agent),
        response_rate=len(by_agent) / len(trained) if trained else None,
        n_answers=len(inside),
        neutral=rubric.reaction.neutral,
        mean=nums.get("mean"),
        ci_low=nums.get("ci_low"),
        ci_high=nums.get("ci_high"),
        p_value=nums.get("p_value"),
        verdict=verdict,
        reason=reason,
        questions=tuple(QuestionMean(q, len(v), float(np.mean(v))) for q, v in sorted(by_question.items())),
        n_outside=len(mine) - len(inside),
    )


def _one_test(
    test: str, rows: Sequence[ExamScore], rubric: Rubric, rng: np.random.Generator, lang: Lang
) -> LearningResult:
    s, pass_mark = rubric.impact, rubric.learning.pass_mark
    both = [r for r in rows if r.before is not None and r.after is not None]
    after = [r for r in rows if r.after is not None]
    passed = sum(r.after is not None and r.after >= pass_mark for r in after)
    pass_ci = proportion_ci(passed, len(after), 1 - s.alpha) if after else None
    base = LearningResult(
        test=test, n_paired=len(both), n_after=len(after),
        mean_before=float(np.mean([r.before for r in rows if r.before is not None]))
        if any(r.before is not None for r in rows) else None,
        mean_after=float(np.mean([r.after for r in after])) if after else None,
        diff=None, ci_low=None, ci_high=None, effect_size=None, p_value=None, p_adjusted=None,
        pass_mark=pass_mark, pass_rate=passed / len(after) if after else None,
        pass_ci_low=pass_ci[0] if pass_ci else None, pass_ci_high=pass_ci[1] if pass_ci else None,
        below_pass=tuple(sorted(r.agent_id for r in after if r.after is not None and r.after < pass_mark)),
        verdict=CANNOT_TELL, reason=tr(lang, "learning.no_pretest"),
    )
    if not both:
        return base
    if len(both) < s.min_agents:
        return replace(base, reason=tr(lang, "learning.too_few", k=len(both), need=s.min_agents))
    b = np.array([r.before for r in both], dtype=float)
    a = np.array([r.after for r in both], dtype=float)
    pr = paired(b, a, confidence=1 - s.alpha, resamples=rubric.bootstrap_resamples, rng=rng)
    if pr.t_ci is None or pr.p_value is None:
        return replace(base, diff=pr.diff, reason=tr(lang, "verdict.no_spread"))
    return replace(
        base, diff=pr.diff, ci_low=pr.t_ci[0], ci_high=pr.t_ci[1], effect_size=pr.d_z, p_value=pr.p_value
    )


def _learning_verdict(r: LearningResult, p_adj: float, n_tests: int, alpha: float, lang: Lang) -> LearningResult:
    assert r.diff is not None and r.ci_low is not None and r.ci_high is not None and r.p_value is not None
    words = {
        "diff": r.diff, "low": r.ci_low, "high": r.ci_high, "conf": f"{100 * (1 - alpha):.0f}%",
        "p": p_text(r.p_value), "p_adj": p_text(p_adj), "n": n_tests, "k": r.n_paired,
    }
    if r.ci_low <= 0 <= r.ci_high:
        return replace(r, p_adjusted=p_adj, reason=tr(lang, "learning.includes_zero", **words))
    if p_adj >= alpha:
        return replace(r, p_adjusted=p_adj, reason=tr(lang, "learning.not_after_holm", **words))
    verdict = IMPROVED if r.diff > 0 else WORSENED
    return replace(r, p_adjusted=p_adj, verdict=verdict, reason=tr(lang, "learning.moved", **words))


def analyse_learning(
    scores: Sequence[ExamScore],
    event_id: str,
    trained: Sequence[str],
    rubric: Rubric,
    rng: np.random.Generator,
    lang: Lang,
) -> tuple[LearningResult, ...]:
    """One result per test the event's trainees took; Holm across the tests."""
    by_test: dict[str, list[ExamScore]] = defaultdict(list)
    for r in scores:
        if r.event_id == event_id and r.agent_id in set(trained):
            by_test[r.test].append(r)
    results = [_one_test(t, rows, rubric, rng, lang) for t, rows in sorted(by_test.items())]
    tested = [i for i, r in enumerate(results) if r.p_value is not None]
    adjusted = holm([results[i].p_value or 0.0 for i in tested])
    for i, p_adj in zip(tested, adjusted):
        results[i] = _learning_verdict(results[i], p_adj, len(tested), rubric.impact.alpha, lang)
    return tuple(results)
