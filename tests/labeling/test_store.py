"""The store itself: migrations from empty, models matching them, the append-only audit log, masking."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from kefuqa.labeling import audit
from kefuqa.labeling.db import (
    StoreError,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    migrate,
    open_engine,
    session,
)
from kefuqa.labeling.models import AuditEntry, Base, StoredConversation

from .helpers import load

TABLES = {"users", "sessions", "teams", "conversations", "predictions", "review_tasks", "reviews", "disputes",
          "dispute_answers", "audit_log", "evidence_marks", "missed_spans", "grade_appeals", "grade_appeal_steps",
          "speaker_fixes", "alembic_version"}


def test_migrations_up_from_empty_down_and_up_again(db_url):
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert not set(inspect(engine).get_table_names()) & TABLES
        migrate(engine)
        assert current_revision(engine) == head_revision() == "0006"
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:  # the ORM models say what the migrations built
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
        assert diff == []
        downgrade(engine, "base")
        assert not set(inspect(engine).get_table_names()) & (TABLES - {"alembic_version"})
        migrate(engine)
        assert current_revision(engine) == "0006"
    finally:
        engine.dispose()


def test_a_server_database_behind_head_is_not_migrated_silently(db_url):
    if db_url.startswith("sqlite"):
        engine = open_engine(db_url)  # SQLite: works with no setup
        assert current_revision(engine) == head_revision()
        engine.dispose()
        return
    with pytest.raises(StoreError, match="kefuqa review init-db"):
        open_engine(db_url)


def test_unreachable_store_is_a_readable_error():
    with pytest.raises(StoreError, match="cannot open review store .*127.0.0.1:1"):
        open_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", auto_migrate=True)
    with pytest.raises(StoreError, match="not a database URL"):
        open_engine("not a url")


def test_audit_log_is_append_only_in_the_database(engine):
    with session(engine, write=True) as s:
        audit.record(s, "tester", "something", "thing", 1, before={"a": 1}, after={"a": 2})
    for sql in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with session(engine) as s:
        [entry] = s.scalars(select(AuditEntry)).all()
        assert (entry.actor, entry.before, entry.after) == ("tester", {"a": 1}, {"a": 2})
        assert entry.at.tzinfo is not None


def test_stored_text_is_pii_masked(engine):
    load(engine, [("c-pii", "a-1", 0.5)], texts={"c-pii": "您的手机13812345678已登记，邮箱 zhang.san@example.com"})
    with session(engine) as s:
        conv = s.get(StoredConversation, "c-pii")
        agent_turn = conv.turns[1]["text"]
    assert "13812345678" not in agent_turn and "zhang.san@example.com" not in agent_turn
    assert "[手机号]" in agent_turn and "[邮箱]" in agent_turn
