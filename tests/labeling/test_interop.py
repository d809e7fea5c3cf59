"""Exports (training JSONL, score records, Label Studio) and the Label Studio import back."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from kefuqa.cli import main
from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.labeling import audit, export, interop
from kefuqa.labeling.access import Invalid
from kefuqa.labeling.app import create_app
from kefuqa.labeling.auth import add_user
from kefuqa.labeling.db import StoreError, open_engine, session
from kefuqa.labeling.reviews import save_review
from kefuqa.labeling.views import item

from .helpers import DEFAULT_LABELS, PASSWORD, T0, Server, load, users

CORRECTED = {**DEFAULT_LABELS, "politeness": "poor", "resolution": "unresolved"}


@pytest.fixture
def reviewed(engine):
    """c1 corrected on day 0, c2 confirmed on day 3, c3 unreviewed."""
    load(engine, [("c1", "a-1", 0.5), ("c2", "a-1", 0.6), ("c3", "a-2", 0.7)])
    u = users(engine, ("rev", "reviewer", None), ("lead", "lead", None))
    with session(engine, write=True) as s:
        save_review(s, u["rev"], "c1", CORRECTED, version=1, comment="禁语", now=T0)
        save_review(s, u["rev"], "c2", DEFAULT_LABELS, version=1, now=T0 + timedelta(days=3))
    return u


def test_training_export_is_transcript_jsonl_with_reviewed_labels(engine, reviewed, db_url):
    with session(engine) as s:
        rows = export.training_rows(s)
        recent = export.training_rows(s, since=T0 + timedelta(days=1))
    assert [r["id"] for r in rows] == ["c1", "c2"] and [r["id"] for r in recent] == ["c2"]
    convs = [Conversation.model_validate(json.loads(json.dumps(r, ensure_ascii=False))) for r in rows]
    assert convs[0].labels.model_dump() == CORRECTED and convs[0].turns[1].speaker == "agent"
    gold = export.reviewed_training_conversations(db_url)
    assert [(c.id, c.labels.model_dump()) for c in gold] == [("c1", CORRECTED), ("c2", DEFAULT_LABELS)]
    assert [c.id for c in export.reviewed_training_conversations(db_url, since=T0 + timedelta(days=1))] == ["c2"]


def test_reviewed_training_conversations_without_a_store_is_a_readable_error(tmp_path):
    with pytest.raises(StoreError, match="no review store"):
        export.reviewed_training_conversations(f"sqlite:///{tmp_path / 'none.db'}")


def test_score_export_carries_reviewed_labels_that_override(engine, reviewed):
    with session(engine) as s:
        recs = {r["id"]: ScoreRecord.model_validate(r) for r in export.score_records(s)}
    assert set(recs) == {"c1", "c2", "c3"}
    assert recs["c1"].labels.politeness == "good" and recs["c1"].reviewed_labels == CORRECTED
    assert recs["c1"].effective_labels() == CORRECTED
    assert recs["c3"].reviewed_labels is None and recs["c3"].effective_labels() == DEFAULT_LABELS


def test_label_studio_export_format(engine, reviewed):
    with session(engine) as s:
        tasks = interop.tasks(s)
        only = interop.tasks(s, reviewed_only=True)
    assert len(tasks) == 3 and len(only) == 2
    t = next(t for t in tasks if t["data"]["conversation_id"] == "c1")
    assert t["data"]["dialogue"][0] == {"author": "customer", "text": "在吗？我的快递三天了还没到"}
    assert set(t) == {"id", "data", "annotations", "predictions", "meta"}
    [ann] = t["annotations"]
    # no completed_by: our user ids mean nothing to Label Studio, which credits the importing user instead
    assert set(ann) == {"id", "result", "was_cancelled", "ground_truth", "lead_time", "created_at", "updated_at"}
    assert ann["was_cancelled"] is False and ann["ground_truth"] is False
    assert t["meta"]["kefuqa"]["reviews"] == [{"annotation": ann["id"], "reviewer": "rev", "kind": "review",
                                               "created_at": ann["created_at"]}]
    assert {"from_name": "politeness", "to_name": "dialogue", "type": "choices",
            "value": {"choices": ["poor"]}} in ann["result"]
    [pred] = t["predictions"]
    assert set(pred) == {"model_version", "score", "result"}
    assert pred["model_version"] == "kefu-test@1.0" and pred["score"] == pytest.approx(0.5)
    assert len(pred["result"]) == 4 and all(r["type"] == "choices" for r in pred["result"])
    config = interop.label_config()
    for name in DEFAULT_LABELS:
        assert f'<Choices name="{name}" toName="dialogue"' in config
    assert '<Paragraphs name="dialogue" value="$dialogue"' in config


def test_label_studio_annotations_come_back_as_reviews(engine, reviewed):
    with session(engine, write=True) as s:
        add_user(s, "ls-bot", "reviewer", "password-123", actor="test")
        add_user(s, "zhang", "reviewer", "password-123", actor="test")
    with session(engine) as s:
        tasks = interop.tasks(s)
    # unchanged export → nothing imported
    with session(engine, write=True) as s:
        stats = interop.import_annotations(s, tasks, reviewer="ls-bot", actor="test")
    assert (stats["imported"], stats["unchanged"], stats["skipped"]) == (0, 2, 1)
    # an annotator in Label Studio corrects c3 (partially) and c2; a cancelled one is ignored
    c3 = next(t for t in tasks if t["data"]["conversation_id"] == "c3")
    c3["annotations"] = [
        {"id": 901, "result": [{"from_name": "sentiment", "to_name": "dialogue", "type": "choices",
                                "value": {"choices": ["negative"]}}], "was_cancelled": False, "ground_truth": False,
         "lead_time": 12.5, "completed_by": {"username": "zhang"}, "created_at": "2026-03-05T10:00:00Z",
         "updated_at": "2026-03-05T10:00:00Z"},
        {"id": 902, "result": [], "was_cancelled": True, "created_at": "2026-03-06T10:00:00Z"}]
    c2 = next(t for t in tasks if t["data"]["conversation_id"] == "c2")
    c2["annotations"].append({"id": 903, "result": interop.result_items({**DEFAULT_LABELS, "politeness": "fair"}),
                              "was_cancelled": False, "ground_truth": False, "lead_time": 3.0, "completed_by": 77,
                              "created_at": "2026-03-07T10:00:00Z", "updated_at": "2026-03-07T10:00:00Z"})
    bad = {"id": 5, "data": {"conversation_id": "nope"}, "annotations": []}
    with session(engine, write=True) as s:
        stats = interop.import_annotations(s, tasks + [bad], reviewer="ls-bot", actor="test")
    assert stats["imported"] == 2 and len(stats["problems"]) == 1 and "task 4" in stats["problems"][0]
    lead = reviewed["lead"]
    with session(engine) as s:
        v3 = item(s, lead, "c3")
        v2 = item(s, lead, "c2")
        assert v3["task"]["final_labels"] == {**DEFAULT_LABELS, "sentiment": "negative"}
        assert (v3["reviews"][-1]["reviewer"], v3["reviews"][-1]["kind"]) == ("zhang", "label_studio")
        assert v2["task"]["final_labels"]["politeness"] == "fair" and v2["reviews"][-1]["reviewer"] == "ls-bot"
        assert next(e["action"] for e in audit.entries(s, entity="import")) == "import.label_studio"
    with session(engine, write=True) as s:  # importing the same file again changes nothing
        stats = interop.import_annotations(s, tasks, reviewer="ls-bot", actor="test")
    assert stats["imported"] == 0
    with pytest.raises(Invalid, match="no reviewer 'ghost'"), session(engine, write=True) as s:
        interop.import_annotations(s, tasks, reviewer="ghost", actor="test")


def test_label_studio_export_credits_reviewers_by_their_label_studio_email(engine, reviewed):
    with session(engine) as s:
        mapped = interop.tasks(s, users=interop.annotators(["rev=zhang@example.com"]))
        by_default = interop.tasks(s, users=interop.annotators([], "qa-lead@example.com"))
        with pytest.raises(Invalid, match="no user 'ghost' in the review store"):
            interop.tasks(s, users=interop.annotators(["ghost=ghost@example.com"]))
    anns = {t["data"]["conversation_id"]: t["annotations"] for t in mapped}
    assert [a["completed_by"] for a in anns["c1"] + anns["c2"]] == [{"email": "zhang@example.com"}] * 2
    assert anns["c3"] == []
    assert {a["completed_by"]["email"] for t in by_default for a in t["annotations"]} == {"qa-lead@example.com"}


@pytest.mark.parametrize(("pairs", "default", "message"), [
    (["rev"], None, "--ls-user 'rev': expected NAME=EMAIL"),
    (["rev=zhang"], None, "--ls-user 'rev=zhang': expected NAME=EMAIL"),
    (["=zhang@example.com"], None, "expected NAME=EMAIL"),
    ([], "not-an-email", "--ls-default-user 'not-an-email': not an e-mail address"),
])
def test_bad_user_mappings_say_which_one(pairs, default, message):
    with pytest.raises(Invalid, match=message):
        interop.annotators(pairs, default)


def _as_label_studio_exports_it(task: dict, ls_ids: range, updated_by: int | None = None) -> dict:
    """What Label Studio's JSON export makes of one of our tasks: its own annotation ids, ours
    kept as ``import_id``, ``completed_by`` a number, fresh timestamps."""
    anns = [{**a, "id": ls_id, "import_id": a["id"], "completed_by": 1, "updated_by": updated_by,
             "created_at": "2026-12-06T12:13:47.282084Z", "updated_at": "2026-12-06T12:13:47.282100Z"}
            for ls_id, a in zip(ls_ids, task["annotations"])]
    return {**task, "id": 900 + task["id"], "annotations": anns}


def test_round_trip_through_label_studio_keeps_reviewers(engine, reviewed, tmp_path):
    """Back from Label Studio our own reviews change nothing here; in another store they are
    credited to the reviewer named in the task's meta, unless edited in Label Studio."""
    with session(engine, write=True) as s:  # c2 adjudicated by the lead after rev's review
        save_review(s, reviewed["lead"], "c2", {**DEFAULT_LABELS, "sentiment": "neutral"}, version=2, now=T0)
    with session(engine) as s:
        back = [_as_label_studio_exports_it(t, range(7, 10)) for t in interop.tasks(s)]
    with session(engine, write=True) as s:
        stats = interop.import_annotations(s, back, reviewer="rev", actor="test")
    assert (stats["imported"], stats["unchanged"], stats["skipped"]) == (0, 2, 1)

    other = open_engine(f"sqlite:///{tmp_path / 'other.db'}", auto_migrate=True)
    try:
        load(other, [("c1", "a-1", 0.5), ("c2", "a-1", 0.6), ("c3", "a-2", 0.7)])
        u = users(other, ("rev", "reviewer", None), ("lead", "lead", None), ("ls-bot", "reviewer", None))
        edited = _as_label_studio_exports_it(next(t for t in back if t["data"]["conversation_id"] == "c1"),
                                             range(20, 21), updated_by=1)
        edited["data"] = {**edited["data"], "conversation_id": "c3"}
        with session(other, write=True) as s:
            stats = interop.import_annotations(s, [*back, edited], reviewer="ls-bot", actor="test")
        assert (stats["imported"], stats["skipped"]) == (3, 1)  # c3 as exported had no annotation
        with session(other) as s:
            c1, c2, c3 = (item(s, u["lead"], c) for c in ("c1", "c2", "c3"))
        assert c1["task"]["final_labels"] == CORRECTED and c1["reviews"][-1]["reviewer"] == "rev"
        # the newest of c2's annotations (Label Studio's ids keep our order) is the lead's
        assert c2["task"]["final_labels"]["sentiment"] == "neutral" and c2["reviews"][-1]["reviewer"] == "lead"
        assert c3["reviews"][-1]["reviewer"] == "ls-bot"  # edited in Label Studio: not rev's any more
    finally:
        other.dispose()


