"""Review-store fixtures: every test runs on SQLite and on PostgreSQL.

PostgreSQL is the real server on 127.0.0.1:5432 (database ``test``); each test
gets its own schema, dropped afterwards, so reruns start clean. The
PostgreSQL half is skipped only when the server cannot be reached, and says why.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from kefuqa.labeling.db import open_engine
from kefuqa.settings import Settings

PG_HOST = os.environ.get("KEFUQA_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("KEFUQA_TEST_PG_PORT", "5432"))
PG_DB = os.environ.get("KEFUQA_TEST_PG_DB", "test")


def _pg_user() -> tuple[str | None, str]:
    """The first of postgres / root that can connect, or (None, why not)."""
    try:
        import psycopg
    except ImportError as exc:
        return None, f"psycopg not installed: {exc}"
    why = ""
    for user in filter(None, (os.environ.get("KEFUQA_TEST_PG_USER"), "postgres", "root")):
        try:
            with psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=user, connect_timeout=3):
                return user, ""
        except psycopg.OperationalError as exc:
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return None, f"PostgreSQL at {PG_HOST}:{PG_PORT}/{PG_DB} unreachable: {why}"


@pytest.fixture(scope="session")
def pg_user() -> str:
    user, why = _pg_user()
    if user is None:
        print(f"\nskipping PostgreSQL review tests: {why}")
        pytest.skip(why)
    return user


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reviews.db'}"
        return
    import psycopg

    user = request.getfixturevalue("pg_user")
    schema = "kq_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=user, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{PG_DB}"
               f"?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=user, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def engine(db_url):
    eng = open_engine(db_url, auto_migrate=True)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(db_url, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", review_db_url=db_url)
