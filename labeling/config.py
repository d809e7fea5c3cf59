"""The review workflow's settings: ``ReviewSettings`` (``KEFUQA_REVIEW_*``) lives with
all other settings in ``kefuqa/settings.py``, as ``Settings().review``; ``ReviewConfig``
is its name inside this package."""

from __future__ import annotations

from kefuqa.settings import ReviewSettings as ReviewConfig
from kefuqa.settings import Settings

__all__ = ["ReviewConfig", "db_url"]


def db_url(settings: Settings | None = None, url: str | None = None) -> str:
    """The review store's URL: explicit, else ``KEFUQA_REVIEW_DB_URL``, else a SQLite file in home."""
    if url:
        return url
    if settings is not None and settings.review_db_url:
        return settings.review_db_url
    home = settings.home if settings is not None else Settings().home
    return f"sqlite:///{home / 'reviews.db'}"
