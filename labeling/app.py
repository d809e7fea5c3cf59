"""A standalone app with only the review router (``kefuqa review serve``).

The main service (``kefuqa serve``) includes the same router next to scoring.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from kefuqa.settings import Settings

from .api import make_router
from .config import ReviewConfig


def create_app(settings: Settings, config: ReviewConfig | None = None) -> FastAPI:
    app = FastAPI(title="kefu-qa review", version="0.1.0",
                  description="QA reviewers confirm or correct the model's labels; agents dispute scores.")
    app.include_router(make_router(settings, config))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/review")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
