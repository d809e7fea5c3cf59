"""What a training run shows while it runs: each long step's count out of its total, the
rate and the time left, on stderr, also when stderr is a log file."""

from __future__ import annotations

import io
import re
import sys

from kefuqa.training.progress import steps


def test_a_training_log_shows_count_total_and_time_left(monkeypatch):
    log = io.StringIO()  # not a terminal: a redirected log
    monkeypatch.setattr(sys, "stderr", log)
    assert list(steps(range(0, 700, 100), "embedding 700 texts", "chunk", 7)) == list(range(0, 700, 100))
    text = log.getvalue()
    assert "embedding 700 texts" in text and "7/7" in text and "100%" in text
    assert re.search(r"7/7 \[\d\d:\d\d<\d\d:\d\d, ", text), text  # elapsed<left
    assert "\x1b[" not in text  # no terminal escapes in a log


def test_early_stopping_leaves_the_epoch_it_stopped_at(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    for epoch in steps(range(60), "head seed 13 (early stopping)", "epoch"):
        if epoch == 24:
            break
    # The last line stays: where the run stopped (the epoch it broke in is not counted), not 60/60.
    last = log.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("head seed 13 (early stopping):  40%") and "24/60" in last, last
