"""Progress of the long steps of training (embedding, fine-tuning, head epochs) on
stderr: count, rate and ETA. Updates every 30 s when stderr is a log file, so a
training log shows where a long run is without filling up with bar redraws."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def steps(iterable: Iterable[T], desc: str, unit: str = "step", total: int | None = None) -> Iterator[T]:
    tty = sys.stderr.isatty()
    yield from tqdm(iterable, desc=desc, unit=unit, total=total, file=sys.stderr, mininterval=0.5 if tty else 30,
                    dynamic_ncols=tty, ascii=not tty, leave=True)
