"""Login throttling: after ``attempts`` failed logins for one account from one
client address within ``window`` seconds, further tries (right password or not)
are refused until the oldest failure leaves the window. Keyed by account *and*
address, so a guesser elsewhere cannot lock a reviewer out. One address also has a
budget over all accounts (``address_attempts``), so trying many names from one
place is paused too. A success clears the account's key. ``LoginThrottle`` counts
in one server process; ``RedisLoginThrottle`` shares the count across processes and
servers (``KEFUQA_REVIEW_REDIS_URL``)."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import redis

log = logging.getLogger(__name__)

ANY = "\x00any"  # the address's budget over all accounts (no account name holds a NUL)


class LoginThrottle:
    def __init__(self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic,
                 address_attempts: int | None = None) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
        self.address_attempts = address_attempts if address_attempts is not None else 10 * attempts
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()  # endpoints run in a thread pool

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.get(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            self._failures.pop(key, None)  # forgotten keys must not pile up
        return q

    def retry_after(self, name: str, address: str) -> int:
        """Seconds until a try is allowed again; 0 when it is allowed now."""
        with self._lock:
            now = self.clock()
            waits = [0]
            for key, limit in (((name, address), self.attempts), ((ANY, address), self.address_attempts)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(max(1, math.ceil(q[0] + self.window - now)))
            return max(waits)

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            for key in ((name, address), (ANY, address)):
                q = self._recent(key, now)
                q.append(now)
                self._failures[key] = q

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name, address), None)


class Throttle(Protocol):
    def retry_after(self, name: str, address: str) -> int: ...
    def failed(self, name: str, address: str) -> None: ...
    def succeeded(self, name: str, address: str) -> None: ...


class RedisLoginThrottle:
    """The same rule as ``LoginThrottle``, counted in Redis so that every server process
    (and every server sharing the Redis) sees one budget. Each key is a sorted set of
    failure times, expiring with the window. Keys hold a hash of account and address,
    not the login name. When Redis cannot be reached the throttle counts in this
    process (``fallback``) and logs it once, so logins keep working."""

    def __init__(self, client: redis.Redis, attempts: int, window: float,
                 address_attempts: int | None = None, prefix: str = "kefuqa:login:",
                 clock: Callable[[], float] = time.time) -> None:
        self.client, self.window, self.prefix, self.clock = client, window, prefix, clock
        self.limits = (attempts, address_attempts if address_attempts is not None else 10 * attempts)
        self.fallback = LoginThrottle(attempts, window, clock=clock, address_attempts=self.limits[1])
        self._warned = False

    def _keys(self, name: str, address: str) -> tuple[str, str]:
        def key(account: str) -> str:
            return self.prefix + hashlib.sha256(f"{account}\x00{address}".encode("utf-8", "surrogatepass")).hexdigest()
        return key(name), key(ANY)

    def _unreachable(self, exc: Exception) -> None:
        if not self._warned:
            log.warning("login throttle: Redis unreachable (%s); counting failures in this process", exc)
            self._warned = True

    def retry_after(self, name: str, address: str) -> int:
        now = self.clock()
        try:
            pipe = self.client.pipeline()
            for key in self._keys(name, address):
                pipe.zremrangebyscore(key, "-inf", now - self.window)
                pipe.zcard(key)
                pipe.zrange(key, 0, 0, withscores=True)
            replies = pipe.execute()
        except redis.RedisError as exc:
            self._unreachable(exc)
            return self.fallback.retry_after(name, address)
        waits = [0]
        for (_, count, oldest), limit in zip(_triples(replies), self.limits):
            if count >= limit and oldest:
                waits.append(max(1, math.ceil(oldest[0][1] + self.window - now)))
        return max(waits)

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        try:
            pipe = self.client.pipeline()
            for key in self._keys(name, address):
                pipe.zadd(key, {f"{now!r}:{uuid.uuid4().hex}": now})
                pipe.expire(key, math.ceil(self.window) + 1)
            pipe.execute()
        except redis.RedisError as exc:
            self._unreachable(exc)
            self.fallback.failed(name, address)

    def succeeded(self, name: str, address: str) -> None:
        self.fallback.succeeded(name, address)
        try:
            self.client.delete(self._keys(name, address)[0])
        except redis.RedisError as exc:
            self._unreachable(exc)


def _triples(replies: list[Any]) -> list[tuple[Any, int, list[tuple[bytes, float]]]]:
    return [(replies[i], replies[i + 1], replies[i + 2]) for i in range(0, len(replies), 3)]


def make_throttle(attempts: int, window: float, redis_url: str | None) -> Throttle:
    """Shared in Redis when a URL is set, else counted per process."""
    if not redis_url:
        return LoginThrottle(attempts, window)
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    return RedisLoginThrottle(client, attempts, window)
