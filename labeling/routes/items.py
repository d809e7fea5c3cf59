"""The review queue, one conversation with everything the page shows, saving a review,
a conversation's audit trail, and an agent's own scored conversations."""

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from .. import queue, reviews, views
from ..deps import ConfigDep, CurrentUser, TxDep

router = APIRouter(tags=["review"])


class ReviewBody(BaseModel):
    labels: dict[str, str]
    version: int
    comment: str = ""
    lead_time: float | None = None


@router.get("/api/review/queue", summary="Disputes first, then least confident, plus sample")
def get_queue(user: CurrentUser, cfg: ConfigDep, tx: TxDep, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    return tx.run(lambda s: queue.build_queue(s, user, limit, tz=cfg.timezone))


# Conversation ids may contain "/" (e.g. "shop-7/2026-11/c1"); the page sends them
# percent-encoded, which arrives decoded, so the id is a path parameter. The /review and
# /audit routes come first: the id before them is whatever precedes the suffix.
@router.post("/api/review/items/{conversation_id:path}/review",
             responses={409: {"description": "someone saved this item after you loaded it"}})
def save(conversation_id: str, body: ReviewBody, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: reviews.save_review(s, user, conversation_id, body.labels, version=body.version,
                                                comment=body.comment, lead_time=body.lead_time), write=True)


@router.get("/api/review/items/{conversation_id:path}/audit",
            summary="A conversation's audit trail (in the blind phase: only your own entries)")
def item_audit(conversation_id: str, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: {"entries": views.item_audit(s, user, conversation_id)})


@router.get("/api/review/items/{conversation_id:path}")
def get_item(conversation_id: str, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: views.item(s, user, conversation_id, tz=cfg.timezone))


@router.get("/api/review/mine", summary="An agent's own scored conversations")
def mine(user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: {"conversations": views.my_conversations(s, user)})
