"""The JSON endpoints, served by a real uvicorn server on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from gradingsim import TRUE_EFFECTS, simulate, simulate_feedback, write_feedback, write_files

from kefuqa.grading.api import GradingSource, make_router
from kefuqa.grading.errors import InputError
from kefuqa.grading.impact import analyse_event
from kefuqa.grading.serialize import to_jsonable


def _serve(app: FastAPI) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> GradingSource:
    sim = simulate(21, effects=TRUE_EFFECTS, n_treated=6, n_control=6, per_window=70)
    folder = tmp_path_factory.mktemp("api")
    paths = write_files(sim, folder)
    paths.update(write_feedback(simulate_feedback(21, sim.events[0].agents, reaction=1.5, gain=15.0), folder))
    return GradingSource(
        scores=paths["scores"],
        roster=paths["roster"],
        events=paths["events"],
        outcomes=paths["outcomes"],
        survey=paths["survey"],
        exam=paths["exam"],
    )


@pytest.fixture(scope="module")
def base_url(source) -> Iterator[str]:
    app = FastAPI()
    app.include_router(make_router(source))

    def broken():
        raise InputError("scores.jsonl", "not valid JSON", line=7)

    app.include_router(make_router(broken), prefix="/broken")
    yield from _serve(app)


def test_agent_grades_by_month(base_url):
    r = httpx.get(f"{base_url}/v1/agents/a-001/grades", timeout=60)
    assert r.status_code == 200
    body = r.json()
    assert body["agent_id"] == "a-001" and body["team"] == "team-B"
    assert body["period_kind"] == "month" and body["min_conversations"] == 30
    periods = body["periods"]
    assert [p["period"] for p in periods] == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    graded = [p for p in periods if p["graded"]]
    assert graded, "the agent has enough conversations in some month"
    polite = next(v for v in graded[0]["indicators"] if v["key"] == "polite_rate")
    assert polite["ci_low"] <= polite["value"] <= polite["ci_high"]
    assert graded[0]["rank_in_team"] >= 1 and graded[0]["grade"] in body["thresholds"] | {
        "不合格": 0
    }
    assert body["team_periods"] and all(t["team"] == "team-B" for t in body["team_periods"])


def test_agent_grades_by_quarter(base_url):
    body = httpx.get(
        f"{base_url}/v1/agents/a-001/grades", params={"period": "quarter"}, timeout=60
    ).json()
    assert [p["period"] for p in body["periods"]] == ["2026-Q1", "2026-Q2"]


def test_bad_period_is_422(base_url):
    assert (
        httpx.get(
            f"{base_url}/v1/agents/a-001/grades", params={"period": "week"}, timeout=60
        ).status_code
        == 422
    )


def test_unknown_agent_is_404(base_url):
    r = httpx.get(f"{base_url}/v1/agents/nobody/grades", timeout=60)
    assert r.status_code == 404 and "unknown agent 'nobody'" in r.json()["detail"]


def test_training_impact(base_url, source):
    r = httpx.get(f"{base_url}/v1/training/ev-1/impact", params={"before_days": 45}, timeout=60)
    assert r.status_code == 200
    body = r.json()
    assert body["event_id"] == "ev-1" and body["settings"]["before_days"] == 45
    assert body["windows"]["before_start"] == "2026-01-23"
    by_key = {e["indicator"]: e for e in body["indicators"]}
    assert by_key["polite_rate"]["did"]["n_control"] == 6
    assert by_key["polite_rate"]["estimate"] > 0 and by_key["csat"]["level"] == 4
    assert body["agents"] and body["summary"]
    assert body["reaction"]["verdict"] == "positive" and [t["test"] for t in body["learning"]] == ["笔试", "角色扮演"]
    assert [x["name"] for x in body["evaluation"]["levels"]] == ["反应", "学习", "行为", "结果"]
    # the endpoint serves exactly what the engine computes in-process
    data, rubric = source.load()
    expected = analyse_event(data, rubric, "ev-1", before_days=45, feedback=source.feedback(data, rubric))
    assert body == to_jsonable(expected)


def test_the_language_is_a_query_parameter(base_url):
    en = httpx.get(f"{base_url}/v1/training/ev-1/impact", params={"lang": "en"}, timeout=60).json()
    assert en["lang"] == "en" and en["evaluation"]["levels"][0]["name"] == "reaction"
    grades = httpx.get(f"{base_url}/v1/agents/a-001/grades", params={"lang": "en"}, timeout=60).json()
    graded = [p for p in grades["periods"] if p["graded"]]
    assert graded[0]["reason"].startswith("score ") and grades["levels"][0] == "优秀"
    zh = httpx.get(f"{base_url}/v1/agents/a-001/grades", timeout=60).json()
    assert next(p for p in zh["periods"] if p["graded"])["reason"].startswith("综合 ")
    assert httpx.get(f"{base_url}/v1/training/ev-1/impact", params={"lang": "fr"}, timeout=60).status_code == 422


def test_unknown_event_is_404(base_url):
    r = httpx.get(f"{base_url}/v1/training/nope/impact", timeout=60)
    assert r.status_code == 404 and "unknown training event 'nope'" in r.json()["detail"]


def test_broken_data_source_is_500_with_the_reason(base_url):
    r = httpx.get(f"{base_url}/broken/v1/agents/a-001/grades", timeout=60)
    assert r.status_code == 500 and "scores.jsonl, line 7" in r.json()["detail"]
