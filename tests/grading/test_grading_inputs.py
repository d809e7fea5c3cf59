"""Input files: every problem names the file, the line and the field."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest
from gradingsim import record

from kefuqa.grading.errors import InputError
from kefuqa.grading.inputs import load_events, load_outcomes, load_reviews, load_roster, load_scores


def _jsonl(path, rows):
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def _good(cid="c1"):
    return json.loads(record(cid, "a-1", "2026-03-01T10:00:00+08:00").model_dump_json())


def _error(fn, path) -> InputError:
    with pytest.raises(InputError) as info:
        fn(path)
    assert str(path) in str(info.value)
    return info.value


def test_scores_load_plain_and_gzip(tmp_path):
    plain = _jsonl(tmp_path / "s.jsonl", [_good("c1"), _good("c2")])
    gz = tmp_path / "s.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert [r.id for r in load_scores(plain)] == [r.id for r in load_scores(gz)] == ["c1", "c2"]


def test_scores_bad_json_names_the_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(_good()) + "\n\n{not json\n", encoding="utf-8")
    err = _error(load_scores, path)
    assert err.line == 3 and "JSON" in err.message


def test_scores_invalid_record_names_line_and_field(tmp_path):
    bad = _good("c2")
    bad["labels"]["politeness"] = "excellent"
    err = _error(load_scores, _jsonl(tmp_path / "s.jsonl", [_good("c1"), bad]))
    assert (err.line, err.field) == (2, "labels.politeness")


def test_scores_duplicate_id(tmp_path):
    err = _error(load_scores, _jsonl(tmp_path / "s.jsonl", [_good("c1"), _good("c2"), _good("c1")]))
    assert err.line == 3 and "first on line 1" in err.message


def test_scores_missing_file(tmp_path):
    assert "cannot open" in _error(load_scores, tmp_path / "nope.jsonl").message


def test_reviews(tmp_path):
    path = _jsonl(
        tmp_path / "r.jsonl",
        [
            {"id": "c1", "labels": {"politeness": "good"}},
            {"id": "c1", "labels": {"sentiment": "neutral"}},
        ],
    )
    assert load_reviews(path) == {"c1": {"politeness": "good", "sentiment": "neutral"}}
    bad = _jsonl(tmp_path / "bad.jsonl", [{"id": "c1", "labels": {"politeness": "nice"}}])
    err = _error(load_reviews, bad)
    assert err.line == 1 and err.field == "labels" and "politeness must be one of" in err.message


def test_roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(
        "\ufeffagent_id,team,hire_date\na-1,售后组,2025-03-01\na-2,售前组,\n", encoding="utf-8"
    )
    roster = load_roster(path)
    assert [(e.agent_id, e.team, e.hire_date) for e in roster] == [
        ("a-1", "售后组", date(2025, 3, 1)),
        ("a-2", "售前组", None),
    ]


def test_roster_bad_date_and_missing_column(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(
        "agent_id,team,hire_date\na-1,t,2025-03-01\na-2,t,03/01/2025\n", encoding="utf-8"
    )
    err = _error(load_roster, path)
    assert (err.line, err.field) == (3, "hire_date")
    path.write_text("agent,team\na-1,t\n", encoding="utf-8")
    err = _error(load_roster, path)
    assert err.line == 1 and "agent_id" in err.message


def test_roster_duplicate_agent(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("agent_id,team\na-1,t\na-1,u\n", encoding="utf-8")
    assert _error(load_roster, path).line == 3


def test_events_group_rows_into_events(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,agent_id,course,start_date,end_date\n"
        "e1,a-1,情绪管理,2026-03-09,2026-03-10\ne1,a-2,情绪管理,2026-03-10,2026-03-11\n"
        "e2,a-3,,2026-04-01,2026-04-01\n",
        encoding="utf-8",
    )
    events = {e.event_id: e for e in load_events(path)}
    assert events["e1"].agents == ("a-1", "a-2")
    assert (events["e1"].start, events["e1"].end) == (date(2026, 3, 9), date(2026, 3, 11))
    assert events["e1"].course == "情绪管理" and events["e2"].course == ""


def test_events_end_before_start(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,agent_id,course,start_date,end_date\ne1,a-1,x,2026-03-09,2026-03-01\n",
        encoding="utf-8",
    )
    err = _error(load_events, path)
    assert err.line == 2 and "before start_date" in err.message


def test_outcomes_blank_means_unknown(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text(
        "conversation_id,csat,complaint,repeat_contact\nc1,5,0,是\nc2,,,\nc3,3,yes,\n",
        encoding="utf-8",
    )
    out = load_outcomes(path)
    assert (out["c1"].csat, out["c1"].complaint, out["c1"].repeat_contact) == (5.0, 0.0, 1.0)
    assert (out["c2"].csat, out["c2"].complaint, out["c2"].repeat_contact) == (None, None, None)
    assert (out["c3"].complaint, out["c3"].repeat_contact) == (1.0, None)


def test_outcomes_bad_flag(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("conversation_id,complaint\nc1,maybe\n", encoding="utf-8")
    err = _error(load_outcomes, path)
    assert (err.line, err.field) == (2, "complaint")
