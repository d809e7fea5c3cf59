"""The review app: the web page at ``/review`` and JSON endpoints under ``/api/review``.

``include_review(app, settings)`` adds them to an app: the main service app and the
standalone one of ``kefuqa review serve``. Their routes are in ``routes/``, one module
per area; what they depend on (store, settings, login throttle, the logged-in user) is
in ``deps``. Every action is a JSON endpoint; errors are ``{"detail": {"message": …}}``
with 401/403/404/409/422, never a 500 for bad input.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from kefuqa.settings import Settings

from .config import ReviewConfig
from .deps import review_state
from .routes import disputes, evidence, interop, items, leads, page, session, speakers, users
from .routes.appeals import router as appeals_router


@asynccontextmanager
async def _close_store(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.review.store.close()  # connections go back when the app stops


router = APIRouter(lifespan=_close_store)
# The page, then the JSON API in the order the OpenAPI document lists it.
router.include_router(page.router)
router.include_router(session.router)
router.include_router(evidence.router)  # before items: see routes/evidence.py
router.include_router(speakers.router)  # before items: see routes/speakers.py
router.include_router(items.router)
router.include_router(disputes.router)
router.include_router(appeals_router)
router.include_router(leads.router)
router.include_router(users.router)
router.include_router(interop.router)


def include_review(app: FastAPI, settings: Settings, config: ReviewConfig | None = None) -> None:
    """Serve the review page and API from ``app``, with a store, review settings and login
    throttle of its own (``config`` defaults to ``settings.review``)."""
    app.state.review = review_state(settings, config)
    app.include_router(router)

