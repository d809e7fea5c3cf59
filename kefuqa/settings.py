"""All settings in one place, read from ``KEFUQA_*`` environment variables.

Read once at the edge (CLI, app factory) and passed down; nothing below
reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    cors_origins: str = Field("", description="comma-separated allowed origins; empty = CORS closed")
    alert_wait_s: float = 120.0
    alert_sentiment_drop: float = 0.8


class GradingSettings(BaseSettings):
    """Inputs behind the service's grading endpoints (KEFUQA_GRADING_*)."""

    model_config = SettingsConfigDict(env_prefix="KEFUQA_GRADING_")

    scores: Path | None = None
    roster: Path | None = None
    events: Path | None = None
    outcomes: Path | None = None
    reviews: Path | None = None
    rubric: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFUQA_")

    engine: str = Field("auto", description="scoring engine: auto, rules or neural")
    rules_file: Path | None = Field(None, description="user rules merged over the defaults")
    home: Path = Field(Path.home() / ".kefuqa", description="models, registry and caches")
    batch_size: int = Field(64, ge=1)
    encoder_micro_batch: int = Field(64, ge=1, description="most texts per int8 encoder call; one conversation's "
                                     "texts share a call, so scores never depend on other conversations")
    review_db_url: str | None = Field(None, description="review store; default sqlite:///<home>/reviews.db")
    limits: Limits = Field(default_factory=Limits)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    grading: GradingSettings = Field(default_factory=GradingSettings)


def load_settings() -> Settings:
    return Settings()
