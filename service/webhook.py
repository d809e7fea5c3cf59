"""Delivery of new alerts to an integrator's URL (``KEFUQA_ALERT_WEBHOOK``).

Scoring only puts a payload on a bounded queue; worker tasks POST it off the
request path, so a slow or failing receiver never slows scoring down. Each POST
is signed, ``X-Kefuqa-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``
with the timestamp in ``X-Kefuqa-Timestamp``, and retried with exponential backoff
on a connection error, a timeout, 408, 429 or 5xx. Every retry sends the same bytes
and the same ``X-Kefuqa-Delivery`` id, so a receiver can drop a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("kefuqa.service")
_RETRY_STATUS = {408, 429}


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: bytes
    attempts: int = 6
    backoff_s: float = 1.0  # before the first retry; doubled each time, up to max_backoff_s
    max_backoff_s: float = 60.0
    timeout_s: float = 10.0
    queue_size: int = 10_000  # payloads waiting; past it new ones are dropped and logged
    workers: int = 4


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """What ``X-Kefuqa-Signature`` carries; a receiver computes it again to check a POST."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def delivery_id(alert_ids: Sequence[str]) -> str:
    return "dl-" + hashlib.sha256("\x1f".join(sorted(alert_ids)).encode()).hexdigest()[:16]


class WebhookSender:
    """``start`` and ``stop`` run in the app's lifespan; ``send`` is called while scoring."""

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self._queue: asyncio.Queue[tuple[str, bytes]] | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.config.queue_size)
        self._client = httpx.AsyncClient(timeout=self.config.timeout_s)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.config.workers)]

    def send(self, payload: dict[str, Any]) -> None:
        """Queue one payload (``{"conversation_id", …, "alerts": […]}``); never waits."""
        if self._queue is None:
            raise RuntimeError("webhook sender not started")
        ids = [a["id"] for a in payload["alerts"]]
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            self._queue.put_nowait((delivery_id(ids), body))
        except asyncio.QueueFull:
            log.warning(json.dumps({"event": "webhook_dropped", "delivery": delivery_id(ids),
                                    "reason": f"queue full ({self.config.queue_size})"}))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Give the queued deliveries ``grace_s`` to finish, then stop the workers."""
        if self._queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), grace_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            delivery, body = await self._queue.get()
            try:
                await self._deliver(delivery, body)
            finally:
                self._queue.task_done()

    async def _deliver(self, delivery: str, body: bytes) -> None:
        assert self._client is not None
        cfg = self.config
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Kefuqa-Delivery": delivery,
                   "X-Kefuqa-Timestamp": timestamp, "X-Kefuqa-Signature": signature(cfg.secret, timestamp, body)}
        outcome = ""
        for attempt in range(1, cfg.attempts + 1):
            try:
                response = await self._client.post(cfg.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            else:
                status = response.status_code
                if status < 300 or (status < 500 and status not in _RETRY_STATUS):
                    event = "webhook_delivered" if status < 300 else "webhook_refused"
                    log.info(json.dumps({"event": event, "delivery": delivery, "status": status, "attempt": attempt}))
                    return
                outcome = f"HTTP {status}"
            if attempt < cfg.attempts:
                await asyncio.sleep(min(cfg.backoff_s * 2 ** (attempt - 1), cfg.max_backoff_s))
        log.warning(json.dumps({"event": "webhook_failed", "delivery": delivery, "attempts": cfg.attempts,
                                "last": outcome}))
