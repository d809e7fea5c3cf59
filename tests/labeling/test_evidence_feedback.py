"""Evidence feedback: reviewers mark evidence chips right or wrong and add missed spans, over the JSON
API on a real uvicorn server (SQLite and PostgreSQL); the audit rows, the blind rule, the training
export's ``evidence_feedback`` field, and per-rule precision checked against a hand computation
(the API, the store function and ``kefuqa rules stats``)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from kefuqa.cli import main
from kefuqa.contract import ScoreRecord
from kefuqa.labeling import evidence_feedback, export
from kefuqa.labeling.app import create_app
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import session
from kefuqa.labeling.importer import import_scores
from kefuqa.labeling.rule_precision import rule_precision
from kefuqa.text.pii import PiiMasker

from .helpers import DEFAULT_LABELS, PASSWORD, T0, Server, conversation, record, users

# Turn 1 of helpers.conversation: "亲，您好，这边帮您查一下物流哦，不知道您方便吗" (23 characters).
GREETING_1 = {"turn": 1, "start": 0, "end": 2, "rule": "polite.greeting", "text": "亲，"}
GREETING_2 = {"turn": 1, "start": 2, "end": 4, "rule": "polite.greeting", "text": "您好"}
DONT_KNOW = {"turn": 1, "start": 16, "end": 19, "rule": "taboo.dont_know", "text": "不知道"}  # "不知道您方便吗": polite
CHIPS = [GREETING_1, GREETING_2, DONT_KNOW]
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def _load(engine, ids: list[str]) -> None:
    recs = []
    for i, cid in enumerate(ids, 1):
        data = record(cid, top=0.5).model_dump(mode="json")
        data["evidence"] = CHIPS
        recs.append((i, ScoreRecord.model_validate(data)))
    with session(engine, write=True) as s:
        import_scores(s, recs, {cid: conversation(cid) for cid in ids}, masker=PiiMasker(), actor="test",
                      shares=(1.0, 0.0, 0.0), teams={"a-1": "north"}, now=T0)


def wilson(right: int, n: int) -> tuple[float, float]:
    """The Wilson score interval written out, to check the library's numbers against."""
    p, z2 = right / n, Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return centre - half, centre + half


@pytest.fixture
def server(engine, settings):
    _load(engine, ["c1", "c2", "c3"])
    users(engine, ("rev", "reviewer", "north"), ("rev2", "reviewer", "north"), ("lead", "lead", "north"),
          ("a-1", "agent", "north"))
    with Server(create_app(settings, ReviewConfig(file_days=None))) as srv:
        yield srv


