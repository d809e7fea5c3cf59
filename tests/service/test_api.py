"""The HTTP API on a real uvicorn server on loopback."""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from kefuqa.contract import ScoreRecord
from tests.conftest import conv

GOOD = conv("h-1", [
    {"speaker": "customer", "text": "我电话13812345678，东西坏了", "ts": "2026-03-01T10:00:00+08:00"},
    {"speaker": "agent", "text": "您好，非常抱歉，已为您安排补发", "ts": "2026-03-01T10:00:20+08:00"},
    {"speaker": "customer", "text": "好的谢谢", "ts": "2026-03-01T10:00:40+08:00"},
])


def test_probes_docs_and_model(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").status_code == 200
    assert httpx.get(server.url + "/docs").status_code == 200
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/v1/score" in spec["paths"] and "/v1/score/batch" in spec["paths"]
    # Every $ref resolves inside the document (the transcript's Turn and Labels included).
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert {"Turn", "Labels"} <= refs and refs <= set(spec["components"]["schemas"])
    with server.client() as c:
        info = c.get("/v1/model").json()
    assert info["name"] == "kefu-rules" and info["labels"]["resolution"] == ["resolved", "escalated", "unresolved"]


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_api_key_required(server, key):
    with server.client(key) as c:
        r = c.post("/v1/score", json=GOOD)
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    with server.client(None) as c:
        assert c.post("/v1/score", json=GOOD, headers={"X-API-Key": "kq_test_key_123"}).status_code == 200


def test_score_one_returns_a_contract_record_with_pii_masked(server):
    with server.client() as c:
        r = c.post("/v1/score", json=GOOD)
    assert r.status_code == 200
    record = ScoreRecord.model_validate(r.json())
    assert record.id == "h-1" and record.metrics.first_response_s == 20.0
    assert "13812345678" not in r.text and r.json()["alerts"] == []


@pytest.mark.parametrize(
    "body, status, reason",
    [
        (b"{not json", 422, "bad JSON"),
        (b"", 422, "bad JSON"),
        (json.dumps([1, 2]).encode(), 422, "not a JSON object"),
        (json.dumps({"id": "x", "agent_id": "a", "turns": "hello"}).encode(), 422, "turns"),
        (json.dumps({"id": "x", "agent_id": "a", "turns": [{"speaker": "bot", "text": "hi"}]}).encode(), 422,
         "unknown speaker 'bot'"),
        (json.dumps({"id": 5, "agent_id": "a", "turns": [{"speaker": "agent", "text": "hi"}]}).encode(), 422, "id"),
        (json.dumps(conv("x", [{"speaker": "agent", "text": "好"}] * 51)).encode(), 422, "too many turns: 51 > 50"),
        (json.dumps(conv("x", [{"speaker": "agent", "text": "好" * 501}])).encode(), 422, "too long"),
        (json.dumps(conv("x", [{"speaker": "agent", "text": "好" * 300}] * 20, pad="x" * 300_000)).encode(), 413,
         "body too large"),
        # Legal JSON that normalisation, tokenisers or UTF-8 writers cannot carry.
        (json.dumps(conv("x", [{"speaker": "agent", "text": "好\ud800"}])).encode(), 422, "lone surrogate U+D800"),
        (json.dumps(conv("x", [{"speaker": "agent", "text": "好\u0000"}])).encode(), 422, "control character U+0000"),
        (b"[" * 5000 + b"]" * 5000, 422, "nested too deeply"),
        (b'{"id": ' + b"9" * 5000 + b"}", 422, "Exceeds the limit (4300 digits)"),
    ],
)
def test_bad_input_is_4xx_with_reason_never_500(server, body, status, reason):
    with server.client() as c:
        r = c.post("/v1/score", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert reason in json.dumps(r.json(), ensure_ascii=False)


def test_batch_scores_in_order_and_reports_each_bad_item(server):
    items = [conv(f"b-{i}") for i in range(5)]
    with server.client() as c:
        ok = c.post("/v1/score/batch", json={"conversations": items})
        assert [x["id"] for x in ok.json()["results"]] == [f"b-{i}" for i in range(5)]
        bad = c.post("/v1/score/batch", json={"conversations": [items[0], {"id": "z"}, items[0]]})
        assert bad.status_code == 422
        assert [d["index"] for d in bad.json()["detail"]] == [1, 2]
        too_many = c.post("/v1/score/batch", json={"conversations": [conv(f"m-{i}") for i in range(9)]})
        assert too_many.status_code == 422 and "too many conversations: 9 > 8" in too_many.text
        assert c.post("/v1/score/batch", json={"items": []}).status_code == 422


def _hist(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[-1])


def test_concurrent_requests_are_batched_and_answered_correctly(server):
    before = httpx.get(server.url + "/metrics").text

    def call(i: int) -> str:
        with server.client() as c:
            return c.post("/v1/score", json=conv(f"k-{i}")).json()["id"]

    with ThreadPoolExecutor(32) as pool:
        ids = list(pool.map(call, range(64)))
    assert ids == [f"k-{i}" for i in range(64)]
    text = httpx.get(server.url + "/metrics").text
    assert 'kefuqa_requests_total{route="/v1/score",status="200"}' in text
    assert "kefuqa_batch_size_bucket" in text and 'kefuqa_model_info{name="kefu-rules"' in text
    calls = _hist(text, "kefuqa_batch_size_count") - _hist(before, "kefuqa_batch_size_count")
    scored = _hist(text, "kefuqa_batch_size_sum") - _hist(before, "kefuqa_batch_size_sum")
    assert scored == 64 and calls < 64  # every conversation scored once, fewer engine calls than requests


def test_live_conversation_alerts(server):
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC) - timedelta(minutes=10)
    ts = [(start + timedelta(seconds=s)).isoformat() for s in (0, 10, 20)]
    live = conv("live-1", [
        {"speaker": "customer", "text": "谢谢，很满意", "ts": ts[0]},
        {"speaker": "agent", "text": "爱买不买", "ts": ts[1]},
        {"speaker": "customer", "text": "什么态度，我要投诉！！！差评", "ts": ts[2]},
    ])
    with server.client() as c:
        alerts = c.post("/v1/score", json=live, params={"live": "true"}).json()["alerts"]
        finished = c.post("/v1/score", json=live).json()["alerts"]
    kinds = {a["type"] for a in alerts}
    # The last customer message has waited ~10 minutes by the server clock.
    assert {"taboo", "sentiment_drop", "long_wait", "complaint_threat"} <= kinds
    assert "long_wait" not in {a["type"] for a in finished}


def test_cors_closed_by_default(server):
    r = httpx.options(server.url + "/v1/score", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_logs_are_json_without_transcript_text(server, caplog):
    caplog.set_level(logging.INFO, logger="kefuqa.service")
    with server.client() as c:
        c.post("/v1/score", json=GOOD)
        c.post("/v1/score", content=b'{"id": "secret-13812345678", "turns": 3}')
    lines = [r.getMessage() for r in caplog.records if r.name == "kefuqa.service"]
    assert lines and all(json.loads(line)["event"] for line in lines)
    assert not any("13812345678" in line or "东西坏了" in line for line in lines)


def test_grading_endpoints_are_mounted_behind_the_key(server):
    assert httpx.get(server.url + "/v1/agents/a-1/grades").status_code == 401
    with server.client() as c:
        r = c.get("/v1/agents/a-1/grades")
    assert r.status_code == 503 and "KEFUQA_GRADING_SCORES" in r.json()["detail"]


class _FailsOnPoison:
    """The rules engine, except that a conversation whose id starts with ``poison``
    makes the whole engine call raise, as an engine bug would."""

    def __init__(self) -> None:
        from kefuqa.models.baseline import RulesEngine

        self.inner = RulesEngine()
        self.info = self.inner.info

    def score_batch(self, convs):
        if any(c.id.startswith("poison") for c in convs):
            raise RuntimeError("engine failure")
        return self.inner.score_batch(convs)


def test_a_failing_conversation_fails_its_own_request_only():
    from tests.service.conftest import Server, rules_settings, serve

    # A long batching window so that the poisoned request shares engine calls with good ones.
    for srv in serve(rules_settings(batch_max_wait_ms=50.0), engine_factory=_FailsOnPoison):

        def call(i: int, srv: Server = srv) -> tuple[str, int]:
            cid = f"poison-{i}" if i % 10 == 3 else f"g-{i}"
            with srv.client() as c:
                return cid, c.post("/v1/score", json=conv(cid)).status_code

        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(call, range(80)))
        assert {status for cid, status in results if cid.startswith("g-")} == {200}
        assert {status for cid, status in results if cid.startswith("poison")} == {500}


def test_metrics_label_requests_by_route_template_whatever_paths_are_asked_for(server):
    with server.client() as c:
        for i in range(25):
            assert c.get(f"/v1/no-such-thing-{i}").status_code == 404
        for i in range(5):
            c.get(f"/api/review/items/item-{i}")  # one template, whatever the id
    text = httpx.get(server.url + "/metrics").text
    assert "no-such-thing" not in text and "item-3" not in text
    assert 'kefuqa_requests_total{route="unmatched",status="404"}' in text
    assert 'route="/api/review/items/{conversation_id:path}"' in text


def _chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


def test_bodies_are_bounded_while_they_stream_on_every_route(server):
    limit = server.settings.service.max_body_bytes
    with server.client() as c:
        # Chunked (no Content-Length): refused once the limit is passed, not after reading it all.
        r = c.post("/v1/score", content=_chunks(5 * limit), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "body too large" in r.text
        # The review API (no key needed to reach it) has the same bound.
        r = c.post("/api/review/login", content=_chunks(5 * limit), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        # A login body is a name and a password: a few kilobytes at most, declared or streamed.
        big_login = json.dumps({"name": "rev", "password": "x" * 10_000})
        r = c.post("/api/review/login", content=big_login, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "4096" in r.text
        r = c.post("/api/review/login", content=_chunks(10_000, 1000), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        # A body within the limits still works.
        assert c.post("/v1/score", json=GOOD).status_code == 200