def test_annotations_made_in_label_studio_are_credited_by_email(engine, reviewed):
    with session(engine, write=True) as s:
        add_user(s, "zhang", "reviewer", "password-123", actor="test")
        add_user(s, "li@example.com", "reviewer", "password-123", actor="test")
    with session(engine) as s:
        tasks = {t["data"]["conversation_id"]: t for t in interop.tasks(s)}

    def annotated(cid: str, ls_id: int, completed_by: object, labels: dict[str, str]) -> dict:
        return {**tasks[cid], "annotations": [{
            "id": ls_id, "import_id": None, "result": interop.result_items(labels), "was_cancelled": False,
            "ground_truth": False, "lead_time": 2.0, "completed_by": completed_by, "updated_by": 5,
            "created_at": "2026-12-07T09:00:00Z", "updated_at": "2026-12-07T09:00:00Z"}]}

    back = [annotated("c3", 31, {"id": 5, "email": "ZHANG@example.com", "first_name": "", "last_name": ""},
                      {**DEFAULT_LABELS, "resolution": "escalated"}),
            annotated("c2", 32, {"id": 6, "email": "li@example.com"}, {**DEFAULT_LABELS, "politeness": "fair"}),
            annotated("c1", 33, 5, {**DEFAULT_LABELS, "sentiment": "negative"})]
    with session(engine, write=True) as s:
        stats = interop.import_annotations(s, back, reviewer="lead", actor="test",
                                           users=interop.annotators(["zhang=zhang@example.com"]))
    assert stats["imported"] == 3
    with session(engine) as s:
        who = {c: item(s, reviewed["lead"], c)["reviews"][-1]["reviewer"] for c in ("c1", "c2", "c3")}
    assert who == {"c3": "zhang", "c2": "li@example.com", "c1": "lead"}


