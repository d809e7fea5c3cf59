"""Ctrl-C and SIGTERM held back while a batch run commits a chunk, so the output, the
rejects and the checkpoint always describe the same point of the input: a signal that
arrives in the middle takes effect once all three have moved on together."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_held() -> Iterator[None]:
    """Run the block with Ctrl-C and SIGTERM recorded instead of handled; when it ends, the
    handlers in place before (the defaults, or the CLI's, which raise ``KeyboardInterrupt``)
    get the first signal recorded. A block that raises drops it: its own error stops the run.

    Off the main thread, Python runs no signal handlers, and a handler installed outside
    Python cannot be put back; in both cases the block runs as it is."""
    previous = {s: h for s in HELD if (h := signal.getsignal(s)) is not None}
    if threading.current_thread() is not threading.main_thread() or len(previous) < len(HELD):
        yield
        return
    caught: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    for s in HELD:
        signal.signal(s, record)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        signal.raise_signal(caught[0])
