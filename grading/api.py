"""JSON endpoints for the service: an agent's grades and a training event's impact.

The service mounts ``make_router(loader)``; the data source is injected, so
the router holds no paths or caches of its own. A ``GradingSource`` (paths,
typically filled from the service settings) is the usual loader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from .dataset import Dataset, load_dataset
from .errors import InputError
from .grades import grade_all
from .impact import analyse_event
from .periods import PeriodKind
from .rubric import Rubric, load_rubric
from .serialize import to_jsonable

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

    def load(self) -> tuple[Dataset, Rubric]:
        rubric = load_rubric(self.rubric)
        data = load_dataset(
            self.scores,
            self.roster,
            rubric,
            reviews=self.reviews,
            events=self.events,
            outcomes=self.outcomes,
        )
        return data, rubric


def _load(loader: Loader) -> tuple[Dataset, Rubric]:
    try:
        return loader()
    except InputError as exc:
        # The caller did nothing wrong: the server's data files are bad.
        raise HTTPException(status_code=500, detail=f"grading data cannot be read: {exc}") from None


def make_router(loader: GradingSource | Loader) -> APIRouter:
    load: Loader = loader.load if isinstance(loader, GradingSource) else loader
    router = APIRouter(tags=["grading"])

    @router.get("/v1/agents/{agent_id}/grades")
    def agent_grades(agent_id: str, period: PeriodKind = "month") -> dict[str, Any]:
        """Every period's indicators (with intervals), score, grade, rank in team and change."""
        data, rubric = _load(load)
        if agent_id not in data.agents:
            raise HTTPException(
                status_code=404,
                detail=f"unknown agent {agent_id!r}: not on the roster and no scores",
            )
        report = grade_all(data, rubric, period, intervals_for=[agent_id])
        info = data.agents[agent_id]
        return to_jsonable(
            {
                "agent_id": agent_id,
                "team": info.team,
                "hire_date": info.hire_date,
                "period_kind": period,
                "method": report.method,
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

    @router.get("/v1/training/{event_id}/impact")
    def training_impact(
        event_id: str,
        before_days: int | None = Query(None, ge=1, le=3650),
        after_days: int | None = Query(None, ge=1, le=3650),
        per_agent: bool = True,
    ) -> dict[str, Any]:
        """Level 3 and 4 before/after analysis of one training event."""
        data, rubric = _load(load)
        if event_id not in data.events:
            raise HTTPException(status_code=404, detail=f"unknown training event {event_id!r}")
        ev = analyse_event(
            data,
            rubric,
            event_id,
            before_days=before_days,
            after_days=after_days,
            per_agent=per_agent,
        )
        out: dict[str, Any] = to_jsonable(ev)
        return out

    return router
