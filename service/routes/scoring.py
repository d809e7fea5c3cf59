"""Real-time scoring (``/v1/score``, ``/v1/score/batch``) and the model behind it.

Every request goes through the same pipeline as the batch scorer: validate
(``validate_object``) → mask PII → engine, via the dynamic batcher. Bad input is a 422
with the reason, never a 500. The request bodies are read by hand (a 422 names the
item and the field), so their schemas are written here for the OpenAPI document.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kefuqa.contract import LABELS, Conversation
from kefuqa.http_errors import error_response
from kefuqa.io.readers import json_limit_reason
from kefuqa.service.alerts import ScoredConversation
from kefuqa.service.deps import EngineDep, MetricsDep, Scorer, ScorerDep, SettingsDep
from kefuqa.service.errors import ApiError


def conversation_schema() -> dict[str, Any]:
    """The request body schema; the models it refers to (Turn, Labels) are published in
    the document's components by the app."""
    schema = Conversation.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


async def read_json(request: Request) -> Any:
    raw = await request.body()  # at most KEFUQA_MAX_BODY_BYTES: BodyLimitMiddleware refused the rest
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"bad JSON: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # integers over 4,300 digits, deep nesting
        raise ApiError(422, f"bad JSON: {json_limit_reason(exc)}") from exc


async def score_one(request: Request, scorer: ScorerDep, metrics: MetricsDep, live: bool = False) -> JSONResponse:
    """``live=true`` for a conversation still in progress: alerts then include a customer waiting
    now, by the server clock, when the chat's last timestamp is recent (``KEFUQA_ALERT_LIVE_MAX_AGE_S``)."""
    conv = scorer.conversation(await read_json(request))
    metrics.batch_items.observe(1)
    return JSONResponse((await scorer.score([conv], live))[0])


async def score_batch(request: Request, scorer: ScorerDep, metrics: MetricsDep, settings: SettingsDep,
                      live: bool = False) -> JSONResponse:
    convs = batch_conversations(await read_json(request), scorer, settings.service.max_batch_items)
    metrics.batch_items.observe(len(convs))
    return JSONResponse({"results": await scorer.score(convs, live)})


def batch_conversations(body: Any, scorer: Scorer, max_items: int) -> list[Conversation]:
    """The conversations of a batch body; a 422 lists every invalid or repeated item."""
    if not isinstance(body, dict) or not isinstance(body.get("conversations"), list):
        raise ApiError(422, "expected {\"conversations\": [ … ]}")
    items = body["conversations"]
    if not items:
        raise ApiError(422, "conversations: empty list")
    if len(items) > max_items:
        raise ApiError(422, f"too many conversations: {len(items)} > {max_items} (KEFUQA_MAX_BATCH_ITEMS)")
    convs, errors, seen = [], [], set()
    for i, item in enumerate(items):
        try:
            conv = scorer.conversation(item)
        except ApiError as exc:
            errors.append({"index": i, "reason": exc.detail})
            continue
        if conv.id in seen:
            errors.append({"index": i, "reason": f"duplicate id {conv.id!r}"})
        seen.add(conv.id)
        convs.append(conv)
    if errors:
        raise ApiError(422, errors)
    return convs


async def model_info(engine: EngineDep) -> dict[str, Any]:
    return {**engine.info.model_dump(), "labels": {k: list(v) for k, v in LABELS.items()}}


def add_routes(router: APIRouter, max_batch_items: int) -> None:
    """Add the scoring routes to ``router``: the app's own router, so that the API-key
    guard, which matches the app's routes before routing, labels a refused request with
    its route template. ``max_batch_items`` bounds the batch body in the OpenAPI document."""
    conv_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": conversation_schema()}}}}
    batch_schema = {
        "type": "object", "required": ["conversations"],
        "properties": {
            "conversations": {"type": "array", "maxItems": max_batch_items, "items": conversation_schema()},
        },
    }
    batch_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": batch_schema}}}}
    router.add_api_route(
        "/v1/score", score_one, methods=["POST"], response_model=ScoredConversation, openapi_extra=conv_body,
        summary="Score one conversation (finished or still in progress), with its alerts",
        responses={401: error_response("no or wrong API key"), 413: error_response("body too large"),
                   422: error_response("not a valid conversation; detail says why"),
                   503: error_response("model loading")})
    router.add_api_route(
        "/v1/score/batch", score_batch, methods=["POST"], openapi_extra=batch_body,
        summary="Score up to KEFUQA_MAX_BATCH_ITEMS conversations",
        responses={401: error_response("no or wrong API key"), 413: error_response("body too large"),
                   422: error_response("invalid items, each with its index and reason")})
    router.add_api_route("/v1/model", model_info, methods=["GET"], summary="The model behind the scores")
