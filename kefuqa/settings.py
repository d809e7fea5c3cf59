"""All settings in one place, read from ``KEFUQA_*`` environment variables.

Read once at the edge (CLI, app factory) and passed down; nothing below
reads the environment itself.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Limits(BaseSettings):
    """Bounds on one conversation; past them it is rejected with a reason."""

    model_config = SettingsConfigDict(env_prefix="KEFUQA_")

    max_turns: int = Field(500, ge=1, description="turns per conversation")
    max_turn_chars: int = Field(5_000, ge=1, description="characters in one turn")
    max_total_chars: int = Field(100_000, ge=1, description="characters in one conversation")
    max_line_bytes: int = Field(2_000_000, ge=1, description="bytes in one input line")


class PiiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFUQA_PII_")

    enabled: bool = True
    mask_order_numbers: bool = False
    id_key: SecretStr | None = Field(
        None, description="key of the pseudonyms that replace PII inside ids (set it, or a pseudonym can be "
        "reversed by trying every phone number)")


class ServiceSettings(BaseSettings):
    """The HTTP API (`kefuqa serve`)."""

    model_config = SettingsConfigDict(env_prefix="KEFUQA_")

    host: str = "127.0.0.1"
    port: int = 8000
    api_key_hashes: str | None = Field(None, description="comma-separated SHA-256 hashes of API keys")
    api_keys_file: Path | None = Field(None, description="file with one SHA-256 key hash per line")
    auth_disabled: bool = Field(False, description="no API key needed (development only)")
    max_body_bytes: int = Field(1_000_000, ge=1)
    max_batch_items: int = Field(64, ge=1, description="conversations per /v1/score/batch request")
    batch_max_size: int = Field(32, ge=1, description="dynamic batching: conversations per engine call (1 = off)")
    batch_max_wait_ms: float = Field(5.0, ge=0)
    threads: int | None = Field(None, description="onnxruntime threads (default: all cores)")
    trusted_proxies: str = Field("", description="comma-separated addresses of reverse proxies whose "
                                 "X-Forwarded-For names the client; empty = trust none")
    cors_origins: str = Field("", description="comma-separated allowed origins; empty = CORS closed")
    alert_wait_s: float = 120.0
    alert_sentiment_drop: float = 0.8
    alert_live_max_age_s: float = Field(
        3600.0, gt=0, description="with ?live=true, a customer counts as waiting now only when the chat's last "
        "timestamp is at most this old; an older chat is a replay and its waits come from its own timestamps")
    alert_memory_hours: float = Field(24.0, gt=0, description="how long the alerts a conversation raised are "
                                      "remembered, so only new ones are marked new and sent")
    alert_memory_conversations: int = Field(100_000, ge=1, description="conversations remembered per process "
                                            "(without KEFUQA_ALERT_REDIS_URL)")
    alert_redis_url: str | None = Field(
        None, description="Redis that remembers alerts for every server process, e.g. redis://127.0.0.1:6379/0 "
        "(default: remembered per process)")
    alert_webhook: str | None = Field(None, description="URL that new alerts are POSTed to as JSON (default: none)")
    alert_webhook_secret: SecretStr | None = Field(
        None, description="key of the HMAC-SHA256 signature of each webhook POST (needed with KEFUQA_ALERT_WEBHOOK)")
    alert_webhook_attempts: int = Field(6, ge=1, description="tries per webhook POST before it is given up")
    alert_webhook_backoff_s: float = Field(1.0, gt=0, description="wait before the first retry; doubled each time")

    @field_validator("alert_webhook")
    @classmethod
    def _webhook_url(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            return None
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {v!r}")
        return v


class GradingSettings(BaseSettings):
    """Inputs behind the service's grading endpoints (KEFUQA_GRADING_*)."""

    model_config = SettingsConfigDict(env_prefix="KEFUQA_GRADING_")

    scores: Path | None = None
    roster: Path | None = None
    events: Path | None = None
    outcomes: Path | None = None
    reviews: Path | None = None
    rubric: Path | None = None


def _dates(v: object) -> object:
    """``2026-10-01,2026-10-02`` (commas or whitespace) or a JSON list."""
    if isinstance(v, str):
        text = v.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [p for p in text.replace(",", " ").split() if p]
    return v


