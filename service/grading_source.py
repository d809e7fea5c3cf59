"""Where the service's grading endpoints read from (KEFUQA_GRADING_* settings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException

from kefuqa.grading.api import GradingSource
from kefuqa.settings import Settings


def grading_loader(settings: Settings) -> Callable[[], Any]:
    g = settings.grading

    def load() -> Any:
        if g.scores is None or g.roster is None:
            raise HTTPException(status_code=503, detail="grading data not configured: set KEFUQA_GRADING_SCORES "
                                "and KEFUQA_GRADING_ROSTER (and optionally _EVENTS, _OUTCOMES, _REVIEWS, _RUBRIC)")
        return GradingSource(g.scores, g.roster, g.events, g.outcomes, g.reviews, g.rubric).load()

    return load
