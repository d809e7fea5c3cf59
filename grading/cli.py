"""``kefuqa grade`` and ``kefuqa impact``: the grading engine on the command line.

Bad input prints one line naming the file, line and field and exits 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from kefuqa.io.readers import InputError as ReadError
from kefuqa.io.readers import read_conversations
from kefuqa.settings import load_settings
from kefuqa.text.pii import PiiMasker

from .dataset import Dataset, load_dataset
from .errors import InputError
from .inputs import load_roster
from .periods import PERIOD_KINDS
from .rubric import Rubric, load_rubric
from .texts import DEFAULT_LANG, LANGS, tr

if TYPE_CHECKING:  # statistics, charts and clustering are imported when a command runs, not for --help
    from .course_inputs import CourseFeedback


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
    p.add_argument(
        "--lang",
        choices=LANGS,
        default=DEFAULT_LANG,
        help="language of the report, the CSV reasons and the summary (default zh-CN)",
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
    i.add_argument(
        "--survey", type=Path, help="level 1 (reaction) CSV: event_id, agent_id, question, rating"
    )
    i.add_argument(
        "--exam", type=Path, help="level 2 (learning) CSV: event_id, agent_id, test, before, after"
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
        "topics.json, topics.csv, topics_teams.csv and report.html to --out and prints a summary.",
    )
    t.add_argument(
        "conversations", type=Path, help="conversations: .jsonl, .jsonl.gz, a JSON array or Parquet"
    )
    t.add_argument("--roster", type=Path, help="CSV: agent_id, team (others count as 未分配)")
    t.add_argument("--period", choices=PERIOD_KINDS, default="month")
    t.add_argument(
        "--topics",
        type=int,
        help="number of topics (default: chosen by silhouette, 2–10)",  # topics.AUTO_K
    )
    t.add_argument("--out", type=Path, default=Path("topics-out"), help="output folder")
    t.add_argument(
        "--lang",
        choices=LANGS,
        default=DEFAULT_LANG,
        help="language of the report and the summary (default zh-CN)",
    )
    t.set_defaults(func=_topics)


def _load(args: argparse.Namespace, events: Path | None = None) -> tuple[Dataset, Rubric]:
    rubric = load_rubric(args.rubric)
    grades = rubric.grades
    if getattr(args, "method", None):
        try:
            grades = dataclasses.replace(grades, method=args.method)
        except ValidationError as exc:  # e.g. a custom grade scheme without forced_shares
            raise InputError("--method", exc.errors()[0]["msg"]) from None
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
        lang=args.lang,
    )
    return data, rubric


def _feedback(args: argparse.Namespace, data: Dataset, rubric: Rubric) -> CourseFeedback:
    """Level 1 and 2 files, with agent ids pseudonymised as the other inputs are."""
    from .course_inputs import CourseFeedback, load_exams, load_surveys

    events = set(data.events)
    feedback = CourseFeedback(
        load_surveys(args.survey, rubric.reaction, events) if args.survey else None,
        load_exams(args.exam, rubric.learning, events) if args.exam else None,
    )
    return feedback.with_ids(PiiMasker.from_settings(load_settings().pii).mask_id)


def _fail(command: str, exc: Exception, where: str = "") -> int:
    """What the user can fix: one line on stderr, exit 2, no traceback."""
    message = f"cannot write {exc.filename}: {exc.strerror}" if isinstance(exc, OSError) else f"{where}{exc}"
    print(f"kefuqa {command}: {message}", file=sys.stderr)
    return 2


def _grade(args: argparse.Namespace) -> int:
    from .channels import channel_datasets
    from .cli_summary import grade_lines
    from .grades import grade_all
    from .report import write_grade_outputs

    done = []
    try:
        data, rubric = _load(args)
        # A rubric with grade_channels: per_channel grades chats and calls apart, into <out>/<channel>/.
        for channel, part in channel_datasets(data, rubric):
            report = grade_all(part, rubric, args.period, lang=args.lang)
            out = args.out if channel is None else args.out / channel
            origin = str(args.rubric or "default_rubric.yaml")
            done.append((channel, report, write_grade_outputs(report, rubric, out, rubric_origin=origin)))
    except (InputError, OSError) as exc:
        return _fail("grade", exc)
    for channel, report, paths in done:
        print("\n".join(([f"[{channel}]"] if channel else []) + grade_lines(report)))
        print(tr(args.lang, "cli.wrote", paths=", ".join(str(p) for p in paths.values())))
    return 0


def _impact(args: argparse.Namespace) -> int:
    from .cli_summary import impact_lines
    from .impact import analyse_event
    from .report import write_impact_outputs

    try:
        data, rubric = _load(args, events=args.events)
        feedback = _feedback(args, data, rubric)
        for name in ("before_days", "after_days"):
            value = getattr(args, name)
            if value is not None and value < 1:
                raise InputError(f"--{name.replace('_', '-')}", "must be at least 1 day")
        ids = args.event or sorted(data.events)
        if not ids:
            raise InputError(str(args.events), "no training events in the file")
        impacts = [
            analyse_event(
                data,
                rubric,
                e,
                before_days=args.before_days,
                after_days=args.after_days,
                feedback=feedback,
                lang=args.lang,
            )
            for e in ids
        ]
        paths = write_impact_outputs(
            impacts, rubric, args.out, rubric_origin=str(args.rubric or "default_rubric.yaml")
        )
    except (InputError, OSError) as exc:
        return _fail("impact", exc)
    for ev in impacts:
        print("\n".join(impact_lines(ev)))
    print(tr(args.lang, "cli.wrote", paths=", ".join(str(p) for p in paths.values())))
    return 0


def _topics(args: argparse.Namespace) -> int:
    from .topics import TopicsError, collect, find_topics
    from .topics_output import topic_summary, write_topic_outputs

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
        paths = write_topic_outputs(report, args.out, args.lang)
    except (InputError, ReadError, OSError) as exc:
        return _fail("topics", exc)
    except TopicsError as exc:
        return _fail("topics", exc, where=f"{args.conversations}: ")
    print("\n".join(topic_summary(report, args.lang)))
    print(tr(args.lang, "cli.wrote", paths=", ".join(str(p) for p in paths.values())))
    return 0
