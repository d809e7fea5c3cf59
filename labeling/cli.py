"""``kefuqa review …``: the review store from the command line.

Every user error is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from kefuqa.io.readers import Reject, read_conversations
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker

from .cli_common import CliError, actor, handled, prints_help, store_engine
from .cli_reports import add_appeals, add_rules_stats, disputes

PASSWORD_ENV = "KEFUQA_REVIEW_PASSWORD"


# ---------------------------------------------------------------- commands
def _init_db(args: argparse.Namespace, settings: Settings) -> int:
    from .config import db_url
    from .db import current_revision, describe, head_revision, make_engine, migrate

    url = db_url(settings, args.db)
    engine = make_engine(url)
    try:
        before = current_revision(engine)
        migrate(engine)
    except Exception as exc:  # driver errors: unreachable server, wrong password …
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            raise CliError(f"cannot migrate {describe(url)}: {str(getattr(exc, 'orig', exc)).splitlines()[0]}") from exc
        raise
    finally:
        engine.dispose()
    print(f"review store {describe(url)}: {before or 'empty'} → {head_revision()}")
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return args.password
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise CliError(f"no password: give --password, set {PASSWORD_ENV}, or run in a terminal to be asked")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise CliError("the passwords differ")
    return first


def _users_add(args: argparse.Namespace, settings: Settings) -> int:
    from .auth import add_user
    from .db import session

    password = _password(args)
    engine = store_engine(args, settings)
    try:
        with session(engine, write=True) as s:
            user = add_user(s, args.name, args.role, password, team=args.team, agent_id=args.agent_id, actor=actor())
            print(f"user {user.name} ({user.role}{', team ' + user.team if user.team else ''}"
                  f"{', agent ' + user.agent_id if user.agent_id else ''}) created")
    finally:
        engine.dispose()
    return 0


def _users_list(args: argparse.Namespace, settings: Settings) -> int:
    from .auth import list_users
    from .db import session

    engine = store_engine(args, settings)
    try:
        with session(engine) as s:
            for u in list_users(s):
                print(f"{u['name']}\t{u['role']}\t{u['team'] or '-'}\t{u['agent_id'] or '-'}\t"
                      f"{'active' if u['active'] else 'inactive'}")
    finally:
        engine.dispose()
    return 0


def _users_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from .auth import set_active, set_password
    from .db import session

    engine = store_engine(args, settings)
    try:
        with session(engine, write=True) as s:
            if args.users_cmd == "passwd":
                set_password(s, args.name, _password(args), actor=actor())
                print(f"password of {args.name} changed; their sessions are logged out")
            else:
                set_active(s, args.name, args.users_cmd == "enable", actor=actor())
                print(f"{args.name} {args.users_cmd}d")
    finally:
        engine.dispose()
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from .db import session
    from .importer import import_scores, read_roster, read_score_records

    cfg = settings.review
    problems: list[str] = []
    convs = {}
    for line_no, item in read_conversations(args.conversations, settings.limits):
        if isinstance(item, Reject):
            problems.append(f"{args.conversations}:{line_no}: {item.reason}")
        else:
            convs[item.id] = item
    teams = read_roster(args.roster) if args.roster else None
    shares = (_share(args.uncertain_share, cfg.uncertain_share), _share(args.sample_share, cfg.sample_share),
              _share(args.double_share, cfg.double_share))
    score_problems: list[str] = []
    records = list(read_score_records(args.scores, score_problems))
    if not records:
        raise CliError(f"{args.scores}: no valid score records"
                       + (f" ({score_problems[0]})" if score_problems else ""))
    problems = score_problems + problems
    engine = store_engine(args, settings)
    try:
        with session(engine, write=True) as s:
            result = import_scores(s, records, convs, masker=PiiMasker.from_settings(settings.pii),
                                   actor=actor(), shares=shares, teams=teams, default_team=args.team, seed=args.seed)
    finally:
        engine.dispose()
    for p in (problems + result.problems)[:20]:
        print(f"skipped {p}", file=sys.stderr)
    if len(problems + result.problems) > 20:
        print(f"… and {len(problems + result.problems) - 20} more skipped", file=sys.stderr)
    print(result.summary())
    return 0 if result.predictions or result.updated_predictions else 2


def _share(value: float | None, default: float) -> float:
    if value is None:
        return default
    if not 0 <= value <= 1:
        raise CliError(f"a share is a fraction between 0 and 1, not {value}")
    return value


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from . import audit, export, interop
    from .db import session

    since = _since(args.since)
    engine = store_engine(args, settings)
    try:
        with session(engine, write=True) as s:
            if args.format == "label-studio":
                data: Any = interop.tasks(s, reviewed_only=args.reviewed_only,
                                          users=interop.annotators(args.ls_user, args.ls_default_user))
                text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
            else:
                data = export.training_rows(s, since) if args.format == "training" else export.score_records(s)
                text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data)
            audit.record(s, actor(), "export", "export", args.format,
                         after={"file": str(args.output), "rows": len(data)})
    finally:
        engine.dispose()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"{len(data)} {'tasks' if args.format == 'label-studio' else 'rows'} → {args.output}")
    if args.label_config:
        args.label_config.write_text(interop.label_config(), encoding="utf-8")
        print(f"Label Studio labelling interface → {args.label_config}")
    return 0


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(
            f"--since: not an ISO date or time: {text!r} (e.g. 2026-03-01 or 2026-03-01T00:00+08:00)"
        ) from exc


def _import_ls(args: argparse.Namespace, settings: Settings) -> int:
    from . import interop
    from .db import session

    try:
        data = json.loads(args.file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"{args.file}: no such file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{args.file}: not Label Studio's JSON export: {exc}") from exc
    engine = store_engine(args, settings)
    try:
        with session(engine, write=True) as s:
            stats = interop.import_annotations(s, data, reviewer=args.reviewer, actor=actor(),
                                               users=interop.annotators(args.ls_user))
    finally:
        engine.dispose()
    for p in stats["problems"][:20]:
        print(f"skipped {p}", file=sys.stderr)
    print(f"{stats['imported']} annotations imported, {stats['unchanged']} unchanged, "
          f"{stats['skipped']} tasks without annotations, {len(stats['problems'])} problems")
    return 0


def _teams(args: argparse.Namespace, settings: Settings) -> int:
    from .access import set_team_restriction
    from .auth import Principal
    from .db import session

    engine = store_engine(args, settings)
    try:
        with session(engine, write=True) as s:
            set_team_restriction(s, Principal(0, actor(), "admin", None, None), args.team, args.restrict)
    finally:
        engine.dispose()
    print(f"team {args.team}: {'restricted to its members' if args.restrict else 'open to all reviewers'}")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from kefuqa.http_limits import proxy_options

    from .app import create_app

    if args.db:
        settings = settings.model_copy(update={"review_db_url": args.db})
    app = create_app(settings)
    print(f"review app on http://{args.host}:{args.port}/review")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info",
                **proxy_options(settings.service.trusted_proxies))
    return 0


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from .audit import verify
    from .db import session

    engine = store_engine(args, settings)
    try:
        with session(engine) as s:
            check = verify(s)
    finally:
        engine.dispose()
    if not check.intact:
        print(f"audit log broken at row {check.broken_at}: {check.reason}; {check.rows - 1} rows before it hold")
        return 1
    print(f"audit log intact: {check.rows} rows, head {check.head}")
    return 0


def _grants(args: argparse.Namespace, _settings: Settings) -> int:
    from .audit import grants_sql

    try:
        print(grants_sql(args.role, args.schema), end="")
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    return 0


# ---------------------------------------------------------------- parser
def _db_option() -> argparse.ArgumentParser:
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", help="review store URL (default: KEFUQA_REVIEW_DB_URL or sqlite:///<KEFUQA_HOME>/reviews.db)")
    return db


def register_rules(sub: argparse._SubParsersAction) -> None:
    """``kefuqa rules stats``, the review store's half of ``kefuqa rules``."""
    add_rules_stats(sub, _db_option())


