"""The error a service route raises for a 4xx or 5xx: the app answers ``{"detail": …}``
with its status (``detail`` is a reason, or a list of them per batch item)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        self.status, self.detail = status, detail
