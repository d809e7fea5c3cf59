"""Label Studio interop: tasks with predictions and annotations out, annotations back in.

Task format (Label Studio's JSON export/import)::

    {"id": 7, "data": {"dialogue": [{"author": "customer", "text": "…"}], "conversation_id": "c-1", …},
     "annotations": [{"id", "result": [...], "was_cancelled", "ground_truth", "lead_time", "completed_by",
                      "created_at", "updated_at"}],
     "predictions": [{"model_version", "score", "result": [...]}]}

with one result item per label head::

    {"from_name": "politeness", "to_name": "dialogue", "type": "choices", "value": {"choices": ["good"]}}

``score`` is the model's confidence (the least confident head's top
probability), what Label Studio sorts by. ``LABEL_CONFIG`` is the matching
labelling interface.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.sax.saxutils import quoteattr

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from kefuqa.contract import LABELS

from . import audit
from .access import Invalid, check_labels
from .auth import principal
from .models import Prediction, Review, ReviewTask, StoredConversation, User
from .reviews import ensure_task, latest_prediction, task_of, write_final
from .workdays import utcnow

TO_NAME = "dialogue"


def label_config() -> str:
    heads = "".join(
        f'  <Header value={quoteattr(name)}/>\n  <Choices name={quoteattr(name)} toName="{TO_NAME}" choice="single" '
        f'showInline="true">\n' + "".join(f"    <Choice value={quoteattr(v)}/>\n" for v in values) + "  </Choices>\n"
        for name, values in LABELS.items())
    return (f'<View>\n  <Paragraphs name="{TO_NAME}" value="$dialogue" layout="dialogue" nameKey="author" '
            f'textKey="text"/>\n{heads}</View>\n')


def result_items(labels: dict[str, str]) -> list[dict[str, Any]]:
    return [{"from_name": name, "to_name": TO_NAME, "type": "choices", "value": {"choices": [labels[name]]}}
            for name in LABELS if name in labels]


def tasks(s: Session, where: ColumnElement[bool] | None = None, reviewed_only: bool = False) -> list[dict[str, Any]]:
    """Conversations in review (queued or reviewed) as Label Studio tasks."""
    q = (select(StoredConversation, ReviewTask).join(ReviewTask, ReviewTask.conversation_id == StoredConversation.id)
         .where(where if where is not None else true()).order_by(ReviewTask.id))
    if reviewed_only:
        q = q.where(ReviewTask.final_labels.is_not(None))
    out = []
    for conv, task in s.execute(q):
        preds = s.scalars(select(Prediction).where(Prediction.conversation_id == conv.id).order_by(Prediction.id))
        reviews = s.scalars(select(Review).where(Review.conversation_id == conv.id).order_by(Review.id))
        out.append({
            "id": task.id,
            "data": {TO_NAME: [{"author": t["speaker"], "text": t["text"]} for t in conv.turns],
                     "conversation_id": conv.id, "agent_id": conv.agent_id, "team": conv.team,
                     "channel": conv.channel},
            "annotations": [{
                "id": r.id, "result": result_items(r.labels), "was_cancelled": False,
                "ground_truth": r.kind in ("adjudication", "dispute"), "lead_time": r.lead_time or 0.0,
                "completed_by": r.reviewer_id, "created_at": r.created_at.isoformat(),
                "updated_at": r.created_at.isoformat()} for r in reviews],
            "predictions": [{"model_version": f"{p.model_name}@{p.model_version}", "score": round(p.confidence, 6),
                             "result": result_items(p.labels)} for p in preds],
        })
    return out


def _labels_of(result: Any) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in result if isinstance(result, list) else []:
        if not isinstance(item, dict) or item.get("type") != "choices" or item.get("from_name") not in LABELS:
            continue
        choices = (item.get("value") or {}).get("choices") or []
        if choices:
            labels[item["from_name"]] = choices[0]
    return labels


def _stamp(a: dict[str, Any]) -> str:
    return str(a.get("updated_at") or a.get("created_at") or "")


class _Problem(Exception):
    """A task that cannot be imported; the message says why."""


def _conversation_of(s: Session, task: Any) -> StoredConversation | None:
    conv_id = ((task.get("data") or {}).get("conversation_id") if isinstance(task, dict) else None)
    return s.get(StoredConversation, conv_id) if isinstance(conv_id, str) else None


def _newest_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    anns = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    return max(anns, key=lambda a: (_stamp(a), str(a.get("id")))) if anns else None


def _already_there(s: Session, ref: str, ann: dict[str, Any], conv_id: str, labels: dict[str, str]) -> bool:
    """This annotation was imported before, or it is one of our own reviews exported unchanged."""
    ours = s.get(Review, ann["id"]) if isinstance(ann.get("id"), int) else None
    return s.scalar(select(Review.id).where(Review.source_ref == ref)) is not None or (
        ours is not None and ours.conversation_id == conv_id
        and all(ours.labels.get(k) == v for k, v in labels.items()))


def _import_task(s: Session, task: Any, *, fallback: User, now: datetime) -> str:
    """One task's newest annotation as a review: ``imported``, ``unchanged`` or ``skipped``;
    raises ``_Problem`` when it cannot be used."""
    conv = _conversation_of(s, task)
    if conv is None:
        raise _Problem("no conversation_id in data, or not in the store")
    ann = _newest_annotation(task)
    if ann is None:
        return "skipped"
    try:
        labels = check_labels(_labels_of(ann.get("result")), partial=True)
    except Invalid as exc:
        raise _Problem(exc.message) from None
    if not labels:
        return "skipped"
    ref = f"label-studio:{task.get('id')}:{ann.get('id')}:{_stamp(ann)}"
    if _already_there(s, ref, ann, conv.id, labels):
        return "unchanged"
    existing = task_of(s, conv.id)
    decided = existing.final_labels if existing else None
    pred = latest_prediction(s, conv.id)
    try:
        merged = check_labels({**(pred.labels if pred else {}), **(decided or {}), **labels})
    except Invalid as exc:
        raise _Problem(f"{exc.message} (no prediction to complete a partial annotation)") from None
    if merged == decided:  # e.g. our own annotation, re-numbered by Label Studio
        return "unchanged"
    task_row = ensure_task(s, conv.id, "import", now)
    user = _annotator(s, ann.get("completed_by")) or fallback
    lead_time = ann.get("lead_time") if isinstance(ann.get("lead_time"), (int, float)) else None
    write_final(s, task=task_row, user=principal(user), labels=merged, kind="label_studio",
                comment=f"Label Studio task {task.get('id')}, annotation {ann.get('id')}",
                expected_version=task_row.version, lead_time=lead_time, source_ref=ref, now=now)
    return "imported"


def import_annotations(s: Session, data: Any, *, reviewer: str, actor: str,
                       now: datetime | None = None) -> dict[str, Any]:
    """Label Studio's JSON export → reviews (the newest annotation of each task).

    An annotation is attributed to the user named in ``completed_by`` (its
    ``email`` or ``username``) when such a user exists, else to ``reviewer``.
    Re-importing the same file changes nothing; an annotation that agrees with
    the labels already decided is skipped (counted as unchanged).
    """
    now = now or utcnow()
    if not isinstance(data, list):
        raise Invalid("expected Label Studio's JSON export: a list of tasks")
    fallback = s.scalar(select(User).where(User.name == reviewer))
    if fallback is None or fallback.role not in ("reviewer", "lead", "admin"):
        raise Invalid(f"no reviewer {reviewer!r} to attribute the annotations to (create one with "
                      "`kefuqa review users add NAME --role reviewer`)")
    stats: dict[str, Any] = {"imported": 0, "unchanged": 0, "skipped": 0, "problems": []}
    for i, task in enumerate(data, 1):
        try:
            stats[_import_task(s, task, fallback=fallback, now=now)] += 1
        except _Problem as exc:
            where = f"task {i}" + (f" (id {task.get('id')})" if isinstance(task, dict) and "id" in task else "")
            stats["problems"].append(f"{where}: {exc}")
    audit.record(s, actor, "import.label_studio", "import", now.isoformat(),
                 after={k: (len(v) if isinstance(v, list) else v) for k, v in stats.items()}, at=now)
    return stats


def _annotator(s: Session, completed_by: Any) -> User | None:
    if isinstance(completed_by, dict):
        for key in ("username", "email"):
            name = completed_by.get(key)
            if isinstance(name, str) and name:
                user = s.scalar(select(User).where(User.name == name))
                if user is not None and user.role in ("reviewer", "lead", "admin"):
                    return user
    return None