def register(sub: argparse._SubParsersAction) -> None:
    review = sub.add_parser("review", help="the review workflow: queue, reviews, disputes, exports")
    review.set_defaults(func=prints_help(review))
    db = _db_option()
    rsub = review.add_subparsers(dest="review_cmd", metavar="COMMAND")

    p = rsub.add_parser("init-db", parents=[db], help="create or upgrade the review store (alembic upgrade head)")
    p.set_defaults(func=handled(_init_db))
    _add_users(rsub, db)
    _add_import_export(rsub, db)
    _add_disputes_and_teams(rsub, db)
    _add_audit(rsub, db)
    add_appeals(rsub, db)

    p = rsub.add_parser("serve", parents=[db], help="run the review app alone (the main `kefuqa serve` includes it)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8010)
    p.set_defaults(func=handled(_serve))


def _add_users(rsub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    """``review users add|list|passwd|disable|enable``."""
    users = rsub.add_parser("users", help="add and list users of the review app")
    users.set_defaults(func=prints_help(users))
    usub = users.add_subparsers(dest="users_cmd", metavar="ACTION")
    p = usub.add_parser("add", parents=[db], help="create a user")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["reviewer", "lead", "admin", "agent"])
    p.add_argument("--team", help="team (restricted teams are visible only to their members)")
    p.add_argument("--agent-id", help="for agents: the agent_id of their conversations (default: the name)")
    p.add_argument("--password", help=f"the password (else ${PASSWORD_ENV}, else asked)")
    p.set_defaults(func=handled(_users_add))
    p = usub.add_parser("list", parents=[db], help="list users")
    p.set_defaults(func=handled(_users_list))
    for action, text in (("passwd", "set a user's password"), ("disable", "stop a user logging in"),
                         ("enable", "let a disabled user log in again")):
        p = usub.add_parser(action, parents=[db], help=text)
        p.add_argument("name")
        if action == "passwd":
            p.add_argument("--password", help=f"the new password (else ${PASSWORD_ENV}, else asked)")
        p.set_defaults(func=handled(_users_passwd))


def _add_import_export(rsub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    """``review import``, ``review export`` and ``review import-label-studio``."""
    p = rsub.add_parser("import", parents=[db], help="store scored conversations (masked) and queue review tasks")
    p.add_argument("scores", type=Path, help="score records (scores.md JSONL)")
    p.add_argument("--conversations", type=Path, required=True, help="the scored transcripts (JSONL, .jsonl.gz, JSON)")
    p.add_argument("--roster", type=Path, help="CSV with agent_id,team to place conversations in teams")
    p.add_argument("--team", help="team for agents not in the roster")
    p.add_argument("--uncertain-share", type=float, help="least confident share queued (default 0.2)")
    p.add_argument("--sample-share", type=float, help="random stratified calibration sample (default 0.05)")
    p.add_argument("--double-share", type=float, help="share of queued items for two reviewers (default 0.1)")
    p.add_argument("--seed", type=int, help="seed for the random sample (reproducible imports)")
    p.set_defaults(func=handled(_import))

    p = rsub.add_parser("export", parents=[db], help="reviewed labels as training JSONL, score records or Label Studio")
    p.add_argument("--format", required=True, choices=["training", "scores", "label-studio"])
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--since", help="training: labels decided at or after this time (ISO)")
    p.add_argument("--reviewed-only", action="store_true", help="label-studio: only reviewed conversations")
    p.add_argument("--label-config", type=Path, help="label-studio: also write the labelling interface XML here")
    _add_ls_users(p, export=True)
    p.set_defaults(func=handled(_export))

    p = rsub.add_parser("import-label-studio", parents=[db], help="import Label Studio annotations as reviews")
    p.add_argument("file", type=Path, help="Label Studio JSON export (a list of tasks)")
    p.add_argument("--reviewer", default="label-studio",
                   help="user the annotations are attributed to when completed_by names no user (default label-studio)")
    _add_ls_users(p, export=False)
    p.set_defaults(func=handled(_import_ls))


def _add_ls_users(p: argparse.ArgumentParser, export: bool) -> None:
    """Which Label Studio login (by e-mail) each kefu-qa reviewer is."""
    p.add_argument("--ls-user", action="append", default=[], metavar="NAME=EMAIL",
                   help="kefu-qa user NAME is the Label Studio user with this e-mail (repeat per reviewer); "
                   + ("their annotations are credited to that user, who must be in Label Studio's organisation"
                      if export else "annotations completed by that e-mail are theirs"))
    if export:
        p.add_argument("--ls-default-user", metavar="EMAIL",
                       help="credit the other reviewers' annotations to this Label Studio user (default: "
                       "Label Studio credits them to whoever imports the file)")


def _add_disputes_and_teams(rsub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    """``review disputes`` and ``review teams``."""
    p = rsub.add_parser("disputes", parents=[db], help="list disputes (JSON lines), e.g. the overdue ones")
    p.add_argument("--status", choices=["open", "answered", "escalated", "final"])
    p.add_argument("--overdue", action="store_true")
    p.set_defaults(func=handled(disputes))

    p = rsub.add_parser("teams", parents=[db], help="restrict a team's conversations to its own members")
    p.add_argument("team")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--restrict", dest="restrict", action="store_true")
    g.add_argument("--open", dest="restrict", action="store_false")
    p.set_defaults(func=handled(_teams))


def _add_audit(rsub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    """``review audit verify`` and ``review grants``: the audit log's tamper evidence."""
    audit = rsub.add_parser("audit", help="the audit log's tamper evidence")
    audit.set_defaults(func=prints_help(audit))
    p = audit.add_subparsers(dest="audit_cmd", metavar="COMMAND").add_parser(
        "verify", parents=[db], help="check the hash chain; exit 1 and name the first broken row if it does not hold")
    p.set_defaults(func=handled(_audit_verify))

    p = rsub.add_parser("grants", help="print the PostgreSQL grants for the app's role (no UPDATE/DELETE/TRUNCATE "
                        "on the audit log); run them as the store's owner")
    p.add_argument("--role", required=True, help="the role the app connects as")
    p.add_argument("--schema", default="public", help="schema of the review store (default public)")
    p.set_defaults(func=handled(_grants))
