"""Import score records and their conversations into the review store.

Conversations are stored PII-masked (masked again here, whatever the scorer
did). Each score record becomes a prediction of its model version. New
conversations get review tasks: the least confident ``uncertain_share`` of
the import, and a random sample (``sample_share`` of the import, drawn from the
rest) stratified by the predicted labels, for calibration, and ``double_share`` of those tasks go to
two reviewers (agreement).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from kefuqa.contract import LABELS, Conversation, ScoreRecord, Turn
from kefuqa.io.readers import describe_validation_error
from kefuqa.pipeline import mask_conversation
from kefuqa.text.pii import PiiMasker

from . import audit
from .models import Prediction, ReviewTask, StoredConversation
from .workdays import utcnow


class ImportInputError(ValueError):
    """An input file cannot be read as a whole; the message names it."""


def read_score_records(path: Path, problems: list[str]) -> Iterator[tuple[int, ScoreRecord]]:
    """Score records (JSONL, optionally .gz) with line numbers; bad lines go to ``problems``."""
    if not path.is_file():
        raise ImportInputError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield line_no, ScoreRecord.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{line_no}: bad JSON: {exc.msg} at column {exc.colno}")
            except ValidationError as exc:
                problems.append(f"{path}:{line_no}: {describe_validation_error(exc)}")


def read_roster(path: Path) -> dict[str, str]:
    """CSV with agent_id and team columns (the grading roster works) → team by agent."""
    if not path.is_file():
        raise ImportInputError(f"{path}: no such file")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"agent_id", "team"} <= set(reader.fieldnames):
            raise ImportInputError(f"{path}: needs the columns agent_id and team")
        return {row["agent_id"].strip(): row["team"].strip() for row in reader if row.get("agent_id")}


@dataclass
class ImportResult:
    conversations: int = 0
    predictions: int = 0
    updated_predictions: int = 0
    tasks: dict[str, int] = field(default_factory=lambda: {"uncertain": 0, "sample": 0})
    double: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.conversations} new conversations, {self.predictions} predictions "
                f"({self.updated_predictions} replaced), review tasks: {self.tasks['uncertain']} uncertain + "
                f"{self.tasks['sample']} calibration sample ({self.double} for two reviewers)"
                + (f"; {len(self.problems)} skipped" if self.problems else ""))


def confidence(probs: Mapping[str, Mapping[str, float]]) -> float:
    """The least confident head's top probability (uncertainty = 1 − this)."""
    return min(max(probs[name].values()) for name in LABELS)


def stratified_sample(items: list[Any], key: Any, k: int, rng: random.Random) -> list[Any]:
    """``k`` items, each stratum represented in proportion (largest remainder)."""
    if k <= 0 or not items:
        return []
    strata: dict[Any, list[Any]] = defaultdict(list)
    for it in items:
        strata[key(it)].append(it)
    k = min(k, len(items))
    quotas = {s: k * len(v) / len(items) for s, v in strata.items()}
    take = {s: math.floor(q) for s, q in quotas.items()}
    rest = k - sum(take.values())
    order = sorted(strata, key=lambda s: (-(quotas[s] - take[s]), rng.random()))
    for s in order[:rest]:
        take[s] += 1
    out: list[Any] = []
    for s in sorted(strata, key=str):
        out.extend(rng.sample(strata[s], take[s]))
    return out


def mask_record(rec: ScoreRecord, masker: PiiMasker) -> dict[str, Any]:
    data = rec.model_dump(mode="json")
    data.pop("reviewed_labels", None)  # the store's reviews are the reviewed labels
    for ev in data.get("evidence", []):
        ev["text"] = masker.mask(ev["text"])
    return data


# The widths of the store's columns (labeling/models.py): longer values are reported
# per line instead of failing the database write for the whole import.
_MAX_ID, _MAX_NAME = 200, 100


def _stored_turn(t: Turn) -> dict[str, Any]:
    out = {"speaker": t.speaker, "text": t.text, "ts": t.ts.isoformat() if t.ts else None}
    if t.end_ts is not None:  # calls only (docs/phone-calls.md)
        out["end_ts"] = t.end_ts.isoformat()
    return out


def _too_long(rec: ScoreRecord) -> str | None:
    if len(rec.id) > _MAX_ID:
        return f"conversation id longer than {_MAX_ID} characters ({len(rec.id)})"
    for what, value in (("agent_id", rec.agent_id), ("model name", rec.model.name),
                        ("model version", rec.model.version)):
        if len(value) > _MAX_NAME:
            return f"{what} longer than {_MAX_NAME} characters ({len(value)})"
    return None


