"""Report files: the HTML report (charts embedded, works offline), CSV tables and JSON."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from .charts import Fonts, before_after, grade_colours, grade_distribution, trajectory
from .grades import AgentPeriod, GradeReport, TeamPeriod
from .impact import CohortEffect, EventImpact
from .impact_tables import (
    IMPACT_AGENT_COLUMNS,
    IMPACT_COLUMNS,
    LEVEL12_COLUMNS,
    RETRAINING_COLUMNS,
    impact_agent_row,
    impact_row,
    level12_rows,
    retraining_rows,
)
from .kpis import IndicatorValue
from .retraining import exam_label
from .rubric import INSUFFICIENT, Rubric
from .serialize import to_jsonable
from .texts import DEFAULT_LANG, Lang, tr
from .verdicts import VERDICTS, Units, verdict_label


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _environment(rubric: Rubric, lang: Lang) -> Environment:
    units = {i.key: Units(i.stat, i.unit, lang) for i in rubric.indicators}
    env = Environment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )

    def plain(x: float | None, key: str) -> str:
        return "–" if x is None else units[key].fmt(x, signed=False)

    def delta(x: float | None, key: str) -> str:
        return "–" if x is None else units[key].fmt(x)

    def effect_ci(e: CohortEffect) -> str:
        if e.ci_low is None or e.ci_high is None:
            return "–"
        return units[e.indicator].span((e.ci_low, e.ci_high))

    def before_after_txt(e: CohortEffect) -> str:
        if not e.treated_before or not e.treated_after:
            return "–"
        return (
            f"{plain(e.treated_before[0], e.indicator)} → {plain(e.treated_after[0], e.indicator)}"
        )

    def interval(v: IndicatorValue) -> str:
        if v.ci_low is None or v.ci_high is None:
            return "–"
        return f"{plain(v.ci_low, v.key)} – {plain(v.ci_high, v.key)}"

    env.filters.update(
        num=_num,
        pct=lambda x: "–" if x is None else f"{100 * x:.0f}%",
        pval=lambda p: "–" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}"),
        signed=lambda x, d=1: "–" if x is None else f"{x:+.{d}f}",
        value=lambda v: plain(v.value, v.key),
        interval=interval,
        change=lambda v: delta(v.change, v.key),
        plain=plain,
        delta=delta,
        effect=lambda e: delta(e.estimate, e.indicator),
        effect_ci=effect_ci,
        before_after=before_after_txt,
    )
    env.globals.update(
        t=lambda key, **values: tr(lang, key, **values),
        verdict=lambda v: verdict_label(v, lang),
        status=lambda v: verdict_label(v, lang) if v in VERDICTS else tr(lang, f"status.{v}"),
        exam_label=lambda test: exam_label(test, lang),
        sep=tr(lang, "sep"),
        lang=lang,
        names={i.key: i.label(lang) for i in rubric.indicators},
        insufficient=INSUFFICIENT,
    )
    return env


def _latest_rows(report: GradeReport) -> tuple[str, list[AgentPeriod]]:
    """The last period anyone was graded in (the very last is often still running)."""
    graded = [r.period for r in report.agents if r.graded]
    latest = max(graded) if graded else (report.periods[-1] if report.periods else "")
    return latest, [r for r in report.agents if r.period == latest]


def _grade_parts(grades: GradeReport, fonts: Fonts) -> dict[str, Any]:
    """What the grades section shows: charts, the latest period's rows, one card per agent."""
    latest, latest_rows = _latest_rows(grades)
    by_agent: dict[str, list[AgentPeriod]] = {}
    for r in grades.agents:
        by_agent.setdefault(r.agent_id, []).append(r)
    cards = []
    for rows in by_agent.values():
        shown = next((r for r in reversed(rows) if r.graded), rows[-1])
        chart = trajectory(rows, grades.levels, grades.thresholds, fonts)
        cards.append({"row": shown, "chart": chart})
    sep = tr(grades.lang, "sep")
    return {
        "charts": {"distribution": grade_distribution(grades, fonts)},
        "latest": latest,
        "latest_rows": latest_rows,
        "flagged": [r for r in latest_rows if r.repeated_low],
        "cards": cards,
        "grade_names": (*grades.levels, INSUFFICIENT),
        "grade_bg": {g: c + "55" for g, c in grade_colours(grades.levels).items()},
        "cuts": sep.join(f"{g} ≥ {cut:g}" for g, cut in grades.thresholds.items()),
    }


def _has_cohorts(e: EventImpact) -> bool:
    """Whether the before/after chart has anything to draw."""
    return any(x.treated_before and x.treated_after for x in e.indicators)


