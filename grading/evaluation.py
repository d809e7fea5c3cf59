"""The training evaluation report as the handbooks lay it out: 目的 purpose, 方法 method,
结果 results over the four Kirkpatrick levels (反应 / 学习 / 行为 / 结果), 问题 problems
and 建议 suggestions.

Everything here is put into words from the analyses (impact.py,
reaction_learning.py, retraining.py); nothing new is computed except which
indicators were weakest after training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .effects import CohortEffect
from .reaction_learning import LearningResult, ReactionResult
from .retraining import Retraining, exam_label
from .rubric import Rubric
from .texts import Lang, join, pct, tr
from .verdicts import CANNOT_TELL, IMPROVED, NEGATIVE, WORSENED, verdict_label
from .windows import Windows

MIXED = "mixed"
NOT_MEASURED = "not_measured"
_LIST = 10  # agents named in a suggestion; the table has them all


@dataclass(frozen=True)
class LevelSummary:
    level: int  # 1 reaction, 2 learning, 3 behaviour, 4 results
    name: str
    status: str  # a verdict, MIXED or NOT_MEASURED
    text: str


@dataclass(frozen=True)
class Evaluation:
    purpose: str
    method: tuple[str, ...]
    levels: tuple[LevelSummary, ...]
    problems: tuple[str, ...]
    suggestions: tuple[str, ...]


@dataclass(frozen=True)
class Findings:
    """What the evaluation is written from."""

    course: str
    purpose: str
    windows: Windows
    n_treated: int
    n_control: int  # untrained agents in the comparison (0: paired only)
    effects: tuple[CohortEffect, ...]
    reaction: ReactionResult | None  # None: no survey file
    learning: tuple[LearningResult, ...] | None  # None: no exam file
    retraining: Retraining
    has_outcomes: bool


def _reaction_level(f: Findings, lang: Lang) -> LevelSummary:
    name = tr(lang, "level.1")
    r = f.reaction
    if r is None:
        return LevelSummary(1, name, NOT_MEASURED, tr(lang, "level.no_survey"))
    if r.n_respondents == 0:
        return LevelSummary(1, name, NOT_MEASURED, tr(lang, "level.no_answers"))
    rate = "–" if r.response_rate is None else pct(r.response_rate)
    text = tr(lang, "level.reaction", verdict=_prefix(r.verdict, lang), reason=r.reason, rate=rate, k=r.n_respondents,
              n=r.n_trained)
    return LevelSummary(1, name, r.verdict, text)


def _prefix(verdict: str, lang: Lang) -> str:
    """``正面。`` before a finding's reason; a cannot-tell reason already says so."""
    return "" if verdict == CANNOT_TELL else tr(lang, "level.verdict", verdict=verdict_label(verdict, lang))


def _status(verdicts: Sequence[str]) -> str:
    up, down = IMPROVED in verdicts, WORSENED in verdicts
    return MIXED if up and down else IMPROVED if up else WORSENED if down else CANNOT_TELL


def _learning_level(f: Findings, lang: Lang) -> LevelSummary:
    name = tr(lang, "level.2")
    if f.learning is None:
        return LevelSummary(2, name, NOT_MEASURED, tr(lang, "level.no_exam"))
    if not f.learning:
        return LevelSummary(2, name, NOT_MEASURED, tr(lang, "level.no_exam_rows"))
    parts = [
        tr(
            lang, "level.learning", test=exam_label(r.test, lang), verdict=_prefix(r.verdict, lang),
            reason=r.reason, rate="–" if r.pass_rate is None else pct(r.pass_rate), n=r.n_after,
        )
        for r in f.learning
    ]
    return LevelSummary(2, name, _status([r.verdict for r in f.learning]), tr(lang, "sep").join(parts))


def _indicator_level(level: int, f: Findings, lang: Lang) -> LevelSummary:
    mine = [e for e in f.effects if e.level == level]
    name = tr(lang, f"level.{level}")
    if not mine:
        return LevelSummary(level, name, NOT_MEASURED, tr(lang, "level.nothing"))
    parts = []
    for verdict in (IMPROVED, WORSENED):
        moved = [e.name for e in mine if e.verdict == verdict]
        if moved:
            parts.append(tr(lang, f"level.list.{verdict}", items=join(lang, moved)))
    unknown = [e.name for e in mine if e.verdict == CANNOT_TELL]
    if unknown:
        parts.append(tr(lang, "level.list.unknown", k=len(unknown), items=join(lang, unknown)))
    return LevelSummary(level, name, _status([e.verdict for e in mine]), tr(lang, "sep").join(parts))


