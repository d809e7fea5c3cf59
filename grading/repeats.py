"""Repeat contacts (客户重复咨询) found in the score records themselves.

A conversation is followed by a repeat contact when the same customer (the
record's ``customer_id`` pseudonym) starts another conversation after it began
and no later than the rubric's window after. The flag belongs to the first
conversation, so it counts for that conversation's agent and period: the agent
whose answer did not hold.

The archive ends somewhere: a conversation whose window reaches past the last
start in the archive gets no value, whether or not a return is seen yet. Without
a return it cannot be told apart from one that will have none; and counting only
the returns among those conversations would push the latest period's rate up.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    customer_id: str
    start: datetime  # aware; compared as instants


def repeat_contacts(
    contacts: Iterable[Contact], window: timedelta, horizon: datetime
) -> dict[str, float | None]:
    """Conversation id → 1.0 (the customer came back within ``window``), 0.0 (the
    archive shows no return in the window) or None (the window runs past ``horizon``,
    the archive's last start)."""
    by_customer: dict[str, list[Contact]] = {}
    for contact in contacts:
        by_customer.setdefault(contact.customer_id, []).append(contact)
    out: dict[str, float | None] = {}
    for group in by_customer.values():
        starts = sorted(c.start for c in group)
        for c in group:
            later = bisect_right(starts, c.start)  # the first start strictly after this one
            if c.start + window > horizon:  # right-censored: the whole window is not in the archive
                out[c.id] = None
            elif later < len(starts) and starts[later] - c.start <= window:
                out[c.id] = 1.0
            else:
                out[c.id] = 0.0
    return out
