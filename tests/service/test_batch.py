"""Batch scoring: worker processes, resume after kill -9, Parquet, Ray."""

from __future__ import annotations

import json
import os
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


def test_resume_after_kill_9_scores_everything_exactly_once(archive, reference, tmp_path):
    big = tmp_path / "big.jsonl"
    archive_with_rejects(big, 30000)
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "KEFUQA_BATCH_SIZE": "200"}
    cmd = [KEFUQA, "score", str(big), "-o", str(out), "--engine", "rules", "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    ckpt = checkpoint_path(out)
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and json.loads(ckpt.read_text())["line"] > 3000):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "the run finished before it could be killed"
    with out.open("ab") as fh:
        fh.write(b'{"id": "half-written')  # what a crash mid-write leaves behind
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "resumed after line" in res.stderr
    full = tmp_path / "full.jsonl"
    score_file(big, EngineSpec("rules"), Settings(), output=full, progress=False)
    assert out.read_bytes() == full.read_bytes()
    assert (tmp_path / "out.rejects.jsonl").read_bytes() == (tmp_path / "full.rejects.jsonl").read_bytes()
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == len(set(ids))


def test_parquet_in_and_out(archive, reference, tmp_path):
    rows = [json.loads(line) for line in archive.read_text(encoding="utf-8").splitlines()[:200]
            if line.startswith('{"id"')]
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), src)
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
        assert r["labels"] == by_id[r["id"]]["labels"] and r["metrics"] == by_id[r["id"]]["metrics"]


def test_resume_needs_a_jsonl_output(archive, tmp_path):
    from kefuqa.io.readers import InputError

    with pytest.raises(InputError, match="--resume needs a JSONL output"):
        score_file(archive, EngineSpec("rules"), Settings(), output=tmp_path / "o.parquet", resume=True)


def test_ray_local_run_equals_the_local_run(archive, reference, tmp_path):
    pytest.importorskip("ray")
    from kefuqa.service.ray_runner import score_file_ray

    out = tmp_path / "out.jsonl"
    s = score_file_ray(archive, EngineSpec("rules"), Settings(batch_size=100), output=out, workers=2, window=1000)
    assert s.scored > 2900
    assert (out.read_bytes(), (tmp_path / "out.rejects.jsonl").read_bytes()) == reference


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
