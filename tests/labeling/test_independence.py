"""Review independence: the blind phase hides the other reviewer on every route, nobody answers a
dispute about their own review, near-duplicate chats are spread out in the queue, deadlines read in
the review time zone, and a double-reviewed item counts only once settled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest

from kefuqa.contract import ScoreRecord
from kefuqa.http_errors import ErrorBody
from kefuqa.labeling.access import Forbidden, Invalid
from kefuqa.labeling.app import create_app
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import session
from kefuqa.labeling.disputes import answer_dispute, file_dispute, list_disputes
from kefuqa.labeling.export import score_records, training_rows
from kefuqa.labeling.queue import build_queue, text_key
from kefuqa.labeling.reviews import save_review
from kefuqa.labeling.views import item, my_conversations

from .helpers import DEFAULT_LABELS, PASSWORD, T0, Server, load, users

FIRST = {"politeness": "poor", "emotional_control": "fair", "resolution": "unresolved", "sentiment": "negative"}
SECOND = {**DEFAULT_LABELS, "politeness": "fair"}
SECRETS = ("zhang-first", "FIRST-COMMENT", "zhao-answers", "ZHAO-ANSWER")


def contains_labels(data: Any, labels: dict[str, str]) -> bool:
    if data == labels:
        return True
    if isinstance(data, dict):
        return any(contains_labels(v, labels) for v in data.values())
    if isinstance(data, list):
        return any(contains_labels(v, labels) for v in data)
    return False


def assert_no_leak(route: str, data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False)
    assert not [s for s in SECRETS if s in text], (route, text)
    assert not contains_labels(data, FIRST), (route, text)


@contextmanager
def client(server: Server, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post("/api/review/login", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield c


@pytest.fixture
def server(engine, settings):
    """c1 goes to two reviewers; zhang-first reviewed it, marked an evidence chip and said who spoke
    a turn, the agent disputed the score and zhao-answers upheld it, so c1 is back in the queue for
    li-second."""
    load(engine, [("c1", "a-1", 0.5), ("c2", "a-1", 0.6)], shares=(1.0, 0.0, 1.0))
    users(engine, ("zhang-first", "reviewer", None), ("li-second", "reviewer", None),
          ("zhao-answers", "reviewer", None), ("wang-lead", "lead", None), ("a-1", "agent", None))
    with Server(create_app(settings, ReviewConfig(file_days=None))) as srv:
        with client(srv, "zhang-first") as z:
            r = z.post("/api/review/items/c1/review", json={"labels": FIRST, "version": 1, "comment": "FIRST-COMMENT"})
            assert r.status_code == 200, r.text
            mark = {"turn": 1, "start": 0, "end": 2, "rule": "polite.greeting", "verdict": "wrong"}
            assert z.post("/api/review/items/c1/evidence/marks", json=mark).status_code == 200
            assert z.post("/api/review/items/c1/speakers", json={"turn": 1, "speaker": "customer"}).status_code == 200
        with client(srv, "a-1") as agent:
            r = agent.post("/api/review/disputes", json={"conversation_id": "c1", "reason": "客户最后说了谢谢",
                                                         "labels": {"sentiment": "neutral"}})
            assert r.status_code == 201, r.text
            dispute = r.json()
        with client(srv, "zhao-answers") as zhao:
            r = zhao.post(f"/api/review/disputes/{dispute['id']}/answer",
                          json={"outcome": "upheld", "answer": "ZHAO-ANSWER", "version": dispute["version"]})
            assert r.status_code == 200, r.text
        yield srv


def test_the_blind_phase_hides_the_other_reviewer_on_every_route(server):
    with client(server, "li-second") as li:
        queue = li.get("/api/review/queue").json()
        assert [(e["conversation_id"], e["double"]) for e in queue["items"]] == [("c1", True), ("c2", True)]
        assert_no_leak("queue", queue)

        view = li.get("/api/review/items/c1").json()
        assert view["blind"] is True and view["reviews"] == []
        assert view["task"]["final_labels"] is None and view["task"]["final_by"] is None
        [d] = view["disputes"]
        assert d["requested_labels"] == {"sentiment": "neutral"} and d["answers"] == []  # the agent's side only
        assert_no_leak("item", view)

        trail = li.get("/api/review/items/c1/audit").json()["entries"]
        assert [e["action"] for e in trail] == ["dispute.filed"]
        assert_no_leak("item audit", trail)

        listed = li.get("/api/review/disputes").json()["disputes"]
        assert [(x["conversation_id"], x["status"], x["answers"]) for x in listed] == [("c1", "answered", [])]
        assert_no_leak("disputes", listed)

        feedback = li.get("/api/review/items/c1/evidence").json()
        assert feedback["others_visible"] is False and feedback["others"] == {"marks": [], "missed": []}
        assert_no_leak("evidence", feedback)
        speakers = li.get("/api/review/items/c1/speakers").json()
        assert speakers["others_visible"] is False and speakers["others"] == []
        assert_no_leak("speakers", speakers)
        mine = li.get("/api/review/mine").json()
        assert mine == {"conversations": []}  # an agent's list; a reviewer has no agent id
        for route in ("/api/review/export?format=training", "/api/review/export?format=scores",
                      "/api/review/export?format=label-studio", "/api/review/audit", "/api/review/agreement",
                      "/api/review/rules/stats"):
            r = li.get(route)
            assert r.status_code == 403, route
            assert_no_leak(route, r.json())

        # once li's own review is in, the other reviewer's labels, comment and answer show
        assert li.post("/api/review/items/c1/review", json={"labels": SECOND, "version": 2}).status_code == 200
        view = li.get("/api/review/items/c1").json()
        assert view["blind"] is False
        assert [(r["reviewer"], r["comment"]) for r in view["reviews"]] == [("zhang-first", "FIRST-COMMENT"),
                                                                           ("li-second", "")]
        assert view["disputes"][0]["answers"][0]["answer"] == "ZHAO-ANSWER"
        assert {e["actor"] for e in li.get("/api/review/items/c1/audit").json()["entries"]} == \
            {"zhang-first", "li-second", "zhao-answers", "a-1"}
        assert [m["reviewer"] for m in li.get("/api/review/items/c1/evidence").json()["others"]["marks"]] == \
            ["zhang-first"]
        assert [o["reviewer"] for o in li.get("/api/review/items/c1/speakers").json()["others"]] == ["zhang-first"]


def test_leads_see_everything_and_adjudicate(server):
    with client(server, "wang-lead") as lead:
        log = lead.get("/api/review/audit?entity=conversation&entity_id=c1").json()["entries"]
        assert any(e["after"] and e["after"].get("comment") == "FIRST-COMMENT" for e in log)
        # before the second review is in, a lead's save would be that review: the item is blind for them too
        for route in ("/api/review/items/c1", "/api/review/items/c1/audit", "/api/review/items/c1/evidence",
                      "/api/review/items/c1/speakers", "/api/review/disputes"):
            assert_no_leak(route, lead.get(route).json())
        assert lead.get("/api/review/items/c1").json()["blind"] is True
        with client(server, "li-second") as li:
            assert li.post("/api/review/items/c1/review", json={"labels": SECOND, "version": 2}).status_code == 200
        view = lead.get("/api/review/items/c1").json()
        assert [r["labels"] for r in view["reviews"]] == [FIRST, SECOND]
        assert view["disputes"][0]["answers"][0]["by"] == "zhao-answers"
        [adjudicate] = [e for e in lead.get("/api/review/queue").json()["items"] if e["kind"] == "adjudicate"]
        assert adjudicate["labels_differ"] == ["politeness", "emotional_control", "resolution", "sentiment"]


def test_the_reviewer_whose_review_is_disputed_cannot_answer_it(server):
    with client(server, "a-1") as agent, client(server, "zhang-first") as zhang:
        r = zhang.post("/api/review/items/c2/review", json={"labels": SECOND, "version": 1})
        assert r.status_code == 200, r.text
        d = agent.post("/api/review/disputes", json={"conversation_id": "c2", "reason": "不对"}).json()
        r = zhang.post(f"/api/review/disputes/{d['id']}/answer",
                       json={"outcome": "upheld", "answer": "我维持", "version": d["version"]})
        assert r.status_code == 403
        body = ErrorBody.model_validate(r.json())
        assert "you reviewed conversation 'c2'" in r.json()["detail"]["message"]
        assert "KEFUQA_REVIEW_INDEPENDENT_DISPUTE_ANSWERS" in str(body.detail)
    with client(server, "li-second") as li:  # someone else may
        r = li.post(f"/api/review/disputes/{d['id']}/answer",
                    json={"outcome": "upheld", "answer": "维持", "version": d["version"]})
        assert r.status_code == 200, r.text


def test_the_independent_answer_rule_is_a_setting(engine, monkeypatch):
    load(engine, [("c1", "a-1", 0.9)])
    u = users(engine, ("a-1", "agent", None), ("rev", "reviewer", None), ("boss", "lead", None))
    monkeypatch.setenv("KEFUQA_REVIEW_INDEPENDENT_DISPUTE_ANSWERS", "false")
    relaxed = ReviewConfig(file_days=None)
    assert relaxed.independent_dispute_answers is False and ReviewConfig.model_fields[
        "independent_dispute_answers"].default is True
    with session(engine, write=True) as s:
        save_review(s, u["boss"], "c1", SECOND, version=1, now=T0)
        d = file_dispute(s, u["a-1"], relaxed, "c1", "不对", now=T0)
    strict = relaxed.model_copy(update={"independent_dispute_answers": True})
    with pytest.raises(Forbidden, match="someone else answers"), session(engine, write=True) as s:
        answer_dispute(s, u["boss"], strict, d["id"], "upheld", "维持", version=d["version"], now=T0)
    with session(engine, write=True) as s:  # the lead who labelled it may, when the rule is off
        assert answer_dispute(s, u["boss"], relaxed, d["id"], "upheld", "维持", version=d["version"],
                              now=T0)["status"] == "answered"


def test_near_duplicate_chats_are_spread_out_in_the_queue(engine):
    copy = "亲，您好，这边帮您查一下物流哦"
    variants = [copy, "親，您好，這邊幫您查一下物流哦", "亲,您好,这边帮您查一下物流哦",  # traditional, half-width
                "亲，您好，  这边帮您查一下物流哦", copy, copy, copy]
    dups = [(f"dup{i}", "a-1", 0.40 + 0.01 * i) for i in range(7)]  # the seven least confident
    others = [(f"other{i}", "a-2", 0.60 + 0.01 * i) for i in range(5)]
    texts = {cid: v for (cid, _, _), v in zip(dups, variants, strict=True)}
    texts.update({cid: f"您好，第{i}位顾客的订单已经发货" for i, (cid, _, _) in enumerate(others)})
    load(engine, dups + others, texts=texts)
    u = users(engine, ("rev", "reviewer", None))
    with session(engine) as s:
        queue = build_queue(s, u["rev"], limit=50, now=T0)["items"]
        keys = {e["conversation_id"]: text_key(item(s, u["rev"], e["conversation_id"])["conversation"]["turns"])
                for e in queue}
    order = [e["conversation_id"] for e in queue]
    assert len(set(keys[c] for c in order if c.startswith("dup"))) == 1  # the normaliser sees one chat
    assert order[:6] == ["dup0", "other0", "other1", "other2", "other3", "other4"]
    assert order[6:] == [f"dup{i}" for i in range(1, 7)]  # the copies after every other item
    # with only a short page, the copies make way for the other chats
    with session(engine) as s:
        short = [e["conversation_id"] for e in build_queue(s, u["rev"], limit=4, now=T0)["items"]]
    assert short == ["dup0", "other0", "other1", "other2"]


def test_deadlines_are_in_the_review_time_zone_and_named(engine):
    cfg = ReviewConfig(timezone="America/New_York")
    load(engine, [("c1", "a-1", 0.9), ("c2", "a-1", 0.9)], shares=(0.0, 0.0, 0.0), now=T0)  # Sunday 21:00 in NY
    u = users(engine, ("a-1", "agent", None), ("rev", "reviewer", None))
    with pytest.raises(Invalid) as late, session(engine, write=True) as s:
        file_dispute(s, u["a-1"], cfg, "c2", "late", now=datetime.fromisoformat("2026-03-06T12:00:00-05:00"))
    # three working days after Sunday 1 March in New York: Wednesday 4 March, to its end there
    assert "until 2026-03-04 23:59 America/New_York" in late.value.message
    with session(engine, write=True) as s:
        d = file_dispute(s, u["a-1"], cfg, "c1", "不对", now=T0)
    assert d["timezone"] == "America/New_York" and d["due_at"] == "2026-03-06T23:59:59-05:00"
    with session(engine) as s:
        [listed] = list_disputes(s, u["rev"], tz=cfg.timezone, now=T0)
        queued = build_queue(s, u["rev"], now=T0, tz=cfg.timezone)
    assert listed["due_at"] == d["due_at"] and queued["timezone"] == "America/New_York"
    assert queued["items"][0]["due_at"] == "2026-03-06T23:59:59-05:00"
    with session(engine) as s:  # not queued for review: the agent sees the model's score
        view = item(s, u["a-1"], "c2", tz=cfg.timezone)
    assert view["task"]["status"] == "none" and view["task"]["final_labels"] is None
    assert view["timezone"] == "America/New_York"


def test_a_double_review_counts_only_once_settled(engine):
    load(engine, [("split", "a-1", 0.5), ("agreed", "a-1", 0.55), ("half", "a-1", 0.6)], shares=(1.0, 0.0, 1.0))
    u = users(engine, ("r1", "reviewer", None), ("r2", "reviewer", None), ("boss", "lead", None),
              ("a-1", "agent", None))
    with session(engine, write=True) as s:
        save_review(s, u["r1"], "split", FIRST, version=1, now=T0)
        save_review(s, u["r2"], "split", SECOND, version=1, now=T0)
        save_review(s, u["r1"], "agreed", SECOND, version=1, now=T0)
        save_review(s, u["r2"], "agreed", SECOND, version=1, now=T0)
        save_review(s, u["r1"], "half", FIRST, version=1, now=T0)  # the second review is not in yet

    def counted() -> tuple[dict[str, Any], set[str], dict[str, Any]]:
        with session(engine) as s:
            scores = {r["id"]: r for r in score_records(s)}
            training = {r["id"] for r in training_rows(s)}
            mine = {c["id"]: c for c in my_conversations(s, u["a-1"])}
        return scores, training, mine

    scores, training, mine = counted()
    for cid in ("split", "half"):  # neither reviewer's labels reach grading, training or the agent
        assert scores[cid]["reviewed_labels"] is None
        assert ScoreRecord.model_validate(scores[cid]).effective_labels() == DEFAULT_LABELS
        assert mine[cid]["labels"] == DEFAULT_LABELS and mine[cid]["reviewed"] is False
    assert "split" not in training and "half" not in training
    assert scores["agreed"]["reviewed_labels"] == SECOND and "agreed" in training and mine["agreed"]["reviewed"]
    with session(engine) as s:
        assert item(s, u["a-1"], "split")["task"]["final_labels"] is None

    with session(engine, write=True) as s:  # the lead adjudicates: now the decision counts
        save_review(s, u["boss"], "split", FIRST, version=3, now=T0)
    scores, training, mine = counted()
    assert ScoreRecord.model_validate(scores["split"]).effective_labels() == FIRST
    assert "split" in training and mine["split"]["labels"] == FIRST


def test_an_unsettled_double_review_does_not_restart_the_filing_window(engine):
    load(engine, [("half", "a-1", 0.5), ("agreed", "a-1", 0.55)], shares=(1.0, 0.0, 1.0))  # scored Mon 2 March
    u = users(engine, ("r1", "reviewer", None), ("r2", "reviewer", None), ("a-1", "agent", None))
    friday = datetime.fromisoformat("2026-03-06T10:00:00+08:00")
    with session(engine, write=True) as s:
        save_review(s, u["r1"], "half", FIRST, version=1, now=friday)  # one review: the model's score stands
        save_review(s, u["r1"], "agreed", SECOND, version=1, now=friday)
        save_review(s, u["r2"], "agreed", SECOND, version=1, now=friday)  # agreed: a new score on Friday
    cfg = ReviewConfig(file_days=3)
    monday = datetime.fromisoformat("2026-03-09T10:00:00+08:00")
    with pytest.raises(Invalid) as late, session(engine, write=True) as s:
        file_dispute(s, u["a-1"], cfg, "half", "不对", now=monday)
    assert "until 2026-03-05 23:59 Asia/Shanghai" in late.value.message  # three working days after the import
    with session(engine, write=True) as s:
        assert file_dispute(s, u["a-1"], cfg, "agreed", "不对", now=monday)["status"] == "open"
