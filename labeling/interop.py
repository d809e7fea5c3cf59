"""Label Studio interop: tasks with predictions and annotations out, annotations back in.

Task format (Label Studio's JSON export/import)::

    {"id": 7, "data": {"dialogue": [{"author": "customer", "text": "…"}], "conversation_id": "c-1", …},
     "annotations": [{"id", "result": [...], "was_cancelled", "ground_truth", "lead_time",
                      "completed_by": {"email": …} (only for reviewers given one), "created_at", "updated_at"}],
     "predictions": [{"model_version", "score", "result": [...]}],
     "meta": {"kefuqa": {"reviews": [{"annotation", "reviewer", "kind", "created_at"}]}}}

with one result item per label head::

    {"from_name": "politeness", "to_name": "dialogue", "type": "choices", "value": {"choices": ["good"]}}

``score`` is the model's confidence (the least confident head's top
probability), what Label Studio sorts by. ``label_config()`` is the matching
labelling interface.

Label Studio (checked on 1.23.2, ``tasks/serializers.py``) resolves an imported
annotation's ``completed_by`` as ``{"email": …}`` of a member of its organisation,
or a member's numeric id, and gives an annotation without one to the user who
imports; anything else, or an e-mail it does not know, fails the whole import.
Our user ids mean nothing there, so an annotation names its reviewer only by
the e-mail the caller maps them to (``Annotators``). The reviewer's kefu-qa name
travels in the task's ``meta``, which Label Studio keeps and exports, together with
our review id, which it keeps as the annotation's ``import_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
REVIEWER_ROLES = ("reviewer", "lead", "admin")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


@dataclass(frozen=True)
class Annotators:
    """kefu-qa reviewers as Label Studio users, by the e-mail of their Label Studio login.

    A reviewer without an e-mail (and no ``default``) is left out of ``completed_by``:
    Label Studio then credits the annotation to whoever imports the file.
    """

    emails: Mapping[str, str] = field(default_factory=dict)  # kefu-qa user name → e-mail
    default: str | None = None

    def completed_by(self, reviewer: str) -> dict[str, str] | None:
        email = self.emails.get(reviewer, self.default)
        return {"email": email} if email else None

    def reviewer_of(self, email: str) -> str | None:
        """The kefu-qa user an e-mail was mapped to (e-mail addresses compare case-blind)."""
        return next((name for name, mail in self.emails.items() if mail.lower() == email.lower()), None)


def annotators(pairs: Iterable[str] = (), default: str | None = None, *,
               flags: tuple[str, str] = ("--ls-user", "--ls-default-user")) -> Annotators:
    """``NAME=EMAIL`` pairs (and a default e-mail) as ``Annotators``; ``flags`` name the two
    inputs in the error message."""
    emails: dict[str, str] = {}
    for pair in pairs:
        name, sep, email = (part.strip() for part in pair.partition("="))
        if not sep or not name or not _EMAIL.fullmatch(email):
            raise Invalid(f"{flags[0]} {pair!r}: expected NAME=EMAIL, a kefu-qa user and the e-mail of their "
                          "Label Studio login")
        emails[name] = email
    if default is not None and not _EMAIL.fullmatch(default.strip()):
        raise Invalid(f"{flags[1]} {default!r}: not an e-mail address")
    return Annotators(emails, default.strip() if default else None)


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


def tasks(s: Session, where: ColumnElement[bool] | None = None, reviewed_only: bool = False,
          users: Annotators | None = None) -> list[dict[str, Any]]:
    """Conversations in review (queued or reviewed) as Label Studio tasks; ``users`` gives the
    Label Studio e-mail of the reviewers that Label Studio should credit."""
    users = users or Annotators()
    names: dict[int, str] = {uid: name for uid, name in s.execute(select(User.id, User.name))}
    unknown = sorted(set(users.emails) - set(names.values()))
    if unknown:
        raise Invalid(f"no user {unknown[0]!r} in the review store (given the Label Studio e-mail "
                      f"{users.emails[unknown[0]]})")
    q = (select(StoredConversation, ReviewTask).join(ReviewTask, ReviewTask.conversation_id == StoredConversation.id)
         .where(where if where is not None else true()).order_by(ReviewTask.id))
    if reviewed_only:
        q = q.where(ReviewTask.final_labels.is_not(None))
    out = []
    for conv, task in s.execute(q):
        preds = s.scalars(select(Prediction).where(Prediction.conversation_id == conv.id).order_by(Prediction.id))
        reviews = list(s.scalars(select(Review).where(Review.conversation_id == conv.id).order_by(Review.id)))
        out.append({
            "id": task.id,
            "data": {TO_NAME: [{"author": t["speaker"], "text": t["text"]} for t in conv.turns],
                     "conversation_id": conv.id, "agent_id": conv.agent_id, "team": conv.team,
                     "channel": conv.channel},
            "annotations": [_annotation(r, users.completed_by(names[r.reviewer_id])) for r in reviews],
            "predictions": [{"model_version": f"{p.model_name}@{p.model_version}", "score": round(p.confidence, 6),
                             "result": result_items(p.labels)} for p in preds],
            "meta": {"kefuqa": {"reviews": [
                {"annotation": r.id, "reviewer": names[r.reviewer_id], "kind": r.kind,
                 "created_at": r.created_at.isoformat()} for r in reviews]}},
        })
    return out


def _annotation(r: Review, completed_by: dict[str, str] | None) -> dict[str, Any]:
    ann: dict[str, Any] = {
        "id": r.id, "result": result_items(r.labels), "was_cancelled": False,
        "ground_truth": r.kind in ("adjudication", "dispute"), "lead_time": r.lead_time or 0.0,
        "created_at": r.created_at.isoformat(), "updated_at": r.created_at.isoformat()}
    if completed_by:
        ann["completed_by"] = completed_by
    return ann


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
    return max(anns, key=lambda a: (_stamp(a), a["id"] if isinstance(a.get("id"), int) else -1)) if anns else None


def _our_review_id(ann: dict[str, Any]) -> int | None:
    """The id of the review an annotation was exported from: Label Studio keeps it as
    ``import_id`` (null for its own annotations); in our own file it is the ``id``."""
    rid = ann.get("import_id") if "import_id" in ann else ann.get("id")
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else None


def _already_there(s: Session, ref: str, ann: dict[str, Any], conv_id: str, labels: dict[str, str]) -> bool:
    """This annotation was imported before, or it is one of our own reviews exported unchanged."""
    rid = _our_review_id(ann)
    ours = s.get(Review, rid) if rid is not None else None
    return s.scalar(select(Review.id).where(Review.source_ref == ref)) is not None or (
        ours is not None and ours.conversation_id == conv_id
        and all(ours.labels.get(k) == v for k, v in labels.items()))


def _import_task(s: Session, task: Any, *, fallback: User, users: Annotators, now: datetime) -> str:
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
    user = _annotator(s, task, ann, users) or fallback
    lead_time = ann.get("lead_time") if isinstance(ann.get("lead_time"), (int, float)) else None
    write_final(s, task=task_row, user=principal(user), labels=merged, kind="label_studio",
                comment=f"Label Studio task {task.get('id')}, annotation {ann.get('id')}",
                expected_version=task_row.version, lead_time=lead_time, source_ref=ref, now=now)
    return "imported"


def import_annotations(s: Session, data: Any, *, reviewer: str, actor: str, users: Annotators | None = None,
                       now: datetime | None = None) -> dict[str, Any]:
    """Label Studio's JSON export → reviews (the newest annotation of each task).

    An annotation is attributed to the first existing reviewer among: the kefu-qa
    reviewer it was exported from (task ``meta``, unless edited in Label Studio since),
    the user ``users`` maps its ``completed_by`` e-mail to, the user named like that
    e-mail or ``username``; else to ``reviewer``. Label Studio's plain export gives
    ``completed_by`` as a number only, which names nobody here.
    Re-importing the same file changes nothing; an annotation that agrees with
    the labels already decided is skipped (counted as unchanged).
    """
    now = now or utcnow()
    users = users or Annotators()
    if not isinstance(data, list):
        raise Invalid("expected Label Studio's JSON export: a list of tasks")
    fallback = s.scalar(select(User).where(User.name == reviewer))
    if fallback is None or fallback.role not in REVIEWER_ROLES:
        raise Invalid(f"no reviewer {reviewer!r} to attribute the annotations to (create one with "
                      "`kefuqa review users add NAME --role reviewer`)")
    stats: dict[str, Any] = {"imported": 0, "unchanged": 0, "skipped": 0, "problems": []}
    for i, task in enumerate(data, 1):
        try:
            stats[_import_task(s, task, fallback=fallback, users=users, now=now)] += 1
        except _Problem as exc:
            where = f"task {i}" + (f" (id {task.get('id')})" if isinstance(task, dict) and "id" in task else "")
            stats["problems"].append(f"{where}: {exc}")
    audit.record(s, actor, "import.label_studio", "import", now.isoformat(),
                 after={k: (len(v) if isinstance(v, list) else v) for k, v in stats.items()}, at=now)
    return stats


def _exported_reviewer(task: dict[str, Any], ann: dict[str, Any]) -> str | None:
    """The kefu-qa reviewer of an annotation exported from here and not edited in Label
    Studio since (Label Studio sets ``updated_by`` when someone saves it there)."""
    rid = _our_review_id(ann)
    meta = task.get("meta")
    ours = meta.get("kefuqa") if isinstance(meta, dict) else None
    if rid is None or ann.get("updated_by") or not isinstance(ours, dict):
        return None
    for entry in ours.get("reviews") or []:
        if isinstance(entry, dict) and entry.get("annotation") == rid and isinstance(entry.get("reviewer"), str):
            return str(entry["reviewer"])
    return None


def _annotator(s: Session, task: dict[str, Any], ann: dict[str, Any], users: Annotators) -> User | None:
    names = [_exported_reviewer(task, ann)]
    completed_by = ann.get("completed_by")
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if isinstance(email, str) and email:
            names += [users.reviewer_of(email), email]
        names.append(completed_by.get("username"))
    for name in names:
        if isinstance(name, str) and name:
            user = s.scalar(select(User).where(User.name == name))
            if user is not None and user.role in REVIEWER_ROLES:
                return user
    return None
