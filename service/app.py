"""The HTTP API (FastAPI): real-time scoring, model info, probes, metrics.

Every scoring request goes through the same pipeline as the batch scorer:
validate (``validate_object``) → mask PII → engine, via the dynamic batcher.
Bad input is a 4xx with the reason, never a 500.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from kefuqa.contract import LABELS, Conversation, ScoreRecord
from kefuqa.http_limits import BodyLimitMiddleware, route_label
from kefuqa.io.readers import json_limit_reason, validate_object
from kefuqa.models.engine import Engine, create_engine
from kefuqa.pipeline import mask_conversation
from kefuqa.service.alerts import AlertThresholds, alerts
from kefuqa.service.auth import key_ok, load_key_hashes
from kefuqa.service.batcher import DynamicBatcher
from kefuqa.service.metrics import ServiceMetrics
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker

log = logging.getLogger("kefuqa.service")


class ApiError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        self.status, self.detail = status, detail


def _conversation_schema() -> dict[str, Any]:
    """The request body schema; the models it refers to (Turn, Labels) are published in
    the document's components by ``_publish_schemas``."""
    schema = Conversation.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


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


def create_app(settings: Settings, engine_factory: Callable[[], Engine] | None = None) -> FastAPI:
    svc = settings.service
    masker = PiiMasker.from_settings(settings.pii)
    hashes = load_key_hashes(svc.api_key_hashes, svc.api_keys_file)
    if not hashes and not svc.auth_disabled:
        raise ValueError("no API keys configured: set KEFUQA_API_KEY_HASHES or KEFUQA_API_KEYS_FILE "
                         "(make one with `kefuqa keys new`), or KEFUQA_AUTH_DISABLED=true for development")
    thresholds = AlertThresholds(sentiment_drop=svc.alert_sentiment_drop, wait_s=svc.alert_wait_s)
    metrics = ServiceMetrics()
    state: dict[str, Any] = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        factory = engine_factory or (lambda: create_engine(settings.engine, rules_file=settings.rules_file,
                                                           home=settings.home, threads=svc.threads))
        engine = factory()
        batcher = DynamicBatcher(engine, svc.batch_max_size, svc.batch_max_wait_ms, metrics.observe_inference)
        await batcher.start()
        warm = Conversation(id="warmup", agent_id="-", turns=[{"speaker": "customer", "text": "在吗"},
                                                              {"speaker": "agent", "text": "您好，在的"}])
        await batcher.score([warm])
        metrics.model_info.labels(name=engine.info.name, version=engine.info.version).set(1)
        state.update(engine=engine, batcher=batcher, ready=True)
        log.info(json.dumps({"event": "ready", "model": engine.info.model_dump()}))
        yield
        state["ready"] = False
        await batcher.stop()

    app = FastAPI(title="kefu-qa", version="0.1.0", lifespan=lifespan,
                  description="Conversation QA scoring for Chinese customer service (scores.md records).")
    app.state.settings = settings
    if svc.cors_origins.strip():
        app.add_middleware(CORSMiddleware, allow_origins=[o.strip() for o in svc.cors_origins.split(",")],
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type", "X-API-Key"])

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t0 = time.perf_counter()
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        path = request.url.path
        route = route_label(app.router.routes, request.scope)
        if path.startswith("/v1/"):
            presented = request.headers.get("x-api-key")
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                presented = auth[7:].strip()
            if not svc.auth_disabled and not key_ok(presented, hashes):
                response: Response = JSONResponse(
                    {"detail": "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)"},
                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
                return _finish(response, route, t0, rid)
        try:
            response = await call_next(request)
        except Exception:  # a bug, not bad input: logged without the body
            log.exception(json.dumps({"event": "error", "route": route, "request_id": rid}))
            response = JSONResponse({"detail": "internal error", "request_id": rid}, status_code=500)
        return _finish(response, route_label(app.router.routes, request.scope), t0, rid)

    # Outermost: bodies are bounded before any route, authenticated or not, reads them.
    app.add_middleware(BodyLimitMiddleware, max_bytes=svc.max_body_bytes)

    def _finish(response: Response, route: str, t0: float, rid: str) -> Response:
        seconds = time.perf_counter() - t0
        metrics.observe_request(route, response.status_code, seconds)
        response.headers["x-request-id"] = rid
        # JSON logs: route, status and timing only — never transcript text or PII.
        log.info(json.dumps({"event": "request", "route": route, "status": response.status_code,
                             "ms": round(seconds * 1000, 2), "request_id": rid}))
        return response

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    async def _body(request: Request) -> Any:
        raw = await request.body()  # at most KEFUQA_MAX_BODY_BYTES: BodyLimitMiddleware refused the rest
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(422, f"bad JSON: {exc}") from exc
        except (ValueError, RecursionError) as exc:  # integers over 4,300 digits, deep nesting
            raise ApiError(422, f"bad JSON: {json_limit_reason(exc)}") from exc

    def _conv(obj: Any, where: str = "") -> Conversation:
        result = validate_object(obj, settings.limits)
        if isinstance(result, str):
            raise ApiError(422, f"{where}{result}")
        return mask_conversation(result, masker)

    def _require_ready() -> DynamicBatcher:
        if not state["ready"]:
            raise ApiError(503, "model not loaded yet")
        return state["batcher"]

    async def _score(convs: list[Conversation], live: bool) -> list[dict[str, Any]]:
        records = await _require_ready().score(convs)
        for conv, record in zip(convs, records):
            record["alerts"] = alerts(conv, record, thresholds, live=live)
        return records

    conv_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": _conversation_schema()}}}}
    batch_schema = {
        "type": "object", "required": ["conversations"],
        "properties": {
            "conversations": {"type": "array", "maxItems": svc.max_batch_items, "items": _conversation_schema()},
        },
    }
    batch_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": batch_schema}}}}

    @app.post("/v1/score", response_model=ScoreRecord, openapi_extra=conv_body,
              summary="Score one conversation (finished or still in progress)",
              responses={401: {"description": "no or wrong API key"}, 413: {"description": "body too large"},
                         422: {"description": "not a valid conversation; detail says why"},
                         503: {"description": "model loading"}})
    async def score_one(request: Request, live: bool = False) -> JSONResponse:
        """``live=true`` for a conversation still in progress: alerts then include a customer waiting now."""
        conv = _conv(await _body(request))
        metrics.batch_items.observe(1)
        return JSONResponse((await _score([conv], live))[0])

    @app.post("/v1/score/batch", openapi_extra=batch_body, summary="Score up to KEFUQA_MAX_BATCH_ITEMS conversations",
              responses={401: {"description": "no or wrong API key"}, 413: {"description": "body too large"},
                         422: {"description": "invalid items, each with its index and reason"}})
    async def score_batch(request: Request, live: bool = False) -> JSONResponse:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("conversations"), list):
            raise ApiError(422, "expected {\"conversations\": [ … ]}")
        items = body["conversations"]
        if not items:
            raise ApiError(422, "conversations: empty list")
        if len(items) > svc.max_batch_items:
            raise ApiError(
                422, f"too many conversations: {len(items)} > {svc.max_batch_items} (KEFUQA_MAX_BATCH_ITEMS)")
        convs, errors, seen = [], [], set()
        for i, item in enumerate(items):
            try:
                conv = _conv(item)
            except ApiError as exc:
                errors.append({"index": i, "reason": exc.detail})
                continue
            if conv.id in seen:
                errors.append({"index": i, "reason": f"duplicate id {conv.id!r}"})
            seen.add(conv.id)
            convs.append(conv)
        if errors:
            raise ApiError(422, errors)
        metrics.batch_items.observe(len(convs))
        return JSONResponse({"results": await _score(convs, live)})

    @app.get("/v1/model", summary="The model behind the scores")
    async def model_info() -> dict[str, Any]:
        engine = state.get("engine")
        if engine is None:
            raise ApiError(503, "model not loaded yet")
        return {**engine.info.model_dump(), "labels": {k: list(v) for k, v in LABELS.items()}}

    @app.get("/healthz", summary="Alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Model loaded and warm (503 until then)")
    async def readyz() -> JSONResponse:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _mount_rooms(app, settings)
    _publish_schemas(app)
    return app


def _mount_rooms(app: FastAPI, settings: Settings) -> None:
    """Grading and review routers, when those rooms are installed."""
    try:
        from kefuqa.grading.api import make_router as grading_router
    except ImportError:
        pass
    else:
        from kefuqa.service.grading_source import grading_loader

        app.include_router(grading_router(grading_loader(settings)))
    try:
        from kefuqa.labeling.api import make_router as review_router
    except ImportError:
        return
    app.include_router(review_router(settings))
