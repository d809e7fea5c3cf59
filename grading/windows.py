"""The before and after windows of a training evaluation (training days excluded)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .inputs import TrainingEvent


@dataclass(frozen=True)
class Windows:
    before_start: date
    before_end: date  # inclusive
    after_start: date
    after_end: date  # inclusive

    @classmethod
    def around(cls, event: TrainingEvent, before_days: int, after_days: int) -> Windows:
        return cls(
            event.start - timedelta(days=before_days),
            event.start - timedelta(days=1),
            event.end + timedelta(days=1),
            event.end + timedelta(days=after_days),
        )

    def side(self, day: date) -> str | None:
        if self.before_start <= day <= self.before_end:
            return "before"
        if self.after_start <= day <= self.after_end:
            return "after"
        return None
