"""Which alerts a conversation has already raised, so each is ``new`` once.

The app factory makes one memory and the scorer asks it, per conversation, which
of the alert ids just found it has not seen before (and remembers them). Both kinds
are bounded and forget a conversation a while after its last call: in this process
(a TTL cache of at most ``KEFUQA_ALERT_MEMORY_CONVERSATIONS`` conversations), or in
Redis (``KEFUQA_ALERT_REDIS_URL``) when several server processes must agree.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import redis.asyncio as aioredis
from cachetools import TTLCache
from redis.exceptions import RedisError

log = logging.getLogger("kefuqa.service")


class AlertMemory(Protocol):
    async def first_seen(self, conversation_id: str, alert_ids: Sequence[str]) -> set[str]:
        """The ids not seen before for this conversation; all of them are remembered now."""
        ...

    async def close(self) -> None: ...


class LocalAlertMemory:
    """Per process. The check and the update run without an ``await`` between them, so
    two requests for one conversation on the event loop cannot both see an alert as new."""

    def __init__(self, max_conversations: int, ttl_s: float, timer: Callable[[], float] = time.monotonic) -> None:
        self._seen: TTLCache[str, frozenset[str]] = TTLCache(max_conversations, ttl_s, timer=timer)

    async def first_seen(self, conversation_id: str, alert_ids: Sequence[str]) -> set[str]:
        seen = self._seen.get(conversation_id, frozenset())
        new = set(alert_ids) - seen
        self._seen[conversation_id] = seen | new  # set again: the conversation's time starts over
        return new

    async def close(self) -> None:
        self._seen.clear()


class RedisAlertMemory:
    """Shared by every server process: one Redis set per conversation (``SADD`` says which
    ids were added), expiring ``ttl_s`` after the conversation's last call. If Redis cannot
    be reached the alerts count as new: a repeated webhook is better than a lost one."""

    def __init__(self, url: str, ttl_s: float, prefix: str = "kefuqa:alerts:") -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._ttl = max(int(ttl_s), 1)
        self._prefix = prefix

    async def first_seen(self, conversation_id: str, alert_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(alert_ids))
        if not ids:
            return set()
        key = self._prefix + conversation_id
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for alert in ids:
                    pipe.sadd(key, alert)
                pipe.expire(key, self._ttl)
                added = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning(json.dumps({"event": "alert_memory_unavailable", "error": type(exc).__name__}))
            return set(ids)
        return {alert for alert, n in zip(ids, added) if n}

    async def close(self) -> None:
        await self._redis.aclose()
