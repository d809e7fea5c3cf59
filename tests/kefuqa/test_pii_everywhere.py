"""Each PII kind, written plainly, in full-width digits and \\u-escaped, goes through
every output a user keeps: scores, rejects, logs, the review store, its three exports
and the grading report. None of them holds the number, the e-mail or the card again;
ids keep working as joins (the roster still finds the agent)."""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from kefuqa.cli import main
from kefuqa.text.normalize import fold_width

MOBILE, ID_CARD, CARD, EMAIL, LANDLINE = (
    "13812345678", "110101199003078515", "6222021234567890123", "zhang.san@example.com", "010-62345678")
SECRETS = (MOBILE, ID_CARD, CARD, EMAIL, "62345678")
FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def _texts() -> list[str]:
    plain = f"我的手机{MOBILE}，身份证{ID_CARD}，卡号{CARD}，邮箱{EMAIL}，座机{LANDLINE}"
    return [plain, plain.translate(FULL)]


def _line(conv: dict, escaped: bool) -> str:
    return json.dumps(conv, ensure_ascii=escaped) + "\n"


def _inputs(tmp: Path) -> tuple[Path, Path]:
    lines = []
    for i, (text, escaped) in enumerate((t, e) for t in _texts() for e in (False, True)):
        conv = {"id": f"c-{MOBILE}-{i}", "agent_id": f"agent-{EMAIL}", "channel": "chat",
                "started_at": f"2026-03-0{i + 1}T10:00:00+08:00",
                "turns": [{"speaker": "customer", "text": text},
                          {"speaker": "agent", "text": f"好的，已记下您的号码{text[4:15]}，您放心"},
                          {"speaker": "customer", "text": "谢谢"}]}
        lines.append(_line(conv, escaped))
    for escaped in (False, True):  # invalid lines: they land in the rejects file
        lines.append(_line({"id": f"bad-{MOBILE}", "agent_id": "a", "turns": f"not turns {ID_CARD} {EMAIL}"},
                           escaped))
    src = tmp / "chats.jsonl"
    src.write_text("".join(lines), encoding="utf-8")
    roster = tmp / "roster.csv"
    roster.write_text(f"agent_id,team\nagent-{EMAIL},north\n", encoding="utf-8")
    return src, roster


def _run(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    return int(done.value.code or 0)


def _leaks(text: str) -> list[str]:
    """Secrets found in the text as written and as any JSON string in it decodes."""
    views = [text]
    for line in text.splitlines():
        try:
            views.append(json.dumps(json.loads(line), ensure_ascii=False))
        except ValueError:
            continue
    folded = fold_width("\n".join(views))
    return [s for s in SECRETS if s in folded]


def test_no_output_keeps_pii(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("KEFUQA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KEFUQA_REVIEW_DB_URL", raising=False)
    src, roster = _inputs(tmp_path)
    out = tmp_path / "out"
    db = f"sqlite:///{tmp_path / 'reviews.db'}"
    with caplog.at_level(logging.INFO, logger="kefuqa"):
        assert _run("score", str(src), "-o", str(out / "scores.jsonl"), "--rejects", str(out / "rejects.jsonl"),
                    "--engine", "rules", "--workers", "1") == 0
        assert _run("review", "import", str(out / "scores.jsonl"), "--conversations", str(src),
                    "--roster", str(roster), "--db", db) == 0
        for fmt, name in (("training", "training.jsonl"), ("scores", "reviewed.jsonl"),
                          ("label-studio", "tasks.json")):
            assert _run("review", "export", "--format", fmt, "-o", str(out / name), "--db", db) == 0
        assert _run("grade", str(out / "scores.jsonl"), "--roster", str(roster), "--out", str(out / "grades")) == 0
    printed = capsys.readouterr()
    outputs = {p.relative_to(out).as_posix(): p.read_text("utf-8-sig") for p in sorted(out.rglob("*"))
               if p.is_file() and p.suffix in {".jsonl", ".json", ".csv", ".html"}}
    assert {"scores.jsonl", "rejects.jsonl", "training.jsonl", "tasks.json", "grades/grades.csv",
            "grades/report.html"} <= set(outputs)
    outputs["stdout+stderr"] = printed.out + printed.err
    outputs["logs"] = "\n".join(r.getMessage() for r in caplog.records)
    with sqlite3.connect(tmp_path / "reviews.db") as conn:  # every cell of every table of the store
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            outputs[f"store:{table}"] = "\n".join(map(str, conn.execute(f'SELECT * FROM "{table}"').fetchall()))
    assert {name: _leaks(text) for name, text in outputs.items() if _leaks(text)} == {}
    # The ids still join: four scored, two rejected; the agent found in the roster under its pseudonym.
    scores = [json.loads(line) for line in outputs["scores.jsonl"].splitlines()]
    assert len(scores) == 4 and len(outputs["rejects.jsonl"].splitlines()) == 2
    assert len({r["id"] for r in scores}) == 4 and all(r["id"].startswith("c-[手机号#") for r in scores)
    [graded] = {row["agent_id"]: row for row in csv.DictReader(outputs["grades/grades.csv"].splitlines())}.values()
    assert graded["agent_id"].startswith("[邮箱#") and graded["team"] == "north"
