"""Connecting to the review store and migrating it (Alembic, run from code).

SQLite (the default, a file in ``KEFUQA_HOME``) is created and migrated on
first use, so it works with no setup. Any other database (PostgreSQL through
psycopg 3) is migrated explicitly with ``kefuqa review init-db``; opening one
that is behind says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StoreError(RuntimeError):
    """The review store cannot be used as configured; the message says how to fix it."""


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 here."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r} (KEFUQA_REVIEW_DB_URL), e.g. sqlite:///reviews.db") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_setup(engine)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StoreError(f"no driver for {parsed.drivername!r}: use postgresql+psycopg://… or sqlite:///…") from exc


def _sqlite_setup(engine: Engine) -> None:
    """Foreign keys on, WAL, and transactions we begin ourselves.

    Write sessions begin with ``BEGIN IMMEDIATE`` (``writer(engine)``) so two
    concurrent writers queue on the lock instead of failing to upgrade a read
    lock; the compare-and-set on ``version`` then decides who wins.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite: let us emit BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", "DEFERRED"))


def writer(engine: Engine) -> Engine:
    """The same engine, whose SQLite transactions take the write lock up front."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """``alembic upgrade`` to ``revision`` on this engine."""
    with writer(engine).begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with writer(engine).begin() as conn:
        command.downgrade(alembic_config(conn), revision)


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_engine(url: str, auto_migrate: bool | None = None) -> Engine:
    """An engine on a store at the head revision.

    ``auto_migrate`` defaults to True for SQLite and False elsewhere.
    """
    engine = make_engine(url)
    if auto_migrate is None:
        auto_migrate = engine.dialect.name == "sqlite"
    try:
        current = current_revision(engine)
        head = head_revision()
        if current != head:
            if not auto_migrate:
                raise StoreError(
                    f"review store {describe(url)} is at revision {current or 'empty'}, the code needs {head}: "
                    "run `kefuqa review init-db`")
            migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreError(f"cannot open review store {describe(url)}: {reason} (KEFUQA_REVIEW_DB_URL)") from exc
    except StoreError:
        engine.dispose()
        raise
    return engine


@contextmanager
def session(engine: Engine, write: bool = False) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on error."""
    maker = sessionmaker(bind=writer(engine) if write else engine, expire_on_commit=False)
    with maker() as s, s.begin():
        yield s
