"""A grade's reason in words: the score, how the grade was given, the weakest indicators.

The handbooks tie grades to bonus, promotion and re-training, so a manager
must be able to say to the agent which indicators pulled the score down.
"""

from __future__ import annotations

from collections.abc import Sequence

from .kpis import IndicatorValue
from .rubric import Rubric
from .texts import Lang, join, tr

WEAKEST = 2  # indicators named in a reason


def weakest(values: Sequence[IndicatorValue], rubric: Rubric, lang: Lang, k: int = WEAKEST) -> str:
    """The ``k`` lowest-scoring indicators with data, as ``情绪管理能力 41、问题解决率 52``;
    empty when every indicator has full marks."""
    low = sorted((v for v in values if v.score is not None and v.score < 100), key=lambda v: v.score or 0.0)
    return join(lang, (f"{rubric.indicator(v.key).label(lang)} {v.score:.0f}" for v in low[:k]))


def grade_method(rubric: Rubric, lang: Lang) -> str:
    rule = rubric.grades
    if rule.method == "absolute":
        return tr(lang, "grade.how.absolute")
    return tr(lang, "grade.how.forced_team" if rule.forced_scope == "team" else "grade.how.forced_all")


def grade_reason(score: float, values: Sequence[IndicatorValue], rubric: Rubric, lang: Lang) -> str:
    """``综合 56.3 分（绝对阈值）；最弱：情绪管理能力 41、问题解决率 52``."""
    text = tr(lang, "grade.reason", score=score, how=grade_method(rubric, lang))
    weak = weakest(values, rubric, lang)
    return text + tr(lang, "grade.weakest", items=weak) if weak else text
