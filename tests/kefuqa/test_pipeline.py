"""The one scoring path (kefuqa/pipeline.py) and the typed boundary of the writers:
records come out as ``ScoreRecord`` and are written exactly as the engine built them."""

from __future__ import annotations

import json

import pytest

from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.io.readers import parse_records
from kefuqa.io.writers import dumps, record_object
from kefuqa.models.baseline import RulesEngine
from kefuqa.pipeline import score_stream
from kefuqa.settings import Limits
from kefuqa.text.pii import PiiMasker


def _conv(cid: str, **extra: object) -> dict:
    turns = [{"speaker": "customer", "text": "在吗，我电话13812345678", "ts": "2026-03-01T01:00:00Z"},
             {"speaker": "agent", "text": "您好，请问有什么可以帮您", "ts": "2026-03-01T01:00:30.250Z"},
             {"speaker": "customer", "text": "快递没到，太慢了", "ts": "2026-03-01T01:01:00Z"},
             {"speaker": "agent", "text": "不好意思让您久等了", "ts": "2026-03-01T01:03:00Z"}]
    return {"id": cid, "agent_id": "a-1", "turns": turns, **extra}


def test_score_stream_gives_typed_records_and_rejects_in_input_order():
    lines = [json.dumps(_conv("c-1"), ensure_ascii=False), "{broken", json.dumps(_conv("c-2")),
             json.dumps(_conv("c-1")), json.dumps(_conv("c-3", channel="voice"))]
    items = parse_records(enumerate(lines, 1), Limits())
    done = list(score_stream(items, RulesEngine(), PiiMasker(), batch_size=2))
    assert [(c.last_line, c.items) for c in done] == [(2, 2), (4, 2), (5, 1)]
    records = [r for c in done for r in c.records]
    assert all(isinstance(r, ScoreRecord) for r in records)
    assert [r.id for r in records] == ["c-1", "c-2", "c-3"] and records[2].channel == "voice"
    assert [(r["line"], r["reason"].split(":")[0]) for c in done for r in c.rejects] == [
        (2, "bad JSON"), (4, "duplicate id 'c-1' (first seen on line 1)")]
    scored = [conv for c in done for conv in c.conversations]
    assert "13812345678" not in scored[0].turns[0].text  # masked before scoring


@pytest.mark.parametrize("started_at", [None, "2026-03-01T01:00:00Z", "2026-03-01T01:00:00.123456+00:00",
                                        "2026-03-01T09:00:00", "2026-03-01T01:00:00-05:30"])
def test_a_written_record_is_the_engine_record_byte_for_byte(started_at):
    extra = {"started_at": started_at} if started_at else {}
    raw = RulesEngine().score_batch([Conversation.model_validate(_conv("c-1", **extra))])[0]
    assert dumps(record_object(ScoreRecord.model_validate(raw))) == dumps(raw)


def test_without_isolation_an_engine_failure_propagates():
    class Failing:
        def score_batch(self, convs):
            raise RuntimeError("engine bug")

    items = parse_records([(1, json.dumps(_conv("c-1")))], Limits())
    with pytest.raises(RuntimeError, match="engine bug"):
        list(score_stream(items, Failing(), PiiMasker(), batch_size=8, isolate_failures=False))
