"""The files and the summary of ``kefuqa topics``: topics.json, topics.csv, topics_teams.csv,
report.html and a short summary for the training manager, in Chinese (the default) or
English."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from .cli_summary import _width, pad
from .report import _write_csv, write_json
from .texts import DEFAULT_LANG, Lang, join, tr
from .topics import NAME_TERMS, UNDATED, Topic, TopicReport

SUMMARY_TOPICS = 10  # stdout is a summary; topics.csv and topics.json hold every topic
# Below this mean silhouette the topics barely differ: say so rather than let a list of
# topics look more certain than it is (a kefu-qa default).
WEAK_SILHOUETTE = 0.1
_HOW = {"silhouette": "tp.how.silhouette", "--topics": "tp.how.fixed", "only choice": "tp.how.only"}
FILES = ("topics.json", "topics.csv", "topics_teams.csv", "report.html")


def write_topic_outputs(report: TopicReport, out: Path, lang: Lang = DEFAULT_LANG) -> dict[str, Path]:
    """topics.json (everything), topics.csv (topic × period counts), topics_teams.csv (topic ×
    team counts, one row each) and report.html (the tables and examples, in ``lang``). The
    CSVs are UTF-8 with a BOM, with cells that a spreadsheet would run as a formula quoted."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in FILES}
    write_json(paths["topics.json"], report)
    columns = _columns(report)
    header = ["topic_id", "name", "count", "share", *columns, "trend_pp"]
    rows = [
        [t.id, t.name, t.count, t.share, *(t.by_period.get(c, 0) for c in columns), t.trend_pp]
        for t in report.topics
    ]
    _write_csv(paths["topics.csv"], header, rows)
    team_rows = [
        [t.id, t.name, team, n, round(n / t.count, 4)] for t in report.topics for team, n in t.by_team.items()
    ]
    _write_csv(paths["topics_teams.csv"], ["topic_id", "name", "team", "count", "share_of_topic"], team_rows)
    paths["report.html"].write_text(render_topics_html(report, lang), encoding="utf-8")
    return paths


def _columns(report: TopicReport) -> list[str]:
    return [*report.periods, *([UNDATED] if report.undated else [])]


def _trend(pp: float | None, lang: Lang) -> str:
    if pp is None:
        return "–"
    return tr(lang, "tp.flat") if pp == 0 else tr(lang, "tp.trend_pp", pp=pp)


def _head(report: TopicReport, lang: Lang) -> str:
    if report.periods:
        first, last = report.periods[0], report.periods[-1]
        when = first if first == last else tr(lang, "tp.span", first=first, last=last)
    else:
        when = tr(lang, "tp.no_dates")
    return tr(
        lang, "tp.head", kind=tr(lang, f"period.{report.kind}"), when=when, timezone=report.timezone,
        n=report.grouped, turns=report.customer_turns, k=report.k,
        how=tr(lang, _HOW.get(report.k_chosen_by, "tp.how.silhouette")),
    )


def _notes(report: TopicReport, lang: Lang) -> str:
    """The caveats in one sentence ("" without any): weak topics, skipped or left-out input."""
    notes = []
    separation = report.silhouette.get(report.k)
    if separation is not None and separation < WEAK_SILHOUETTE:
        notes.append(tr(lang, "tp.weak", s=separation))
    counts = (
        ("tp.rejected", report.read.rejected), ("tp.without_customer", report.read.without_customer),
        ("tp.no_words", report.no_words),
    )
    notes += [tr(lang, key, k=k) for key, k in counts if k]
    if report.undated:
        notes.append(tr(lang, "tp.undated", k=report.undated, undated=tr(lang, "tp.undated_col")))
    return tr(lang, "tp.notes", notes=tr(lang, "sep").join(notes)) if notes else ""


def _trend_head(report: TopicReport, lang: Lang) -> str:
    if report.trend:
        return tr(lang, "tp.col.trend", before=report.trend[0], last=report.trend[1])
    return tr(lang, "tp.col.trend_none")


def topic_summary(report: TopicReport, lang: Lang = DEFAULT_LANG) -> list[str]:
    """A few lines: the biggest topics, their share and their trend."""
    table = [[tr(lang, f"tp.col.{c}") for c in ("rank", "count", "share")] + [_trend_head(report, lang),
                                                                               tr(lang, "tp.col.problem")]]
    table += [
        [str(n), str(t.count), f"{t.share:.1%}", _trend(t.trend_pp, lang), t.name]
        for n, t in enumerate(report.topics[:SUMMARY_TOPICS], 1)
    ]
    widths = [max(_width(row[i]) for row in table) for i in range(4)]
    lines = [_head(report, lang)]
    for row in table:
        cells = [pad(c, w, right=i in (1, 2)) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join([*cells, row[4]]))
    if len(report.topics) > SUMMARY_TOPICS:
        lines.append(tr(lang, "tp.more", k=len(report.topics) - SUMMARY_TOPICS))
    notes = _notes(report, lang)
    return [*lines, notes] if notes else lines


def _teams(report: TopicReport) -> list[str]:
    """Every team in any topic, the biggest first."""
    totals: dict[str, int] = {}
    for t in report.topics:
        for team, n in t.by_team.items():
            totals[team] = totals.get(team, 0) + n
    return sorted(totals, key=lambda team: (-totals[team], team))


def render_topics_html(report: TopicReport, lang: Lang = DEFAULT_LANG) -> str:
    """One self-contained page (no scripts, no network): the summary, the topics by size,
    per period and per team, and each topic's terms and example (masked) customer turns."""
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: f"{100 * x:.0f}%"

    def terms(topic: Topic) -> str:
        return join(lang, [f"{t.term} {t.weight:.2f}" for t in topic.terms])

    columns = _columns(report)
    values: dict[str, Any] = {
        "t": lambda key, **kw: tr(lang, key, **kw), "lang": lang, "report": report,
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "head": _head(report, lang), "notes": _notes(report, lang), "trend_head": _trend_head(report, lang),
        "trend": lambda pp: _trend(pp, lang), "terms": terms, "columns": columns,
        "column_names": {c: tr(lang, "tp.undated_col") if c == UNDATED else c for c in columns},
        "teams": _teams(report), "name_terms": NAME_TERMS,
        "silhouette": tr(lang, "tp.silhouette", values=join(
            lang, [f"{k}: {s:.3f}" for k, s in sorted(report.silhouette.items())])) if report.silhouette else "",
    }
    template = resources.files("kefuqa.grading").joinpath("topics.html.j2").read_text("utf-8")
    return env.from_string(template).render(**values)