def _method(f: Findings, rubric: Rubric, lang: Lang) -> tuple[str, ...]:
    w, r = f.windows, f.reaction
    lines = []
    if r is not None and r.n_respondents:
        lines.append(tr(
            lang, "method.l1", k=r.n_respondents, n=r.n_trained, lo=rubric.reaction.scale_min,
            hi=rubric.reaction.scale_max, neutral=rubric.reaction.neutral,
        ))
    if f.learning:
        tests = join(lang, (exam_label(x.test, lang) for x in f.learning))
        lines.append(tr(lang, "method.l2", tests=tests, mark=rubric.learning.pass_mark))
    control = tr(lang, "method.control", c=f.n_control) if f.n_control else tr(lang, "method.no_control")
    lines.append(tr(
        lang, "method.l3", before=(w.before_end - w.before_start).days + 1, b0=w.before_start, b1=w.before_end,
        after=(w.after_end - w.after_start).days + 1, a0=w.after_start, a1=w.after_end, t=f.n_treated,
        control=control,
    ))
    lines.append(tr(lang, "method.l4" if f.has_outcomes else "method.l4_proxy"))
    lines.append(tr(lang, "method.rule", alpha=rubric.impact.alpha))
    return tuple(lines)


def _problems(f: Findings, levels: Sequence[LevelSummary], lang: Lang) -> tuple[str, ...]:
    out = [tr(lang, "problem.worsened", name=e.name, reason=e.reason) for e in f.effects if e.verdict == WORSENED]
    if f.reaction is not None and f.reaction.verdict == NEGATIVE:
        out.append(tr(lang, "problem.reaction", reason=f.reaction.reason))
    for r in f.learning or ():
        if r.verdict == WORSENED:
            out.append(tr(lang, "problem.learning", test=exam_label(r.test, lang), reason=r.reason))
        if r.below_pass:
            out.append(tr(lang, "problem.below_pass", test=exam_label(r.test, lang), k=len(r.below_pass),
                          mark=r.pass_mark))
    if f.retraining.candidates:
        out.append(tr(lang, "problem.retraining", k=len(f.retraining.candidates)))
    behaviour = next(x for x in levels if x.level == 3)
    if behaviour.status == CANNOT_TELL:
        out.append(tr(lang, "problem.behaviour_unknown"))
    if not f.n_control:
        out.append(tr(lang, "problem.no_control"))
    missing = [x.name for x in levels if x.status == NOT_MEASURED]
    if missing:
        out.append(tr(lang, "problem.not_measured", levels=join(lang, missing)))
    return tuple(out) or (tr(lang, "problem.none"),)


def _weakest_after(f: Findings, rubric: Rubric, lang: Lang) -> list[str]:
    """The two level-3 indicators on which the trainees scored lowest after training."""
    scored = []
    for e in f.effects:
        if e.level == 3 and e.treated_after is not None:
            scored.append((rubric.indicator(e.indicator).scale.score(e.treated_after[0]), e.name))
    return [name for score, name in sorted(scored)[:2] if score < 100]


def _suggestions(f: Findings, rubric: Rubric, lang: Lang) -> tuple[str, ...]:
    out = []
    names = [c.agent_id for c in f.retraining.candidates]
    if names:
        more = tr(lang, "more", k=len(names) - _LIST) if len(names) > _LIST else ""
        out.append(tr(lang, "suggest.retrain", agents=join(lang, names[:_LIST]) + more))
    focus = [e.name for e in f.effects if e.verdict == WORSENED] or _weakest_after(f, rubric, lang)
    if focus:
        out.append(tr(lang, "suggest.focus", items=join(lang, focus)))
    behaviour_unknown = all(e.verdict == CANNOT_TELL for e in f.effects if e.level == 3)
    if behaviour_unknown:
        out.append(tr(lang, "suggest.wait"))
    if not f.n_control:
        out.append(tr(lang, "suggest.control"))
    if f.reaction is None or not f.reaction.n_respondents:
        out.append(tr(lang, "suggest.survey"))
    if not f.learning or all(r.n_paired == 0 for r in f.learning):
        out.append(tr(lang, "suggest.exam"))
    if not f.has_outcomes:
        out.append(tr(lang, "suggest.outcomes"))
    return tuple(out)


def evaluate(f: Findings, rubric: Rubric, lang: Lang) -> Evaluation:
    levels = (_reaction_level(f, lang), _learning_level(f, lang), _indicator_level(3, f, lang),
              _indicator_level(4, f, lang))
    return Evaluation(
        purpose=f.purpose or tr(lang, "purpose.default", course=f.course or tr(lang, "course.unnamed")),
        method=_method(f, rubric, lang),
        levels=levels,
        problems=_problems(f, levels, lang),
        suggestions=_suggestions(f, rubric, lang),
    )


def summary_lines(e: Evaluation, lang: Lang) -> tuple[str, ...]:
    """The four levels in one line each (CLI, the report's summary box)."""
    return tuple(tr(lang, "level.line", level=x.level, name=x.name, text=x.text) for x in e.levels)