class ReviewSettings(BaseSettings):
    """The review workflow (KEFUQA_REVIEW_*). The day counts are **defaults**, not facts:
    the handbooks (domain.md) give a dispute answer 5 working days and a second appeal 5
    working days after the answer; the window to file (3 working days) is the handbooks'
    reward/penalty appeal window. Holidays are empty by default: set KEFUQA_REVIEW_HOLIDAYS
    to the official schedule of the year (and KEFUQA_REVIEW_EXTRA_WORKDAYS to the weekend
    days worked in exchange, 调休)."""

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
    independent_dispute_answers: bool = Field(
        True, description="a reviewer or lead whose review a dispute contests cannot answer it (false: they may)")
    appeal_grades: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["优秀", "良好", "中等", "合格", "不合格"],
        description="the grades an appeal names, best first: the grading rubric's levels (3 to 5), e.g. "
        "优秀,合格,不合格 for a three-level rubric")
    session_hours: float = Field(12.0, gt=0, description="how long a login lasts")
    login_attempts: int = Field(5, ge=1, description="failed logins per account and address before a pause")
    login_window_minutes: float = Field(15.0, gt=0, description="window of those failures, and the longest pause")
    redis_url: str | None = Field(
        None, description="Redis for the login throttle shared by every server process, e.g. "
        "redis://127.0.0.1:6379/0 (default: counted per process)")
    cookie_secure: bool = Field(False, description="mark the session cookie Secure (set behind HTTPS)")
    uncertain_share: float = Field(0.2, ge=0, le=1, description="least confident share of an import queued for review")
    sample_share: float = Field(0.05, ge=0, le=1, description="random stratified calibration sample of an import")
    double_share: float = Field(0.1, ge=0, le=1, description="share of queued items reviewed by two reviewers")

    @field_validator("holidays", "extra_workdays", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        return _dates(v)

    @field_validator("appeal_grades", mode="before")
    @classmethod
    def _grade_names(cls, v: object) -> object:
        names = [n.strip() for n in v.split(",")] if isinstance(v, str) else v
        if isinstance(names, list) and not (3 <= len(names) <= 5 and len(set(names)) == len(names)
                                            and all(isinstance(n, str) and n.strip() for n in names)):
            raise ValueError(f"need 3 to 5 distinct grade names, best first (KEFUQA_REVIEW_APPEAL_GRADES), "
                             f"not {names!r}")
        return names

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (KEFUQA_REVIEW_TIMEZONE), e.g. Asia/Shanghai") from exc
        return v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFUQA_")

    engine: str = Field("auto", description="scoring engine: auto, rules, neural (the champion), teacher or "
                        "student (the registry's model of that role)")
    rules_file: Path | None = Field(None, description="user rules merged over the defaults")
    home: Path = Field(Path.home() / ".kefuqa", description="models, registry and caches")
    batch_size: int = Field(64, ge=1)
    embedding_cache_entries: int = Field(
        50_000, ge=0, description="turn embeddings the neural engine keeps per process, least recently used "
        "dropped first, so earlier turns of a live chat and recurring texts are not embedded again; 0 = no cache")
    embedding_cache_mb: float = Field(64.0, ge=0, description="memory that cache may take (vectors and texts); "
                                      "0 = no cache")
    review_db_url: str | None = Field(None, description="review store; default sqlite:///<home>/reviews.db")
    mlflow_tracking_uri: str | None = Field(
        None, validation_alias=AliasChoices("KEFUQA_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking store for training runs; default sqlite:///<home>/mlflow.db")
    limits: Limits = Field(default_factory=Limits)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    grading: GradingSettings = Field(default_factory=GradingSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)


class SettingsError(ValueError):
    """An environment variable holds a value the settings cannot take."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    """Name the environment variable behind each error, e.g. KEFUQA_REVIEW_TIMEZONE."""
    # exc.title names the settings class that refused the value: Settings or one of its groups.
    groups = [f.default_factory for f in Settings.model_fields.values()
              if isinstance(f.default_factory, type) and issubclass(f.default_factory, BaseSettings)]
    classes: list[type[BaseSettings]] = [Settings, *groups]
    prefix = next((cls.model_config.get("env_prefix", "KEFUQA_") for cls in classes
                   if cls.__name__ == exc.title), "KEFUQA_")
    lines = [f"{prefix}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
    return "bad settings in the environment:\n  " + "\n  ".join(lines)
