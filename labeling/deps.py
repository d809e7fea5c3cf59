"""What the review routes depend on: the review store and its transactions, the review
settings, the login throttle and the logged-in user.

``review_state`` makes them once per app; the app keeps them as ``app.state.review``
(``api.include_review``) and every dependency here reads them from the request's app.
Errors from the store and from the review actions become HTTP errors with a
``{"message": …}`` detail here, so the routes never answer a 500 for bad input.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kefuqa.settings import Settings

from . import auth
from .access import ReviewError
from .config import ReviewConfig, db_url
from .db import StoreError, open_engine, session
from .throttle import Throttle, make_throttle

COOKIE = "kefuqa_review"


class Store:
    """The engine, opened on first use (a SQLite store is created and migrated then)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = open_engine(self.url)
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


@dataclass(frozen=True)
class ReviewState:
    """One app's review store, review settings and login throttle."""

    store: Store
    config: ReviewConfig
    throttle: Throttle


def review_state(settings: Settings, config: ReviewConfig | None = None) -> ReviewState:
    cfg = config or settings.review
    throttle = make_throttle(cfg.login_attempts, cfg.login_window_minutes * 60, cfg.redis_url)
    return ReviewState(Store(db_url(settings)), cfg, throttle)


async def get_review(request: Request) -> ReviewState:
    return cast(ReviewState, request.app.state.review)


ReviewDep = Annotated[ReviewState, Depends(get_review)]


async def get_config(review: ReviewDep) -> ReviewConfig:
    return review.config


async def get_throttle(review: ReviewDep) -> Throttle:
    return review.throttle


ConfigDep = Annotated[ReviewConfig, Depends(get_config)]
ThrottleDep = Annotated[Throttle, Depends(get_throttle)]


class Transactions:
    """Sessions on the review store, one per ``with`` block (``write=True`` to change it)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def __call__(self, write: bool = False) -> Iterator[Session]:
        try:
            engine = self.store.engine()
        except StoreError as exc:
            raise HTTPException(503, {"message": str(exc)}) from exc
        try:
            with session(engine, write=write) as s:
                yield s
        except ReviewError as exc:
            raise HTTPException(exc.status, exc.body()) from exc
        except auth.UnknownUser as exc:
            raise HTTPException(404, {"message": str(exc)}) from exc
        except auth.AuthError as exc:
            raise HTTPException(422, {"message": str(exc)}) from exc

    def run(self, fn: Callable[[Session], Any], write: bool = False) -> Any:
        with self(write) as s:
            return fn(s)


async def get_transactions(review: ReviewDep) -> Transactions:
    return Transactions(review.store)


TxDep = Annotated[Transactions, Depends(get_transactions)]


def presented_token(request: Request) -> tuple[str | None, bool]:
    """The session token a request carries, and whether it came in the cookie: a bearer
    token (scripts) wins over the cookie (the page)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(COOKIE), True


def current_user(request: Request, tx: TxDep) -> auth.Principal:
    token, via_cookie = presented_token(request)
    with tx() as s:
        user = auth.resolve(s, token)
    if user is None:
        raise HTTPException(401, {"message": "log in first (POST /api/review/login)"})
    json_body = request.headers.get("content-type", "").startswith("application/json")
    if via_cookie and request.method not in ("GET", "HEAD") and not json_body:
        raise HTTPException(415, {"message": "send JSON (Content-Type: application/json)"})
    return user


CurrentUser = Annotated[auth.Principal, Depends(current_user)]


def lead_only(user: auth.Principal) -> None:
    if not user.leads:
        raise HTTPException(403, {"message": "leads and admins only"})


def admin_only(user: auth.Principal) -> None:
    if user.role != "admin":
        raise HTTPException(403, {"message": "admins only"})
