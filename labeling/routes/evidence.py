"""Evidence feedback on one conversation (chip verdicts, missed spans) and the leads'
per-rule precision. Registered before ``items``: its catch-all GET of an item would
otherwise take ``…/evidence`` as part of the conversation id."""

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from .. import evidence_feedback
from ..access import visible
from ..deps import CurrentUser, TxDep, lead_only
from ..rule_precision import rule_precision

router = APIRouter(tags=["evidence"])


class MarkBody(BaseModel):
    turn: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    rule: str = Field(min_length=1, max_length=100)
    verdict: Literal["right", "wrong"] | None = Field(description="null withdraws your mark")


class MissedBody(BaseModel):
    turn: int
    start: int
    end: int
    label: str = Field(description="the label the span bears on: politeness, emotional_control, resolution, sentiment")


@router.get("/api/review/items/{conversation_id:path}/evidence",
            summary="Your evidence marks and missed spans (others' once your review is in)")
def get_feedback(conversation_id: str, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: evidence_feedback.item_feedback(s, user, conversation_id))


@router.post("/api/review/items/{conversation_id:path}/evidence/marks", summary="Mark an evidence chip right or wrong")
def mark(conversation_id: str, body: MarkBody, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: evidence_feedback.mark_evidence(
        s, user, conversation_id, turn=body.turn, start=body.start, end=body.end, rule=body.rule,
        verdict=body.verdict), write=True)


@router.post("/api/review/items/{conversation_id:path}/evidence/missed", summary="Add a span the rules missed")
def add_missed(conversation_id: str, body: MissedBody, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: evidence_feedback.add_missed_span(
        s, user, conversation_id, turn=body.turn, start=body.start, end=body.end, label=body.label), write=True)


@router.delete("/api/review/items/{conversation_id:path}/evidence/missed/{span_id}",
               summary="Withdraw one of your missed spans")
def remove_missed(conversation_id: str, span_id: int, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: evidence_feedback.remove_missed_span(s, user, conversation_id, span_id), write=True)


@router.get("/api/review/rules/stats", summary="Per-rule hits, marked-wrong rate and precision (Wilson interval)")
def rules_stats(user: CurrentUser, tx: TxDep, min_marks: int = Query(5, ge=1, le=100000)) -> dict[str, Any]:
    lead_only(user)
    return tx.run(lambda s: rule_precision(s, visible(s, user), min_marks=min_marks).as_dict())