@dataclass
class _Import:
    """One import in progress: the store, what it reads against, and what it found."""

    s: Session
    conversations: Mapping[str, Conversation]  # by pseudonymised id
    masker: PiiMasker
    teams: Mapping[str, str]  # by pseudonymised agent id
    default_team: str | None
    now: datetime
    result: ImportResult = field(default_factory=ImportResult)
    fresh: list[tuple[str, float, tuple[str, ...]]] = field(default_factory=list)  # id, confidence, labels
    seen: set[str] = field(default_factory=set)

    def add(self, line_no: int, raw: ScoreRecord) -> None:
        """Store one score record (and its conversation when new), or note why not."""
        rec = raw.model_copy(update={"id": self.masker.mask_id(raw.id),
                                     "agent_id": self.masker.mask_id(raw.agent_id)})
        problem = self._unusable(rec) or self._store_conversation(rec)
        if problem:
            self.result.problems.append(f"line {line_no}: {problem}")
            return
        conf, labels = self._store_prediction(rec)
        task = self.s.scalar(select(ReviewTask).where(ReviewTask.conversation_id == rec.id))
        if task is None:
            self.fresh.append((rec.id, conf, labels))
        elif task.status == "open":
            task.priority = 1.0 - conf

    def _unusable(self, rec: ScoreRecord) -> str | None:
        if rec.id in self.seen:
            return f"duplicate score id {rec.id!r}"
        self.seen.add(rec.id)
        return _too_long(rec)  # the store's columns would refuse it and abort the whole import

    def _store_conversation(self, rec: ScoreRecord) -> str | None:
        stored = self.s.get(StoredConversation, rec.id)
        if stored is None:
            conv = self.conversations.get(rec.id)
            if conv is None:
                return f"no conversation {rec.id!r} in --conversations or the store"
            conv = mask_conversation(conv, self.masker)
            self.s.add(StoredConversation(
                id=conv.id, agent_id=conv.agent_id, channel=conv.channel, started_at=conv.started_at,
                team=self.teams.get(conv.agent_id, self.default_team),
                turns=[_stored_turn(t) for t in conv.turns],
                imported_at=self.now))
            self.result.conversations += 1
        elif stored.agent_id != rec.agent_id:
            return (f"score {rec.id!r} names agent {rec.agent_id!r}, "
                    f"the stored conversation agent {stored.agent_id!r}")
        return None

    def _store_prediction(self, rec: ScoreRecord) -> tuple[float, tuple[str, ...]]:
        """Add the record's prediction, or replace that of the same model version."""
        conf = confidence(rec.probs)
        pred = self.s.scalar(select(Prediction).where(Prediction.conversation_id == rec.id,
                                                      Prediction.model_name == rec.model.name,
                                                      Prediction.model_version == rec.model.version))
        values: dict[str, Any] = {"labels": rec.labels.model_dump(), "probs": rec.probs,
                                  "record": mask_record(rec, self.masker), "confidence": conf}
        if pred is None:
            self.s.add(Prediction(conversation_id=rec.id, model_name=rec.model.name,
                                  model_version=rec.model.version, created_at=self.now, **values))
            self.result.predictions += 1
        else:
            for k, v in values.items():
                setattr(pred, k, v)
            self.result.updated_predictions += 1
        self.s.flush()
        return conf, tuple(values["labels"].values())


def import_scores(s: Session, records: Iterable[tuple[int, ScoreRecord]], conversations: Mapping[str, Conversation],
                  *, masker: PiiMasker, actor: str, shares: tuple[float, float, float],
                  teams: Mapping[str, str] | None = None, default_team: str | None = None,
                  seed: int | None = None, now: datetime | None = None) -> ImportResult:
    """``shares`` = (uncertain, sample, double). ``teams`` maps agent_id → team."""
    now = now or utcnow()
    uncertain_share, sample_share, double_share = shares
    rng = random.Random(seed)
    # Ids are stored with their PII pseudonymised, like the texts; a scorer's output
    # already carries them so, and the raw conversations file is matched by the same rule.
    run = _Import(s, conversations={masker.mask_id(cid): conv for cid, conv in conversations.items()},
                  masker=masker, teams={masker.mask_id(agent): team for agent, team in (teams or {}).items()},
                  default_team=default_team, now=now)
    for line_no, raw in records:
        run.add(line_no, raw)
    result = run.result
    _make_tasks(s, run.fresh, uncertain_share, sample_share, double_share, rng, now, result)
    audit.record(s, actor, "import.scores", "import", now.isoformat(),
                 after={"conversations": result.conversations, "predictions": result.predictions,
                        "replaced": result.updated_predictions, "tasks": result.tasks, "double": result.double,
                        "skipped": len(result.problems)}, at=now)
    return result


def _make_tasks(s: Session, fresh: list[tuple[str, float, tuple[str, ...]]], uncertain_share: float,
                sample_share: float, double_share: float, rng: random.Random, now: datetime,
                result: ImportResult) -> None:
    n = len(fresh)
    ranked = sorted(fresh, key=lambda f: (f[1], f[0]))  # least confident first
    n_unc = math.ceil(n * uncertain_share) if uncertain_share > 0 else 0
    uncertain, rest = ranked[:n_unc], ranked[n_unc:]
    k = max(1, round(n * sample_share)) if sample_share > 0 and rest else 0
    sample = stratified_sample(rest, lambda f: f[2], k, rng)
    chosen = [(f, "uncertain") for f in uncertain] + [(f, "sample") for f in sample]
    n_double = round(len(chosen) * double_share)
    double_ids = {f[0] for f, _ in rng.sample(chosen, n_double)} if n_double else set()
    for f, reason in chosen:
        s.add(ReviewTask(conversation_id=f[0], reason=reason, priority=1.0 - f[1], double=f[0] in double_ids,
                         status="open", version=1, created_at=now))
        result.tasks[reason] += 1
    result.double = len(double_ids)
    s.flush()
