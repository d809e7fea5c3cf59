"""Simulated agents, conversations and score records with a known training effect.

Each agent has its own base rates; each agent × window gets a small random
shock (agents drift over time, which is what makes clustered errors matter);
trained agents get ``effects`` after training; everyone gets ``trend`` after
the training date (a season), which a before/after comparison alone would
mistake for training and difference-in-differences should not.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from kefuqa.contract import LABELS, ScoreRecord
from kefuqa.grading.course_inputs import CourseFeedback, ExamScore, SurveyAnswer
from kefuqa.grading.inputs import Outcome, RosterEntry, TrainingEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENT_START = date(2026, 3, 9)
EVENT_END = date(2026, 3, 11)
# Effects injected in the "effect" simulation, in the indicator's own units.
TRUE_EFFECTS = {
    "polite_rate": 0.20,
    "emotional_control": 0.20,
    "first_response": -12.0,
    "csat": 0.4,
}
TREND = {"avg_response": 6.0}  # everyone slower after the event date: not a training effect
# Levels 1 and 2 in the "effect" simulation: the mean rating above the neutral 3 of a 1–5
# scale, and the exam gain in points.
TRUE_REACTION = 0.8
TRUE_GAIN = 8.0
QUESTIONS = ("课程内容", "讲师", "对工作的帮助")
TESTS = ("笔试", "角色扮演")


@dataclass
class SimData:
    records: list[ScoreRecord]
    roster: list[RosterEntry]
    events: list[TrainingEvent]
    outcomes: dict[str, Outcome]
    effects: dict[str, float] = field(default_factory=dict)


def _draw(rng: np.random.Generator, probs: dict[str, float], n: int) -> list[str]:
    """n draws from a categorical distribution (negative weights count as 0)."""
    names = list(probs)
    w = np.clip(np.array([probs[k] for k in names]), 0, None)
    idx = np.searchsorted(np.cumsum(w / w.sum()), rng.random(n), side="right")
    return [names[min(i, len(names) - 1)] for i in idx]


def _agent_base(rng: np.random.Generator, better: float = 0.0) -> dict[str, float]:
    return {
        "polite_good": rng.uniform(0.40, 0.60) + better,
        "polite_poor": rng.uniform(0.04, 0.10),
        "ec_good": rng.uniform(0.40, 0.60) + better,
        "ec_poor": rng.uniform(0.03, 0.08),
        "resolved": rng.uniform(0.50, 0.70) + better / 2,
        "escalated": rng.uniform(0.10, 0.20),
        "negative": rng.uniform(0.08, 0.20),
        "positive": rng.uniform(0.30, 0.45),
        "first": rng.uniform(20, 50),
        "avg": rng.uniform(30, 70),
        "csat5": rng.uniform(0.35, 0.50),
        "csat3": rng.uniform(0.25, 0.35),
        "complaint": 0.03,
        "repeat": rng.uniform(0.05, 0.15),
    }


def _window_params(
    base: dict[str, float],
    rng: np.random.Generator,
    *,
    after: bool,
    trained: bool,
    effects: dict[str, float],
    trend: dict[str, float],
) -> dict[str, float]:
    p = dict(base)
    for k in ("polite_good", "ec_good", "resolved", "negative", "csat5"):
        p[k] += rng.normal(0, 0.02)  # the agent's drift from window to window
    p["first"] += rng.normal(0, 2.0)
    p["avg"] += rng.normal(0, 2.0)
    shifts = {
        **(trend if after else {}),
        **(
            {k: effects.get(k, 0) + (trend.get(k, 0) if after else 0) for k in effects}
            if after and trained
            else {}
        ),
    }
    p["polite_good"] += shifts.get("polite_rate", 0)
    p["polite_poor"] += shifts.get("taboo_rate", 0)
    p["ec_good"] += shifts.get("emotional_control", 0)
    p["resolved"] += shifts.get("resolution_rate", 0)
    p["escalated"] += shifts.get("escalation_rate", 0)
    p["negative"] += shifts.get("end_negative_rate", 0)
    p["first"] += shifts.get("first_response", 0)
    p["avg"] += shifts.get("avg_response", 0)
    # csat is 3/4/5: moving d/2 of mass from 3 to 5 raises the mean by exactly d
    p["csat5"] += shifts.get("csat", 0) / 2
    p["csat3"] -= shifts.get("csat", 0) / 2
    p["repeat"] += shifts.get("repeat_contact_rate", 0)
    return p


_PROBS = {
    name: {value: {v: (0.8 if v == value else 0.1) for v in values} for value in values}
    for name, values in LABELS.items()
}


def _visits(rng: np.random.Generator, count: int, length: int, p_repeat: float) -> list[tuple[int, int]]:
    """(minute in the window, first contact) of ``count`` first contacts and their returns.

    Every contact, a return included, is followed by another from the same customer with
    probability ``p_repeat``, 1 minute to 71 hours later (inside the rubric's 72 h). So each
    conversation is a repeat contact with probability exactly ``p_repeat``, and an agent's
    true repeat-contact rate in a window is ``p_repeat``. A return may fall after the window.
    """
    out = []
    for first, minute in enumerate(rng.integers(0, length * 24 * 60, count).tolist()):
        out.append((minute, first))
        while rng.random() < p_repeat:
            minute += int(rng.integers(1, 71 * 60))
            out.append((minute, first))
    return out


def _window(
    rng: np.random.Generator,
    agent: str,
    first_day: date,
    length: int,
    count: int,
    p: dict[str, float],
    next_id: int,
    customers: bool = False,
) -> tuple[list[ScoreRecord], dict[str, Outcome]]:
    """One agent's conversations in one window, drawn in bulk (the tests run hundreds).

    With ``customers`` every record names its customer, returns are conversations of their
    own (``_visits``) and the outcome rows leave ``repeat_contact`` blank: grading finds the
    repeat contacts in the records."""
    visits = _visits(rng, count, length, p["repeat"]) if customers else None
    count = len(visits) if visits is not None else count
    labels = {
        "politeness": _draw(
            rng,
            {
                "good": p["polite_good"],
                "poor": p["polite_poor"],
                "fair": 1 - p["polite_good"] - p["polite_poor"],
            },
            count,
        ),
        "emotional_control": _draw(
            rng,
            {"good": p["ec_good"], "poor": p["ec_poor"], "fair": 1 - p["ec_good"] - p["ec_poor"]},
            count,
        ),
        "resolution": _draw(
            rng,
            {
                "resolved": p["resolved"],
                "escalated": p["escalated"],
                "unresolved": 1 - p["resolved"] - p["escalated"],
            },
            count,
        ),
        "sentiment": _draw(
            rng,
            {
                "negative": p["negative"],
                "positive": p["positive"],
                "neutral": 1 - p["negative"] - p["positive"],
            },
            count,
        ),
    }
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=SHANGHAI)
    minutes = [m for m, _ in visits] if visits is not None else rng.integers(0, length * 24 * 60, count).tolist()
    utc = (rng.random(count) < 0.5).tolist()  # half in UTC, half in +08:00: same local day
    timed = (rng.random(count) > 0.05).tolist()  # no timestamps → null response times
    first = rng.gamma(2.0, max(p["first"], 1.0) / 2, count).tolist()
    avg = rng.gamma(2.0, max(p["avg"], 1.0) / 2, count).tolist()
    csat = _draw(rng, {"5": p["csat5"], "3": p["csat3"], "4": 1 - p["csat5"] - p["csat3"]}, count)
    surveyed = (rng.random(count) < 0.6).tolist()
    complaint = (rng.random(count) < p["complaint"]).tolist()
    repeat = (rng.random(count) < p["repeat"]).tolist()
    records, outcomes = [], {}
    for i in range(count):
        cid = f"c-{next_id + i:06d}"
        when = start + timedelta(minutes=minutes[i])
        stamp = when.astimezone(UTC) if utc[i] else when
        chosen = {name: labels[name][i] for name in LABELS}
        records.append(
            ScoreRecord.model_validate(
                {
                    "id": cid,
                    "agent_id": agent,
                    "started_at": stamp,
                    "model": {"name": "sim", "version": "0"},
                    "labels": chosen,
                    "probs": {name: _PROBS[name][v] for name, v in chosen.items()},
                    "turns": [],
                    "evidence": [],
                    "metrics": {
                        "agent_turns": 5,
                        "first_response_s": float(first[i]) if timed[i] else None,
                        "avg_response_s": float(avg[i]) if timed[i] else None,
                        "polite_phrase_rate": 0.5,
                        "taboo_hits": int(chosen["politeness"] == "poor"),
                    },
                    "customer_id": f"u-{agent}-{first_day}-{visits[i][1]}" if visits is not None else None,
                }
            )
        )
        outcomes[cid] = Outcome(
            float(csat[i]) if surveyed[i] else None,
            float(complaint[i]),
            None if customers else float(repeat[i]),
        )
    return records, outcomes


def simulate(
    seed: int,
    *,
    effects: dict[str, float] | None = None,
    trend: dict[str, float] | None = None,
    n_treated: int = 10,
    n_control: int = 10,
    per_window: int = 25,
    days: int = 60,
    better: float = 0.0,
    customers: bool = False,
) -> SimData:
    """``customers``: repeat contacts come from the records' ``customer_id`` (``_visits``),
    not from the outcome rows."""
    rng = np.random.default_rng(seed)
    effects, trend = effects or {}, trend if trend is not None else TREND
    agents = [f"a-{i:03d}" for i in range(n_treated + n_control)]
    treated = set(agents[:n_treated])
    roster = [
        RosterEntry(a, "team-A" if i % 2 == 0 else "team-B", date(2025, 1, 1))
        for i, a in enumerate(agents)
    ]
    records, outcomes = [], {}
    windows = {
        "before": (EVENT_START - timedelta(days=days), days, False),
        "training": (EVENT_START, (EVENT_END - EVENT_START).days + 1, True),
        "after": (EVENT_END + timedelta(days=1), days, True),
    }
    n = 0
    for a in agents:
        base = _agent_base(rng, better)  # better > 0: a stronger team (for demos)
        for side, (first_day, length, after) in windows.items():
            p = _window_params(
                base, rng, after=after, trained=a in treated, effects=effects, trend=trend
            )
            count = int(rng.poisson(per_window if side != "training" else 3))
            recs, outs = _window(rng, a, first_day, length, count, p, n + 1, customers)
            n += len(recs)
            records += recs
            outcomes.update(outs)
    events = [TrainingEvent("ev-1", "情绪管理", EVENT_START, EVENT_END, tuple(sorted(treated)))]
    return SimData(records, roster, events, outcomes, dict(effects))


def simulate_feedback(
    seed: int,
    trained: tuple[str, ...],
    *,
    reaction: float = 0.0,
    gain: float = 0.0,
    event_id: str = "ev-1",
) -> CourseFeedback:
    """Survey answers and exam scores of one event's trainees.

    Ratings: each trainee has a leaning (symmetric about 0) and answers each question
    with 3 + reaction + leaning + noise, rounded and clipped to 1–5; the rounding and
    clipping are symmetric about 3, so with ``reaction=0`` the true mean is exactly the
    neutral point. Exams: each trainee's ability sets the before score; after is
    before + ``gain`` + noise, per test.
    """
    rng = np.random.default_rng(seed)
    answers, scores = [], []
    for a in trained:
        leaning = rng.normal(0, 0.4)
        for q in QUESTIONS:
            rating = float(np.clip(np.rint(3 + reaction + leaning + rng.normal(0, 0.8)), 1, 5))
            answers.append(SurveyAnswer(event_id, a, q, rating))
        ability = rng.normal(68, 10)
        for test in TESTS:
            before = float(np.clip(ability + rng.normal(0, 5), 0, 100))
            after = float(np.clip(before + gain + rng.normal(0, 6), 0, 100))
            scores.append(ExamScore(event_id, a, test, round(before, 1), round(after, 1)))
    return CourseFeedback(tuple(answers), tuple(scores))


def write_feedback(feedback: CourseFeedback, folder: Path) -> dict[str, Path]:
    """The survey and exam CSVs the CLI reads."""
    paths = {"survey": folder / "survey.csv", "exam": folder / "exam.csv"}
    with paths["survey"].open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "agent_id", "question", "rating"])
        w.writerows([x.event_id, x.agent_id, x.question, f"{x.rating:g}"] for x in feedback.surveys or ())
    with paths["exam"].open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "agent_id", "test", "before", "after"])
        w.writerows(
            [x.event_id, x.agent_id, x.test, "" if x.before is None else x.before, "" if x.after is None else x.after]
            for x in feedback.exams or ()
        )
    return paths


def write_files(sim: SimData, folder: Path) -> dict[str, Path]:
    """The simulation as the files the CLI and the API read."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        k: folder / name
        for k, name in (
            ("scores", "scores.jsonl"),
            ("roster", "roster.csv"),
            ("events", "events.csv"),
            ("outcomes", "outcomes.csv"),
        )
    }
    with paths["scores"].open("w", encoding="utf-8") as fh:
        for r in sim.records:
            fh.write(r.model_dump_json(exclude_none=False) + "\n")
    with paths["roster"].open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["agent_id", "team", "hire_date"])
        w.writerows(
            [e.agent_id, e.team, e.hire_date.isoformat() if e.hire_date else ""] for e in sim.roster
        )
    with paths["events"].open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "agent_id", "course", "start_date", "end_date"])
        for ev in sim.events:
            w.writerows([ev.event_id, a, ev.course, ev.start, ev.end] for a in ev.agents)
    with paths["outcomes"].open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["conversation_id", "csat", "complaint", "repeat_contact"])
        for cid, o in sim.outcomes.items():
            w.writerow(
                [
                    cid,
                    "" if o.csat is None else o.csat,
                    "" if o.complaint is None else int(o.complaint),
                    "" if o.repeat_contact is None else int(o.repeat_contact),
                ]
            )
    return paths


def to_json_line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)


GOOD = {
    "politeness": "good",
    "emotional_control": "good",
    "resolution": "resolved",
    "sentiment": "positive",
}


def record(
    cid: str,
    agent: str,
    started_at: str | None,
    labels: dict[str, str] | None = None,
    *,
    first: float | None = 10.0,
    avg: float | None = 20.0,
    reviewed: dict[str, str] | None = None,
) -> ScoreRecord:
    """One hand-made score record for the small tests."""
    return ScoreRecord.model_validate(
        {
            "id": cid,
            "agent_id": agent,
            "started_at": started_at,
            "model": {"name": "t", "version": "0"},
            "labels": labels or GOOD,
            "probs": {n: {v: 1.0 / len(vs) for v in vs} for n, vs in LABELS.items()},
            "turns": [],
            "evidence": [],
            "reviewed_labels": reviewed,
            "metrics": {
                "agent_turns": 3,
                "first_response_s": first,
                "avg_response_s": avg,
                "polite_phrase_rate": 1.0,
                "taboo_hits": 0,
            },
        }
    )
