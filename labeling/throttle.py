"""Login throttling: after ``attempts`` failed logins for one account from one
client address within ``window`` seconds, further tries (right password or not)
are refused until the oldest failure leaves the window. Keyed by account *and*
address, so a guesser elsewhere cannot lock a reviewer out. Held per app (per
server process); a success clears the key."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
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
            q = self._recent((name, address), now)
            return 0 if len(q) < self.attempts else max(1, math.ceil(q[0] + self.window - now))

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            q = self._recent((name, address), now)
            q.append(now)
            self._failures[(name, address)] = q

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name, address), None)
