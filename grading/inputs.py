"""Reading the grading inputs: score records, reviews, roster, training events, outcomes.

pydantic validates every row at the file edge; any problem is an ``InputError``
naming the file, the line and the field. Nothing is dropped silently.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kefuqa.contract import LABELS, ScoreRecord

from .errors import InputError

M = TypeVar("M", bound=BaseModel)


class ReviewRow(BaseModel):
    """One line of a reviews file: a reviewer's labels for a conversation."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    labels: dict[str, str]

    @field_validator("labels")
    @classmethod
    def _known(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if name not in LABELS:
                raise ValueError(f"unknown label {name!r}; known: {list(LABELS)}")
            if value not in LABELS[name]:
                raise ValueError(f"{name} must be one of {list(LABELS[name])}, not {value!r}")
        return v


class RosterRow(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    agent_id: str = Field(min_length=1)
    team: str = Field(min_length=1)
    hire_date: date | None = None

    @field_validator("hire_date", mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        return None if v == "" else v


class EventRow(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    event_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    course: str = ""
    purpose: str = ""  # the training's purpose (目的), for the evaluation report
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> EventRow:
        if self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


_TRUE = {"1", "true", "yes", "y", "是"}
_FALSE = {"0", "false", "no", "n", "否"}


class OutcomeRow(BaseModel):
    """One conversation's outcomes; a blank cell means "not known", not zero."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    conversation_id: str = Field(min_length=1)
    csat: float | None = None
    complaint: bool | None = None
    repeat_contact: bool | None = None

    @field_validator("csat", mode="before")
    @classmethod
    def _blank_num(cls, v: object) -> object:
        return None if v == "" else v

    @field_validator("complaint", "repeat_contact", mode="before")
    @classmethod
    def _flag(cls, v: object) -> object:
        if v is None or v == "":
            return None
        text = str(v).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("must be 1/0, true/false, yes/no or 是/否")


@dataclass(frozen=True)
class RosterEntry:
    agent_id: str
    team: str
    hire_date: date | None


@dataclass(frozen=True)
class TrainingEvent:
    """One course session; its window runs from the earliest start to the latest end."""

    event_id: str
    course: str
    start: date
    end: date
    agents: tuple[str, ...]
    purpose: str = ""


@dataclass(frozen=True)
class Outcome:
    csat: float | None
    complaint: float | None
    repeat_contact: float | None


def _field(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(row)"


def _fail(path: Path, problems: list[tuple[int, str, str]]) -> None:
    if not problems:
        return
    line, fld, msg = problems[0]
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    raise InputError(str(path), msg + more, line=line, field=fld)


def _open(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8")
        return path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(str(path), f"cannot open: {exc.strerror}") from None


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with _open(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(str(path), f"not valid JSON: {exc.msg}", line=line_no) from None


def _csv(path: Path, model: type[M], required: tuple[str, ...]) -> list[tuple[int, M]]:
    rows: list[tuple[int, M]] = []
    problems: list[tuple[int, str, str]] = []
    with _open(path) as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(str(path), f"missing column(s) {missing}; header is {header}", line=1)
        reader.fieldnames = header
        for raw in reader:
            line_no = reader.line_num
            if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
                continue  # blank line
            try:
                rows.append((line_no, model.model_validate({k: v for k, v in raw.items() if k})))
            except ValidationError as exc:
                problems += [(line_no, _field(e), e["msg"]) for e in exc.errors()]
    _fail(path, problems)
    return rows


def load_scores(path: str | Path) -> list[ScoreRecord]:
    """Score records (scores.md) from JSONL or .jsonl.gz; duplicate ids are an error."""
    path = Path(path)
    records: list[ScoreRecord] = []
    seen: dict[str, int] = {}
    problems: list[tuple[int, str, str]] = []
    for line_no, obj in _jsonl(path):
        try:
            rec = ScoreRecord.model_validate(obj)
        except ValidationError as exc:
            problems += [(line_no, _field(e), e["msg"]) for e in exc.errors()[:3]]
            continue
        if rec.id in seen:
            problems.append(
                (line_no, "id", f"duplicate id {rec.id!r} (first on line {seen[rec.id]})")
            )
            continue
        seen[rec.id] = line_no
        records.append(rec)
    _fail(path, problems)
    return records


def load_reviews(path: str | Path) -> dict[str, dict[str, str]]:
    """Reviewer labels by conversation id; a later line for the same id wins."""
    path = Path(path)
    out: dict[str, dict[str, str]] = {}
    problems: list[tuple[int, str, str]] = []
    for line_no, obj in _jsonl(path):
        try:
            row = ReviewRow.model_validate(obj)
        except ValidationError as exc:
            problems += [(line_no, _field(e), e["msg"]) for e in exc.errors()]
            continue
        out.setdefault(row.id, {}).update(row.labels)
    _fail(path, problems)
    return out


def load_roster(path: str | Path) -> list[RosterEntry]:
    """Roster CSV: agent_id, team, hire_date (YYYY-MM-DD, may be blank)."""
    path = Path(path)
    entries: list[RosterEntry] = []
    seen: dict[str, int] = {}
    for line_no, row in _csv(path, RosterRow, ("agent_id", "team")):
        if row.agent_id in seen:
            raise InputError(
                str(path),
                f"agent {row.agent_id!r} already on line {seen[row.agent_id]}",
                line=line_no,
                field="agent_id",
            )
        seen[row.agent_id] = line_no
        entries.append(RosterEntry(row.agent_id, row.team, row.hire_date))
    return entries


def load_events(path: str | Path) -> list[TrainingEvent]:
    """Training CSV, one row per trained agent: event_id, agent_id, course, start_date, end_date
    and optionally purpose (the first non-blank one of an event counts)."""
    path = Path(path)
    rows = _csv(path, EventRow, ("event_id", "agent_id", "start_date", "end_date"))
    by_event: dict[str, list[EventRow]] = {}
    for _, row in rows:
        by_event.setdefault(row.event_id, []).append(row)
    events = []
    for event_id, group in by_event.items():
        agents = tuple(dict.fromkeys(r.agent_id for r in group))
        course = next((r.course for r in group if r.course), "")
        purpose = next((r.purpose for r in group if r.purpose), "")
        start = min(r.start_date for r in group)
        end = max(r.end_date for r in group)
        events.append(TrainingEvent(event_id, course, start, end, agents, purpose))
    return events


def load_outcomes(path: str | Path) -> dict[str, Outcome]:
    """Outcome CSV keyed by conversation_id: csat, complaint, repeat_contact (blank = unknown)."""
    path = Path(path)
    out: dict[str, Outcome] = {}
    for line_no, row in _csv(path, OutcomeRow, ("conversation_id",)):
        if row.conversation_id in out:
            raise InputError(
                str(path),
                f"duplicate conversation_id {row.conversation_id!r}",
                line=line_no,
                field="conversation_id",
            )
        out[row.conversation_id] = Outcome(
            row.csat,
            None if row.complaint is None else float(row.complaint),
            None if row.repeat_contact is None else float(row.repeat_contact),
        )
    return out
