"""JSON endpoints for the service: an agent's grades and a training event's impact.

The service mounts ``make_router(loader)``; the data source is injected, so
the router holds no paths or caches of its own. A ``GradingSource`` (paths,
typically filled from the service settings) is the usual loader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from .channels import only_channel
from .course_inputs import CourseFeedback, load_exams, load_surveys
from .dataset import Dataset, load_dataset
from .errors import InputError
from .grades import grade_all
from .impact import analyse_event
from .periods import PeriodKind
from .rubric import Rubric, load_rubric
from .serialize import to_jsonable
from .texts import DEFAULT_LANG, Lang

Loader = Callable[[], tuple[Dataset, Rubric]]


@dataclass(frozen=True)
class GradingSource:
    """Where the grading inputs live; read afresh on every request."""

    scores: Path
    roster: Path
    events: Path | None = None
    outcomes: Path | None = None
    reviews: Path | None = None
    rubric: Path | None = None
    survey: Path | None = None  # level 1 (reaction)
    exam: Path | None = None  # level 2 (learning)

    def load(self, lang: Lang = DEFAULT_LANG) -> tuple[Dataset, Rubric]:
        rubric = load_rubric(self.rubric)
        data = load_dataset(
            self.scores,
            self.roster,
            rubric,
            reviews=self.reviews,
            events=self.events,
            outcomes=self.outcomes,
            lang=lang,
        )
        return data, rubric

    def feedback(self, data: Dataset, rubric: Rubric) -> CourseFeedback:
        events = set(data.events)
        return CourseFeedback(
            load_surveys(self.survey, rubric.reaction, events) if self.survey else None,
            load_exams(self.exam, rubric.learning, events) if self.exam else None,
        )


def _load(loader: Loader) -> tuple[Dataset, Rubric]:
    try:
        return loader()
    except InputError as exc:
        # The caller did nothing wrong: the server's data files are bad.
        raise HTTPException(status_code=500, detail=f"grading data cannot be read: {exc}") from None


def _feedback(source: GradingSource | None, data: Dataset, rubric: Rubric) -> CourseFeedback:
    if source is None:
        return CourseFeedback()
    try:
        return source.feedback(data, rubric)
    except InputError as exc:
        raise HTTPException(status_code=500, detail=f"grading data cannot be read: {exc}") from None


def _agent_body(data: Dataset, rubric: Rubric, agent_id: str, period: PeriodKind, lang: Lang) -> dict[str, Any]:
    report = grade_all(data, rubric, period, intervals_for=[agent_id], lang=lang)
    info = data.agents[agent_id]
    body: dict[str, Any] = to_jsonable(
        {
            "agent_id": agent_id,
            "team": info.team,
            "hire_date": info.hire_date,
            "period_kind": period,
            "method": report.method,
            "levels": report.levels,
            "thresholds": report.thresholds,
            "min_conversations": report.min_conversations,
            "periods": [r for r in report.agents if r.agent_id == agent_id],
            "team_periods": [
                {k: v for k, v in to_jsonable(t).items() if k != "indicators"}
                for t in report.teams
                if t.team == info.team
            ],
            "notes": report.notes,
        }
    )
    return body


def _of_channel(data: Dataset, rubric: Rubric, channel: str | None) -> Dataset:
    """The conversations of ``channel``; all of them when none is named, which a rubric that
    grades each channel apart (``grade_channels: per_channel``) refuses."""
    if channel is not None:
        return only_channel(data, channel)
    if rubric.grade_channels == "per_channel":
        raise HTTPException(status_code=422, detail="the rubric grades each channel apart "
                            "(grade_channels: per_channel): give channel=chat or channel=voice")
    return data


def make_router(loader: GradingSource | Loader) -> APIRouter:
    source = loader if isinstance(loader, GradingSource) else None

    def load_in(lang: Lang) -> tuple[Dataset, Rubric]:
        """A GradingSource writes its data notes in ``lang``; another loader in its own."""
        if source is not None:
            return _load(partial(source.load, lang))
        assert not isinstance(loader, GradingSource)
        return _load(loader)

    router = APIRouter(tags=["grading"])

    @router.get("/v1/agents/{agent_id}/grades")
    def agent_grades(agent_id: str, period: PeriodKind = "month", lang: Lang = DEFAULT_LANG,
                     channel: Literal["chat", "voice"] | None = None) -> dict[str, Any]:
        """Every period's indicators (with intervals), score, grade with its reason, rank in
        team, change and the repeated-low (末位) flag; ``lang`` sets the reasons' language;
        ``channel`` grades that channel's conversations only."""
        data, rubric = load_in(lang)
        if agent_id not in data.agents:
            raise HTTPException(
                status_code=404,
                detail=f"unknown agent {agent_id!r}: not on the roster and no scores",
            )
        return _agent_body(_of_channel(data, rubric, channel), rubric, agent_id, period, lang)

    @router.get("/v1/training/{event_id}/impact")
    def training_impact(
        event_id: str,
        before_days: int | None = Query(None, ge=1, le=3650),
        after_days: int | None = Query(None, ge=1, le=3650),
        per_agent: bool = True,
        lang: Lang = DEFAULT_LANG,
    ) -> dict[str, Any]:
        """The four-level evaluation of one training event (levels 1 and 2 when the source
        has survey and exam files), re-training candidates and the report's sections."""
        data, rubric = load_in(lang)
        if event_id not in data.events:
            raise HTTPException(status_code=404, detail=f"unknown training event {event_id!r}")
        feedback = _feedback(source, data, rubric)
        ev = analyse_event(
            data,
            rubric,
            event_id,
            before_days=before_days,
            after_days=after_days,
            per_agent=per_agent,
            feedback=feedback,
            lang=lang,
        )
        out: dict[str, Any] = to_jsonable(ev)
        return out

    return router
