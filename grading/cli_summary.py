"""The short summaries ``kefuqa grade`` and ``kefuqa impact`` print, in the report's language.

stdout is a summary; the CSV, JSON and HTML files hold everything.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from .rubric import INSUFFICIENT
from .texts import Lang, tr
from .verdicts import verdict_label

if TYPE_CHECKING:
    from .grades import GradeReport
    from .impact import EventImpact

MAX_ROWS = 25


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def pad(s: str, width: int, right: bool = False) -> str:
    """Pad to a terminal width, counting a Chinese character as two columns."""
    fill = " " * max(0, width - _width(s))
    return fill + s if right else s + fill


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "–" if x is None else format(x, spec)


_RIGHT = (2, 3, 5, 6)  # numbers are right-aligned


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(pad(c, w, right=i in _RIGHT) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()


def grade_lines(report: GradeReport) -> list[str]:
    lang = report.lang
    if not report.periods:
        return [tr(lang, "cli.no_dated")]
    # The last period is often still running; show the last one in which anyone was graded.
    graded = [r.period for r in report.agents if r.graded]
    latest = max(graded) if graded else report.periods[-1]
    rows = [r for r in report.agents if r.period == latest]
    kind = tr(lang, f"period.{report.kind}")
    lines = [tr(lang, "cli.grades_head", kind=kind, first=report.periods[0], last=report.periods[-1], latest=latest)]
    header = [tr(lang, c) for c in ("col.agent", "col.team", "col.conversations", "col.score", "col.grade",
                                     "col.rank", "col.change")]
    table = [header]
    for r in rows[:MAX_ROWS]:
        rank = f"{r.rank_in_team}/{r.graded_in_team}" if r.rank_in_team else "–"
        table.append(
            [r.agent_id, r.team, str(r.n_conversations), _fmt(r.score), r.grade, rank, _fmt(r.score_change, "+.1f")]
        )
    widths = [max(_width(row[i]) for row in table) for i in range(len(header))]
    flags = ["", *(r.flag for r in rows[:MAX_ROWS])]
    lines += [_row(cells, widths) + (f"  {flag}" if flag else "") for cells, flag in zip(table, flags)]
    if len(rows) > MAX_ROWS:
        lines.append(tr(lang, "cli.more_agents", k=len(rows) - MAX_ROWS))
    counts = {g: sum(r.grade == g for r in rows) for g in (*report.levels, INSUFFICIENT)}
    lines.append("  ".join(f"{g} {n}" for g, n in counts.items()))
    lines += [tr(lang, "cli.note", note=n) for n in report.notes]
    return lines


def _indicator_lines(ev: EventImpact, lang: Lang) -> list[str]:
    lines = []
    width = max((_width(e.name) for e in ev.indicators), default=0) + 2
    for e in ev.indicators:
        est = "–" if e.estimate is None else f"{e.estimate:+.3g}"
        ci = "" if e.ci_low is None else f" [{e.ci_low:+.3g}, {e.ci_high:+.3g}]"
        level = tr(lang, "cli.level_short", level=e.level)
        lines.append(f"  {level} {pad(e.name, width)}{est:>9}{ci:<22} {verdict_label(e.verdict, lang)}")
    return lines


def impact_lines(ev: EventImpact) -> list[str]:
    lang, w, ev_ = ev.lang, ev.windows, ev.evaluation
    lines = [
        tr(
            lang, "cli.training_head", event=ev.event_id, course=ev.course, t=len(ev.treated), c=len(ev.controls),
            b0=w.before_start, b1=w.before_end, a0=w.after_start, a1=w.after_end,
        ),
        "  " + tr(lang, "cli.purpose", text=ev_.purpose),
        *(f"  {line}" for line in ev.summary),
        *_indicator_lines(ev, lang),
    ]
    for c in ev.retraining.candidates[:MAX_ROWS]:
        lines.append("  " + tr(lang, "cli.retraining", agent=c.agent_id, reasons=tr(lang, "sep").join(c.reasons)))
    lines.append("  " + tr(lang, "cli.problems"))
    lines += [f"    - {p}" for p in ev_.problems]
    lines.append("  " + tr(lang, "cli.suggestions"))
    lines += [f"    - {s}" for s in ev_.suggestions]
    lines += [f"  {tr(lang, 'cli.note', note=n)}" for n in ev.notes]
    return lines
