"""The HTTP API (FastAPI): real-time scoring, model info, probes, metrics, and the
grading and review rooms when they are installed.

``create_app`` puts what the routes need on ``app.state`` (``deps`` reads it there); the
lifespan loads the model. The routes are in ``routes/``, one module per area. Every
request passes the body bound, then the API-key guard, which also counts and logs it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kefuqa.contract import Conversation
from kefuqa.http_errors import ERROR_RESPONSES, use_error_body
from kefuqa.http_limits import BodyLimitMiddleware, route_label
from kefuqa.models.engine import Engine, create_engine
from kefuqa.models.neural.embedding_cache import new_cache
from kefuqa.service.alert_memory import AlertMemory, LocalAlertMemory, RedisAlertMemory
from kefuqa.service.alerts import AlertThresholds
from kefuqa.service.auth import key_ok, load_key_hashes
from kefuqa.service.batcher import DynamicBatcher
from kefuqa.service.deps import AlertDesk, Model
from kefuqa.service.errors import ApiError
from kefuqa.service.metrics import ServiceMetrics
from kefuqa.service.routes import probes, scoring
from kefuqa.service.webhook import WebhookConfig, WebhookSender
from kefuqa.settings import ServiceSettings, Settings
from kefuqa.text.pii import PiiMasker

log = logging.getLogger("kefuqa.service")


def create_app(settings: Settings, engine_factory: Callable[[], Engine] | None = None) -> FastAPI:
    svc = settings.service
    masker = PiiMasker.from_settings(settings.pii)
    hashes = load_key_hashes(svc.api_key_hashes, svc.api_keys_file)
    if not hashes and not svc.auth_disabled:
        raise ValueError("no API keys configured: set KEFUQA_API_KEY_HASHES or KEFUQA_API_KEYS_FILE "
                         "(make one with `kefuqa keys new`), or KEFUQA_AUTH_DISABLED=true for development")
    app = FastAPI(title="kefu-qa", version="0.1.0", lifespan=lifespan, responses=ERROR_RESPONSES,
                  description="Conversation QA scoring for Chinese customer service (scores.md records).")
    app.state.settings = settings
    app.state.key_hashes = hashes
    app.state.masker = masker
    app.state.alert_desk = alert_desk(svc)
    app.state.metrics = ServiceMetrics()
    cache = new_cache(settings.embedding_cache_entries, settings.embedding_cache_mb) if engine_factory is None else None
    if cache is not None:
        app.state.metrics.watch_embedding_cache(cache.stats)
    app.state.engine_factory = engine_factory or partial(
        create_engine, settings.engine, rules_file=settings.rules_file, home=settings.home, threads=svc.threads,
        embedding_cache=cache)
    app.state.model = Model()
    if svc.cors_origins.strip():
        app.add_middleware(CORSMiddleware, allow_origins=[o.strip() for o in svc.cors_origins.split(",")],
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type", "X-API-Key"])
    app.middleware("http")(guard)
    # Outermost: bodies are bounded before any route, authenticated or not, reads them.
    app.add_middleware(BodyLimitMiddleware, max_bytes=svc.max_body_bytes)
    app.exception_handler(ApiError)(_api_error)
    use_error_body(app)
    app.exception_handler(StarletteHTTPException)(_http)
    scoring.add_routes(app.router, svc.max_batch_items)
    app.include_router(probes.router)
    _mount_rooms(app, settings)
    _publish_schemas(app)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the engine, start the batcher and warm it with one conversation; ready then."""
    svc, metrics, model = app.state.settings.service, app.state.metrics, app.state.model
    engine = app.state.engine_factory()
    batcher = DynamicBatcher(engine, svc.batch_max_size, svc.batch_max_wait_ms, metrics.observe_inference)
    await batcher.start()
    warm = Conversation(id="warmup", agent_id="-", turns=[{"speaker": "customer", "text": "在吗"},
                                                          {"speaker": "agent", "text": "您好，在的"}])
    await batcher.score([warm])
    desk: AlertDesk = app.state.alert_desk
    if desk.webhook is not None:
        await desk.webhook.start()
    metrics.model_info.labels(name=engine.info.name, version=engine.info.version).set(1)
    model.engine, model.batcher, model.ready = engine, batcher, True
    log.info(json.dumps({"event": "ready", "model": engine.info.model_dump()}))
    yield
    model.ready = False
    await batcher.stop()
    if desk.webhook is not None:
        await desk.webhook.stop()
    await desk.memory.close()


