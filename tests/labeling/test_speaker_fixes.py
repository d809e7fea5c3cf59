"""Who said a turn of a call: reviewers confirm or fix speakers over the JSON API on a real
uvicorn server (SQLite and PostgreSQL); checks, audit rows, the blind rule, a lead's answer
over a reviewer's, and the training export writing the fixed speakers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.labeling import export
from kefuqa.labeling.app import create_app
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import session
from kefuqa.labeling.importer import import_scores
from kefuqa.text.pii import PiiMasker

from .helpers import DEFAULT_LABELS, PASSWORD, T0, Server, record, users

# A call where the diariser gave the customer's complaint (turn 2) to the agent.
CALL_TURNS = [
    {"speaker": "agent", "text": "您好 很高兴为您服务 请问有什么可以帮您", "ts": "2026-03-02T10:00:20+08:00",
     "end_ts": "2026-03-02T10:00:24+08:00"},
    {"speaker": "customer", "text": "我上个月的话费多扣了五十块", "ts": "2026-03-02T10:00:25+08:00"},
    {"speaker": "agent", "text": "我要投诉你们 你们这服务太差了", "ts": "2026-03-02T10:00:30+08:00"},
    {"speaker": "system", "text": "[静音 30秒]"},
    {"speaker": "agent", "text": "感谢您的耐心等待 已经给您退回了", "ts": "2026-03-02T10:01:10+08:00"},
]
FLAG = {"turn": 2, "likely_speaker": "customer", "p": 0.97}


def _load(engine, ids: list[str]) -> None:
    recs, convs = [], {}
    for i, cid in enumerate(ids, 1):
        data = record(cid, top=0.5).model_dump(mode="json")
        recs.append((i, ScoreRecord.model_validate({**data, "channel": "voice", "role_flags": [FLAG]})))
        convs[cid] = Conversation.model_validate({"id": cid, "agent_id": "a-1", "channel": "voice",
                                                  "started_at": "2026-03-02T10:00:00+08:00", "turns": CALL_TURNS})
    with session(engine, write=True) as s:
        import_scores(s, recs, convs, masker=PiiMasker(), actor="test", shares=(1.0, 0.0, 0.0),
                      teams={"a-1": "north"}, now=T0)


@pytest.fixture
def server(engine, settings):
    _load(engine, ["v1", "v2"])
    users(engine, ("rev", "reviewer", "north"), ("rev2", "reviewer", "north"), ("lead", "lead", "north"),
          ("a-1", "agent", "north"))
    with Server(create_app(settings, ReviewConfig(file_days=None))) as srv:
        yield srv


@contextmanager
def client(server: Server, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/api/review/login", json={"name": name, "password": PASSWORD}).status_code == 200
        yield c


def answer(c: httpx.Client, cid: str, turn: object, speaker: object) -> httpx.Response:
    return c.post(f"/api/review/items/{cid}/speakers", json={"turn": turn, "speaker": speaker})


def review(c: httpx.Client, cid: str) -> None:
    version = c.get(f"/api/review/items/{cid}").json()["task"]["version"]
    assert c.post(f"/api/review/items/{cid}/review", json={"labels": DEFAULT_LABELS, "version": version}).is_success


def test_the_item_shows_the_flags_and_end_times(server):
    with client(server, "rev") as rev:
        item = rev.get("/api/review/items/v1").json()
    assert item["prediction"]["role_flags"] == [FLAG]
    assert item["conversation"]["turns"][0]["end_ts"] == "2026-03-02T10:00:24+08:00"
    assert "end_ts" not in item["conversation"]["turns"][1]


def test_a_reviewer_confirms_a_flag_and_every_change_is_audited(server):
    with client(server, "rev") as rev:
        r = answer(rev, "v1", 2, "customer")
        assert r.status_code == 200, r.text
        assert (r.json()["speaker"], r.json()["original"]) == ("customer", "agent")
        assert answer(rev, "v1", 0, "agent").json()["speaker"] == "agent"  # the transcript is right here
        assert answer(rev, "v1", 0, None).json()["speaker"] is None  # withdrawn
        mine = rev.get("/api/review/items/v1/speakers").json()
        assert [(f["turn"], f["speaker"]) for f in mine["fixes"]] == [(2, "customer")]
        actions = [e["action"] for e in rev.get("/api/review/items/v1/audit").json()["entries"]
                   if e["action"].startswith("speaker.")]
        assert actions == ["speaker.withdrawn", "speaker.confirmed", "speaker.fixed"]  # newest first


@pytest.mark.parametrize(("turn", "speaker", "field", "words"), [
    (5, "agent", "turn", "turn 5 does not exist; this conversation has 5 turns (0 to 4)"),
    (3, "agent", "turn", "turn 3 is a system turn; only agent and customer turns can be fixed"),
    (-1, "agent", None, "turn"),
    (2, "system", None, "speaker"),
])
def test_bad_answers_say_what_is_wrong(server, turn, speaker, field, words):
    with client(server, "rev") as rev:
        r = answer(rev, "v1", turn, speaker)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert words in json.dumps(detail, ensure_ascii=False)
    if field:
        assert detail["field"] == field


def test_agents_cannot_answer_and_others_stay_hidden_until_the_review_is_in(server):
    with client(server, "a-1") as agent:
        r = answer(agent, "v1", 2, "customer")
        assert r.status_code == 403
        assert agent.get("/api/review/items/v1/speakers").status_code == 403
    with client(server, "rev") as rev:
        answer(rev, "v1", 2, "customer")
    with client(server, "rev2") as rev2:
        assert rev2.get("/api/review/items/v1/speakers").json()["others"] == []
        review(rev2, "v1")
        others = rev2.get("/api/review/items/v1/speakers").json()["others"]
        assert [(o["reviewer"], o["turn"], o["speaker"]) for o in others] == [("rev", 2, "customer")]


def test_the_training_export_writes_the_settled_speakers(server, engine):
    with client(server, "lead") as lead:
        answer(lead, "v1", 1, "customer")  # the lead keeps turn 1 as the transcript has it …
    with client(server, "rev") as rev:
        answer(rev, "v1", 2, "customer")
        answer(rev, "v1", 1, "agent")  # … and a later reviewer's answer does not override a lead's
        answer(rev, "v2", 2, "customer")  # v2 is never reviewed: not in the training export
        review(rev, "v1")
    with client(server, "lead") as lead:
        r = lead.get("/api/review/export", params={"format": "training"})
    assert r.status_code == 200
    rows = {row["id"]: row for row in map(json.loads, r.text.splitlines())}
    assert set(rows) == {"v1"}
    row = rows["v1"]
    assert [t["speaker"] for t in row["turns"]] == ["agent", "customer", "customer", "system", "agent"]
    assert row["speaker_fixes"] == [{"turn": 2, "from": "agent", "to": "customer"}]
    assert row["turns"][0]["end_ts"] == "2026-03-02T10:00:24+08:00"
    Conversation.model_validate(row)  # a valid transcript: training reads it as it is
    with session(engine) as s:
        assert [c["turns"][2]["speaker"] for c in export.training_rows(s)] == ["customer"]
