"""The optional customer_id: in the transcript, pseudonymised by the pipeline, carried into
score records (JSON Lines and Parquet) and read back by grading; records of transcripts
without one are written exactly as before."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.grading.inputs import load_scores
from kefuqa.io.parquet import SCORE_SCHEMA
from kefuqa.io.readers import parse_records
from kefuqa.io.writers import ScoreOutputs, dumps, record_object
from kefuqa.models.baseline import RulesEngine
from kefuqa.pipeline import customer_pseudonym, score_stream
from kefuqa.settings import Limits
from kefuqa.text.pii import PiiMasker

MASKER = PiiMasker(id_key="test-key")


def _conv(cid: str, **extra: object) -> dict:
    turns = [{"speaker": "customer", "text": "在吗，快递还没到", "ts": "2026-03-01T01:00:00Z"},
             {"speaker": "agent", "text": "您好，这边帮您查一下", "ts": "2026-03-01T01:00:30Z"}]
    return {"id": cid, "agent_id": "a-1", "turns": turns, **extra}


def _score(rows: list[dict], masker: PiiMasker = MASKER) -> list[ScoreRecord]:
    items = parse_records(enumerate((json.dumps(r, ensure_ascii=False) for r in rows), 1), Limits())
    return [r for done in score_stream(items, RulesEngine(), masker, batch_size=2) for r in done.records]


def test_the_transcript_takes_a_customer_id_and_says_what_is_wrong_with_a_bad_one():
    assert Conversation.model_validate(_conv("c", customer_id=" u-1 ")).customer_id == "u-1"
    assert Conversation.model_validate(_conv("c", customer_id=1234567)).customer_id == "1234567"
    assert Conversation.model_validate(_conv("c", customer_id="")).customer_id is None
    for bad, reason in [(["u-1"], "customer_id"), (True, "customer_id"), ("u\x00", "control character")]:
        items = list(parse_records([(1, json.dumps(_conv("c", customer_id=bad)))], Limits()))
        assert reason in items[0][1].reason  # a reject with its reason, not a crash
    assert "customer_id" in Conversation.model_json_schema()["properties"]
    # Without one, a transcript dumps exactly as it did before the field existed.
    assert "customer_id" not in Conversation.model_validate(_conv("c")).model_dump()


def test_records_carry_a_keyed_pseudonym_never_the_raw_id():
    rows = [_conv("c-1", customer_id="u-13812345678"), _conv("c-2"), _conv("c-3", customer_id="u-13812345678"),
            _conv("c-4", customer_id="u-2")]
    records = _score(rows)
    lines = [dumps(record_object(r)) for r in records]
    assert not any("13812345678" in line for line in lines)
    ids = [r.customer_id for r in records]
    assert ids[0] == ids[2] == customer_pseudonym("u-13812345678", MASKER) and ids[1] is None
    assert ids[3] != ids[0] and ids[0].startswith("[客户#") and len(ids[0]) == len("[客户#]") + 16
    # Another key, another pseudonym; masking switched off still hides the customer.
    assert customer_pseudonym("u-2", PiiMasker(id_key="other")) != ids[3]
    assert _score([rows[3]], PiiMasker(enabled=False))[0].customer_id == customer_pseudonym("u-2", PiiMasker())
    assert list(json.loads(lines[0]))[:3] == ["id", "agent_id", "customer_id"]


def test_a_record_without_customer_is_written_byte_for_byte_as_before():
    without, named = _score([_conv("c-1"), _conv("c-2", customer_id="u-1")])
    raw = RulesEngine().score_batch([Conversation.model_validate(_conv("c-1"))])[0]
    assert dumps(record_object(without)) == dumps(raw)
    # The one with a customer differs by that one key only.
    named_obj = record_object(named)
    assert named_obj.pop("customer_id") == customer_pseudonym("u-1", MASKER)
    assert dumps({**named_obj, "id": "c-1"}) == dumps(raw)


def test_a_conversation_scored_alone_after_an_engine_failure_keeps_its_customer():
    class FailsOnPairs:
        def score_batch(self, convs):
            if len(convs) > 1:
                raise RuntimeError("engine bug")
            return RulesEngine().score_batch(convs)

    items = parse_records(enumerate([json.dumps(_conv("c-1", customer_id="u-1")), json.dumps(_conv("c-2"))], 1),
                          Limits())
    records = [r for d in score_stream(items, FailsOnPairs(), MASKER, batch_size=2) for r in d.records]
    assert [r.customer_id for r in records] == [customer_pseudonym("u-1", MASKER), None]


def test_jsonl_round_trip_into_grading(tmp_path):
    out = tmp_path / "scores.jsonl"
    with ScoreOutputs(out, tmp_path / "rejects.jsonl") as outputs:
        outputs.write_records(_score([_conv("c-1", customer_id="u-1"), _conv("c-2")]))
    loaded = load_scores(out)
    assert [r.customer_id for r in loaded] == [customer_pseudonym("u-1", MASKER), None]
    assert "customer_id" not in out.read_text(encoding="utf-8").splitlines()[1]


@pytest.mark.parametrize("named", [True, False])
def test_parquet_has_a_nullable_customer_column_after_the_others(tmp_path, named):
    out = tmp_path / "scores.parquet"
    extra = {"customer_id": "u-1"} if named else {}
    with ScoreOutputs(out, tmp_path / "rejects.jsonl") as outputs:
        outputs.write_records(_score([_conv("c-1", **extra), _conv("c-2")]))
    table = pq.read_table(out)
    names = table.schema.names
    # Optional columns come after the contract's own, so readers by position keep working.
    assert names == SCORE_SCHEMA.names and names.index("customer_id") > names.index("metrics")
    expected = customer_pseudonym("u-1", MASKER) if named else None
    assert table.column("customer_id").to_pylist() == [expected, None]
    rows = table.to_pylist()
    assert rows[1]["metrics"]["agent_turns"] == 1 and rows[0]["id"] == "c-1"
