"""Reviewed labels out of the store: training JSONL, score records, Label Studio tasks.

- training: transcript.md objects (masked turns) with ``labels`` = the final
  reviewed labels and, where reviewers marked evidence, ``evidence_feedback``; turns
  whose speaker reviewers fixed carry the fixed speaker (listed in ``speaker_fixes``);
  ``reviewed_training_conversations`` feeds ``kefuqa train --from-reviews``.
- scores: scores.md records of the latest model version per conversation with
  ``reviewed_labels`` filled: the override that grading consumes.
Both carry only settled labels (``reviews.settled_labels``): a double-reviewed item
whose reviewers disagree counts once a lead adjudicates it.
- label-studio: tasks with ``predictions`` and ``annotations`` (see
  ``interop.py`` for the format and the import back).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from kefuqa.contract import Conversation, ScoreRecord

from .db import StoreError, normalise_url, open_engine, session
from .evidence_feedback import training_feedback
from .models import ReviewTask, StoredConversation
from .reviews import latest_prediction, settled_labels
from .speaker_fixes import fixed_turns, settled_speakers


def final_labelled(s: Session, since: datetime | None = None,
                   where: ColumnElement[bool] | None = None) -> Iterator[tuple[StoredConversation, ReviewTask]]:
    q = (select(StoredConversation, ReviewTask).join(ReviewTask, ReviewTask.conversation_id == StoredConversation.id)
         .where(ReviewTask.final_labels.is_not(None), where if where is not None else true())
         .order_by(ReviewTask.final_at, StoredConversation.id))
    if since is not None:
        q = q.where(ReviewTask.final_at >= since)
    for conv, task in s.execute(q).tuples():
        if settled_labels(s, task) is not None:  # an unadjudicated disagreement teaches nothing
            yield conv, task


def training_row(conv: StoredConversation, labels: dict[str, str],
                 speakers: dict[int, str] | None = None) -> dict[str, Any]:
    """A transcript with its final labels; ``speakers`` (turn → the speaker reviewers settled
    on, speaker_fixes.py) rewrites those turns and lists the changes as ``speaker_fixes``."""
    row: dict[str, Any] = {"id": conv.id, "agent_id": conv.agent_id, "channel": conv.channel}
    if conv.started_at:
        row["started_at"] = conv.started_at.isoformat()
    turns, changes = fixed_turns([{k: v for k, v in t.items() if v is not None} for t in conv.turns], speakers or {})
    row["turns"] = turns
    row["labels"] = labels
    if changes:
        row["speaker_fixes"] = changes
    return row


def training_rows(s: Session, since: datetime | None = None,
                  where: ColumnElement[bool] | None = None) -> list[dict[str, Any]]:
    """Rows with reviewers' evidence marks carry them as ``evidence_feedback`` (an extra key,
    which transcript.md readers keep and ignore): ``{"marks": [...], "missed": [...]}``."""
    pairs = list(final_labelled(s, since, where))
    feedback = training_feedback(s, {conv.id for conv, _ in pairs})
    speakers = settled_speakers(s, {conv.id for conv, _ in pairs})
    rows = []
    for conv, task in pairs:
        row = training_row(conv, task.final_labels or {}, speakers.get(conv.id))
        if conv.id in feedback:
            row["evidence_feedback"] = feedback[conv.id]
        rows.append(row)
    return rows


def score_records(s: Session, where: ColumnElement[bool] | None = None) -> list[dict[str, Any]]:
    """Every stored conversation's latest score record, ``reviewed_labels`` set where reviewed."""
    out = []
    convs = s.scalars(select(StoredConversation).where(where if where is not None else true())
                      .order_by(StoredConversation.id))
    for conv in convs:
        pred = latest_prediction(s, conv.id)
        if pred is None:
            continue
        task = s.scalar(select(ReviewTask).where(ReviewTask.conversation_id == conv.id))
        data = {**pred.record, "reviewed_labels": settled_labels(s, task)}
        if not data.get("started_at") and conv.started_at:  # grading places records in periods by it
            data["started_at"] = conv.started_at.isoformat()
        rec = ScoreRecord.model_validate(data)
        out.append(rec.model_dump(mode="json"))
    return out


def reviewed_training_conversations(url: str, since: datetime | None = None) -> list[Conversation]:
    """Conversations with gold labels from reviews (the final label of each), for retraining.

    ``url`` is the review store's (``config.db_url`` resolves the default). ``since`` keeps
    only labels decided at or after that time (e.g. when the current model was trained).
    Raises ``StoreError`` (a ``RuntimeError``) with a readable message.
    """
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).expanduser().exists():
        raise StoreError(f"no review store at {parsed.database}: import scores with `kefuqa review import` "
                         "and review them first, or set KEFUQA_REVIEW_DB_URL")
    engine = open_engine(url)
    try:
        with session(engine) as s:
            return [Conversation.model_validate(row) for row in training_rows(s, since)]
    finally:
        engine.dispose()
