"""Reading the Kirkpatrick level 1 and 2 inputs: after-course surveys and exam scores.

Both are CSV files validated row by row like the other grading inputs: a
problem stops the command with the file, the line and the column.

- survey (level 1, reaction): ``event_id, agent_id, question, rating``; one row
  per answer, ``question`` optional; ratings on the rubric's ``reaction`` scale.
- exam (level 2, learning): ``event_id, agent_id, test, before, after``; one row
  per agent and test (笔试, 角色扮演 …), ``test`` optional; a blank score is "not
  taken", not 0; scores from 0 to the rubric's ``learning.max_score``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import InputError
from .inputs import _csv
from .rubric import LearningSettings, ReactionSettings


class SurveyRow(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    event_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    question: str = ""
    rating: float


class ExamRow(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    event_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    test: str = ""
    before: float | None = None
    after: float | None = None

    @field_validator("before", "after", mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        return None if v == "" else v

    @model_validator(mode="after")
    def _some_score(self) -> ExamRow:
        if self.before is None and self.after is None:
            raise ValueError("give a before or an after score (or both)")
        return self


@dataclass(frozen=True)
class SurveyAnswer:
    event_id: str
    agent_id: str
    question: str
    rating: float


@dataclass(frozen=True)
class ExamScore:
    event_id: str
    agent_id: str
    test: str
    before: float | None
    after: float | None


@dataclass(frozen=True)
class CourseFeedback:
    """Level 1 and 2 data; ``None`` means the file was not given (not "no answers")."""

    surveys: tuple[SurveyAnswer, ...] | None = None
    exams: tuple[ExamScore, ...] | None = None

    def with_ids(self, ids: Callable[[str], str]) -> CourseFeedback:
        """Agent ids mapped (to the scorer's pseudonyms), as the other inputs are."""
        return CourseFeedback(
            None if self.surveys is None else tuple(replace(a, agent_id=ids(a.agent_id)) for a in self.surveys),
            None if self.exams is None else tuple(replace(e, agent_id=ids(e.agent_id)) for e in self.exams),
        )


def _check_event(path: Path, line: int, event_id: str, events: Collection[str] | None) -> None:
    if events is not None and event_id not in events:
        raise InputError(
            str(path),
            f"unknown training event {event_id!r}; the events file has {sorted(events)[:10]}",
            line=line,
            field="event_id",
        )


def _check_range(path: Path, line: int, field: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        message = f"{value:g} is outside {low:g}–{high:g} (the rubric's scale)"
        raise InputError(str(path), message, line=line, field=field)


def load_surveys(
    path: str | Path, scale: ReactionSettings, events: Collection[str] | None = None
) -> tuple[SurveyAnswer, ...]:
    """Survey answers; a rating off the scale, an unknown event or a repeated answer is an error."""
    path = Path(path)
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for line, row in _csv(path, SurveyRow, ("event_id", "agent_id", "rating")):
        _check_event(path, line, row.event_id, events)
        _check_range(path, line, "rating", row.rating, scale.scale_min, scale.scale_max)
        key = (row.event_id, row.agent_id, row.question)
        if key in seen:
            message = f"a second answer to the same question (first on line {seen[key]})"
            raise InputError(str(path), message, line=line, field="question")
        seen[key] = line
        out.append(SurveyAnswer(row.event_id, row.agent_id, row.question, row.rating))
    return tuple(out)


def load_exams(
    path: str | Path, settings: LearningSettings, events: Collection[str] | None = None
) -> tuple[ExamScore, ...]:
    """Exam scores, one row per agent and test; blank = not taken."""
    path = Path(path)
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for line, row in _csv(path, ExamRow, ("event_id", "agent_id", "after")):
        _check_event(path, line, row.event_id, events)
        for name in ("before", "after"):
            _check_range(path, line, name, getattr(row, name), 0, settings.max_score)
        key = (row.event_id, row.agent_id, row.test)
        if key in seen:
            message = f"agent {row.agent_id!r} already has this test on line {seen[key]}"
            raise InputError(str(path), message, line=line, field="agent_id")
        seen[key] = line
        out.append(ExamScore(row.event_id, row.agent_id, row.test, row.before, row.after))
    return tuple(out)
