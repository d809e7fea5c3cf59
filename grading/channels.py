"""Grades per channel or combined, as the rubric's ``grade_channels`` says.

``combined`` (the default) grades each agent once over all their conversations; an
indicator with ``channels: [voice]`` (the call indicators) then counts only the agent's
calls and drops out, weights rescaled, for an agent without calls. ``per_channel``
grades chats and calls apart: each channel's conversations make a dataset of their own,
graded with the same rubric (an indicator for other channels has no data there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .dataset import Dataset, Observation
from .errors import InputError
from .rubric import Indicator, Rubric

CHANNELS = ("chat", "voice")


def applies(ind: Indicator, observations: Sequence[Observation]) -> bool:
    """Whether ``ind`` counts any of these conversations' channels (an agent without calls
    has no call indicators, rather than missing data for them)."""
    return ind.channels is None or any(o.channel in ind.channels for o in observations)


def only_channel(data: Dataset, channel: str) -> Dataset:
    """The dataset with the conversations of one channel; agents and notes as they were."""
    if channel not in CHANNELS:
        raise InputError("channel", f"unknown channel {channel!r}; choose {' or '.join(CHANNELS)}")
    return replace(data, observations=tuple(o for o in data.observations if o.channel == channel))


def channel_datasets(data: Dataset, rubric: Rubric) -> list[tuple[str | None, Dataset]]:
    """What to grade: ``[(None, data)]`` when combined; per channel, each channel that has
    conversations with its own dataset (``[("chat", …), ("voice", …)]``)."""
    if rubric.grade_channels == "combined":
        return [(None, data)]
    present = {o.channel for o in data.observations}
    return [(ch, only_channel(data, ch)) for ch in CHANNELS if ch in present] or [(None, data)]
