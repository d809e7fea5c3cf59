"""Assessment periods: calendar month, quarter and year in the shop's time zone.

A conversation belongs to the period of its local start time (Asia/Shanghai
by default), so 2026-03-31T16:30Z is April (and Q2) in Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

PeriodKind = Literal["month", "quarter", "year"]
PERIOD_KINDS: tuple[str, ...] = get_args(PeriodKind)
_MONTHS_PER = {"month": 1, "quarter": 3, "year": 12}


def to_local(ts: datetime, tz: ZoneInfo) -> datetime:
    """Aware times are converted; naive ones are taken as already local (documented)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        return ts.replace(tzinfo=tz)
    return ts.astimezone(tz)


@dataclass(frozen=True, order=True)
class Period:
    """One calendar period; ``index`` is the month (1–12), quarter (1–4) or 1 for a year."""

    kind: PeriodKind
    year: int
    index: int

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.year}-{self.index:02d}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.index}"
        return str(self.year)

    @property
    def first_month(self) -> int:
        return (self.index - 1) * _MONTHS_PER[self.kind] + 1

    @property
    def start(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """Last day, inclusive."""
        return self.next().start - timedelta(days=1)

    def _shift(self, step: int) -> Period:
        per_year = 12 // _MONTHS_PER[self.kind]
        n = self.year * per_year + (self.index - 1) + step
        return Period(self.kind, n // per_year, n % per_year + 1)

    def next(self) -> Period:
        return self._shift(1)

    def previous(self) -> Period:
        return self._shift(-1)

    def __str__(self) -> str:
        return self.label


def period_of(day: date | datetime, kind: PeriodKind) -> Period:
    """The period holding a local date (or a datetime already converted with ``to_local``)."""
    if kind == "month":
        return Period(kind, day.year, day.month)
    if kind == "quarter":
        return Period(kind, day.year, (day.month - 1) // 3 + 1)
    if kind == "year":
        return Period(kind, day.year, 1)
    raise ValueError(f"period must be one of {PERIOD_KINDS}, not {kind!r}")


def span(first: Period, last: Period) -> list[Period]:
    """Every period from ``first`` to ``last`` inclusive, so gaps show as empty periods."""
    out = [first]
    while out[-1] < last:
        out.append(out[-1].next())
    return out
