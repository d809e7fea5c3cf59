"""The audit log's hash chain on SQLite and PostgreSQL: intact after real work, the
first broken link named after tampering (done as the database owner, past the
triggers), rows from before the chain chained by the migration, PostgreSQL's
TRUNCATE refused and the documented grants refusing changes to the app's role."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from kefuqa.cli import main
from kefuqa.labeling import audit
from kefuqa.labeling.db import downgrade, make_engine, migrate, session
from kefuqa.labeling.models import AuditEntry

from .helpers import load


def _write(engine, n: int, actor: str = "tester") -> None:
    with session(engine, write=True) as s:
        for i in range(n):
            audit.record(s, actor, "something", "thing", i, before={"n": i}, after={"n": i + 1, "名": "值"})

def _tamper(engine, sql: str) -> None:
    """Change the log as an owner with database access could, triggers lifted."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            conn.execute(text(sql))
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            conn.execute(text(sql))

def _check(engine, page: int = 1000) -> audit.ChainCheck:
    with session(engine) as s:
        return audit.verify(s, page)

def test_chain_holds_after_real_work_and_names_the_changed_row(engine):
    load(engine, [("c1", "a-1", 0.5), ("c2", "a-2", 0.6)])
    _write(engine, 5)
    good = _check(engine)
    assert good.intact and good.rows >= 6 and len(good.head) == 64
    with session(engine) as s:
        ids = s.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()
    _tamper(engine, f"UPDATE audit_log SET actor = 'mallory' WHERE id = {ids[3]}")
    bad = _check(engine)
    assert (bad.broken_at, bad.rows) == (ids[3], 4) and "content" in bad.reason

def test_a_deleted_row_breaks_the_next_link(engine):
    _write(engine, 4)
    with session(engine) as s:
        ids = s.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()
    _tamper(engine, f"DELETE FROM audit_log WHERE id = {ids[1]}")
    bad = _check(engine)
    assert bad.broken_at == ids[2] and "prev_hash" in bad.reason

def test_cli_verify_exit_codes(engine, db_url, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFUQA_HOME", str(tmp_path / "home"))
    _write(engine, 3)
    with pytest.raises(SystemExit) as done:
        main(["review", "audit", "verify", "--db", db_url])
    assert done.value.code == 0 and "audit log intact: 3 rows, head " in capsys.readouterr().out
    _tamper(engine, "UPDATE audit_log SET after = NULL WHERE entity_id = '1'")
    with pytest.raises(SystemExit) as done:
        main(["review", "audit", "verify", "--db", db_url])
    out = capsys.readouterr().out
    assert done.value.code == 1 and "audit log broken at row" in out and "1 rows before it hold" in out

def test_migration_chains_rows_written_before_it(db_url):
    engine = make_engine(db_url)
    try:
        migrate(engine, "0002")
        with engine.begin() as conn:
            for i in range(3):
                conn.execute(text("INSERT INTO audit_log (at, actor, action, entity, entity_id, after) "
                                  "VALUES (:at, 'old', 'x', 'thing', :i, :after)"),
                             {"at": f"2026-01-0{i + 1} 08:00:00", "i": str(i), "after": '{"k": 1}'})
        migrate(engine)
        check = _check(engine)
        assert check.intact and check.rows == 3
        _write(engine, 1)  # new rows chain onto the migrated ones
        assert _check(engine).rows == 4 and _check(engine).intact
        downgrade(engine, "0002")
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))  # the guards survive the way down
    finally:
        engine.dispose()

def test_concurrent_writers_keep_one_chain(engine):
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            _write(engine, 5, actor=f"writer-{k}")
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    check = _check(engine, page=7)  # read a few rows at a time
    assert check.intact and check.rows == 40 and check.head == _check(engine).head

def test_postgresql_refuses_truncate_and_the_grants_refuse_the_app_role(engine, db_url):
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE and roles are PostgreSQL's")
    _write(engine, 1)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))
    role = "kq_app_" + uuid.uuid4().hex[:8]
    with engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f'CREATE ROLE "{role}"'))
        conn.execute(text(audit.grants_sql(role, schema)))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'SET LOCAL ROLE "{role}"'))
            conn.execute(text("INSERT INTO audit_log (at, actor, action, entity, entity_id) "
                              "VALUES (now(), 'app', 'x', 'thing', '9')"))
            conn.execute(text("SELECT count(*) FROM review_tasks"))
        for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(DBAPIError, match="permission denied"), engine.begin() as conn:
                conn.execute(text(f'SET LOCAL ROLE "{role}"'))
                conn.execute(text(sql))
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))

def test_grants_refuse_odd_identifiers():
    with pytest.raises(ValueError, match="plain PostgreSQL identifier"):
        audit.grants_sql('app"; DROP TABLE audit_log; --')
    assert "REVOKE UPDATE, DELETE, TRUNCATE" in audit.grants_sql("kefuqa_app")