@contextmanager
def client(server: Server, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/api/review/login", json={"name": name, "password": PASSWORD}).status_code == 200
        yield c


def mark(c: httpx.Client, cid: str, chip: dict, verdict: str | None) -> httpx.Response:
    body = {k: chip[k] for k in ("turn", "start", "end", "rule")}
    return c.post(f"/api/review/items/{cid}/evidence/marks", json={**body, "verdict": verdict})


def missed(c: httpx.Client, cid: str, **span) -> httpx.Response:
    return c.post(f"/api/review/items/{cid}/evidence/missed", json=span)


def message(r: httpx.Response) -> str:
    return r.json()["detail"]["message"]


def test_a_reviewer_marks_chips_and_every_change_is_audited(server):
    with client(server, "rev") as rev:
        r = mark(rev, "c1", DONT_KNOW, "wrong")
        assert r.status_code == 200, r.text
        assert r.json()["verdict"] == "wrong" and r.json()["text"] == "不知道"
        assert mark(rev, "c1", DONT_KNOW, "right").json()["verdict"] == "right"  # changes the one mark
        assert mark(rev, "c1", GREETING_1, "right").status_code == 200
        mine = rev.get("/api/review/items/c1/evidence").json()
        assert sorted((m["rule"], m["start"], m["verdict"]) for m in mine["marks"]) == [
            ("polite.greeting", 0, "right"), ("taboo.dont_know", 16, "right")]
        assert mark(rev, "c1", GREETING_1, None).json()["verdict"] is None  # withdrawn
        assert len(rev.get("/api/review/items/c1/evidence").json()["marks"]) == 1

        entries = [e for e in rev.get("/api/review/items/c1/audit").json()["entries"]
                   if e["action"].startswith("evidence.")]  # newest first
        actions = [(e["action"], (e["before"] or {}).get("verdict"), (e["after"] or {}).get("verdict"))
                   for e in entries]
        assert actions == [("evidence.unmarked", "right", None), ("evidence.marked", None, "right"),
                           ("evidence.marked", "wrong", "right"), ("evidence.marked", None, "wrong")]
        assert {e["actor"] for e in entries} == {"rev"}
        assert entries[-1]["after"] == {**DONT_KNOW, "verdict": "wrong"}

        # only chips the prediction shows can be marked, with a verdict the API knows
        r = mark(rev, "c1", {**DONT_KNOW, "start": 15}, "wrong")
        assert r.status_code == 422
        assert "no evidence chip 'taboo.dont_know' at turn 1 [15:19]" in message(r)
        assert r.json()["detail"]["field"] == "rule"
        r = mark(rev, "c1", DONT_KNOW, "maybe")
        assert r.status_code == 422 and "verdict" in json.dumps(r.json()["detail"])
        assert mark(rev, "nope", DONT_KNOW, "wrong").status_code == 404
    with client(server, "a-1") as agent:
        r = mark(agent, "c1", DONT_KNOW, "wrong")
        assert r.status_code == 403 and "agents cannot review" in message(r)
        assert agent.get("/api/review/items/c1/evidence").status_code == 403


def test_missed_spans_are_checked_and_say_what_is_wrong(server):
    with client(server, "rev") as rev:
        cases = [
            ({"turn": 3, "start": 0, "end": 2, "label": "politeness"}, "turn",
             "turn 3 does not exist; this conversation has 3 turns (0 to 2)"),
            ({"turn": 1, "start": 20, "end": 30, "label": "politeness"}, "end",
             "end 30 is past the end of turn 1, whose text has 23 characters"),
            ({"turn": 1, "start": 5, "end": 5, "label": "politeness"}, "end",
             "end (5) must be greater than start (5)"),
            ({"turn": 1, "start": -1, "end": 2, "label": "politeness"}, "start", "start must be 0 or more, not -1"),
            ({"turn": 1, "start": 5, "end": 8, "label": "tone"}, "label", "unknown label 'tone'"),
        ]
        for span, field, why in cases:
            r = missed(rev, "c1", **span)
            assert r.status_code == 422, (span, r.text)
            assert why in message(r) and r.json()["detail"]["field"] == field
        r = missed(rev, "c1", turn=1, start=9, end=12, label="resolution")
        assert r.status_code == 200, r.text
        span = r.json()
        assert span["text"] == "查一下" and span["created"] is True
        again = missed(rev, "c1", turn=1, start=9, end=12, label="resolution").json()
        assert again["created"] is False and again["id"] == span["id"]
        assert [m["text"] for m in rev.get("/api/review/items/c1/evidence").json()["missed"]] == ["查一下"]
        audit = [e for e in rev.get("/api/review/items/c1/audit").json()["entries"]
                 if e["action"].startswith("evidence")]
        assert [e["action"] for e in audit] == ["evidence.missed_added"]
        assert audit[0]["after"] == {"label": "resolution", "turn": 1, "start": 9, "end": 12, "text": "查一下"}
    with client(server, "rev2") as rev2:  # only one's own span can be withdrawn
        r = rev2.request("DELETE", f"/api/review/items/c1/evidence/missed/{span['id']}", json={})
        assert r.status_code == 404 and f"no missed span {span['id']} of yours" in message(r)
    with client(server, "rev") as rev:
        r = rev.request("DELETE", f"/api/review/items/c1/evidence/missed/{span['id']}", json={})
        assert r.status_code == 200 and r.json() == {"removed": span["id"]}
        assert rev.get("/api/review/items/c1/evidence").json()["missed"] == []
        actions = [e["action"] for e in rev.get("/api/review/items/c1/audit").json()["entries"]]
        assert actions[0] == "evidence.missed_removed"


def test_others_marks_stay_hidden_until_ones_own_review_is_in(server):
    with client(server, "rev") as rev:
        mark(rev, "c1", DONT_KNOW, "wrong")
        missed(rev, "c1", turn=1, start=9, end=12, label="resolution")
    with client(server, "rev2") as rev2:
        seen = rev2.get("/api/review/items/c1/evidence").json()
        assert seen["others_visible"] is False and seen["others"] == {"marks": [], "missed": []}
        mark(rev2, "c1", DONT_KNOW, "right")
        assert [m["verdict"] for m in rev2.get("/api/review/items/c1/evidence").json()["marks"]] == ["right"]
        version = rev2.get("/api/review/items/c1").json()["task"]["version"]
        r = rev2.post("/api/review/items/c1/review", json={"labels": DEFAULT_LABELS, "version": version})
        assert r.status_code == 200, r.text
        seen = rev2.get("/api/review/items/c1/evidence").json()
        assert seen["others_visible"] is True
        assert [(m["reviewer"], m["verdict"]) for m in seen["others"]["marks"]] == [("rev", "wrong")]
        assert [(m["reviewer"], m["text"]) for m in seen["others"]["missed"]] == [("rev", "查一下")]
    with client(server, "lead") as lead:  # a lead sees them outside a double item's blind phase
        assert lead.get("/api/review/items/c1/evidence").json()["others_visible"] is True


def _marks_by_hand(server) -> None:
    """taboo.dont_know: 1 right, 4 wrong; polite.greeting: 5 right, 1 wrong (one mark changed,
    one withdrawn on the way, which must not count)."""
    with client(server, "rev") as rev, client(server, "rev2") as rev2:
        for cid in ("c1", "c2"):
            assert mark(rev, cid, DONT_KNOW, "wrong").status_code == 200
            assert mark(rev2, cid, DONT_KNOW, "wrong").status_code == 200
        mark(rev, "c3", DONT_KNOW, "wrong")
        mark(rev, "c3", DONT_KNOW, "right")
        for cid in ("c1", "c2", "c3"):
            mark(rev, cid, GREETING_1, "right")
        mark(rev, "c1", GREETING_2, "right")
        mark(rev2, "c1", GREETING_2, "wrong")
        mark(rev2, "c2", GREETING_2, "right")
        mark(rev2, "c3", GREETING_2, "wrong")
        mark(rev2, "c3", GREETING_2, None)
        missed(rev, "c1", turn=1, start=9, end=12, label="resolution")


def test_rule_precision_matches_a_hand_computation(server, engine):
    _marks_by_hand(server)
    with client(server, "lead") as lead:
        r = lead.get("/api/review/rules/stats", params={"min_marks": 5})
        assert r.status_code == 200, r.text
        report = r.json()
    rules = {x["rule"]: x for x in report["rules"]}
    assert [x["rule"] for x in report["rules"]] == ["taboo.dont_know", "polite.greeting"]  # lowest bound first
    dont_know, greeting = rules["taboo.dont_know"], rules["polite.greeting"]
    assert (dont_know["hits"], dont_know["marks"], dont_know["right"], dont_know["wrong"]) == (3, 5, 1, 4)
    assert (greeting["hits"], greeting["marks"], greeting["right"], greeting["wrong"]) == (6, 6, 5, 1)
    assert dont_know["precision"] == pytest.approx(0.2) and dont_know["wrong_rate"] == pytest.approx(0.8)
    assert greeting["precision"] == pytest.approx(5 / 6)
    assert (dont_know["low"], dont_know["high"]) == pytest.approx(wilson(1, 5), abs=1e-9)
    assert (greeting["low"], greeting["high"]) == pytest.approx(wilson(5, 6), abs=1e-9)
    assert report["fix_first"] == ["taboo.dont_know", "polite.greeting"]
    assert report["missed"] == {"resolution": 1} and report["conversations"] == 3 and report["marks"] == 11
    with session(engine) as s:  # more marks needed than taboo.dont_know has: it is not ranked
        strict = rule_precision(s, min_marks=6)
        assert strict.fix_first == ["polite.greeting"]
        assert [(x.rule, x.enough_marks) for x in strict.rules] == [("polite.greeting", True),
                                                                    ("taboo.dont_know", False)]
        stricter = rule_precision(s, min_marks=7)
        assert stricter.fix_first == [] and not any(x.enough_marks for x in stricter.rules)
    with client(server, "rev") as rev:
        r = rev.get("/api/review/rules/stats")
        assert r.status_code == 403 and message(r) == "leads and admins only"


def test_rules_stats_on_the_command_line(server, db_url, capsys, monkeypatch, tmp_path):
    _marks_by_hand(server)
    monkeypatch.setenv("KEFUQA_HOME", str(tmp_path / "cli-home"))
    with pytest.raises(SystemExit) as done:
        main(["rules", "stats", "--db", db_url])
    out = capsys.readouterr().out
    assert done.value.code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["rule", "hits", "marks", "wrong", "wrong", "rate", "precision", "95%", "interval"]
    low, high = wilson(1, 5)
    assert lines[1].split() == ["taboo.dont_know", "3", "5", "4", "80%", "20%", f"{low:.0%}–{high:.0%}"]
    assert "fix first (lowest lower bound of precision): taboo.dont_know, polite.greeting" in out
    assert "missed spans per label: resolution 1" in out
    with pytest.raises(SystemExit) as done:
        main(["rules", "stats", "--db", db_url, "--json", "--min-marks", "7"])
    data = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and data["fix_first"] == [] and data["min_marks"] == 7
    with pytest.raises(SystemExit) as done:
        main(["rules", "stats", "--db", db_url, "--min-marks", "0"])
    assert done.value.code == 2
    assert capsys.readouterr().err == "kefuqa rules stats: --min-marks must be 1 or more, not 0\n"


def test_the_training_export_carries_the_marks(server, engine):
    with client(server, "rev") as rev:
        mark(rev, "c1", DONT_KNOW, "wrong")
        missed(rev, "c1", turn=0, start=5, end=7, label="sentiment")
        mark(rev, "c2", GREETING_1, "right")  # c2 is never reviewed: not in the training export
        version = rev.get("/api/review/items/c1").json()["task"]["version"]
        assert rev.post("/api/review/items/c1/review", json={"labels": DEFAULT_LABELS, "version": version}).is_success
        version = rev.get("/api/review/items/c3").json()["task"]["version"]
        assert rev.post("/api/review/items/c3/review", json={"labels": DEFAULT_LABELS, "version": version}).is_success
    with client(server, "lead") as lead:
        r = lead.get("/api/review/export", params={"format": "training"})
        assert r.status_code == 200
    rows = {row["id"]: row for row in map(json.loads, r.text.splitlines())}
    assert set(rows) == {"c1", "c3"}
    assert rows["c1"]["evidence_feedback"] == {
        "marks": [{**DONT_KNOW, "verdict": "wrong"}],
        "missed": [{"label": "sentiment", "turn": 0, "start": 5, "end": 7, "text": "快递"}]}
    assert "evidence_feedback" not in rows["c3"]  # no marks: the row is as before
    with session(engine) as s:
        assert evidence_feedback.training_feedback(s, {"c2"})["c2"]["marks"] == [{**GREETING_1, "verdict": "right"}]
        gold = [c for c in export.training_rows(s) if c["id"] == "c1"]
    assert gold[0]["evidence_feedback"]["marks"][0]["rule"] == "taboo.dont_know"
