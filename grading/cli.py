"""``kefuqa grade`` and ``kefuqa impact``: the grading engine on the command line.

Bad input prints one line naming the file, line and field and exits 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from kefuqa.io.readers import InputError as ReadError
from kefuqa.io.readers import read_conversations
from kefuqa.settings import load_settings
from kefuqa.text.pii import PiiMasker

from .dataset import Dataset, load_dataset
from .errors import InputError
from .grades import GradeReport, grade_all
from .impact import EventImpact, analyse_event
from .inputs import load_roster
from .periods import PERIOD_KINDS
from .report import write_grade_outputs, write_impact_outputs
from .rubric import GRADES, INSUFFICIENT, Rubric, load_rubric
from .topics import AUTO_K, TopicsError, collect, find_topics
from .topics_output import topic_summary, write_topic_outputs
from .verdicts import VERDICT_LABELS

_MAX_ROWS = 25  # stdout is a summary; the CSV files hold everything


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("scores", type=Path, help="score records, JSONL (.jsonl or .jsonl.gz)")
    p.add_argument("--roster", type=Path, required=True, help="CSV: agent_id, team, hire_date")
    p.add_argument(
        "--rubric", type=Path, help="rubric YAML (default: the shipped default_rubric.yaml)"
    )
    p.add_argument("--reviews", type=Path, help="JSONL of {id, labels} reviewer overrides")
    p.add_argument(
        "--outcomes",
        type=Path,
        help="CSV: conversation_id, csat, complaint, repeat_contact (blank = unknown)",
    )


def register(subparsers: Any) -> None:
    g = subparsers.add_parser(
        "grade",
        help="agent KPIs and grades per month, quarter or year",
        description="Grade every agent per calendar period (Asia/Shanghai by default); writes "
        "grades.csv, teams.csv, grades.json and report.html to --out.",
    )
    _common(g)
    g.add_argument("--period", choices=PERIOD_KINDS, default="month")
    g.add_argument(
        "--method",
        choices=("absolute", "forced"),
        help="override the rubric's grading method (forced = forced distribution)",
    )
    g.add_argument(
        "--min-conversations",
        type=int,
        help="override the rubric's minimum conversations per agent per period",
    )
    g.add_argument("--out", type=Path, default=Path("grading-out"), help="output folder")
    g.set_defaults(func=_grade)

    i = subparsers.add_parser(
        "impact",
        help="did a training change behaviour (level 3) and results (level 4)?",
        description="Compare trained agents before vs after a training event, against untrained "
        "agents (difference-in-differences); writes impact.csv, impact_agents.csv, "
        "impact.json and report.html to --out.",
    )
    _common(i)
    i.add_argument(
        "--events",
        type=Path,
        required=True,
        help="CSV: event_id, agent_id, course, start_date, end_date",
    )
    i.add_argument("--event", action="append", help="event id (repeatable; default: every event)")
    i.add_argument("--before-days", type=int, help="window before training (rubric default 60)")
    i.add_argument("--after-days", type=int, help="window after training (rubric default 60)")
    i.add_argument("--out", type=Path, default=Path("impact-out"), help="output folder")
    i.set_defaults(func=_impact)
    _register_topics(subparsers)


def _register_topics(subparsers: Any) -> None:
    t = subparsers.add_parser(
        "topics",
        help="高频问题追踪: what customers contact us about, as recurring topics",
        description="Group conversations by the customer's opening turns (PII masked, jieba "
        "words, TF-IDF, k-means) and count each topic per period and team; writes "
        "topics.json and topics.csv to --out and prints a Chinese summary.",
    )
    t.add_argument(
        "conversations", type=Path, help="conversations: .jsonl, .jsonl.gz, a JSON array or Parquet"
    )
    t.add_argument("--roster", type=Path, help="CSV: agent_id, team (others count as 未分配)")
    t.add_argument("--period", choices=PERIOD_KINDS, default="month")
    t.add_argument(
        "--topics",
        type=int,
        help=f"number of topics (default: chosen by silhouette, {AUTO_K[0]}–{AUTO_K[-1]})",
    )
    t.add_argument("--out", type=Path, default=Path("topics-out"), help="output folder")
    t.set_defaults(func=_topics)


def _load(args: argparse.Namespace, events: Path | None = None) -> tuple[Dataset, Rubric]:
    rubric = load_rubric(args.rubric)
    grades = rubric.grades
    if getattr(args, "method", None):
        grades = dataclasses.replace(grades, method=args.method)
    min_conv = getattr(args, "min_conversations", None)
    if min_conv is not None and min_conv < 1:
        raise InputError("--min-conversations", "must be at least 1")
    rubric = dataclasses.replace(
        rubric, grades=grades, min_conversations=min_conv or rubric.min_conversations
    )
    data = load_dataset(
        args.scores,
        args.roster,
        rubric,
        reviews=args.reviews,
        events=events,
        outcomes=args.outcomes,
        pseudonym=PiiMasker.from_settings(load_settings().pii).mask_id,
    )
    return data, rubric


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "–" if x is None else format(x, spec)


def _print_grades(report: GradeReport) -> None:
    if not report.periods:
        print("No dated conversations: nothing to grade.")
        return
    # The last period is often still running; show the last one in which anyone was graded.
    graded = [r.period for r in report.agents if r.graded]
    latest = max(graded) if graded else report.periods[-1]
    rows = [r for r in report.agents if r.period == latest]
    print(f"Grades by {report.kind}, {report.periods[0]} to {report.periods[-1]}; period {latest}:")
    print(
        f"{'agent':<14}{'team':<12}{'convs':>6}{'score':>7}  {'grade':<6}{'rank':>6}{'change':>8}"
    )
    for r in rows[:_MAX_ROWS]:
        rank = f"{r.rank_in_team}/{r.graded_in_team}" if r.rank_in_team else "–"
        change = _fmt(r.score_change, "+.1f")
        print(
            f"{r.agent_id:<14}{r.team:<12}{r.n_conversations:>6}{_fmt(r.score):>7}  "
            f"{r.grade:<6}{rank:>6}{change:>8}"
        )
    if len(rows) > _MAX_ROWS:
        print(f"… {len(rows) - _MAX_ROWS} more agents in grades.csv")
    counts = {g: sum(r.grade == g for r in rows) for g in (*GRADES, INSUFFICIENT)}
    print("  ".join(f"{g} {n}" for g, n in counts.items()))
    for note in report.notes:
        print(f"note: {note}")


def _print_impact(ev: EventImpact) -> None:
    print(
        f"Training {ev.event_id} {ev.course}: {len(ev.treated)} trained, "
        f"{len(ev.controls)} untrained; before {ev.windows.before_start}..{ev.windows.before_end}, "
        f"after {ev.windows.after_start}..{ev.windows.after_end}"
    )
    for e in ev.indicators:
        est = "–" if e.estimate is None else f"{e.estimate:+.3g}"
        ci = "" if e.ci_low is None else f" [{e.ci_low:+.3g}, {e.ci_high:+.3g}]"
        print(f"  L{e.level} {e.indicator:<20}{est:>9}{ci:<22} {VERDICT_LABELS[e.verdict]}")
    for line in (*ev.summary, *ev.notes):
        print(f"  {line}")


def _fail(command: str, exc: Exception, where: str = "") -> int:
    """What the user can fix: one line on stderr, exit 2, no traceback."""
    message = f"cannot write {exc.filename}: {exc.strerror}" if isinstance(exc, OSError) else f"{where}{exc}"
    print(f"kefuqa {command}: {message}", file=sys.stderr)
    return 2


def _grade(args: argparse.Namespace) -> int:
    try:
        data, rubric = _load(args)
        report = grade_all(data, rubric, args.period)
        paths = write_grade_outputs(
            report, rubric, args.out, rubric_origin=str(args.rubric or "default_rubric.yaml")
        )
    except (InputError, OSError) as exc:
        return _fail("grade", exc)
    _print_grades(report)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _impact(args: argparse.Namespace) -> int:
    try:
        data, rubric = _load(args, events=args.events)
        for name in ("before_days", "after_days"):
            value = getattr(args, name)
            if value is not None and value < 1:
                raise InputError(f"--{name.replace('_', '-')}", "must be at least 1 day")
        ids = args.event or sorted(data.events)
        if not ids:
            raise InputError(str(args.events), "no training events in the file")
        impacts = [
            analyse_event(data, rubric, e, before_days=args.before_days, after_days=args.after_days)
            for e in ids
        ]
        paths = write_impact_outputs(
            impacts, rubric, args.out, rubric_origin=str(args.rubric or "default_rubric.yaml")
        )
    except (InputError, OSError) as exc:
        return _fail("impact", exc)
    for ev in impacts:
        _print_impact(ev)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _topics(args: argparse.Namespace) -> int:
    try:
        if args.topics is not None and args.topics < 2:
            raise InputError("--topics", f"must be at least 2, not {args.topics}")
        settings = load_settings()
        masker = PiiMasker.from_settings(settings.pii)
        tz = load_rubric(settings.grading.rubric).tz  # periods as `kefuqa grade` counts them
        roster = load_roster(args.roster) if args.roster else []
        teams = {masker.mask_id(e.agent_id): e.team for e in roster}
        docs, read = collect(read_conversations(args.conversations, settings.limits), masker)
        if not docs:
            raise InputError(
                str(args.conversations),
                f"no customer turns in {read.conversations} valid conversations "
                f"({read.rejected} invalid lines skipped): nothing to group",
            )
        report = find_topics(docs, read, kind=args.period, tz=tz, teams=teams, k=args.topics)
        paths = write_topic_outputs(report, args.out)
    except (InputError, ReadError, OSError) as exc:
        return _fail("topics", exc)
    except TopicsError as exc:
        return _fail("topics", exc, where=f"{args.conversations}: ")
    print("\n".join(topic_summary(report)))
    print(f"已写入 {', '.join(str(p) for p in paths.values())}")
    return 0
