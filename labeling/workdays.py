"""Working-day arithmetic for dispute deadlines.

A working day is Monday–Friday, minus the configured holidays, plus the
configured make-up working days (调休). "Within N working days" of an event
means: by the end (23:59:59, local time) of the N-th working day after the day
of the event; the day of the event itself does not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Shanghai"  # KEFUQA_REVIEW_TIMEZONE's default


@dataclass(frozen=True)
class WorkCalendar:
    tz: str = DEFAULT_TZ
    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(cls, tz: str, holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> WorkCalendar:
        return cls(tz, frozenset(holidays), frozenset(extra_workdays))

    def is_workday(self, d: date) -> bool:
        if d in self.extra_workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def add_workdays(self, d: date, n: int) -> date:
        """The n-th working day after ``d`` (n ≥ 1)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        while n:
            d += timedelta(days=1)
            if self.is_workday(d):
                n -= 1
        return d

    def local_date(self, moment: datetime) -> date:
        return _aware(moment).astimezone(ZoneInfo(self.tz)).date()

    def deadline(self, start: datetime, n: int) -> datetime:
        """End of the n-th working day after ``start``'s local day, as an aware UTC datetime."""
        day = self.add_workdays(self.local_date(start), n)
        end = datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(self.tz))
        return end.astimezone(UTC)

    def workdays_between(self, start: datetime, end: datetime) -> int:
        """Working days after ``start``'s local day up to and including ``end``'s."""
        a, b = self.local_date(start), self.local_date(end)
        count = 0
        while a < b:
            a += timedelta(days=1)
            count += self.is_workday(a)
        return count


def local_iso(moment: datetime | None, tz: str) -> str | None:
    """``moment`` as ISO 8601 with the offset of ``tz``: the same instant, read in the review zone."""
    return _aware(moment).astimezone(ZoneInfo(tz)).isoformat() if moment else None


def local_text(moment: datetime, tz: str) -> str:
    """A deadline as people read it, with its zone named: ``2026-03-06 23:59 Asia/Shanghai``."""
    return f"{_aware(moment).astimezone(ZoneInfo(tz)).strftime('%Y-%m-%d %H:%M')} {tz}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
