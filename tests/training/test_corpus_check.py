"""The corpus check every writer runs: rationales name real turns of the right
speaker for every non-default label, and each writer's file is balanced."""

from __future__ import annotations

import json
from pathlib import Path

from kefuqa.training.corpus_check import main

TURNS = [
    {"speaker": "customer", "text": "我的快递三天没动了"},
    {"speaker": "agent", "text": "订单号。"},
    {"speaker": "customer", "text": "123456"},
    {"speaker": "agent", "text": "已经给您补发了，今天发出"},
    {"speaker": "customer", "text": "谢谢"},
]


def _conv(i: int, labels: dict, rationale: dict | None) -> dict:
    row = {"id": f"w9-{i:04d}", "agent_id": "a1", "turns": [dict(t, text=t["text"] + "!" * i) for t in TURNS],
           "labels": labels}
    if rationale is not None:
        row["rationale"] = rationale
    return row


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


LABELS_FAIR = {"politeness": "fair", "emotional_control": "good", "resolution": "resolved", "sentiment": "positive"}


def test_a_valid_rationale_passes(tmp_path, capsys):
    f = _write(tmp_path / "w9.jsonl", [_conv(1, LABELS_FAIR, {"politeness": [1], "resolution": [3], "sentiment": [4]})])
    assert main([str(f), "--prefix", "w9-"]) == 0
    assert "1 valid conversations, 0 problems" in capsys.readouterr().out


def test_missing_out_of_range_and_wrong_speaker_turns_are_named(tmp_path, capsys):
    rows = [_conv(1, LABELS_FAIR, {"resolution": [3], "sentiment": [4]}),  # politeness=fair names no turn
            _conv(2, LABELS_FAIR, {"politeness": [9], "resolution": [3], "sentiment": [4]}),
            _conv(3, LABELS_FAIR, {"politeness": [1], "resolution": [3], "sentiment": [3]})]
    f = _write(tmp_path / "w9.jsonl", rows)
    assert main([str(f)]) == 1
    out = capsys.readouterr().out
    assert "w9.jsonl:1: rationale.politeness: politeness=fair needs the deciding turn" in out
    assert "w9.jsonl:2: rationale.politeness: turn 9 does not exist (0..4)" in out
    assert "w9.jsonl:3: rationale.sentiment: turn 3 is a agent turn, expected customer" in out
    assert main([str(f), "--no-rationale"]) == 0


def test_balance_and_voice_share_are_checked_per_writer(tmp_path, capsys):
    rows = [_conv(i, LABELS_FAIR, {"politeness": [1], "resolution": [3], "sentiment": [4]}) for i in range(1, 5)]
    f = _write(tmp_path / "w9.jsonl", rows)
    assert main([str(f), "--min-share", "0.25"]) == 1
    out = capsys.readouterr().out
    assert "balance: " in out and "politeness=good below 25%" in out
    assert main([str(f), "--min-voice", "0.35"]) == 1
    assert "voice share 0% below 35%" in capsys.readouterr().out
