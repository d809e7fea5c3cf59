"""Exports (training JSONL, score records, Label Studio) and the Label Studio import back."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.labeling import audit, export, interop
from kefuqa.labeling.access import Invalid
from kefuqa.labeling.auth import add_user
from kefuqa.labeling.db import StoreError, session
from kefuqa.labeling.reviews import save_review
from kefuqa.labeling.views import item

from .helpers import DEFAULT_LABELS, T0, load, users

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
    assert set(t) == {"id", "data", "annotations", "predictions"}
    assert t["data"]["dialogue"][0] == {"author": "customer", "text": "在吗？我的快递三天了还没到"}
    [ann] = t["annotations"]
    assert set(ann) == {"id", "result", "was_cancelled", "ground_truth", "lead_time", "completed_by", "created_at",
                        "updated_at"}
    assert ann["was_cancelled"] is False and ann["ground_truth"] is False
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
