"""The installed ``kefuqa`` command, run as a user runs it."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kefuqa.contract import ScoreRecord
from tests.conftest import conv, write_jsonl

KEFUQA = shutil.which("kefuqa", path=str(Path(sys.executable).parent)) or "kefuqa"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KEFUQA, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_score_writes_valid_records_in_input_order_and_rejects_beside(tmp_path):
    rows = [
        conv("c-1"),
        "{not json",
        conv("c-2", [{"speaker": "customer", "text": "我电话13812345678"}, {"speaker": "agent", "text": "不知道"}]),
        conv("c-1"),
        conv("c-3", [{"speaker": "boss", "text": "?"}]),
        conv("c-4"),
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    res = run("score", str(src), "-o", str(out), "--engine", "rules")
    assert res.returncode == 0, res.stderr
    records = [ScoreRecord.model_validate_json(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r.id for r in records] == ["c-1", "c-2", "c-4"]
    assert "scored 3, rejected 3" in res.stderr and "conversations/s" in res.stderr
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [
        (2, "bad JSON"), (4, "duplicate id 'c-1' (first seen on line 1)"), (5, "turns[0].speaker")]
    # PII never reaches the output: the masked text is what evidence points at.
    assert "13812345678" not in out.read_text(encoding="utf-8")


def test_score_gzip_to_stdout_with_explicit_rejects(tmp_path):
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(conv("g-1"), ensure_ascii=False) + "\n" + '{"id": "g-2"}\n')
    rej = tmp_path / "bad.jsonl"
    res = run("score", str(src), "--rejects", str(rej), "--engine", "rules")
    assert res.returncode == 0, res.stderr
    assert [json.loads(line)["id"] for line in res.stdout.splitlines()] == ["g-1"]
    assert json.loads(rej.read_text(encoding="utf-8"))["reason"] == "missing agent_id; missing turns"


def test_bundled_examples_score_end_to_end(tmp_path):
    out = tmp_path / "scores.jsonl"
    res = run("score", str(EXAMPLES), "-o", str(out), "--engine", "rules")
    assert res.returncode == 0, res.stderr
    n_in = sum(1 for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip())
    assert len(out.read_text(encoding="utf-8").splitlines()) == n_in >= 30


def test_eval_prints_macro_f1_and_confusion(tmp_path):
    res = run("eval", str(EXAMPLES), "--engine", "rules", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert set(report["labels"]) == {"politeness", "emotional_control", "resolution", "sentiment"}
    pol = report["labels"]["politeness"]
    assert 0 <= pol["macro_f1"] <= 1 and sum(map(sum, pol["confusion"]["rows_gold_cols_pred"])) == report["n"]
    text = run("eval", str(EXAMPLES), "--engine", "rules")
    assert "macro-F1" in text.stdout and "confusion" in text.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["score", "missing.jsonl"], "missing.jsonl: no such file"),
        (["score", "missing.jsonl", "-o", "out.jsonl", "--engine", "rules"], "missing.jsonl: no such file"),
        (["score", "missing.jsonl", "-o", "out.jsonl", "--resume", "--engine", "rules"], "missing.jsonl: no such file"),
        (["score", "x.jsonl", "--rules", "nope.yaml", "--engine", "rules"], "nope.yaml: cannot read"),
        (["rules", "check", "nope.yaml"], "nope.yaml: cannot read"),
        (["eval", "missing.jsonl", "--engine", "rules"], "no such file"),
    ],
)
def test_user_errors_exit_2_with_a_message_not_a_traceback(tmp_path, args, message):
    write_jsonl(tmp_path / "x.jsonl", [conv("a")])
    res = run(*args, cwd=tmp_path)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_rules_check_ok(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("rules:\n  - id: taboo.extra\n    category: taboo\n    kind: rude\n    phrases: [你烦不烦]\n",
                 encoding="utf-8")
    res = run("rules", "check", str(f))
    assert res.returncode == 0 and "OK" in res.stdout


def test_a_bad_setting_names_its_variable_without_a_traceback(tmp_path):
    import os

    env = {**os.environ, "KEFUQA_REVIEW_TIMEZONE": "Mars/Olympus", "KEFUQA_BATCH_SIZE": "0"}
    for var in ("KEFUQA_REVIEW_TIMEZONE", "KEFUQA_BATCH_SIZE"):
        res = subprocess.run([KEFUQA, "score", str(EXAMPLES), "-o", str(tmp_path / "o.jsonl"), "--engine", "rules"],
                             capture_output=True, text=True, timeout=120, env={**os.environ, var: env[var]})
        assert res.returncode == 2, res.stderr
        assert var in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / "o.jsonl").exists()


def test_review_settings_are_part_of_the_one_settings_object(monkeypatch):
    from kefuqa.labeling.config import ReviewConfig
    from kefuqa.settings import load_settings

    monkeypatch.setenv("KEFUQA_REVIEW_ANSWER_DAYS", "7")
    monkeypatch.setenv("KEFUQA_REVIEW_HOLIDAYS", "2026-10-01,2026-10-02")
    settings = load_settings()
    assert isinstance(settings.review, ReviewConfig)
    assert settings.review.answer_days == 7 and len(settings.review.holidays) == 2


def test_engine_auto_falls_back_to_rules_with_one_warning_when_the_neural_extra_is_missing(tmp_path):
    import os

    # A stand-in onnxruntime, ahead of site-packages, that fails to import as a missing package does.
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "onnxruntime.py").write_text(
        'raise ModuleNotFoundError("No module named \'onnxruntime\'", name="onnxruntime")\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(blocked), "KEFUQA_HOME": str(tmp_path / "home")}
    res = subprocess.run([KEFUQA, "score", str(EXAMPLES), "-o", str(out), "--engine", "auto"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    warnings = [line for line in res.stderr.splitlines() if "uses the rules engine" in line]
    assert len(warnings) == 1 and "onnxruntime missing" in warnings[0]
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 30 and {r["model"]["name"] for r in records} == {"kefu-rules"}
    # Asked for by name, the neural engine is an error that says what is missing.
    res = subprocess.run([KEFUQA, "score", str(EXAMPLES), "--engine", "neural"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 2 and "onnxruntime missing" in res.stderr and "Traceback" not in res.stderr
