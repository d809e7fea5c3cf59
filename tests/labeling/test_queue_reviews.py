"""Queue order, double review, version conflicts, roles and team restriction (on the store)."""

from __future__ import annotations

import pytest

from kefuqa.labeling.access import Conflict, Forbidden, NotFound, set_team_restriction
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import session
from kefuqa.labeling.disputes import file_dispute
from kefuqa.labeling.importer import stratified_sample
from kefuqa.labeling.queue import build_queue, interleave
from kefuqa.labeling.reviews import save_review
from kefuqa.labeling.views import item

from .helpers import T0, load, users

LABELS = {"politeness": "fair", "emotional_control": "good", "resolution": "escalated", "sentiment": "neutral"}


def _queue(engine, user, limit=50):
    with session(engine) as s:
        return build_queue(s, user, limit, now=T0)["items"]


def test_interleave_spreads_the_sample_in_proportion():
    merged = interleave(list("abcdefgh"), 8, ["X", "Y"], 2)
    assert merged == ["a", "X", "b", "c", "d", "e", "Y", "f", "g", "h"]


def test_stratified_sample_keeps_every_stratum_in_proportion():
    import random

    items = [("a", i) for i in range(60)] + [("b", i) for i in range(30)] + [("c", i) for i in range(10)]
    picked = stratified_sample(items, lambda x: x[0], 10, random.Random(0))
    assert len(picked) == 10 and len(set(picked)) == 10
    assert [sum(p[0] == k for p in picked) for k in "abc"] == [6, 3, 1]


def test_queue_disputes_first_then_least_confident_with_the_calibration_sample(engine):
    # 10 conversations: confidence 0.40, 0.45 … 0.85; 20 % uncertain → the two least confident,
    # a calibration sample of 40 % of the import drawn from the rest.
    items = [(f"c{i:02d}", "a-1", 0.40 + 0.05 * i) for i in range(10)]
    result = load(engine, items, shares=(0.2, 0.4, 0.0))
    assert result.tasks == {"uncertain": 2, "sample": 4}
    u = users(engine, ("rev", "reviewer", None), ("a-1", "agent", None))
    q = _queue(engine, u["rev"])
    assert [e["conversation_id"] for e in q if e["reason"] == "uncertain"] == ["c00", "c01"]
    assert [e["reason"] for e in q] == ["uncertain", "sample", "sample", "uncertain", "sample", "sample"]
    assert q[0]["uncertainty"] == pytest.approx(0.6)
    sampled = {e["conversation_id"] for e in q if e["reason"] == "sample"}

    # an open dispute goes to the front, even on a conversation that was not queued
    unqueued = next(f"c{i:02d}" for i in range(2, 10) if f"c{i:02d}" not in sampled)
    with session(engine, write=True) as s:
        d = file_dispute(s, u["a-1"], ReviewConfig(), unqueued, "the customer was not upset", now=T0)
    q = _queue(engine, u["rev"])
    assert q[0] == {"kind": "dispute", "conversation_id": unqueued, "dispute_id": d["id"], "level": 1,
                    "due_at": d["due_at"], "overdue": False}
    assert [e["kind"] for e in q] == ["dispute"] + ["review"] * 6

    # a reviewed item leaves the queue
    with session(engine, write=True) as s:
        save_review(s, u["rev"], "c00", LABELS, version=1, now=T0)
    assert "c00" not in {e["conversation_id"] for e in _queue(engine, u["rev"])}


