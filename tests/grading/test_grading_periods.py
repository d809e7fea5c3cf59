"""Calendar periods in Asia/Shanghai: conversion from UTC, month / quarter / year edges."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from kefuqa.contract import LABELS, ScoreRecord
from kefuqa.grading.dataset import build_dataset
from kefuqa.grading.grades import grade_all
from kefuqa.grading.inputs import RosterEntry
from kefuqa.grading.periods import Period, period_of, span, to_local
from kefuqa.grading.rubric import load_rubric

SH = ZoneInfo("Asia/Shanghai")


def _local(iso: str) -> datetime:
    return to_local(datetime.fromisoformat(iso), SH)


def test_last_half_hour_of_march_in_shanghai_is_q1():
    t = _local("2026-03-31T23:30:00+08:00")
    assert period_of(t, "month").label == "2026-03"
    assert period_of(t, "quarter").label == "2026-Q1"


def test_utc_evening_of_march_31_is_april_in_shanghai():
    t = _local("2026-03-31T16:30:00Z")
    assert (t.month, t.day, t.hour, t.minute) == (4, 1, 0, 30)
    assert period_of(t, "month").label == "2026-04"
    assert period_of(t, "quarter").label == "2026-Q2"


def test_year_edge_and_just_before_it():
    assert period_of(_local("2025-12-31T16:00:00Z"), "year").label == "2026"
    assert period_of(_local("2025-12-31T15:59:59Z"), "year").label == "2025"
    assert period_of(_local("2025-12-31T15:59:59Z"), "quarter").label == "2025-Q4"


def test_naive_time_is_taken_as_shanghai_local():
    t = to_local(datetime(2026, 3, 31, 23, 30), SH)
    assert t.utcoffset() is not None and t.utcoffset().total_seconds() == 8 * 3600
    assert period_of(t, "quarter").label == "2026-Q1"


@pytest.mark.parametrize(
    ("period", "start", "end", "prev"),
    [
        (Period("month", 2028, 2), date(2028, 2, 1), date(2028, 2, 29), "2028-01"),
        (Period("month", 2026, 1), date(2026, 1, 1), date(2026, 1, 31), "2025-12"),
        (Period("quarter", 2026, 1), date(2026, 1, 1), date(2026, 3, 31), "2025-Q4"),
        (Period("quarter", 2026, 4), date(2026, 10, 1), date(2026, 12, 31), "2026-Q3"),
        (Period("year", 2026, 1), date(2026, 1, 1), date(2026, 12, 31), "2025"),
    ],
)
def test_period_bounds_and_previous(period, start, end, prev):
    assert (period.start, period.end, period.previous().label) == (start, end, prev)
    assert period.next().previous() == period


def test_span_fills_gaps():
    labels = [p.label for p in span(Period("quarter", 2025, 3), Period("quarter", 2026, 2))]
    assert labels == ["2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2"]


def _record(cid: str, started_at: str) -> ScoreRecord:
    labels = {
        "politeness": "good",
        "emotional_control": "good",
        "resolution": "resolved",
        "sentiment": "positive",
    }
    return ScoreRecord.model_validate(
        {
            "id": cid,
            "agent_id": "a-1",
            "started_at": started_at,
            "model": {"name": "t", "version": "0"},
            "labels": labels,
            "probs": {n: {v: 1.0 / len(vs) for v in vs} for n, vs in LABELS.items()},
            "turns": [],
            "evidence": [],
            "metrics": {
                "agent_turns": 3,
                "first_response_s": 10.0,
                "avg_response_s": 20.0,
                "polite_phrase_rate": 1.0,
                "taboo_hits": 0,
            },
        }
    )


def test_grading_places_the_two_boundary_conversations_in_different_quarters():
    rubric = load_rubric()
    data = build_dataset(
        [_record("c1", "2026-03-31T23:30:00+08:00"), _record("c2", "2026-03-31T16:30:00Z")],
        [RosterEntry("a-1", "t", None)],
        tz=rubric.tz,
    )
    report = grade_all(data, rubric, "quarter")
    counts = {r.period: r.n_conversations for r in report.agents}
    assert counts == {"2026-Q1": 1, "2026-Q2": 1}
    months = {r.period: r.n_conversations for r in grade_all(data, rubric, "month").agents}
    assert months == {"2026-03": 1, "2026-04": 1}
