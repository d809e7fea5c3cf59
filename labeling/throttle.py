"""Login throttling: after ``attempts`` failed logins for one account from one
client address within ``window`` seconds, further tries (right password or not)
are refused until the oldest failure leaves the window. Keyed by account *and*
address, so a guesser elsewhere cannot lock a reviewer out. One address also has a
budget over all accounts (``address_attempts``), so trying many names from one
place is paused too. Held per app (per server process); a success clears the
account's key."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

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