def test_double_items_go_to_two_reviewers_blind_and_never_conflict(engine):
    load(engine, [("c1", "a-1", 0.5)], shares=(1.0, 0.0, 1.0))
    u = users(engine, ("r1", "reviewer", None), ("r2", "reviewer", None), ("r3", "reviewer", None),
               ("boss", "lead", None))
    for r in ("r1", "r2"):
        assert [e["double"] for e in _queue(engine, u[r])] == [True]
    other = dict(LABELS, sentiment="negative")
    with session(engine, write=True) as s:
        save_review(s, u["r1"], "c1", LABELS, version=1, comment="first")
    with session(engine) as s:  # r2 does not see r1's labels, and r1 no longer has the item
        view = item(s, u["r2"], "c1")
        assert view["blind"] and view["reviews"] == [] and view["task"]["final_labels"] is None
    assert _queue(engine, u["r1"]) == []
    with session(engine, write=True) as s:  # r2 loaded version 1 before r1 saved: still no conflict
        task = save_review(s, u["r2"], "c1", other, version=1)
    assert task["status"] == "done" and task["version"] == 3
    assert _queue(engine, u["r3"]) == []
    with session(engine) as s:
        view = item(s, u["boss"], "c1")
        assert [r["reviewer"] for r in view["reviews"]] == ["r1", "r2"]
    # the reviewers disagree on sentiment: the lead's queue asks for an adjudication
    assert _queue(engine, u["boss"]) == [{"kind": "adjudicate", "conversation_id": "c1", "task_id": 1,
                                          "labels_differ": ["sentiment"], "version": 3}]
    with session(engine, write=True) as s:  # the lead adjudicates; a plain reviewer then cannot override
        assert save_review(s, u["boss"], "c1", LABELS, version=3)["final_source"] == "adjudication"
    assert _queue(engine, u["boss"]) == []
    with pytest.raises(Forbidden, match="only a lead"), session(engine, write=True) as s:
        save_review(s, u["r3"], "c1", other, version=4)


def test_stale_version_is_a_conflict_naming_who_saved(engine):
    load(engine, [("c1", "a-1", 0.5)])
    u = users(engine, ("r1", "reviewer", None), ("r2", "reviewer", None))
    with session(engine, write=True) as s:
        save_review(s, u["r1"], "c1", LABELS, version=1)
    with pytest.raises(Conflict) as err, session(engine, write=True) as s:
        save_review(s, u["r2"], "c1", dict(LABELS, politeness="poor"), version=1)
    assert "r1 saved this conversation" in err.value.message and err.value.extra["current_version"] == 2
    with session(engine) as s:
        assert item(s, u["r2"], "c1")["task"]["final_labels"] == LABELS


def test_agents_cannot_review_and_see_only_their_own(engine):
    load(engine, [("mine", "a-1", 0.5), ("theirs", "a-2", 0.5)])
    u = users(engine, ("a-1", "agent", None))
    with session(engine) as s:
        with pytest.raises(Forbidden):
            build_queue(s, u["a-1"])
        assert item(s, u["a-1"], "mine")["can_review"] is False
        with pytest.raises(NotFound):
            item(s, u["a-1"], "theirs")
    with pytest.raises(Forbidden, match="agents cannot review"), session(engine, write=True) as s:
        save_review(s, u["a-1"], "mine", LABELS, version=1)


def test_a_lead_restricts_their_team_to_its_members(engine):
    load(engine, [("north-1", "a-n", 0.5), ("south-1", "a-s", 0.5)], teams={"a-n": "north", "a-s": "south"})
    u = users(engine, ("nlead", "lead", "north"), ("nrev", "reviewer", "north"), ("srev", "reviewer", "south"),
               ("slead", "lead", "south"), ("root", "admin", None))

    def ids(name: str) -> set[str]:
        return {e["conversation_id"] for e in _queue(engine, u[name])}

    assert ids("srev") == {"north-1", "south-1"}
    with pytest.raises(Forbidden, match="own team"), session(engine, write=True) as s:
        set_team_restriction(s, u["slead"], "north", True)
    with session(engine, write=True) as s:
        set_team_restriction(s, u["nlead"], "north", True)
    assert ids("srev") == {"south-1"} and ids("slead") == {"south-1"}
    assert ids("nrev") == ids("root") == {"north-1", "south-1"}
    with pytest.raises(NotFound), session(engine) as s:
        item(s, u["srev"], "north-1")
    with pytest.raises(NotFound), session(engine, write=True) as s:
        save_review(s, u["srev"], "north-1", LABELS, version=1)