def render_html(
    rubric: Rubric,
    *,
    grades: GradeReport | None = None,
    impacts: Sequence[EventImpact] = (),
    rubric_origin: str = "default_rubric.yaml",
    fonts: Fonts | None = None,
    lang: Lang = DEFAULT_LANG,
) -> str:
    fonts = fonts or Fonts.detect(lang)
    template = resources.files("kefuqa.grading").joinpath("report.html.j2").read_text("utf-8")
    parts = _grade_parts(grades, fonts) if grades is not None else {}
    return (
        _environment(rubric, lang)
        .from_string(template)
        .render(
            generated=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            timezone=rubric.timezone,
            rubric_origin=rubric_origin,
            grades=grades,
            impacts=[{"event": e, "chart": before_after(e, fonts) if _has_cohorts(e) else ""} for e in impacts],
            **parts,
        )
    )


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """A cell as a spreadsheet should read it: text that a spreadsheet would run as a
    formula (``=HYPERLINK(…)`` as an agent id) gets a leading apostrophe; numbers stay."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    # utf-8-sig so that Excel, which most shops open CSVs with, shows the Chinese right.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([spreadsheet_cell(h) for h in header])
        w.writerows([[spreadsheet_cell(v) for v in row] for row in rows])


def _indicator_columns(rubric: Rubric) -> list[str]:
    return [
        f"{i.key}{s}"
        for i in rubric.indicators
        for s in ("", "_ci_low", "_ci_high", "_n", "_score")
    ]


def _indicator_cells(values: Sequence[IndicatorValue]) -> list[Any]:
    return [x for v in values for x in (v.value, v.ci_low, v.ci_high, v.n, v.score)]


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(to_jsonable(obj), ensure_ascii=False, indent=1), encoding="utf-8")


_GRADE_COLUMNS = [
    "agent_id",
    "team",
    "period",
    "n_conversations",
    "score",
    "grade",
    "rank_in_team",
    "graded_in_team",
    "previous_grade",
    "score_change",
    "reason",
    "low_streak",
    "repeated_low",
]
_TEAM_COLUMNS = ["team", "period", "n_agents", "n_graded", "n_conversations", "mean_score"]


def _grade_row(r: AgentPeriod) -> list[Any]:
    return [
        r.agent_id,
        r.team,
        r.period,
        r.n_conversations,
        r.score,
        r.grade,
        r.rank_in_team,
        r.graded_in_team,
        r.previous_grade,
        r.score_change,
        r.reason,
        r.low_streak,
        int(r.repeated_low),
        *_indicator_cells(r.indicators),
    ]


def _team_row(t: TeamPeriod) -> list[Any]:
    return [
        t.team,
        t.period,
        t.n_agents,
        t.n_graded,
        t.n_conversations,
        t.mean_score,
        *t.grade_counts.values(),
        *_indicator_cells(t.indicators),
    ]


def write_grade_outputs(
    report: GradeReport, rubric: Rubric, out: Path, *, rubric_origin: str = "default_rubric.yaml"
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / k for k in ("grades.csv", "teams.csv", "grades.json", "report.html")}
    _write_csv(
        paths["grades.csv"],
        [*_GRADE_COLUMNS, *_indicator_columns(rubric)],
        [_grade_row(r) for r in report.agents],
    )
    _write_csv(
        paths["teams.csv"],
        [*_TEAM_COLUMNS, *[f"n_{g}" for g in (*report.levels, INSUFFICIENT)], *_indicator_columns(rubric)],
        [_team_row(t) for t in report.teams],
    )
    write_json(paths["grades.json"], report)
    paths["report.html"].write_text(
        render_html(rubric, grades=report, rubric_origin=rubric_origin, lang=report.lang), encoding="utf-8"
    )
    return paths


def write_impact_outputs(
    impacts: Sequence[EventImpact],
    rubric: Rubric,
    out: Path,
    *,
    rubric_origin: str = "default_rubric.yaml",
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    names = ("impact.csv", "impact_agents.csv", "reaction_learning.csv", "retraining.csv", "impact.json", "report.html")
    paths = {k: out / k for k in names}
    _write_csv(
        paths["impact.csv"],
        IMPACT_COLUMNS,
        [impact_row(ev, e) for ev in impacts for e in ev.indicators],
    )
    _write_csv(
        paths["impact_agents.csv"],
        IMPACT_AGENT_COLUMNS,
        [impact_agent_row(ev, a) for ev in impacts for a in ev.agents],
    )
    _write_csv(paths["reaction_learning.csv"], LEVEL12_COLUMNS, [r for ev in impacts for r in level12_rows(ev)])
    _write_csv(paths["retraining.csv"], RETRAINING_COLUMNS, [r for ev in impacts for r in retraining_rows(ev)])
    write_json(paths["impact.json"], list(impacts))
    lang = impacts[0].lang if impacts else DEFAULT_LANG
    paths["report.html"].write_text(
        render_html(rubric, impacts=impacts, rubric_origin=rubric_origin, lang=lang), encoding="utf-8"
    )
    return paths
