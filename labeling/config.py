"""Settings of the review workflow (``KEFUQA_REVIEW_*``), read once at the edge.

The numbers below are **defaults**, not facts: the handbooks (domain.md) give a
dispute answer 5 working days and a second appeal 5 working days after the
answer; the window to file (3 working days) is the handbooks' reward/penalty
appeal window. Holidays are empty by default: set ``KEFUQA_REVIEW_HOLIDAYS`` to
the official schedule of the year (and ``KEFUQA_REVIEW_EXTRA_WORKDAYS`` to the
weekend days worked in exchange, 调休).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kefuqa.settings import Settings


def _dates(v: object) -> object:
    """``2026-10-01,2026-10-02`` (commas or whitespace) or a JSON list."""
    if isinstance(v, str):
        text = v.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [p for p in text.replace(",", " ").split() if p]
    return v


class ReviewConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFUQA_REVIEW_", extra="ignore")

    timezone: str = Field("Asia/Shanghai", description="calendar in which working days and deadlines are counted")
    holidays: Annotated[list[date], NoDecode] = Field(
        default_factory=list, description="non-working weekdays, e.g. 2026-10-01,2026-10-02 (default: none)")
    extra_workdays: Annotated[list[date], NoDecode] = Field(
        default_factory=list, description="weekend days that are worked (调休) (default: none)")
    file_days: int | None = Field(3, ge=0, description="working days an agent has to dispute a score; empty = no limit")
    answer_days: int = Field(5, ge=1, description="working days to answer a dispute")
    escalate_days: int = Field(5, ge=1, description="working days after the answer to escalate once")
    second_answer_days: int = Field(5, ge=1, description="working days for the second level to decide")
    session_hours: float = Field(12.0, gt=0, description="how long a login lasts")
    login_attempts: int = Field(5, ge=1, description="failed logins per account and address before a pause")
    login_window_minutes: float = Field(15.0, gt=0, description="window of those failures, and the longest pause")
    cookie_secure: bool = Field(False, description="mark the session cookie Secure (set behind HTTPS)")
    uncertain_share: float = Field(0.2, ge=0, le=1, description="least confident share of an import queued for review")
    sample_share: float = Field(0.05, ge=0, le=1, description="random stratified calibration sample of an import")
    double_share: float = Field(0.1, ge=0, le=1, description="share of queued items reviewed by two reviewers")

    @field_validator("holidays", "extra_workdays", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        return _dates(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (KEFUQA_REVIEW_TIMEZONE), e.g. Asia/Shanghai") from exc
        return v


def db_url(settings: Settings | None = None, url: str | None = None) -> str:
    """The review store's URL: explicit, else ``KEFUQA_REVIEW_DB_URL``, else a SQLite file in home."""
    if url:
        return url
    if settings is not None and settings.review_db_url:
        return settings.review_db_url
    home = settings.home if settings is not None else Settings().home
    return f"sqlite:///{home / 'reviews.db'}"
