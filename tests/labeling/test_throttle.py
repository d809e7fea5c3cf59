"""Login throttling, in one process and shared through a real Redis (127.0.0.1:6379).

The Redis half is skipped, with the reason, when no Redis answers there."""

from __future__ import annotations

import logging
import os
import uuid

import httpx
import pytest
import redis

from kefuqa.labeling.app import create_app
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import open_engine
from kefuqa.labeling.throttle import LoginThrottle, RedisLoginThrottle, make_throttle
from kefuqa.settings import Settings

from .helpers import PASSWORD, Server, users

REDIS_URL = os.environ.get("KEFUQA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")
    return REDIS_URL


@pytest.fixture
def shared(redis_url):
    """Two throttles on one Redis, as two server processes would hold; keys removed afterwards."""
    prefix = f"kefuqa-test:{uuid.uuid4().hex}:"
    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    now = [1000.0]
    yield [RedisLoginThrottle(c, attempts=2, window=60, address_attempts=5, prefix=prefix, clock=lambda: now[0])
           for c in clients], now
    keys = list(clients[0].scan_iter(prefix + "*"))
    if keys:
        clients[0].delete(*keys)
    for c in clients:
        c.close()


def test_one_address_has_a_budget_over_all_accounts():
    from kefuqa.labeling.throttle import LoginThrottle

    t = LoginThrottle(attempts=3, window=60, clock=lambda: 1000.0, address_attempts=5)
    for i in range(5):
        assert t.retry_after(f"user{i}", "1.2.3.4") == 0
        t.failed(f"user{i}", "1.2.3.4")
    assert t.retry_after("someone-new", "1.2.3.4") == 60  # many names from one place
    assert t.retry_after("someone-new", "5.6.7.8") == 0


def test_throttle_window_and_success_reset():
    from kefuqa.labeling.throttle import LoginThrottle

    now = [1000.0]
    t = LoginThrottle(attempts=2, window=60, clock=lambda: now[0])
    t.failed("rev", "1.2.3.4")
    t.succeeded("rev", "1.2.3.4")  # a success forgets earlier failures
    t.failed("rev", "1.2.3.4")
    now[0] += 10
    t.failed("rev", "1.2.3.4")
    assert t.retry_after("rev", "1.2.3.4") == 50  # until the first failure is 60 s old
    assert t.retry_after("rev", "5.6.7.8") == 0 and t.retry_after("other", "1.2.3.4") == 0
    now[0] += 50
    assert t.retry_after("rev", "1.2.3.4") == 0


def test_failures_counted_in_one_process_pause_the_other(shared):
    (a, b), now = shared
    a.failed("rev", "1.2.3.4")
    now[0] += 10
    b.failed("rev", "1.2.3.4")
    assert a.retry_after("rev", "1.2.3.4") == 50 and b.retry_after("rev", "1.2.3.4") == 50
    assert a.retry_after("rev", "5.6.7.8") == 0 and b.retry_after("other", "1.2.3.4") == 0
    now[0] += 50
    assert b.retry_after("rev", "1.2.3.4") == 0  # the first failure left the window
    a.failed("rev", "1.2.3.4")
    b.succeeded("rev", "1.2.3.4")  # a success anywhere forgets the account's failures
    assert a.retry_after("rev", "1.2.3.4") == 0


def test_shared_address_budget_over_all_accounts(shared):
    (a, b), _ = shared
    for i in range(5):
        (a if i % 2 else b).failed(f"user{i}", "1.2.3.4")
    assert a.retry_after("someone-new", "1.2.3.4") == 60
    assert b.retry_after("someone-new", "5.6.7.8") == 0


def test_keys_hold_no_login_name_and_expire(shared, redis_url):
    (a, _), _ = shared
    a.failed("张三@north", "1.2.3.4")
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(a.prefix + "*"))
    assert len(keys) == 2 and not any("张三".encode() in k for k in keys)
    assert all(0 < client.ttl(k) <= 61 for k in keys)
    client.close()


def test_unreachable_redis_falls_back_to_counting_in_process(caplog):
    t = make_throttle(2, 60, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert isinstance(t, RedisLoginThrottle)
    with caplog.at_level(logging.WARNING, logger="kefuqa.labeling.throttle"):
        t.failed("rev", "1.2.3.4")
        t.failed("rev", "1.2.3.4")
        assert t.retry_after("rev", "1.2.3.4") > 0  # still throttled, by this process
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1
    assert isinstance(make_throttle(2, 60, None), LoginThrottle)


def test_two_servers_share_one_budget_through_redis(redis_url, tmp_path):
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    engine = open_engine(url, auto_migrate=True)
    name = f"rev-{uuid.uuid4().hex[:8]}"  # failures stay in Redis for the window; a fresh name per run
    users(engine, (name, "reviewer", "north"))
    settings = Settings(home=tmp_path / "home", review_db_url=url)
    cfg = ReviewConfig(file_days=None, login_attempts=3, redis_url=redis_url)
    with Server(create_app(settings, cfg)) as one, Server(create_app(settings, cfg)) as two, \
            httpx.Client(timeout=10) as c:
        for srv in (one, two, one):
            assert c.post(srv.url + "/api/review/login", json={"name": name, "password": "wrong"}).status_code == 401
        r = c.post(two.url + "/api/review/login", json={"name": name, "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    engine.dispose()
