from __future__ import annotations

import gzip
import json

import pytest

from kefuqa.contract import Conversation
from kefuqa.io.readers import InputError, Reject, read_conversations
from kefuqa.settings import Limits
from tests.conftest import conv, write_jsonl


def _items(path, limits=None):
    return list(read_conversations(path, limits))


def _reasons(path, limits=None):
    return {line: item.reason for line, item in _items(path, limits) if isinstance(item, Reject)}


def test_each_reject_reason_has_line_and_reason(tmp_path):
    rows = [
        conv("ok-1"),
        '{"id": "broken", "turns": [',
        "[1, 2]",
        {"id": "no-turns", "agent_id": "a"},
        conv("bad-speaker", [{"speaker": "bot", "text": "hi"}]),
        conv("empty", [{"speaker": "agent", "text": "   "}]),
        conv("ok-1"),
        {"agent_id": "a", "turns": [{"speaker": "agent", "text": "x"}]},
        {"id": "no-turns-list", "agent_id": "a", "turns": []},
        conv("bad-ts", [{"speaker": "agent", "text": "x", "ts": "yesterday"}]),
    ]
    reasons = _reasons(write_jsonl(tmp_path / "in.jsonl", rows))
    assert reasons[2].startswith("bad JSON")
    assert reasons[3] == "not a JSON object (got list)"
    assert reasons[4] == "missing turns"
    assert "turns[0].speaker: unknown speaker 'bot'" in reasons[5]
    assert reasons[6] == "turns[0].text: empty text"
    assert reasons[7] == "duplicate id 'ok-1' (first seen on line 1)"
    assert reasons[8] == "missing id"
    assert reasons[9].startswith("turns:")
    assert reasons[10].startswith("turns[0].ts:")
    assert 1 not in reasons


def test_rejects_keep_raw_input_and_id(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [conv("x", [{"speaker": "robot", "text": "hi"}])])
    [(line, rej)] = _items(path)
    assert isinstance(rej, Reject) and rej.id == "x" and json.loads(rej.raw)["id"] == "x"


def test_limits_bound_long_inputs(tmp_path):
    limits = Limits(max_turns=3, max_turn_chars=10, max_total_chars=15, max_line_bytes=400)
    many = [{"speaker": "agent", "text": "好"}] * 4
    rows = [
        conv("many", many),
        conv("long-turn", [{"speaker": "agent", "text": "好" * 11}]),
        conv("long-total", [{"speaker": "agent", "text": "好" * 8}, {"speaker": "customer", "text": "嗯" * 8}]),
        conv("huge-line", [{"speaker": "agent", "text": "a"}], pad="x" * 500),
        conv("fine", [{"speaker": "agent", "text": "好"}]),
    ]
    reasons = _reasons(write_jsonl(tmp_path / "in.jsonl", rows), limits)
    assert reasons[1] == "too many turns: 4 > 3 (KEFUQA_MAX_TURNS)"
    assert reasons[2].startswith("turns[0].text too long: 11 characters > 10")
    assert reasons[3].startswith("conversation too long: 16 characters > 15")
    assert reasons[4].startswith("line too long")
    assert 5 not in reasons


def test_not_utf8_is_rejected_not_fatal(tmp_path):
    path = tmp_path / "in.jsonl"
    good = json.dumps(conv("good"), ensure_ascii=False).encode()
    path.write_bytes(good.replace(b"good", b"g1") + b"\n" + "在吗".encode("gbk") + b"\n" + good + b"\n")
    items = _items(path)
    assert isinstance(items[1][1], Reject) and items[1][1].reason.startswith("not UTF-8")
    assert [i.id for _, i in items if isinstance(i, Conversation)] == ["g1", "good"]


def test_gzip_and_json_array_and_blank_lines(tmp_path):
    gz = tmp_path / "in.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(conv("a")) + "\n\n" + json.dumps(conv("b")) + "\n")
    assert [(n, i.id) for n, i in _items(gz)] == [(1, "a"), (3, "b")]
    arr = tmp_path / "in.json"
    arr.write_text(json.dumps([conv("a"), {"id": "b"}, conv("c")]), encoding="utf-8")
    items = _items(arr)
    assert [n for n, _ in items] == [1, 2, 3] and isinstance(items[1][1], Reject)


def test_extra_keys_are_kept(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [conv("a", shop="旗舰店")])
    [(_, c)] = _items(path)
    assert c.model_extra == {"shop": "旗舰店"} and c.channel == "chat"


def test_missing_file_and_directory_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        _items(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a directory"):
        _items(tmp_path)


def test_count_records_counts_what_the_reader_numbers(tmp_path):
    from kefuqa.io.readers import count_records

    plain = tmp_path / "in.jsonl"
    plain.write_text(json.dumps(conv("a")) + "\n\n" + json.dumps(conv("b")), encoding="utf-8")  # no final newline
    gz = tmp_path / "in.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write((json.dumps(conv("x")) + "\n") * 5)
    arr = tmp_path / "in.json"
    arr.write_text(" \n" + json.dumps([conv("a"), conv("b")]), encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert count_records(plain) == 3 == max(n for n, _ in _items(plain))
    assert count_records(gz) == 5
    assert count_records(arr) is None  # items, not lines: no cheap count
    assert count_records(empty) == 0
    assert count_records(tmp_path / "missing.jsonl") is None


def _parquet_with_times(path, started_at, ts, **write_options):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    turns = [{"speaker": "customer", "text": "在吗", "ts": ts}, {"speaker": "agent", "text": "您好", "ts": ts}]
    pq.write_table(pa.Table.from_pylist([{"id": "p", "agent_id": "a", "started_at": started_at, "turns": turns}]),
                   path, **write_options)
    [(_, c)] = _items(path)
    assert isinstance(c, Conversation)
    return c


def test_parquet_timestamps_with_a_zone_keep_their_offset(tmp_path):
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    cst = timezone(timedelta(hours=8))
    c = _parquet_with_times(tmp_path / "fixed.parquet", datetime(2026, 3, 1, 10, 22, 5, tzinfo=cst),
                            datetime(2026, 3, 1, 10, 22, 6, tzinfo=cst))
    assert c.started_at is not None and c.started_at.isoformat() == "2026-03-01T10:22:05+08:00"
    assert c.turns[0].ts is not None and c.turns[0].ts.isoformat() == "2026-03-01T10:22:06+08:00"
    named = ZoneInfo("America/New_York")
    c = _parquet_with_times(tmp_path / "named.parquet", datetime(2026, 3, 1, 10, 22, 5, tzinfo=named),
                            datetime(2026, 3, 1, 10, 22, 6, tzinfo=named))
    assert c.started_at is not None and c.started_at.isoformat() == "2026-03-01T10:22:05-05:00"


def test_parquet_timestamps_without_a_zone_are_shanghai_time_and_int96_is_utc(tmp_path):
    from datetime import datetime

    naive = datetime(2026, 3, 1, 10, 22, 5)
    c = _parquet_with_times(tmp_path / "naive.parquet", naive, naive)
    assert c.started_at is not None and c.started_at.isoformat() == "2026-03-01T10:22:05+08:00"
    assert c.turns[1].ts is not None and c.turns[1].ts.isoformat() == "2026-03-01T10:22:05+08:00"
    # Spark and Hive write INT96 timestamps as UTC instants.
    c = _parquet_with_times(tmp_path / "int96.parquet", naive, naive, use_deprecated_int96_timestamps=True)
    assert c.started_at is not None and c.started_at.isoformat() == "2026-03-01T10:22:05+00:00"
    assert c.turns[0].ts is not None and c.turns[0].ts.utcoffset() is not None
