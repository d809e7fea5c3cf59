"""Alerts: stable ids, ``new`` once per conversation, waits from the transcript's own clock,
complaint threats with evidence, and webhook delivery to a real receiver on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from kefuqa.contract import Conversation
from kefuqa.models.baseline import RulesEngine
from kefuqa.pipeline import customer_pseudonym, mask_conversation
from kefuqa.service.alert_memory import LocalAlertMemory, RedisAlertMemory
from kefuqa.service.alerts import AlertThresholds, ScoredConversation, alert_id, alerts
from kefuqa.service.app import create_app
from kefuqa.service.complaint_threats import complaint_threats
from kefuqa.text.pii import PiiMasker
from tests.conftest import conv
from tests.service.conftest import API_KEY, Server, rules_settings, serve

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TH = AlertThresholds()


def _alerts(turns: list[dict], *, live: bool = False, now: datetime = NOW, cid: str = "c-1") -> list[dict]:
    c = mask_conversation(Conversation.model_validate(conv(cid, turns)), PiiMasker())
    record = RulesEngine().score_batch([c])[0]
    return alerts(c, record, TH, live=live, now=now)


def _at(seconds: float, base: datetime = NOW) -> str:
    return (base + timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize("text, found", [
    ("我要去投诉你们", ["投诉"]),
    ("再不退款我就打12315", ["12315"]),
    ("什么态度，给你们差评，还要去黑猫曝光", ["差评", "黑猫", "曝光"]),
    ("不给我退款我就去消协", ["消协"]),
    ("我要投訴", ["投訴"]),  # traditional, found in its simplified form; the span shows the text as written
    ("打１２３１５", ["１２３１５"]),  # full width
    ("我不是要投诉，就是问问", []),
    ("放心，不会给差评的", []),
    ("我已经撤销投诉了", []),
    ("我没投诉过", []),
    ("你说“投诉也没用”？", []),  # quoting someone
    ("我用的是工商银行的卡", []),
    ("订单号123156789", []),  # 12315 inside a longer number
])
def test_complaint_threats_in_context(text, found):
    assert [text[a:b] for a, b in complaint_threats(text)] == found


def test_a_threat_alerts_whatever_the_sentiment_before_and_an_agent_quoting_it_does_not():
    out = _alerts([
        {"speaker": "customer", "text": "太慢了，气死了，垃圾"},
        {"speaker": "agent", "text": "亲，您说要投诉的话我们也理解"},
        {"speaker": "customer", "text": "差劲，我要去投诉你们"},
    ])
    threats = [a for a in out if a["type"] == "complaint_threat"]
    assert len(threats) == 1 and threats[0]["turn"] == 2
    assert threats[0]["evidence"] == [{"turn": 2, "start": 6, "end": 8, "text": "投诉"}]
    assert threats[0]["id"] == alert_id("c-1", "complaint_threat", 2)


def test_on_a_call_a_flagged_turn_alerts_as_its_likely_speaker():
    """The diariser gave the customer's threat to the agent; the speaker-role check flagged
    it. Alerts follow the flag as scoring does; without the flag an agent's line is no threat."""
    turns = [
        {"speaker": "agent", "text": "您好 这里是客服中心 请问有什么可以帮您"},
        {"speaker": "customer", "text": "我的宽带断了三天了"},
        {"speaker": "agent", "text": "你们再不修好我就打12315投诉你们"},
    ]
    c = mask_conversation(Conversation.model_validate(conv("call-1", turns, channel="voice")), PiiMasker())
    record = RulesEngine().score_batch([c])[0]
    assert not [a for a in alerts(c, record, TH, live=False, now=NOW) if a["type"] == "complaint_threat"]
    flagged = {**record, "role_flags": [{"turn": 2, "likely_speaker": "customer", "p": 0.97}]}
    threats = [a for a in alerts(c, flagged, TH, live=False, now=NOW) if a["type"] == "complaint_threat"]
    assert [a["turn"] for a in threats] == [2] and threats[0]["id"] == alert_id("call-1", "complaint_threat", 2)


