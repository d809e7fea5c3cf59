"""Repeat contact rate (客户重复咨询率) from the score records' customer_id: per agent of the
first contact, per period, with the window from the rubric and the outcome CSV on top."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from gradingsim import record

from kefuqa.grading.dataset import build_dataset, load_dataset
from kefuqa.grading.inputs import Outcome
from kefuqa.grading.kpis import measure
from kefuqa.grading.periods import Period, period_of
from kefuqa.grading.rubric import load_rubric

RUBRIC = load_rubric()
WINDOW = timedelta(hours=RUBRIC.repeat_contact_window_hours)

# (id, agent, customer, start): worked out by hand below.
ROWS = [
    ("x1", "a", "cx", "2026-03-01T10:00:00+08:00"),  # x2 23 h later → 1
    ("x2", "b", "cx", "2026-03-02T09:00:00+08:00"),  # x3 96 h later → 0
    ("x3", "a", "cx", "2026-03-06T09:00:00+08:00"),  # no later contact, long before the end → 0
    ("v1", "a", "cv", "2026-03-10T10:00:00+08:00"),  # v2 exactly 72 h later → 1
    ("v2", "b", "cv", "2026-03-13T10:00:00+08:00"),  # → 0
    ("n1", "a", None, "2026-03-15T10:00:00+08:00"),  # no customer: no value
    ("p1", "a", "cp", "2026-03-27T20:00:00+08:00"),  # p2 61 h later → 1
    ("y1", "a", "cy", "2026-03-31T08:00:00+08:00"),  # y2 1 h later, but its window runs past the end → None
    ("y2", "b", "cy", "2026-03-31T09:00:00+08:00"),  # window runs past the archive's end → None
    ("p2", "b", "cp", "2026-03-30T09:00:00+08:00"),  # window runs past the archive's end → None
    ("z1", "b", "cz", "2026-04-01T09:00:00+08:00"),  # the archive's last start → None
]


def _records(rows=ROWS):
    out = []
    for cid, agent, customer, start in rows:
        rec = record(cid, agent, start)
        out.append(rec if customer is None else rec.model_copy(update={"customer_id": customer}))
    return out


def _repeat(data, agent: str, period: Period | None = None) -> tuple[int, float | None]:
    obs = [o for o in data.observations if o.agent_id == agent
           and (period is None or period_of(o.local_time, period.kind) == period)]
    value = next(v for v in measure(RUBRIC, obs, None) if v.key == "repeat_contact_rate")
    return value.n, value.value


def test_repeat_contacts_by_hand_per_agent_of_the_first_contact_and_per_period():
    data = build_dataset(_records(), [], tz=RUBRIC.tz, repeat_window=WINDOW)
    flags = {o.id: (o.outcome.repeat_contact if o.outcome else None) for o in data.observations}
    assert flags == {"x1": 1.0, "x2": 0.0, "x3": 0.0, "v1": 1.0, "v2": 0.0, "n1": None,
                     "p1": 1.0, "y1": None, "y2": None, "p2": None, "z1": None}
    march = Period("month", 2026, 3)
    assert _repeat(data, "a", march) == (4, pytest.approx(3 / 4))  # x1 v1 p1 of x1 x3 v1 p1; y1 too recent
    assert _repeat(data, "b", march) == (2, 0.0)  # x2 v2; y2 and p2 too recent to tell
    assert _repeat(data, "b", Period("month", 2026, 4)) == (0, None)
    assert data.has_outcome("repeat_contact") and not data.has_outcome("csat")
    assert any("其中 4 通开始于存档最后一通对话前不到 72 小时" in n for n in data.notes)
    english = build_dataset(_records(), [], tz=RUBRIC.tz, repeat_window=WINDOW, lang="en")
    assert any("4 started less than 72 h before the archive's last conversation" in n for n in english.notes)


def test_without_customer_ids_or_a_window_nothing_is_made_up():
    bare = build_dataset(_records(), [], tz=RUBRIC.tz)
    assert all(o.outcome is None for o in bare.observations) and not bare.has_outcome("repeat_contact")
    anonymous = [record(cid, agent, start) for cid, agent, _, start in ROWS]
    data = build_dataset(anonymous, [], tz=RUBRIC.tz, repeat_window=WINDOW)
    assert _repeat(data, "a") == (0, None) and not data.has_outcome("repeat_contact")


def test_the_outcome_csv_overrides_where_it_has_a_value():
    outcomes = {"x3": Outcome(None, None, 1.0),  # the CSV says x3 was followed up elsewhere
                "x1": Outcome(4.0, 1.0, None)}  # blank repeat_contact: the archive's value stands
    data = build_dataset(_records(), [], tz=RUBRIC.tz, outcomes=outcomes, repeat_window=WINDOW)
    by_id = {o.id: o.outcome for o in data.observations}
    assert by_id["x3"] == Outcome(None, None, 1.0)
    assert by_id["x1"] == Outcome(4.0, 1.0, 1.0)
    assert _repeat(data, "a", Period("month", 2026, 3)) == (4, pytest.approx(4 / 4))


def test_the_window_comes_from_the_rubric_file(tmp_path):
    scores = tmp_path / "scores.jsonl"
    scores.write_text("".join(r.model_dump_json() + "\n" for r in _records()), encoding="utf-8")
    roster = tmp_path / "roster.csv"
    roster.write_text("agent_id,team\na,t1\nb,t1\n", encoding="utf-8")
    assert json.loads(scores.read_text().splitlines()[0])["customer_id"] == "cx"
    default = load_dataset(scores, roster, RUBRIC)
    assert _repeat(default, "a") == (4, pytest.approx(3 / 4))
    day = dataclasses.replace(RUBRIC, repeat_contact_window_hours=24)
    short = load_dataset(scores, roster, day)
    # x1 → x2 (23 h) and y1 → y2 (1 h) still are; v1 → v2 (72 h) and p1 → p2 (61 h) no longer;
    # y2 is exactly 24 h before the archive's last start, so its window is seen whole (0).
    assert _repeat(short, "a") == (5, pytest.approx(2 / 5))
    assert _repeat(short, "b") == (4, 0.0)  # x2 v2 y2 p2; z1 too recent


def test_the_window_must_be_positive():
    from importlib import resources

    import yaml

    from kefuqa.grading.errors import InputError
    from kefuqa.grading.rubric import parse_rubric

    data = yaml.safe_load(resources.files("kefuqa.grading").joinpath("default_rubric.yaml").read_text("utf-8"))
    assert data["repeat_contact_window_hours"] == 72
    with pytest.raises(InputError, match="repeat_contact_window_hours must be > 0"):
        parse_rubric({**data, "repeat_contact_window_hours": 0})
