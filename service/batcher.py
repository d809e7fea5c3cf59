"""Dynamic batching: concurrent requests are gathered (up to ``max_batch``
conversations or ``max_wait_ms``) into one engine call, run on a single
worker thread so the process holds one inference session."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kefuqa.contract import Conversation
from kefuqa.models.engine import Engine


@dataclass
class _Pending:
    convs: list[Conversation]
    future: asyncio.Future


class DynamicBatcher:
    def __init__(
        self,
        engine: Engine,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.observe = observe  # (batch size, seconds) → metrics
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def score(self, convs: Sequence[Conversation]) -> list[dict[str, Any]]:
        if self.max_batch <= 1 or self._queue is None:  # batching off: call directly
            return await self._run(list(convs))
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(list(convs), fut))
        return await fut

    async def _run(self, convs: list[Conversation]) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        records = await asyncio.to_thread(self.engine.score_batch, convs)
        if self.observe:
            self.observe(len(convs), time.perf_counter() - t0)
        return records

    async def _loop(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            group = [first]
            size = len(first.convs)
            deadline = time.perf_counter() + self.max_wait
            while size < self.max_batch:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
                group.append(item)
                size += len(item.convs)
            convs = [c for p in group for c in p.convs]
            try:
                records = await self._run(convs)
            except Exception:  # noqa: BLE001 - one failing item must not fail the others
                await self._one_by_one(group)
                continue
            i = 0
            for p in group:
                if not p.future.done():
                    p.future.set_result(records[i : i + len(p.convs)])
                i += len(p.convs)

    async def _one_by_one(self, group: list[_Pending]) -> None:
        """The group's engine call failed: score each request alone, so only the
        request that holds the failing conversation gets the error."""
        for p in group:
            if p.future.done():
                continue
            try:
                p.future.set_result(await self._run(p.convs))
            except Exception as exc:  # noqa: BLE001 - answered to that request alone
                p.future.set_exception(exc)