def test_long_wait_comes_from_the_transcripts_own_clock():
    old = datetime(2019, 5, 1, 9, 0, tzinfo=UTC)
    turns = [
        {"speaker": "customer", "text": "在吗", "ts": _at(0, old)},
        {"speaker": "system", "text": "[自动回复]", "ts": _at(5, old)},
        {"speaker": "agent", "text": "您好，在的", "ts": _at(300, old)},  # 300 s after turn 0
        {"speaker": "customer", "text": "快递到哪了", "ts": _at(310, old)},
    ]
    waits = [a for a in _alerts(turns, live=True) if a["type"] == "long_wait"]
    # An old chat sent with live=true is a replay: no "waiting 240000000 s" from the server clock.
    assert [(a["turn"], a["wait_s"]) for a in waits] == [(0, 300.0)]
    assert "turn 0 to turn 2" in waits[0]["detail"]


def test_live_wait_needs_a_recent_last_timestamp():
    turns = [{"speaker": "customer", "text": "在吗", "ts": _at(-400)},
             {"speaker": "agent", "text": "您好", "ts": _at(-390)},
             {"speaker": "customer", "text": "快递到哪了", "ts": _at(-300)},
             {"speaker": "customer", "text": "人呢", "ts": _at(-30)}]
    waits = [a for a in _alerts(turns, live=True) if a["type"] == "long_wait"]
    assert [(a["turn"], a["wait_s"]) for a in waits] == [(2, 300.0)]  # waiting since the first unanswered turn
    assert not [a for a in _alerts(turns, live=False) if a["type"] == "long_wait"]
    stale = [a for a in _alerts(turns, live=True, now=NOW + timedelta(hours=2)) if a["type"] == "long_wait"]
    assert stale == []  # the last timestamp is 2 h old: not live
    naive = [{**t, "ts": t["ts"][:19]} for t in turns]
    assert not [a for a in _alerts(naive, live=True) if a["type"] == "long_wait"]


def test_alert_ids_are_stable_and_name_the_conversation_kind_and_turn():
    turns = [{"speaker": "customer", "text": "东西坏了"}, {"speaker": "agent", "text": "不知道，爱买不买"},
             {"speaker": "customer", "text": "我要投诉"}]
    first, again = _alerts(turns), _alerts(turns)
    assert [a["id"] for a in first] == [a["id"] for a in again] and len({a["id"] for a in first}) == len(first)
    taboo = [a for a in first if a["type"] == "taboo"]
    assert len(taboo) == 1 and len(taboo[0]["evidence"]) >= 2  # one alert per turn, every phrase as evidence
    other = _alerts(turns, cid="c-2")
    assert not {a["id"] for a in first} & {a["id"] for a in other}
    longer = _alerts([*turns, {"speaker": "agent", "text": "好的"}, {"speaker": "customer", "text": "还是要投诉"}])
    assert {a["id"] for a in first} < {a["id"] for a in longer}


def test_local_memory_is_bounded_and_forgets():
    clock = [0.0]
    memory = LocalAlertMemory(max_conversations=2, ttl_s=60, timer=lambda: clock[0])

    def seen(cid: str, ids: list[str]) -> set[str]:
        return asyncio.run(memory.first_seen(cid, ids))

    assert seen("c1", ["x", "y"]) == {"x", "y"}
    assert seen("c1", ["x", "y", "z"]) == {"z"}
    assert seen("c2", ["x"]) == {"x"} and seen("c3", ["x"]) == {"x"}  # c1 is the oldest: dropped
    assert seen("c1", ["x"]) == {"x"}
    clock[0] = 61.0
    assert seen("c3", ["x"]) == {"x"}  # expired


def test_redis_memory_is_shared_by_every_server_process():
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"kefuqa-test:{uuid.uuid4().hex}:"

    async def run() -> tuple[set[str], set[str], set[str], int]:
        one, two = RedisAlertMemory(url, 60, prefix), RedisAlertMemory(url, 60, prefix)
        try:
            a = await one.first_seen("c1", ["x", "y"])
            b = await two.first_seen("c1", ["x", "y"])
            c = await two.first_seen("c1", ["y", "z"])
            ttl = redis.Redis.from_url(url).ttl(prefix + "c1")
        finally:
            await one.close()
            await two.close()
        return a, b, c, ttl

    try:
        assert asyncio.run(run()) == ({"x", "y"}, set(), {"z"}, 60)
    finally:
        redis.Redis.from_url(url).delete(prefix + "c1")


