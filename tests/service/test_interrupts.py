"""Ctrl-C and SIGTERM held back while a batch run commits a chunk."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from kefuqa.service.interrupts import signals_held


class Stopped(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


@pytest.fixture
def stopping_handler() -> Iterator[None]:
    """SIGTERM raises ``Stopped``, as the CLI's handler raises ``KeyboardInterrupt``."""
    previous = signal.signal(signal.SIGTERM, _stop)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_inside_the_block_takes_effect_when_the_block_ends(stopping_handler):
    steps = []
    with pytest.raises(Stopped) as stopped:
        with signals_held():
            signal.raise_signal(signal.SIGTERM)
            steps.append("the rest of the block")
        steps.append("after the block")
    assert steps == ["the rest of the block"] and stopped.value.args == (signal.SIGTERM,)
    assert signal.getsignal(signal.SIGTERM) is _stop
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_block_that_fails_keeps_its_own_error_and_the_handlers_are_back(stopping_handler):
    with pytest.raises(OSError, match="disk full"), signals_held():
        signal.raise_signal(signal.SIGTERM)
        raise OSError("disk full")
    assert signal.getsignal(signal.SIGTERM) is _stop


def test_without_a_signal_nothing_happens(stopping_handler):
    with signals_held():
        pass
    assert signal.getsignal(signal.SIGTERM) is _stop


def test_off_the_main_thread_the_block_runs_as_it_is():
    seen: list[object] = []

    def run() -> None:
        with signals_held():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]
