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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFUQA_")

    engine: str = Field("auto", description="scoring engine: auto, rules or neural")
    rules_file: Path | None = Field(None, description="user rules merged over the defaults")
    home: Path = Field(Path.home() / ".kefuqa", description="models, registry and caches")
    batch_size: int = Field(64, ge=1)
    limits: Limits = Field(default_factory=Limits)
    pii: PiiSettings = Field(default_factory=PiiSettings)


def load_settings() -> Settings:
    return Settings()
