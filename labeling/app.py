"""A standalone app with only the review router (``kefuqa review serve``).

The main service (``kefuqa serve``) includes the same router next to scoring.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from kefuqa.http_errors import ERROR_RESPONSES, use_error_body
from kefuqa.http_limits import BodyLimitMiddleware
from kefuqa.settings import Settings

from .api import include_review
from .config import ReviewConfig


def create_app(settings: Settings, config: ReviewConfig | None = None) -> FastAPI:
    app = FastAPI(title="kefu-qa review", version="0.1.0", responses=ERROR_RESPONSES,
                  description="QA reviewers confirm or correct the model's labels; agents dispute scores.")
    use_error_body(app)  # the same error body as the review API inside the main service
    include_review(app, settings, config)
    # The same streaming body bound as the main service (KEFUQA_MAX_BODY_BYTES; logins 4 KB).
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.service.max_body_bytes)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/review")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