def test_export_options_on_the_command_line_and_over_http(engine, reviewed, db_url, settings, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.setenv("KEFUQA_HOME", str(tmp_path / "home"))
    out = tmp_path / "tasks.json"
    argv = ["review", "export", "--format", "label-studio", "-o", str(out), "--db", db_url]
    assert _cli(capsys, *argv, "--ls-user", "rev=zhang@example.com", "--ls-default-user", "qa@example.com")[0] == 0
    assert json.loads(out.read_text(encoding="utf-8"))[0]["annotations"][0]["completed_by"] == {
        "email": "zhang@example.com"}
    rc, _, err = _cli(capsys, *argv, "--ls-user", "rev:zhang@example.com")
    assert rc == 2 and err.strip() == ("kefuqa review: --ls-user 'rev:zhang@example.com': expected NAME=EMAIL, "
                                       "a kefu-qa user and the e-mail of their Label Studio login")
    rc, _, err = _cli(capsys, *argv, "--ls-user", "ghost=g@example.com")
    assert rc == 2 and "no user 'ghost' in the review store" in err and len(err.strip().splitlines()) == 1

    with Server(create_app(settings)) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        assert c.post("/api/review/login", json={"name": "lead", "password": PASSWORD}).status_code == 200
        r = c.get("/api/review/export", params={"format": "label-studio", "ls_user": "rev=zhang@example.com"})
        assert r.status_code == 200
        assert next(a["completed_by"] for t in r.json() for a in t["annotations"]) == {"email": "zhang@example.com"}
        r = c.get("/api/review/export", params={"format": "label-studio", "ls_user": "rev"})
        assert r.status_code == 422 and "ls_user 'rev': expected NAME=EMAIL" in r.json()["detail"]["message"]


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err