def alert_desk(svc: ServiceSettings) -> AlertDesk:
    """The alert thresholds, memory and webhook from the ``KEFUQA_ALERT_*`` settings."""
    if svc.alert_webhook and svc.alert_webhook_secret is None:
        raise ValueError("KEFUQA_ALERT_WEBHOOK is set but KEFUQA_ALERT_WEBHOOK_SECRET is not: "
                         "webhook POSTs are signed, so set a secret and give it to the receiver")
    thresholds = AlertThresholds(sentiment_drop=svc.alert_sentiment_drop, wait_s=svc.alert_wait_s,
                                 live_max_age_s=svc.alert_live_max_age_s)
    ttl_s = svc.alert_memory_hours * 3600
    memory: AlertMemory = (RedisAlertMemory(svc.alert_redis_url, ttl_s) if svc.alert_redis_url
                           else LocalAlertMemory(svc.alert_memory_conversations, ttl_s))
    webhook = None
    if svc.alert_webhook and svc.alert_webhook_secret is not None:
        secret = svc.alert_webhook_secret.get_secret_value().encode("utf-8")
        webhook = WebhookSender(WebhookConfig(svc.alert_webhook, secret, attempts=svc.alert_webhook_attempts,
                                              backoff_s=svc.alert_webhook_backoff_s))
    return AlertDesk(thresholds, memory, webhook)


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """API keys for ``/v1/``; a request id, metrics and a log line for every request."""
    state = request.app.state
    routes = request.app.router.routes
    t0 = time.perf_counter()
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
    path = request.url.path
    route = route_label(routes, request.scope)
    if path.startswith("/v1/"):
        presented = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
        if not state.settings.service.auth_disabled and not key_ok(presented, state.key_hashes):
            response: Response = JSONResponse(
                {"detail": "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)"},
                status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return _finish(state.metrics, response, route, t0, rid)
    try:
        response = await call_next(request)
    except Exception:  # a bug, not bad input: logged without the body
        log.exception(json.dumps({"event": "error", "route": route, "request_id": rid}))
        response = JSONResponse({"detail": "internal error", "request_id": rid}, status_code=500)
    return _finish(state.metrics, response, route_label(routes, request.scope), t0, rid)


def _finish(metrics: ServiceMetrics, response: Response, route: str, t0: float, rid: str) -> Response:
    seconds = time.perf_counter() - t0
    metrics.observe_request(route, response.status_code, seconds)
    response.headers["x-request-id"] = rid
    # JSON logs: route, status and timing only — never transcript text or PII.
    log.info(json.dumps({"event": "request", "route": route, "status": response.status_code,
                         "ms": round(seconds * 1000, 2), "request_id": rid}))
    return response


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _publish_schemas(app: FastAPI) -> None:
    """Add the transcript models the hand-written request bodies refer to, so every
    ``$ref`` in /openapi.json resolves (schema-driven clients and fuzzers need them)."""
    defs = Conversation.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {})
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in defs.items():
                schemas.setdefault(name, schema)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_rooms(app: FastAPI, settings: Settings) -> None:
    """Grading and review routes, when those rooms are installed."""
    try:
        from kefuqa.grading.api import make_router as grading_router
    except ImportError:
        pass
    else:
        from kefuqa.service.grading_source import grading_loader

        app.include_router(grading_router(grading_loader(settings)))
    try:
        from kefuqa.labeling.api import include_review
    except ImportError:
        return
    include_review(app, settings)
