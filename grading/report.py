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

from .charts import Fonts, before_after, grade_distribution, trajectory
from .effects import AgentEffect
from .grades import AgentPeriod, GradeReport, TeamPeriod
from .impact import CohortEffect, EventImpact
from .kpis import IndicatorValue
from .rubric import GRADES, INSUFFICIENT, Rubric
from .serialize import to_jsonable
from .verdicts import VERDICT_LABELS, Units


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _environment(rubric: Rubric) -> Environment:
    units = {i.key: Units(i.stat, i.unit) for i in rubric.indicators}
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
        return f"{delta(e.ci_low, e.indicator)} to {delta(e.ci_high, e.indicator)}"

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
    return env


def _latest_rows(report: GradeReport) -> tuple[str, list[AgentPeriod]]:
    """The last period anyone was graded in (the very last is often still running)."""
    graded = [r.period for r in report.agents if r.graded]
    latest = max(graded) if graded else (report.periods[-1] if report.periods else "")
    return latest, [r for r in report.agents if r.period == latest]


def render_html(
    rubric: Rubric,
    *,
    grades: GradeReport | None = None,
    impacts: Sequence[EventImpact] = (),
    rubric_origin: str = "default_rubric.yaml",
    fonts: Fonts | None = None,
) -> str:
    fonts = fonts or Fonts.detect()
    template = resources.files("kefuqa.grading").joinpath("report.html.j2").read_text("utf-8")
    charts: dict[str, str] = {}
    cards: list[dict[str, Any]] = []
    latest, latest_rows = "", list[AgentPeriod]()
    if grades is not None:
        charts["distribution"] = grade_distribution(grades, fonts)
        latest, latest_rows = _latest_rows(grades)
        by_agent: dict[str, list[AgentPeriod]] = {}
        for r in grades.agents:
            by_agent.setdefault(r.agent_id, []).append(r)
        for rows in by_agent.values():
            shown = next((r for r in reversed(rows) if r.graded), rows[-1])
            cards.append({"row": shown, "chart": trajectory(rows, grades.thresholds, fonts)})
    return (
        _environment(rubric)
        .from_string(template)
        .render(
            generated=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            timezone=rubric.timezone,
            rubric_origin=rubric_origin,
            grades=grades,
            grade_names=(*GRADES, INSUFFICIENT),
            charts=charts,
            latest=latest,
            latest_rows=latest_rows,
            cards=cards,
            impacts=[{"event": e, "chart": before_after(e, fonts)} for e in impacts],
            verdict_labels=VERDICT_LABELS,
            names={i.key: i.name for i in rubric.indicators},
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
        *[t.grade_counts[g] for g in (*GRADES, INSUFFICIENT)],
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
        [*_TEAM_COLUMNS, *[f"n_{g}" for g in (*GRADES, INSUFFICIENT)], *_indicator_columns(rubric)],
        [_team_row(t) for t in report.teams],
    )
    write_json(paths["grades.json"], report)
    paths["report.html"].write_text(
        render_html(rubric, grades=report, rubric_origin=rubric_origin), encoding="utf-8"
    )
    return paths


_IMPACT_COLUMNS = [
    "event_id",
    "course",
    "indicator",
    "name",
    "level",
    "n_treated",
    "n_control",
    "method",
    "estimate",
    "ci_low",
    "ci_high",
    "effect_size",
    "p_value",
    "p_adjusted",
    "verdict",
    "reason",
    "treated_before",
    "treated_after",
    "control_before",
    "control_after",
    "paired_diff",
    "paired_boot_ci_low",
    "paired_boot_ci_high",
    "paired_d_z",
    "paired_p",
    "did_estimate",
    "did_ci_low",
    "did_ci_high",
    "did_p",
]
_IMPACT_AGENT_COLUMNS = [
    "event_id",
    "agent_id",
    "indicator",
    "n_before",
    "n_after",
    "before",
    "after",
    "diff",
    "ci_low",
    "ci_high",
    "effect_size",
    "verdict",
    "reason",
]


def _impact_row(ev: EventImpact, e: CohortEffect) -> list[Any]:
    """One indicator of one event: the headline, the cohort means (point estimates only),
    then the paired and difference-in-differences details."""
    p, d = e.paired, e.did
    return [
        ev.event_id,
        ev.course,
        e.indicator,
        e.name,
        e.level,
        e.n_treated,
        e.n_control,
        e.method,
        e.estimate,
        e.ci_low,
        e.ci_high,
        e.effect_size,
        e.p_value,
        e.p_adjusted,
        e.verdict,
        e.reason,
        *(e.treated_before or (None,) * 3)[:1],
        *(e.treated_after or (None,) * 3)[:1],
        *(e.control_before or (None,) * 3)[:1],
        *(e.control_after or (None,) * 3)[:1],
        p and p.diff,
        p and p.ci and p.ci[0],
        p and p.ci and p.ci[1],
        p and p.d_z,
        p and p.p_value,
        d and d.estimate,
        d and d.ci and d.ci[0],
        d and d.ci and d.ci[1],
        d and d.p_value,
    ]


def _impact_agent_row(ev: EventImpact, a: AgentEffect) -> list[Any]:
    return [
        ev.event_id,
        a.agent_id,
        a.indicator,
        a.n_before,
        a.n_after,
        a.before,
        a.after,
        a.diff,
        a.ci_low,
        a.ci_high,
        a.effect_size,
        a.verdict,
        a.reason,
    ]


def write_impact_outputs(
    impacts: Sequence[EventImpact],
    rubric: Rubric,
    out: Path,
    *,
    rubric_origin: str = "default_rubric.yaml",
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / k for k in ("impact.csv", "impact_agents.csv", "impact.json", "report.html")}
    _write_csv(
        paths["impact.csv"],
        _IMPACT_COLUMNS,
        [_impact_row(ev, e) for ev in impacts for e in ev.indicators],
    )
    _write_csv(
        paths["impact_agents.csv"],
        _IMPACT_AGENT_COLUMNS,
        [_impact_agent_row(ev, a) for ev in impacts for a in ev.agents],
    )
    write_json(paths["impact.json"], list(impacts))
    paths["report.html"].write_text(
        render_html(rubric, impacts=impacts, rubric_origin=rubric_origin), encoding="utf-8"
    )
    return paths