def test_a_webhook_needs_a_secret():
    with pytest.raises(ValueError, match="KEFUQA_ALERT_WEBHOOK_SECRET"):
        create_app(rules_settings(auth_disabled=True, alert_webhook="http://127.0.0.1:9/hook"))


def test_the_api_marks_an_alert_new_once_and_carries_the_customer(server):
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    turns = [{"speaker": "customer", "text": "东西坏了", "ts": _at(0, start)},
             {"speaker": "agent", "text": "爱买不买", "ts": _at(200, start)}]
    body = conv("new-1", turns, customer_id="u-42")
    with server.client() as c:
        first = c.post("/v1/score", json=body).json()
        again = c.post("/v1/score", json=body).json()
        more = c.post("/v1/score", json={**body, "turns": [*turns, {"speaker": "customer", "text": "我要投诉"}]}).json()
    ScoredConversation.model_validate(first)  # the published response schema holds
    assert {a["type"] for a in first["alerts"]} == {"taboo", "long_wait"} and all(a["new"] for a in first["alerts"])
    assert [a["id"] for a in again["alerts"]] == [a["id"] for a in first["alerts"]]
    assert not any(a["new"] for a in again["alerts"])
    assert [(a["type"], a["new"]) for a in more["alerts"] if a["new"]] == [("complaint_threat", True)]
    assert first["customer_id"] == customer_pseudonym("u-42", PiiMasker()) and "u-42" not in json.dumps(first)
    assert list(first)[:3] == ["id", "agent_id", "customer_id"]


class _Receiver(ThreadingHTTPServer):
    """A webhook receiver on loopback: answers 500 to the first ``failures`` POSTs, then 200."""

    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures = failures
        self.posts: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def wait_for(self, n: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes, int]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= n:
                    return list(self.posts)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} webhook POSTs, got {len(self.posts)}")


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            status = 500 if len(self.server.posts) < self.server.failures else 200
            self.server.posts.append((dict(self.headers), body, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    rec = _Receiver(failures=1)
    thread = threading.Thread(target=rec.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.shutdown()
    rec.server_close()


def _signed(headers: dict[str, str], body: bytes, secret: bytes) -> bool:
    expected = hmac.new(secret, headers["X-Kefuqa-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Kefuqa-Signature"], "sha256=" + expected)


def test_new_alerts_go_to_the_webhook_signed_retried_and_once(receiver):
    secret = b"hook-secret"
    settings = rules_settings(alert_webhook=receiver.url, alert_webhook_secret=secret.decode(),
                              alert_webhook_backoff_s=0.05)
    chat = conv("hook-1", [{"speaker": "customer", "text": "东西坏了"},
                           {"speaker": "customer", "text": "我要去12315投诉"}])
    for srv in serve(settings, engine_factory=RulesEngine):
        assert isinstance(srv, Server)
        with srv.client(API_KEY) as c:
            first = c.post("/v1/score", json=chat).json()
            posts = receiver.wait_for(2)  # a 500, then the same delivery again
            assert [status for _, _, status in posts] == [500, 200]
            (h1, b1, _), (h2, b2, _) = posts
            assert b1 == b2 and h1["X-Kefuqa-Delivery"] == h2["X-Kefuqa-Delivery"]
            assert _signed(h2, b2, secret) and not _signed(h2, b2, b"wrong")
            payload = json.loads(b2)
            assert payload["conversation_id"] == "hook-1" and payload["agent_id"] == "a-1"
            assert [a["id"] for a in payload["alerts"]] == [a["id"] for a in first["alerts"]]
            assert payload["alerts"][0]["evidence"][0]["text"] == "12315"
            # The same chat again: nothing new, nothing sent. Another chat's alert arrives after it.
            again = c.post("/v1/score", json=chat).json()
            assert again["alerts"] and not any(a["new"] for a in again["alerts"])
            c.post("/v1/score", json=conv("hook-2", [{"speaker": "customer", "text": "给你们差评"}]))
            posts = receiver.wait_for(3)
            assert json.loads(posts[2][1])["conversation_id"] == "hook-2"
    # The server has stopped (its queue drained): still exactly those three POSTs.
    assert len(receiver.posts) == 3
