"""Batch scoring: worker processes, resume after kill -9, Parquet (Ray: test_ray.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kefuqa.service.batch import EngineSpec, checkpoint_path, score_file
from kefuqa.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"


def make_archive(path: Path, n: int) -> Path:
    """``n`` conversations: the bundled examples over and over, each with its own id."""
    rows = [json.loads(line) for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({**rows[i % len(rows)], "id": f"b-{i:07d}"}, ensure_ascii=False) + "\n")
    return path

KEFUQA = str(Path(sys.executable).parent / "kefuqa")


def archive_with_rejects(path: Path, n: int) -> Path:
    make_archive(path, n)
    lines = path.read_text(encoding="utf-8").splitlines()
    for i in range(7, len(lines), 97):  # sprinkle bad lines through the archive
        lines[i] = "{broken" if i % 2 else json.dumps({"id": f"bad-{i}", "agent_id": "a", "turns": []})
    lines.insert(50, lines[10])  # a duplicate id
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return archive_with_rejects(tmp_path_factory.mktemp("a") / "archive.jsonl", 3000)


@pytest.fixture(scope="module")
def reference(archive, tmp_path_factory) -> tuple[bytes, bytes]:
    out = tmp_path_factory.mktemp("ref") / "out.jsonl"
    s = score_file(archive, EngineSpec("rules"), Settings(), output=out, progress=False)
    assert s.scored > 2900 and s.rejected > 30
    return out.read_bytes(), out.with_name("out.rejects.jsonl").read_bytes()


def test_worker_processes_give_the_same_output_in_order(archive, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    score_file(archive, EngineSpec("rules"), Settings(batch_size=50), output=out, progress=False, workers=2)
    assert (out.read_bytes(), (tmp_path / "out.rejects.jsonl").read_bytes()) == reference
    assert not checkpoint_path(out).exists()


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """An archive long enough to be stopped part-way through."""
    return archive_with_rejects(tmp_path_factory.mktemp("big") / "big.jsonl", 30000)


@pytest.fixture(scope="module")
def big_reference(big, tmp_path_factory) -> tuple[bytes, bytes]:
    """``big`` scored in one uninterrupted run: its records and its rejects."""
    full = tmp_path_factory.mktemp("big-ref") / "full.jsonl"
    score_file(big, EngineSpec("rules"), Settings(), output=full, progress=False)
    return full.read_bytes(), full.with_name("full.rejects.jsonl").read_bytes()


def _start_and_wait_for_line(cmd: list[str], ckpt: Path, line: int, **popen) -> subprocess.Popen[str]:
    """Start ``kefuqa score`` and wait until its checkpoint is past ``line``."""
    env = {**os.environ, "KEFUQA_BATCH_SIZE": "200"}
    proc = subprocess.Popen(cmd, env=env, text=True, **popen)
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and json.loads(ckpt.read_text())["line"] > line):
        time.sleep(0.05)
    return proc


def test_resume_after_kill_9_scores_everything_exactly_once(big, big_reference, tmp_path):
    out = tmp_path / "out.jsonl"
    cmd = [KEFUQA, "score", str(big), "-o", str(out), "--engine", "rules", "--workers", "1"]
    ckpt = checkpoint_path(out)
    proc = _start_and_wait_for_line(cmd, ckpt, 3000, stderr=subprocess.DEVNULL)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "the run finished before it could be killed"
    with out.open("ab") as fh:
        fh.write(b'{"id": "half-written')  # what a crash mid-write leaves behind
    env = {**os.environ, "KEFUQA_BATCH_SIZE": "200"}
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "resumed after line" in res.stderr
    assert (out.read_bytes(), (tmp_path / "out.rejects.jsonl").read_bytes()) == big_reference
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == len(set(ids))


def test_sigterm_leaves_whole_records_and_resume_reports_only_its_own_work(big, big_reference, tmp_path):
    out = tmp_path / "out.jsonl"
    cmd = [KEFUQA, "score", str(big), "-o", str(out), "--engine", "rules", "--workers", "2"]
    ckpt = checkpoint_path(out)
    proc = _start_and_wait_for_line(cmd, ckpt, 2000, stderr=subprocess.PIPE)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    state = json.loads(ckpt.read_text())
    assert proc.returncode == 143, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("kefuqa: terminated") and f"complete up to input line {state['line']}" in err
    assert "--resume" in err
    # Whole records only, exactly what the checkpoint describes.
    assert out.stat().st_size == state["out_bytes"] and out.read_bytes().endswith(b"\n")
    assert all(json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines())

    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (out.read_bytes(), (tmp_path / "out.rejects.jsonl").read_bytes()) == big_reference
    total_scored = big_reference[0].count(b"\n")
    total_rejected = big_reference[1].count(b"\n")
    assert f"scored {total_scored - state['scored']}, rejected {total_rejected - state['rejected']} " in res.stderr
    assert (f"resumed after line {state['line']} (already done: {state['scored']} scored, "
            f"{state['rejected']} rejected)") in res.stderr


def test_sigterm_leaves_a_readable_parquet_file_with_every_record_handed_over(big, big_reference, tmp_path):
    out = tmp_path / "out.parquet"
    cmd = [KEFUQA, "score", str(big), "-o", str(out), "--engine", "rules", "--workers", "2"]
    ckpt = checkpoint_path(out)
    proc = _start_and_wait_for_line(cmd, ckpt, 2000, stderr=subprocess.PIPE)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    state = json.loads(ckpt.read_text())
    assert proc.returncode == 143, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{out} holds the records up to input line {state['line']}" in err
    # Footer written, and exactly the records of the lines handled, in input order.
    ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()
    expected = [json.loads(line)["id"] for line in big_reference[0].splitlines()[:state["scored"]]]
    assert ids == expected


@pytest.mark.parametrize(("sig", "word"), [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")])
def test_a_signal_to_the_process_group_stops_workers_without_tracebacks(big, tmp_path, sig, word):
    out = tmp_path / "out.jsonl"
    cmd = [KEFUQA, "score", str(big), "-o", str(out), "--engine", "rules", "--workers", "2"]
    ckpt = checkpoint_path(out)
    # As a terminal's Ctrl-C, or `kill -TERM -PGID`, does: the signal to the command and its workers.
    proc = _start_and_wait_for_line(cmd, ckpt, 1000, stderr=subprocess.PIPE, start_new_session=True)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert err.startswith(f"kefuqa: {word}") and len(err.strip().splitlines()) == 1, err
    assert out.stat().st_size == json.loads(ckpt.read_text())["out_bytes"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stdout_closed_early_by_the_reader_exits_quietly(big, workers, tmp_path):
    # `kefuqa score big.jsonl | head -1`; without -o the rejects file lands in the working directory
    with subprocess.Popen([KEFUQA, "score", str(big), "--engine", "rules", "--workers", workers],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(timeout=120)
    assert json.loads(first)["id"] == "b-0000000"
    assert proc.returncode == 0 and err == ""


def test_parquet_in_and_out(archive, reference, tmp_path):
    rows = [json.loads(line) for line in archive.read_text(encoding="utf-8").splitlines()[:200]
            if line.startswith('{"id"')]
    src = tmp_path / "in.parquet"
    columns = list(dict.fromkeys(k for r in rows for k in r))  # from_pylist takes the first row's keys only
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows]), src)
    out = tmp_path / "out.parquet"
    s = score_file(src, EngineSpec("rules"), Settings(), output=out, progress=False)
    table = pq.read_table(out).to_pylist()
    expected = [json.loads(line) for line in reference[0].decode().splitlines()]
    by_id = {r["id"]: r for r in expected}
    seen: set[str] = set()
    valid = [r["id"] for r in rows if r["turns"] and not (r["id"] in seen or seen.add(r["id"]))]
    assert s.scored == len(table) == len(valid) and [r["id"] for r in table] == valid
    assert s.rejected == len(rows) - len(valid)  # the empty-turns row and the duplicate id
    for r in table[:50]:
        want = by_id[r["id"]]["metrics"]
        # Parquet has a column for every metric: null where the JSONL record has no key.
        metrics = {k: v for k, v in r["metrics"].items() if k in want or v is not None}
        assert r["labels"] == by_id[r["id"]]["labels"] and metrics == want


def test_resume_needs_a_jsonl_output(archive, tmp_path):
    from kefuqa.io.readers import InputError

    with pytest.raises(InputError, match="--resume needs a JSONL output"):
        score_file(archive, EngineSpec("rules"), Settings(), output=tmp_path / "o.parquet", resume=True)


class _FailsOnPoison:
    """Rules, except that a chunk holding a conversation whose id starts with
    ``poison`` makes the engine call raise, as an engine bug would."""

    def __call__(self):
        from kefuqa.models.baseline import RulesEngine

        inner = RulesEngine()

        class Engine:
            info = inner.info

            @staticmethod
            def score_batch(convs):
                if any(c.id.startswith("poison") for c in convs):
                    raise RuntimeError("engine failure on 13812345678")
                return inner.score_batch(convs)

        return Engine()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_conversation_the_engine_fails_on_becomes_a_reject_and_the_rest_are_scored(tmp_path, workers):
    src = tmp_path / "in.jsonl"
    make_archive(src, 60)
    lines = src.read_text(encoding="utf-8").splitlines()
    poisoned = json.loads(lines[20])
    poisoned["id"] = "poison-1"
    lines[20] = json.dumps(poisoned, ensure_ascii=False)
    lines.insert(40, json.dumps({"id": "x-1", "agent_id": "a", "turns": [{"speaker": "agent", "text": "\ud800"}]}))
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    s = score_file(src, _FailsOnPoison(), Settings(batch_size=16), output=out, progress=False, workers=workers)
    assert (s.scored, s.rejected) == (59, 2)
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert "poison-1" not in ids and len(ids) == 59
    rejects = [json.loads(line) for line in out.with_name("out.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rejects] == [21, 41]
    assert rejects[0]["id"] == "poison-1" and rejects[0]["reason"].startswith("could not score: RuntimeError")
    assert "13812345678" not in rejects[0]["reason"]  # error text is masked like everything written
    assert rejects[1]["id"] == "x-1" and "lone surrogate U+D800" in rejects[1]["reason"]


def test_resume_refuses_an_input_edited_since_the_interrupted_run(tmp_path):
    from kefuqa.io.readers import InputError
    from kefuqa.service.batch import _save_checkpoint, input_fingerprint

    src = tmp_path / "in.jsonl"
    make_archive(src, 50)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"")
    state = {"input": str(src.resolve()), "fingerprint": input_fingerprint(src), "line": 10,
             "out_bytes": 0, "rej_bytes": 0, "scored": 0, "rejected": 0}
    _save_checkpoint(checkpoint_path(out), state)
    lines = src.read_text(encoding="utf-8").splitlines()
    src.write_text("\n".join(lines[:5] + lines[6:]) + "\n", encoding="utf-8")  # a line removed
    with pytest.raises(InputError, match="changed since the interrupted run"):
        score_file(src, EngineSpec("rules"), Settings(), output=out, progress=False, resume=True)
    # The same input as before resumes.
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    s = score_file(src, EngineSpec("rules"), Settings(), output=out, progress=False, resume=True)
    assert s.resumed_from_line == 10 and s.scored == 40


def test_progress_bar_has_a_total_and_a_resumed_run_starts_where_it_stopped(tmp_path, capsys):
    src = make_archive(tmp_path / "in.jsonl", 120)
    out = tmp_path / "out.jsonl"
    score_file(src, EngineSpec("rules"), Settings(batch_size=50), output=out, progress=True)
    bar = capsys.readouterr().err
    assert "120/120" in bar and "100%" in bar
    assert re.search(r"120/120 \[\d\d:\d\d<\d\d:\d\d", bar), bar  # elapsed<remaining: the ETA
    # A resumed run: the bar starts at the line the interrupted run got to.
    from kefuqa.service.batch import _save_checkpoint, input_fingerprint

    first = out.read_text(encoding="utf-8").splitlines(keepends=True)[:40]
    out.write_text("".join(first), encoding="utf-8")
    state = {"input": str(src.resolve()), "fingerprint": input_fingerprint(src), "line": 40,
             "out_bytes": out.stat().st_size, "rej_bytes": 0, "scored": 40, "rejected": 0}
    _save_checkpoint(checkpoint_path(out), state)
    s = score_file(src, EngineSpec("rules"), Settings(batch_size=50), output=out, progress=True, resume=True)
    bar = capsys.readouterr().err
    assert " 40/120" in bar and "120/120" in bar
    assert (s.scored, s.scored_before) == (80, 40)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 120


def test_no_progress_bar_off_a_terminal_and_none_at_all_with_quiet(tmp_path, capsys):
    src = make_archive(tmp_path / "in.jsonl", 30)
    score_file(src, EngineSpec("rules"), Settings(), output=tmp_path / "a.jsonl")  # stderr is not a TTY here
    assert capsys.readouterr().err == ""
    res = subprocess.run([KEFUQA, "score", str(src), "-o", str(tmp_path / "b.jsonl"), "--engine", "rules",
                          "--workers", "1", "--quiet"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stderr == ""
    assert len((tmp_path / "b.jsonl").read_text(encoding="utf-8").splitlines()) == 30


def test_parquet_output_has_few_large_row_groups(tmp_path):
    src = make_archive(tmp_path / "in.jsonl", 5000)
    out = tmp_path / "out.parquet"
    s = score_file(src, EngineSpec("rules"), Settings(batch_size=64), output=out, progress=False)
    meta = pq.ParquetFile(out).metadata
    assert s.scored == meta.num_rows == 5000 and meta.num_row_groups == 1


def test_parquet_row_groups_are_bounded_so_memory_stays_flat(tmp_path):
    from kefuqa.io.parquet import ParquetRecordWriter

    records = [json.loads(line) for line in _scored_lines(tmp_path, 300)]
    writer = ParquetRecordWriter(tmp_path / "out.parquet", row_group_rows=100)
    for i in range(0, len(records), 30):
        writer.write(records[i:i + 30])
    writer.close()
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [120, 120, 60]  # a group is written once 100 rows are pending
    by_bytes = ParquetRecordWriter(tmp_path / "bytes.parquet", row_group_bytes=1)
    by_bytes.write(records[:30])
    by_bytes.write(records[30:60])
    by_bytes.close()
    assert pq.ParquetFile(tmp_path / "bytes.parquet").metadata.num_row_groups == 2


def _scored_lines(tmp_path: Path, n: int) -> list[str]:
    out = tmp_path / "scored.jsonl"
    score_file(make_archive(tmp_path / "src.jsonl", n), EngineSpec("rules"), Settings(), output=out, progress=False)
    return out.read_text(encoding="utf-8").splitlines()


def test_parquet_timestamps_keep_their_offset_through_scoring(tmp_path):
    from datetime import datetime, timedelta, timezone

    cst = timezone(timedelta(hours=8))
    turns = [{"speaker": "customer", "text": "在吗？", "ts": datetime(2026, 3, 1, 10, 22, 5, tzinfo=cst)},
             {"speaker": "agent", "text": "亲，您好", "ts": datetime(2026, 3, 1, 10, 22, 35, tzinfo=cst)}]
    row = {"id": "tz-1", "agent_id": "a", "started_at": datetime(2026, 3, 1, 10, 22, 5, tzinfo=cst), "turns": turns}
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([row]), src)
    assert pq.read_schema(src).field("started_at").type == pa.timestamp("us", tz="+08:00")
    for workers in (1, 2):
        out = tmp_path / f"out-{workers}.jsonl"
        score_file(src, EngineSpec("rules"), Settings(), output=out, progress=False, workers=workers)
        [record] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert record["started_at"] == "2026-03-01T10:22:05+08:00"
        assert record["metrics"]["first_response_s"] == 30


def test_default_worker_layout_gives_the_rules_engine_every_core_and_a_neural_one_two_threads_each(tmp_path):
    from kefuqa.service.cli import default_workers

    assert [default_workers("rules", c) for c in (1, 2, 16)] == [1, 2, 16]
    assert [default_workers("neural", c) for c in (1, 2, 3, 16)] == [1, 1, 1, 8]
    examples = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"
    env = {**os.environ, "KEFUQA_HOME": str(tmp_path / "home")}
    run = subprocess.run([KEFUQA, "score", str(examples), "--engine", "rules", "-o", str(tmp_path / "out.jsonl")],
                         capture_output=True, text=True, env=env, timeout=300)
    cores = os.cpu_count() or 1
    assert run.returncode == 0, run.stderr
    assert run.stderr.rstrip().endswith(f"local, {cores} worker{'' if cores == 1 else 's'}]"), run.stderr
